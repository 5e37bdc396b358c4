from __future__ import annotations

from collections.abc import Iterator

import pytest

from civicore.organisations.registry import FileBusinessRegistry


@pytest.fixture(autouse=True)
def _forget_registry_entries() -> Iterator[None]:
    """Each test's businesses in the embedded registry are its own."""
    yield
    FileBusinessRegistry.forget_added()
