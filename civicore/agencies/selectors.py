"""Reads of agencies and officers."""

from __future__ import annotations

from typing import Any

from civicore.agencies.models import Officer


def officer_for_user(user: Any) -> Officer | None:
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        officer = user.officer
    except Officer.DoesNotExist:
        return None
    return officer if officer.active else None
