"""The portal's front page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from civicore.agencies.selectors import officer_for_user
from civicore.notify.selectors import notifications_for
from civicore.portal.selectors import popular_services

LATEST_NOTIFICATIONS = 3


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"services": list(popular_services())}
    user = request.user
    if user.is_authenticated and officer_for_user(user) is None:
        context["latest_notifications"] = list(notifications_for(user=user)[:LATEST_NOTIFICATIONS])  # type: ignore[arg-type]
    return render(request, "portal/home.html", context)
