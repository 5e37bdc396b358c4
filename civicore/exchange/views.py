"""Pages: a citizen's receipts ("who we told about my change") and the officers' list of failed
deliveries with replay. Thin: selectors read, services write."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from civicore.core.errors import NotFound, PermissionDenied
from civicore.exchange import selectors, services
from civicore.exchange.models import ChangeEvent, Delivery
from civicore.identity.models import ProfileItem
from civicore.identity.selectors import person_for_user
from civicore.portal.pagination import paginate_page

PAGE_SIZE = 25
_ITEM_LABELS = dict(ProfileItem.Key.choices)


_PAYMENT_LABELS = {
    "payment.paid": gettext_lazy("paid"),
    "payment.refunded": gettext_lazy("refunded"),
    "payment.held": gettext_lazy("held for an officer"),
}


def item_labels(keys: list[str]) -> str:
    return ", ".join(str(_ITEM_LABELS.get(key, key)) for key in keys)


def delivery_contents(delivery: Delivery) -> str:
    """What a delivery tells its system, for officers: the changed items, or which payment and
    what happened to it."""
    event = delivery.event
    if event.kind != ChangeEvent.Kind.PAYMENT:
        return item_labels(delivery.items)
    data: dict[str, Any] = event.data if isinstance(event.data, dict) else {}
    payment = data.get("payment")
    if not isinstance(payment, dict):
        payment = {}
    event_type = str(data.get("type", ""))
    return _("Payment %(reference)s: %(what)s") % {
        "reference": payment.get("reference", "?"),
        "what": _PAYMENT_LABELS.get(event_type, event_type),
    }


# --- citizens ---------------------------------------------------------------------------------


@login_required
@require_GET
def change_list(request: HttpRequest) -> HttpResponse:
    person = person_for_user(request.user)  # type: ignore[arg-type]
    if person is None:
        return render(request, "exchange/changes.html", {"person": None})
    context = paginate_page(request, selectors.change_events_of(person=person), PAGE_SIZE)
    context["person"] = person
    context["rows"] = [{"event": e, "items": item_labels(e.items)} for e in context["page"].object_list]
    return render(request, "exchange/changes.html", context)


@login_required
@require_GET
def change_receipt(request: HttpRequest, event_uuid: uuid.UUID) -> HttpResponse:
    person = person_for_user(request.user)  # type: ignore[arg-type]
    try:
        event, deliveries = selectors.change_event_of(person=person, event_uuid=event_uuid)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    rows = [{"delivery": d, "items": item_labels(d.items)} for d in deliveries]
    settled = all(d.status != Delivery.Status.PENDING for d in deliveries)
    context = {"event": event, "items": item_labels(event.items), "rows": rows, "settled": settled}
    response = render(request, "exchange/receipt.html", context)
    response["Cache-Control"] = "no-store"
    return response


# --- officers ---------------------------------------------------------------------------------


def _forbidden(exc: PermissionDenied) -> DjangoPermissionDenied:
    return DjangoPermissionDenied(exc.message)


@login_required
@require_GET
def delivery_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "failing")
    if state not in selectors.OFFICE_FILTERS:
        state = "failing"
    try:
        qs = selectors.deliveries_for(user=request.user, state=state)
        counts = selectors.status_counts(user=request.user)
    except PermissionDenied as exc:
        raise _forbidden(exc) from exc
    context: dict[str, Any] = paginate_page(request, qs, PAGE_SIZE)
    context.update(
        state=state,
        counts=counts,
        rows=[{"delivery": d, "items": delivery_contents(d)} for d in context["page"].object_list],
        filters=[
            ("failing", _("Failing or failed")),
            ("dead", _("Failed (dead letters)")),
            ("pending", _("Being sent")),
            ("delivered", _("Confirmed")),
            ("all", _("All")),
        ],
    )
    template = (
        "exchange/_office_table.html" if request.headers.get("HX-Request") else "exchange/office_list.html"
    )
    return render(request, template, context)


@login_required
@require_GET
def delivery_detail(request: HttpRequest, delivery_id: int) -> HttpResponse:
    try:
        delivery = selectors.delivery_for(user=request.user, delivery_id=delivery_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except PermissionDenied as exc:
        raise _forbidden(exc) from exc
    return render(
        request,
        "exchange/office_detail.html",
        {"delivery": delivery, "items": delivery_contents(delivery)},
    )


@login_required
@require_POST
def delivery_replay(request: HttpRequest, delivery_id: int) -> HttpResponse:
    try:
        delivery = selectors.delivery_for(user=request.user, delivery_id=delivery_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except PermissionDenied as exc:
        raise _forbidden(exc) from exc
    replayed = services.deliveries_replay(
        actor=request.user, deliveries=Delivery.objects.filter(pk=delivery.pk)
    )
    if replayed:
        messages.success(request, _("The delivery will be sent again now."))
    else:
        messages.info(request, _("This delivery cannot be sent again: it is confirmed or being sent."))
    return redirect("exchange:delivery_detail", delivery_id=delivery.pk)


@login_required
@require_POST
def delivery_replay_dead(request: HttpRequest) -> HttpResponse:
    try:
        dead = selectors.dead_deliveries_for(user=request.user)
    except PermissionDenied as exc:
        raise _forbidden(exc) from exc
    replayed = services.deliveries_replay(actor=request.user, deliveries=dead)
    messages.success(
        request,
        ngettext(
            "%(count)d failed delivery will be sent again now.",
            "%(count)d failed deliveries will be sent again now.",
            replayed,
        )
        % {"count": replayed},
    )
    return redirect("exchange:delivery_list")
