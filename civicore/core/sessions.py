"""Django's database sessions (the same table, rows and behaviour), read with one prepared
statement instead of an ORM query: every request of a logged-in browser loads its session."""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone

from civicore.core import rowsql


class SessionStore(db.SessionStore):
    def _get_session_from_db(self) -> Session | None:
        with rowsql.cursor() as cursor:
            cursor.execute(
                f"SELECT {rowsql.columns(Session, 's')} FROM {Session._meta.db_table} s "  # noqa: S608 - ours
                "WHERE s.session_key = %s AND s.expire_date > %s",
                [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None  # as Django's store: unknown or expired, a new one is made
            return None
        return rowsql.from_row(Session, row)
