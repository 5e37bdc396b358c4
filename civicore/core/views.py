import hmac
import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from civicore.core import throttle
from civicore.core.cors import public_document


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the app answers and its database runs a query; 503 otherwise.

    A kept connection that the database has dropped since (a restart, a fail-over, a terminated
    session) says nothing about the database now: it is replaced and the query tried once more."""
    for last_try in (False, True):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception:
            if last_try or connection.in_atomic_block:
                return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
            connection.close()
        else:
            break
    return JsonResponse({"status": "ok", "database": "ok"})


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500. A request cut short by the database (its connection lost in a
    restart, a fail-over or a terminated session; a deadlock or lock timeout) is not a bug: its
    transaction was rolled back and sending it again is the remedy, so it answers 503 with
    Retry-After. (A connection lost at the very moment of COMMIT leaves the outcome unknown:
    that is what a filing's Idempotency-Key is for.) Both pages are static, since rendering ours
    needs the database."""
    error = sys.exc_info()[1]
    if not isinstance(error, OperationalError | InterfaceError):
        return defaults.server_error(request)
    response: HttpResponse
    if request.path.startswith("/api/"):
        body = {
            "code": "database_unavailable",
            "message": _("The service is briefly unavailable. Please send the request again."),
            "details": None,
        }
        response = JsonResponse(body, status=503)
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = "1"
    return response


@public_document
def jwks(request: HttpRequest) -> JsonResponse:
    """The platform's public signing keys (RFC 7517), for agencies verifying what we sign;
    readable from any origin (CORS)."""
    from civicore.core.jose import public_jwks

    response = JsonResponse(public_jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics (civicore.core.metrics) for the scraper holding METRICS_TOKEN as a bearer
    token. Without METRICS_TOKEN the endpoint does not exist; the token is compared in constant
    time, and an address that keeps sending wrong ones is locked out (throttle scope "metrics")."""
    expected = settings.METRICS_TOKEN
    if not expected:
        raise Http404
    keys = {"address": throttle.client_address(request)}
    decision = throttle.check("metrics", keys)
    if not decision.allowed:
        return throttle.api_response(decision)
    scheme, _space, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode("utf-8", "surrogateescape"), expected.encode("utf-8")
    ):
        throttle.fail("metrics", keys)
        response = JsonResponse(
            {
                "code": "unauthenticated",
                "message": _("A valid metrics token is required."),
                "details": None,
            },
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    from prometheus_client import CONTENT_TYPE_LATEST

    from civicore.core import metrics as metrics_registry

    return HttpResponse(metrics_registry.render(), content_type=CONTENT_TYPE_LATEST)
