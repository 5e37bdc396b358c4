"""Refunds proposed for rejected applications' paid fees, under /office/payments/proposals/: the
agency's open proposals and those decided lately, and the forms that accept one (in full or for
less; it is then requested as any refund and sent to the gateway) or decline it with a reason.

The list needs payment.view; deciding needs payment.refund, for a proposal of the officer's own
agency. The list names no payer, but it shows why each application was rejected, so showing it
is audited.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied
from civicore.payments import camt, selectors, services
from civicore.payments.models import Payment, Refund
from civicore.payments.office_views import REFERENCE_MAX, TEXT_MAX, _money, _no_store, _officer, _parse_amount
from civicore.portal.pagination import paginate_page

PAGE_SIZE = 20
# What became of a proposal, as the "recently decided" list says it.
DECISIONS: dict[str, Promise] = {
    Refund.Status.REQUESTED: gettext_lazy("Accepted: the refund is on its way"),
    Refund.Status.SUCCEEDED: gettext_lazy("Accepted: refunded"),
    Refund.Status.FAILED: gettext_lazy("Accepted: the refund failed"),
    Refund.Status.DECLINED: gettext_lazy("Declined"),
}


def _payment_filter(request: HttpRequest) -> str:
    return str(request.GET.get("payment", "")).strip()[:REFERENCE_MAX]


def _list_query(request: HttpRequest) -> str:
    """The list's page and filter, kept by the forms and the redirect after a decision."""
    pairs = {"payment": _payment_filter(request), "page": str(request.GET.get("page", ""))}
    kept = {name: value for name, value in pairs.items() if value and (name != "page" or value.isdigit())}
    return f"?{urlencode(kept)}" if kept else ""


def _limit(refund: Refund) -> int:
    """The most this proposal may refund now: what was proposed, and no more than the payment has
    left to refund."""
    return max(min(refund.amount_minor, getattr(refund, "refundable", refund.amount_minor)), 0)


