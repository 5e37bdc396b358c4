"""What every page needs to draw its header: who is logged in and as what."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from civicore.agencies.selectors import officer_for_user


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    officer = officer_for_user(user) if user is not None else None
    unread = 0
    if user is not None and user.is_authenticated:
        unread = user.notifications.filter(read_at__isnull=True).count()
    return {"current_officer": officer, "unread_notifications": unread}
