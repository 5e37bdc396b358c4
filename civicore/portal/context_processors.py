"""What every page needs to draw its header: who is logged in and as what.

Both values are computed on first use, so htmx fragments that never draw the header cost no
queries, and a full page costs at most two (the officer membership and the unread count).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from civicore.agencies.selectors import officer_for_user
from civicore.notify.selectors import unread_count


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"current_officer": None, "unread_notifications": 0}
    return {
        "current_officer": SimpleLazyObject(lambda: officer_for_user(user)),
        "unread_notifications": SimpleLazyObject(lambda: unread_count(user=user)),  # type: ignore[arg-type]
    }