def _whole_units(amount_minor: int, currency: str) -> str:
    return str(amount_minor // 10 ** camt.currency_exponent(currency))


def _open_row(refund: Refund, errors: dict[str, str], values: dict[str, str]) -> dict[str, Any]:
    payment = refund.payment
    limit = _limit(refund)
    return {
        "refund": refund,
        "payment": payment,
        "amount": _money(refund.amount_minor, payment.currency),
        "limit": _money(limit, payment.currency),
        "may_accept": limit > 0,
        "errors": errors,
        "values": {"amount": _whole_units(limit, payment.currency), **values},
        "ids": {"amount": f"proposal-{refund.pk}-amount", "reason": f"proposal-{refund.pk}-reason"},
    }


def _decided_row(refund: Refund) -> dict[str, Any]:
    return {
        "refund": refund,
        "payment": refund.payment,
        "amount": _money(refund.amount_minor, refund.payment.currency),
        "decision": str(DECISIONS.get(refund.status, refund.get_status_display())),
        "declined": refund.status == Refund.Status.DECLINED,
    }


def _proposals(
    request: HttpRequest,
    officer: Officer,
    *,
    row_errors: dict[int, dict[str, str]] | None = None,
    row_values: dict[int, dict[str, str]] | None = None,
    problem: str = "",
    status: int = 200,
) -> HttpResponse:
    reference = _payment_filter(request)
    context: dict[str, Any] = paginate_page(
        request, selectors.refund_proposals_open(officer=officer, payment_reference=reference), PAGE_SIZE
    )
    proposals: list[Refund] = list(context["page"].object_list)
    decided = selectors.refund_proposals_decided(officer=officer, payment_reference=reference)
    selectors.proposals_viewed(officer=officer, refunds=[*proposals, *decided])
    row_errors = row_errors or {}
    summary: dict[str, str] = {"form": problem} if problem else {}
    summary.update(
        {
            f"proposal-{pk}-{field}": message
            for pk, errors in row_errors.items()
            for field, message in errors.items()
        }
    )
    context.update(
        officer=officer,
        rows=[
            _open_row(refund, row_errors.get(refund.pk, {}), (row_values or {}).get(refund.pk, {}))
            for refund in proposals
        ],
        decided=[_decided_row(refund) for refund in decided],
        error_summary=summary,
        may_decide=permissions.has_perm(officer, permissions.PAYMENT_REFUND),
        payment_filter=reference,
        list_query=_list_query(request),
        reason_max=services.REASON_MAX,
    )
    return _no_store(render(request, "payments/office/proposals.html", context, status=status))


@login_required
@require_GET
def proposal_list(request: HttpRequest) -> HttpResponse:
    return _proposals(request, _officer(request))


def _accepted_amount(text: str, refund: Refund) -> tuple[int | None, str]:
    """The amount an officer accepts, in minor units, or why it cannot be refunded."""
    currency = refund.payment.currency
    limit = _limit(refund)
    if not text:
        return None, _("Enter the amount to refund, in dong.")
    negative = text.startswith("-") and _parse_amount(text[1:], currency) is not None
    amount = _parse_amount(text, currency)
    if negative or amount == 0:
        return None, _("The amount must be more than 0.")
    if amount is None:
        return None, _("Enter the amount in dong, in digits (for example 50000).")
    if amount > limit:
        return None, _("The amount is more than can be refunded: at most %(amount)s.") % {
            "amount": _money(limit, currency)
        }
    return amount, ""


@login_required
@require_POST
def proposal_decide(request: HttpRequest, refund_id: int) -> HttpResponse:
    """Accept a proposal (the amount given, at most what was proposed) or decline it (a reason)."""
    officer = _officer(request, permissions.PAYMENT_REFUND)
    try:
        refund = selectors.refund_proposal_for(officer=officer, refund_id=refund_id)
    except NotFound:
        problem = _("This refund proposal is not one of your agency's. Nothing was changed.")
        return _proposals(request, officer, problem=problem, status=404)
    if refund.status != Refund.Status.PROPOSED:
        return _proposals(request, officer, problem=_already_decided(refund), status=409)
    action = str(request.POST.get("action", ""))
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    amount: int | None = None
    if action == "accept":
        values["amount"] = str(request.POST.get("amount", "")).strip()[:30]
        amount, message = _accepted_amount(values["amount"], refund)
        if message:
            errors["amount"] = message
    elif action == "decline":
        values["reason"] = str(request.POST.get("reason", ""))[:TEXT_MAX]
        if not values["reason"].strip():
            errors["reason"] = _("Say why the refund is declined.")
    else:
        problem = _("Choose whether to accept or decline the refund. Nothing was changed.")
        return _proposals(request, officer, problem=problem, status=422)
    if not errors:
        try:
            decided = services.refund_proposal_decide(
                refund=refund,
                officer=officer,
                accept=action == "accept",
                reason=values.get("reason", ""),
                amount_minor=amount,
            )
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(exc.message) from exc
        except services.RefundInvalid as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            errors["reason" if "reason" in details else "amount"] = exc.message
        except NotFound:
            problem = _("This refund proposal is not one of your agency's. Nothing was changed.")
            return _proposals(request, officer, problem=problem, status=404)
        except ApplicationError as exc:
            # Decided by someone else a moment ago, or the payment can no longer be refunded.
            return _proposals(request, officer, problem=f"{exc.message} ({exc.code})", status=409)
        else:
            messages.success(request, _decided_message(decided))
            return redirect(reverse("payments_office:proposals") + _list_query(request))
    return _proposals(
        request, officer, row_errors={refund.pk: errors}, row_values={refund.pk: values}, status=422
    )


def _already_decided(refund: Refund) -> str:
    return _("%(message)s Refund %(reference)s: %(decision)s. Nothing was changed.") % {
        "message": _("This refund has been decided already."),
        "reference": refund.reference,
        "decision": DECISIONS.get(refund.status, refund.get_status_display()),
    }


def _decided_message(refund: Refund) -> str:
    payment = refund.payment
    if refund.status == Refund.Status.DECLINED:
        return _("The refund proposal %(reference)s for payment %(payment)s is declined.") % {
            "reference": refund.reference,
            "payment": payment.reference,
        }
    if payment.method == Payment.Method.VIETQR:
        text = _(
            "Refund %(reference)s of %(amount)s is requested. Confirm it on the payment's page once the "
            "agency's bank has sent the transfer."
        )
    else:
        text = _("Refund %(reference)s of %(amount)s is requested from the gateway.")
    return text % {"reference": refund.reference, "amount": _money(refund.amount_minor, payment.currency)}
