from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the app answers and its database runs a query; 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    """The platform's public signing keys (RFC 7517), for agencies verifying what we sign."""
    from civicore.core.jose import public_jwks

    response = JsonResponse(public_jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response
