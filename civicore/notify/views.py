"""Inbox pages: the list of a user's notifications and marking one read."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from civicore.core.errors import NotFound
from civicore.notify import selectors, services
from civicore.portal.pagination import paginate_page

PAGE_SIZE = 20


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    context = paginate_page(request, selectors.notifications_for(user=request.user), PAGE_SIZE)  # type: ignore[arg-type]
    context["notifications"] = context["page"].object_list
    return render(request, "notify/inbox.html", context)


@login_required
@require_POST
def mark_read(request: HttpRequest, notification_id: int) -> HttpResponse:
    try:
        notification = services.notification_mark_read(
            user=request.user,  # type: ignore[arg-type]
            notification_id=notification_id,
        )
    except NotFound as exc:
        raise Http404(exc.message) from exc
    if request.headers.get("HX-Request") == "true":
        return render(request, "notify/_notification_updated.html", {"notification": notification})
    return redirect("notify:inbox")
