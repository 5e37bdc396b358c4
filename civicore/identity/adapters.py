"""allauth, adapted: its own sessions list (/accounts/sessions/) ends sessions the way Civicore's
sessions page does, announcing each one first (signals.session_ending) so that the applications
that took part in it are told."""

from __future__ import annotations

from typing import Any

from allauth.usersessions.adapter import DefaultUserSessionsAdapter

from civicore.identity.signals import session_ending


class UserSessionsAdapter(DefaultUserSessionsAdapter):
    def end_sessions(self, sessions: Any) -> None:
        for session in sessions:
            session_ending.send(sender=type(session.user), user=session.user, session_key=session.session_key)
            session.end()
