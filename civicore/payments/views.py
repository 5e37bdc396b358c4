"""The payer's pages (choose how to pay, the transfer details, back from the gateway) and the
endpoint gateways call. Thin: the gateway adapter verifies, services apply."""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from civicore.applications import selectors as application_selectors
from civicore.applications.models import Application
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied
from civicore.core.middleware import CONTENT_SECURITY_POLICY
from civicore.core.throttle import client_address
from civicore.identity.models import Person
from civicore.identity.selectors import person_for_user
from civicore.organisations.acting import acting_organisation
from civicore.payments import selectors, services, vietqr
from civicore.payments.gateways import ForgedMessage, PaymentGateway, gateway_for
from civicore.payments.models import Payment, PaymentEvent

logger = logging.getLogger(__name__)

VIETQR = Payment.Method.VIETQR


def _person(request: HttpRequest) -> Person:
    person = person_for_user(request.user)  # type: ignore[arg-type]
    if person is None:
        raise DjangoPermissionDenied(_("Only citizens with a verified identity can pay fees."))
    return person


def _application(request: HttpRequest, public_id: uuid.UUID) -> Application:
    try:
        return application_selectors.application_of(
            person=_person(request), public_id=public_id, organisation=acting_organisation(request)
        )
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc


def _payment(request: HttpRequest, public_id: uuid.UUID) -> Payment:
    try:
        return selectors.payment_of_payer(person=_person(request), public_id=public_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


def _gateways() -> dict[str, PaymentGateway]:
    """The gateways configured with their credentials, in the settings' order."""
    offered = {}
    for code in settings.PAYMENT_GATEWAYS:
        try:
            offered[code] = gateway_for(code)
        except KeyError:
            continue
    return offered


def _with_gateway_forms(response: HttpResponse, gateways: dict[str, PaymentGateway]) -> HttpResponse:
    """Let this page's forms lead to the gateways' pages: a browser applies the page's CSP
    form-action to where the form's answer redirects, and the payer is sent on to the gateway."""
    origins = set()
    for gateway in gateways.values():
        parts = urlsplit(str(getattr(gateway, "payment_url", "")))
        if parts.scheme in ("http", "https") and parts.netloc:
            origins.add(f"{parts.scheme}://{parts.netloc}")
    if origins:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "form-action 'self'", "form-action 'self' " + " ".join(sorted(origins))
        )
    return response


def _methods(application: Application, gateways: dict[str, PaymentGateway]) -> list[dict[str, str]]:
    methods = []
    if selectors.takes_transfers(agency_id=application.service.agency_id):
        methods.append(
            {
                "value": VIETQR,
                "label": _("Bank transfer with VietQR"),
                "hint": _("Scan the code with any Vietnamese banking app, or type the details shown."),
            }
        )
    for code in gateways:
        methods.append(
            {
                "value": f"gateway:{code}",
                "label": _("Card, e-wallet or internet banking (%(gateway)s)") % {"gateway": code.upper()},
                "hint": _("You pay on the gateway's secure page and come back here."),
            }
        )
    return methods


def _return_url(request: HttpRequest, payment: Payment) -> str:
    return request.build_absolute_uri(reverse("payments:return", kwargs={"public_id": payment.public_id}))


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def pay(request: HttpRequest, application_id: uuid.UUID) -> HttpResponse:
    """How the payer pays an application's fee: the amount and its breakdown, and a choice of
    method. Choosing a gateway goes straight to its page."""
    application = _application(request, application_id)
    fee = selectors.fee_status(application=application)
    if fee is None or not fee.charged:
        messages.info(request, _("There is no fee to pay for this application."))
        return redirect("applications:detail", public_id=application.public_id)
    if fee.paid is not None:
        return redirect("payments:detail", public_id=fee.paid.public_id)
    gateways = _gateways()
    methods = _methods(application, gateways)
    context: dict[str, Any] = {"application": application, "fee": fee, "methods": methods, "error": ""}
    if request.method == "GET":
        return _with_gateway_forms(render(request, "payments/pay.html", context), gateways)
    choice = request.POST.get("method", "")
    if choice not in {m["value"] for m in methods}:
        context["error"] = _("Choose how you want to pay.")
        return _with_gateway_forms(render(request, "payments/pay.html", context, status=422), gateways)
    method, _sep, gateway = choice.partition(":")
    person = _person(request)
    try:
        payment = services.payment_start(
            application=application, payer=person, method=method, gateway=gateway
        )
        if method == VIETQR:
            services.payment_mark_pending(payment=payment)
            return redirect("payments:detail", public_id=payment.public_id)
        url = services.payment_checkout(
            payment=payment,
            return_url=_return_url(request, payment),
            payer_ip=client_address(request),
            locale=get_language() or "vi",
        )
    except services.AlreadyPaid:
        messages.info(request, _("The fee for this application has been paid."))
        return redirect("applications:detail", public_id=application.public_id)
    except PermissionDenied as exc:
        context["error"] = exc.message
        return _with_gateway_forms(render(request, "payments/pay.html", context, status=403), gateways)
    except ApplicationError as exc:
        context["error"] = exc.message
        status = exc.status if exc.status >= 400 else 409
        return _with_gateway_forms(render(request, "payments/pay.html", context, status=status), gateways)
    return redirect(url)


