"""Ending a database session from the server side, as a restart, a fail-over or an operator's
pg_terminate_backend does: the client learns of it only when it next uses the connection."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

postgresql_only = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="terminates PostgreSQL sessions",
)


def terminate_session(wrapper: Any) -> None:
    """Terminate the server session behind a Django connection, from another session, and wait
    until it is gone."""
    wrapper.ensure_connection()
    pid = wrapper.connection.info.backend_pid
    other = connections.create_connection(wrapper.alias)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone() is None:
                    return
                time.sleep(0.01)
        raise AssertionError(f"session {pid} did not end")
    finally:
        other.close()
