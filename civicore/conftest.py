"""Fixtures every app's tests share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _private_storage(tmp_path: Path, settings: Any) -> Path:
    """Each test writes uploads and results into its own directory."""
    settings.MEDIA_ROOT = tmp_path / "private"
    settings.PRIVATE_STORAGE_DIR = settings.MEDIA_ROOT
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def _english_for_assertions() -> Any:
    """Code called directly by tests speaks English, which the assertions use. Pages are still
    rendered in the language each request asks for (Vietnamese by default)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _fresh_data_key() -> None:
    """A transactional test's flush empties core_datakey, but this process remembers the active
    data key for a minute. Forget it, so no test seals values under a key the database (and any
    worker process reading it) no longer has."""
    from civicore.core import crypto

    crypto.forget_active_data_key()


@pytest.fixture(autouse=True)
def _fresh_key_caches() -> Any:
    """The platform's JWKS, the credential trust list and status lists are cached per process.
    A test that reads them before any key exists must not leave an empty set to the next one."""
    from civicore.core import jose
    from civicore.vc import keys, services

    for forget in (jose.reset_cache, keys.reset_cache, services.forget_status_lists):
        forget()
    yield
    for forget in (jose.reset_cache, keys.reset_cache, services.forget_status_lists):
        forget()


@pytest.fixture(autouse=True)
def _fresh_service_cache() -> Any:
    """Each test loads its own services; none may see another test's cached ones."""
    from civicore.catalogue.selectors import forget_cached_services

    forget_cached_services()
    yield
    forget_cached_services()