@never_cache
@login_required
@require_GET
def detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """One payment as its payer sees it: the transfer details and code while it is open, what
    happened once it is not."""
    payment = _payment(request, public_id)
    transfer = selectors.transfer_details(payment=payment) if payment.is_open else None
    qr = (
        vietqr.qr_svg(
            transfer.qr_payload, title=_("VietQR code for payment %(ref)s") % {"ref": payment.reference}
        )
        if transfer is not None
        else ""
    )
    context = {
        "payment": payment,
        "application": payment.application,
        "transfer": transfer,
        "qr": qr,
        "expired": payment.is_open and payment.expires_at <= timezone.now(),
    }
    return _with_gateway_forms(render(request, "payments/detail.html", context), _gateways())


@never_cache
@login_required
@require_GET
def gateway_return(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The payer's browser back from the gateway. What it carries only tells the payer what
    happened; if the ledger has not heard from the gateway yet, ask the gateway directly."""
    payment = _payment(request, public_id)
    try:
        result = gateway_for(payment.gateway).verify_return(request.GET.dict())
    except (KeyError, ForgedMessage):
        result = None
    if result is None or result.reference != payment.reference:
        messages.warning(
            request,
            _("We could not confirm what the payment gateway said. The status below is what we know."),
        )
    if payment.is_open:
        try:
            services.payment_query(payment=payment, requester_ip=client_address(request))
        except DatabaseError:
            # The gateway's callback is being recorded at this moment; it settles the payment.
            logger.warning("could not apply the status of payment %s on return", payment.reference)
        payment.refresh_from_db()
    if payment.status == Payment.Status.PAID:
        messages.success(request, _("Thank you: your fee is paid."))
    elif payment.status == Payment.Status.FAILED:
        messages.error(
            request, _("The payment did not go through and nothing was charged. You can try again.")
        )
    elif payment.is_open:
        messages.info(
            request,
            _("The gateway has not confirmed your payment yet. This page will show it as soon as it does."),
        )
    return redirect("payments:detail", public_id=payment.public_id)


@never_cache
@require_GET
def gateway_callback(request: HttpRequest, code: str) -> JsonResponse:
    """A gateway's server-to-server callback (VNPAY's IPN is a GET). Authenticated by the
    gateway's signature alone; the answer tells the gateway whether to send it again."""
    try:
        gateway = gateway_for(code)
    except KeyError:
        raise Http404("no such gateway") from None
    # A parameter given twice could be read one way here and another way by the signer.
    if any(len(values) > 1 for _name, values in request.GET.lists()):
        outcome = "signature_invalid"
    else:
        try:
            result = gateway.verify_callback(request.GET.dict())
        except ForgedMessage:
            logger.warning("refused a %s callback whose signature does not verify", code)
            outcome = "signature_invalid"
        else:
            try:
                outcome = services.gateway_result_apply(
                    gateway=code, result=result, source=PaymentEvent.Source.GATEWAY_CALLBACK
                )
            except DatabaseError:
                logger.exception("could not record a %s callback; the gateway will send it again", code)
                outcome = "retry"
    status, body = gateway.callback_response(outcome)
    return JsonResponse(body, status=status)
