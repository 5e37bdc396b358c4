"""GET /api/v1/consent/person: the consented items of one citizen, for the agency holding the
access token. The token is checked here, not by the API's default authentication, and the
consent behind it on every call."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from ninja import Router

from civicore.consent import services

router = Router(tags=["consent"])

_PERSON_DESCRIPTION = (
    "Send `Authorization: Bearer <access token>` from the token endpoint. The answer is a compact "
    "JWS signed with the platform key (verify it with /.well-known/jwks.json), or, when the "
    "application publishes an encryption key, that JWS encrypted to it as a compact JWE."
)


def _unauthorized(code: str, message: str) -> HttpResponse:
    """401 with the RFC 6750 challenge; the body has the API's usual {code, message, details}."""
    challenge = 'Bearer realm="civicore"'
    if code == "invalid_token":
        challenge += ', error="invalid_token", error_description="The access token is not valid"'
    body = {"code": code, "message": message, "details": None}
    return HttpResponse(
        json.dumps(body),
        status=401,
        content_type="application/json",
        headers={"WWW-Authenticate": challenge, "Cache-Control": "no-store"},
    )


@router.get(
    "/person",
    auth=None,
    summary="The consented person data for an access token",
    description=_PERSON_DESCRIPTION,
    openapi_extra={
        "responses": {
            "200": {
                "description": "Signed (and possibly encrypted) person data",
                "content": {
                    "application/jwt": {"schema": {"type": "string"}},
                    "application/jose": {"schema": {"type": "string"}},
                },
            },
            "401": {
                "description": "Missing, expired or revoked token, or the consent has ended",
                "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
            },
        }
    },
)
def person(request: HttpRequest) -> HttpResponse:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return _unauthorized("unauthenticated", "An access token is required.")
    try:
        release = services.person_data_release(token=token, endpoint=request.path)
    except services.InvalidToken as exc:
        return _unauthorized(exc.code, exc.message)
    response = HttpResponse(release.body, content_type=release.content_type)
    response["Cache-Control"] = "no-store"
    return response
