from __future__ import annotations

from typing import Any

from civicore.conftest import _fresh_data_key, _fresh_key_caches  # noqa: F401  (the same autouse fixtures)


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers", "fault: fault drill with real server and worker processes (PostgreSQL only)"
    )
