from __future__ import annotations

from typing import Any


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers", "fault: fault drill with real server and worker processes (PostgreSQL only)"
    )
