"""Endpoints gateways call. Thin: the gateway adapter verifies, services apply."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from civicore.payments import services
from civicore.payments.gateways import ForgedMessage, gateway_for
from civicore.payments.models import PaymentEvent

logger = logging.getLogger(__name__)


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
