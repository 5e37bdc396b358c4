"""Payments API: a citizen (or a business member with the `pay` role) pays an application's fee by
VietQR transfer or at a gateway and follows the payment; officers of the agency holding
payment.view read it, and those holding payment.refund refund it. Money moves only in services:
this router parses, checks who is asking, and shapes the answer."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from typing import Annotated, Any, Literal

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status
from pydantic import BeforeValidator

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.agencies.selectors import officer_for_user
from civicore.core.errors import PermissionDenied, ValidationFailed
from civicore.core.pagination import paginate
from civicore.core.schemas import ErrorOut, errors
from civicore.core.throttle import client_address
from civicore.identity.models import Person
from civicore.identity.selectors import person_for_user
from civicore.organisations.acting import organisation_from_header
from civicore.organisations.models import Organisation
from civicore.payments import selectors, services
from civicore.payments.fees import FeeLine
from civicore.payments.gateways import gateway_for
from civicore.payments.models import Payment, Refund

router = Router(tags=["payments"])

# Far above any fee, far below what the ledger's 64-bit columns hold.
AMOUNT_MAX = 10**15
GATEWAY_CODE_MAX = 20


def _whole_number(value: Any) -> Any:
    # JSON has one number type: 1000.0 is the integer 1000, as JSON Schema reads it; but neither
    # true nor "1000" is a number of dong.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


class PaymentIn(Schema):
    application_id: uuid.UUID
    method: Literal["vietqr", "gateway"] = Field(
        description="`vietqr`: a bank transfer to the agency's account, from any banking app. "
        "`gateway`: card, e-wallet or internet banking on the gateway's page (name it in `gateway`)."
    )
    gateway: str | None = Field(
        None,
        max_length=GATEWAY_CODE_MAX,
        description="With `method: gateway`, the gateway's code, e.g. `vnpay`. Leave out for `vietqr`.",
    )


class FeeLineOut(Schema):
    code: str
    label: str = Field(description="In the language of the request (Accept-Language).")
    quantity: int
    unit_amount: int
    amount: int


class TransferOut(Schema):
    bank_bin: str = Field(description="The bank's six-digit Napas BIN.")
    bank_name: str
    account_number: str
    account_name: str
    amount_minor: int
    currency: str
    reference: str = Field(description="Type exactly this as the transfer's content.")
    qr_payload: str = Field(description="The VietQR text to draw as a QR code for banking apps to scan.")


class PaymentOut(Schema):
    id: uuid.UUID
    reference: str
    application_id: uuid.UUID
    status: str
    method: str
    gateway: str
    amount_minor: int
    currency: str
    breakdown: list[FeeLineOut]
    created_at: dt.datetime
    expires_at: dt.datetime
    paid_at: dt.datetime | None
    refunded_minor: int
    transfer: TransferOut | None = Field(
        None, description="While a bank-transfer payment is open: what to transfer, and where."
    )
    checkout_url: str | None = Field(
        None,
        description="In the answer to `POST /payments` for a gateway payment: send the payer's browser "
        "here. It comes back to the portal's payment page.",
    )


class PaymentPage(Schema):
    items: list[PaymentOut]
    next_cursor: str | None


class RefundIn(Schema):
    amount_minor: WholeNumber = Field(gt=0, le=AMOUNT_MAX, description="At most what is left to refund.")
    reason: str = Field(
        min_length=1,
        max_length=4 * services.REASON_MAX,
        description=f"Shown to the payer; at most {services.REASON_MAX} characters once spaces are tidied.",
    )


class RefundOut(Schema):
    reference: str
    amount_minor: int
    currency: str
    status: str
    reason: str
    created_at: dt.datetime
    completed_at: dt.datetime | None


class RefundPage(Schema):
    items: list[RefundOut]
    next_cursor: str | None


# --- who is asking ---------------------------------------------------------------------------------


def _person(request: HttpRequest) -> Person:
    person = person_for_user(request.user)  # type: ignore[arg-type]
    if person is None:
        raise PermissionDenied(
            _("Only citizens with a verified identity can pay fees."), code="not_a_citizen"
        )
    return person


def _acting(request: HttpRequest, person: Person | None) -> Organisation | None:
    """The business named by X-Acting-For, if the caller is a member (403 no_business_role
    otherwise); None without the header."""
    if person is None:
        return None
    return organisation_from_header(request, person=person)


def _refunding_officer(request: HttpRequest) -> Officer:
    officer = officer_for_user(request.user)
    if officer is None:
        raise PermissionDenied(_("Only officers can refund payments."), code="not_an_officer")
    return permissions.require(
        officer, permissions.PAYMENT_REFUND, message=_("Your roles do not include refunding payments.")
    )


def _visible_payment(request: HttpRequest, payment_id: uuid.UUID) -> Payment:
    person = person_for_user(request.user)  # type: ignore[arg-type]
    return selectors.payment_for_caller(
        user=request.user,
        person=person,
        officer=officer_for_user(request.user),
        public_id=payment_id,
        organisation=_acting(request, person),
    )


# --- shaping the answers ---------------------------------------------------------------------------


def _lines(payment: Payment) -> list[dict[str, Any]]:
    lines = []
    for line in payment.breakdown.get("lines", []):
        fee_line = FeeLine(
            code=line["code"],
            label=line.get("label"),
            quantity=line["quantity"],
            unit_amount=line["unit_amount"],
            amount=line["amount"],
        )
        lines.append({**line, "label": fee_line.text})
    return lines


def _transfer(payment: Payment) -> dict[str, Any] | None:
    if not payment.is_open or payment.expires_at <= timezone.now():
        return None
    details = selectors.transfer_details(payment=payment)
    if details is None:
        return None
    return {
        "bank_bin": details.bank_bin,
        "bank_name": details.bank_name,
        "account_number": details.account_number,
        "account_name": details.account_name,
        "amount_minor": details.amount_minor,
        "currency": details.currency,
        "reference": details.reference,
        "qr_payload": details.qr_payload,
    }


def _out(payment: Payment, *, checkout_url: str | None = None) -> dict[str, Any]:
    return {
        "id": payment.public_id,
        "reference": payment.reference,
        "application_id": payment.application.public_id,
        "status": payment.status,
        "method": payment.method,
        "gateway": payment.gateway,
        "amount_minor": payment.amount_minor,
        "currency": payment.currency,
        "breakdown": _lines(payment),
        "created_at": payment.created_at,
        "expires_at": payment.expires_at,
        "paid_at": payment.paid_at,
        "refunded_minor": payment.refunded_minor,
        "transfer": _transfer(payment),
        "checkout_url": checkout_url,
    }


def _refund_out(refund: Refund, currency: str) -> dict[str, Any]:
    return {
        "reference": refund.reference,
        "amount_minor": refund.amount_minor,
        "currency": currency,
        "status": refund.status,
        "reason": refund.reason,
        "created_at": refund.created_at,
        "completed_at": refund.completed_at,
    }


def _gateway_code(payload: PaymentIn) -> str:
    """The gateway the payer asked for, checked before any payment is made: 422 unknown_gateway
    when the deployment has none of that name (or a bank transfer names one), 503
    gateway_unavailable when it has one but not its credentials."""
    code = (payload.gateway or "").strip()
    if payload.method == Payment.Method.VIETQR:
        if code:
            raise ValidationFailed(
                _("A bank transfer goes through no gateway: leave out `gateway`."), code="unknown_gateway"
            )
        return ""
    if code not in settings.PAYMENT_GATEWAYS:
        raise ValidationFailed(
            _("Name one of the payment gateways: %(codes)s.")
            % {"codes": ", ".join(sorted(settings.PAYMENT_GATEWAYS))},
            code="unknown_gateway",
            details={"gateways": sorted(settings.PAYMENT_GATEWAYS)},
        )
    try:
        gateway_for(code)
    except KeyError:
        raise services.GatewayUnavailable(
            _("This payment gateway is not offered now. Pay by bank transfer, or try again later.")
        ) from None
    return code


def _payer_ip(request: HttpRequest) -> str:
    """The payer's address, which gateways require; a request whose address cannot be read (a
    proxy set up wrongly) is refused here rather than failing inside the gateway adapter."""
    address = client_address(request)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise services.NotPayable(
            _(
                "Your network address could not be read, so the gateway cannot take this payment. "
                "Pay by bank transfer, or try again later."
            )
        ) from None
    return address


def _return_url(payment: Payment) -> str:
    return settings.SITE_URL + reverse("payments:return", kwargs={"public_id": payment.public_id})


# --- endpoints -------------------------------------------------------------------------------------


@router.post(
    "",
    response={200: PaymentOut, 201: PaymentOut, **errors(403, 404, 409, 422), 503: ErrorOut},
    summary="Start paying an application's fee",
)
def start_payment(request: HttpRequest, payload: PaymentIn) -> Status[dict[str, Any]]:
    """201 with a new payment; 200 with the open payment when one for the same application, method
    and gateway is still open (starting again is safe). A bank transfer answers with `transfer`
    (the details and the VietQR text), a gateway payment with `checkout_url`.

    Send `X-Acting-For: <business registration number>` to pay for a business's application
    (needs a current `pay` role for the service, else 403 `no_business_role`).

    Errors: 404 `application_not_found`; 409 `not_payable` (not submitted, or the agency takes no
    transfers), `nothing_to_pay`, `already_paid`; 422 `unknown_gateway`; 503
    `gateway_unavailable` (nothing was charged: try again later)."""
    person = _person(request)
    application = selectors.application_for_payer(
        person=person, public_id=payload.application_id, organisation=_acting(request, person)
    )
    gateway = _gateway_code(payload)
    now = timezone.now()
    payment = services.payment_start(
        application=application, payer=person, method=payload.method, gateway=gateway, now=now
    )
    status = 201 if payment.created_at == now else 200
    checkout_url = None
    if payment.method == Payment.Method.VIETQR:
        payment = services.payment_mark_pending(payment=payment)
    else:
        checkout_url = services.payment_checkout(
            payment=payment,
            return_url=_return_url(payment),
            payer_ip=_payer_ip(request),
            locale=get_language() or "vi",
        )
        payment.refresh_from_db()
    payment.application = application
    return Status(status, _out(payment, checkout_url=checkout_url))


@router.get(
    "",
    response={200: PaymentPage, **errors(403, 404, 422)},
    summary="The payments for one of the caller's applications, newest first",
)
def list_payments(
    request: HttpRequest, application_id: uuid.UUID, cursor: str | None = None, limit: int = 20
) -> dict[str, Any]:
    """With `X-Acting-For`, for one of the business's applications (a `pay`, `view` or `file`
    role for its service)."""
    person = _person(request)
    application = selectors.application_for_payer(
        person=person, public_id=application_id, organisation=_acting(request, person)
    )
    rows, next_cursor = paginate(
        selectors.payments_of(application=application),
        cursor=cursor,
        limit=limit,
        order=("-created_at", "-id"),
    )
    return {"items": [_out(p) for p in rows], "next_cursor": next_cursor}


@router.get(
    "/{payment_id}",
    response={200: PaymentOut, **errors(403, 404, 422)},
    summary="One payment: its payer's, or for an officer of its agency",
)
def get_payment(request: HttpRequest, payment_id: uuid.UUID, refresh: bool = False) -> dict[str, Any]:
    """For the payer (or, with `X-Acting-For`, a member of the business with a role for its
    service) and for officers of the payment's agency holding payment.view; 404 for anyone else.

    `refresh=true` on an open gateway payment first asks the gateway how it stands (in case its
    callback was lost) and applies its signed answer; if the gateway cannot answer, the payment
    is shown as the ledger has it."""
    payment = _visible_payment(request, payment_id)
    if refresh and payment.is_open and payment.method == Payment.Method.GATEWAY:
        services.payment_query(payment=payment, requester_ip=client_address(request))
        payment.refresh_from_db()
    return _out(payment)


@router.post(
    "/{payment_id}/refunds",
    response={201: RefundOut, 200: RefundOut, **errors(403, 404, 409, 422)},
    summary="Refund all or part of a paid payment (officers)",
)
def refund_payment(request: HttpRequest, payment_id: uuid.UUID, payload: RefundIn) -> Status[dict[str, Any]]:
    """For officers of the payment's agency holding payment.refund (403 `missing_permission`
    otherwise; 404 for another agency's payment). A gateway payment is refunded through the
    gateway in the background; a bank transfer by the agency's bank, then confirmed by an officer.

    Send `Idempotency-Key` to make retries safe: a retry with the same key answers 200 with the
    refund the first request created, and refunds nothing more.

    Errors: 409 `refund_not_allowed` (not paid, or refunded already); 409 `idempotency_key_reused`
    (the key was sent for another payment or amount); 422 `refund_invalid` (more than is left to
    refund, or no reason); 422 `invalid_idempotency_key`."""
    officer = _refunding_officer(request)
    payment = selectors.payment_for(officer=officer, public_id=payment_id)
    refund, created = services.refund_request_once(
        payment=payment,
        amount_minor=payload.amount_minor,
        reason=payload.reason,
        officer=officer,
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    return Status(201 if created else 200, _refund_out(refund, payment.currency))


@router.get(
    "/{payment_id}/refunds",
    response={200: RefundPage, **errors(403, 404, 422)},
    summary="The refunds of one payment, newest first",
)
def list_refunds(
    request: HttpRequest, payment_id: uuid.UUID, cursor: str | None = None, limit: int = 20
) -> dict[str, Any]:
    """For whoever may see the payment (`GET /payments/{payment_id}`)."""
    payment = _visible_payment(request, payment_id)
    rows, next_cursor = paginate(
        selectors.refunds_of(payment=payment), cursor=cursor, limit=limit, order=("-created_at", "-id")
    )
    return {"items": [_refund_out(r, payment.currency) for r in rows], "next_cursor": next_cursor}
