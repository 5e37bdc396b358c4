from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    """Rate limits, sign-in throttles and used one-time codes live in the cache: no test may see
    another's."""
    cache.clear()
    yield
    cache.clear()
