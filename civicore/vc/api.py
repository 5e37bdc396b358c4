"""Verifiable credentials for agencies' systems and anyone who checks a document: the signed
trust list, each agency's status list, verification of a credential or presentation, and a
citizen's own credentials."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status

from civicore.agencies.models import Agency
from civicore.core.errors import Conflict, NotFound, ValidationFailed
from civicore.core.schemas import ErrorOut
from civicore.vc import keys, selectors, services
from civicore.vc.models import Credential, Presentation, PresentationCheck

router = Router(tags=["verifiable credentials"])

# A credential of a few dozen claims is a few kilobytes; this leaves room and stops abuse.
MAX_TOKEN_CHARS = 64 * 1024


def _jwt_response(token: str, *, content_type: str, max_age: int) -> HttpResponse:
    response = HttpResponse(token, content_type=content_type)
    response["Cache-Control"] = f"public, max-age={max_age}"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@router.get(
    "/trust-list",
    auth=None,
    response={200: None},
    openapi_extra={
        "responses": {
            200: {
                "description": (
                    "The trust list: a compact JWS (typ trust-list+jwt) signed with the platform's "
                    "ES256 key from /.well-known/jwks.json. Its payload lists every agency that issues "
                    "credentials with all its keys, each with not_before, not_after and "
                    "compromised_since (seconds since 1970)."
                ),
                "content": {"application/jwt": {}},
            }
        }
    },
)
def trust_list(request: HttpRequest) -> HttpResponse:
    """The signed trust list of issuer keys per agency (cache it; refresh within its `exp`)."""
    return _jwt_response(
        keys.trust_list_token(),
        content_type="application/jwt",
        max_age=int(keys.TRUST_LIST_MAX_AGE.total_seconds()),
    )


@router.get(
    "/status-lists/{agency}",
    auth=None,
    response={200: None, 404: ErrorOut},
    openapi_extra={
        "responses": {
            200: {
                "description": (
                    "The agency's Token Status List (typ statuslist+jwt, 2 bits an entry: "
                    "0 valid, 1 revoked, 2 suspended), signed with the agency's issuer key."
                ),
                "content": {"application/statuslist+jwt": {}},
            }
        }
    },
)
def status_list(request: HttpRequest, agency: str) -> HttpResponse:
    """The status of every credential an agency issued, compressed; credentials name their index."""
    found = Agency.objects.filter(code=agency[:60]).first()
    if found is None:
        raise NotFound("No such agency", code="agency_not_found")
    return _jwt_response(
        services.status_list_token(found),
        content_type="application/statuslist+jwt",
        max_age=services.STATUS_LIST_TTL_SECONDS,
    )


class VerifyIn(Schema):
    token: str = Field(
        ...,
        description="A credential or presentation in SD-JWT compact form (issuer JWT~disclosures~[KB-JWT]).",
    )
    audience: str | None = Field(None, max_length=500, description="The audience a presentation must name.")
    nonce: str | None = Field(None, max_length=500, description="The nonce a presentation must name.")
    require_key_binding: bool = Field(
        False, strict=True, description="Accept only a presentation signed by its holder."
    )


class VerdictOut(Schema):
    status: str = Field(..., description="valid, tampered, revoked, suspended, expired, unknown_issuer, ...")
    valid: bool
    message: str
    detail: str
    issuer: str | None
    issuer_name: dict[str, str] | None
    kid: str | None
    vct: str | None
    issued_at: dt.datetime | None
    expires_at: dt.datetime | None
    key_binding: bool
    claims: dict[str, Any]


def _time(value: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, tz=dt.UTC) if value is not None else None


@router.post("/verify", auth=None, response={200: VerdictOut, 413: ErrorOut, 422: ErrorOut})
def verify(request: HttpRequest, body: VerifyIn) -> VerdictOut:
    """Check a credential or presentation against the trust list and the issuers' status lists.

    A verdict is always given (status `valid` or why not), never an error, unless the request
    itself is malformed. Nothing named inside the token is fetched. When the token is a
    presentation shared from a citizen's wallet, the citizen sees that it was checked.
    """
    if len(body.token) > MAX_TOKEN_CHARS:
        raise ValidationFailed("The token is too long to be a credential.", code="token_too_long")
    verdict = selectors.verify(
        body.token,
        audience=body.audience,
        nonce=body.nonce,
        require_key_binding=body.require_key_binding,
    )
    nonce = selectors.presentation_nonce(body.token)
    if nonce is not None and verdict.key_binding:
        presentation = Presentation.objects.filter(public_id=nonce).first()
        if presentation is not None and body.token.strip() == presentation.token:
            services.presentation_check_record(
                presentation=presentation,
                via=PresentationCheck.Via.API,
                verdict=verdict.status,
                label=str(getattr(request, "client_name", "") or ""),
            )
    return VerdictOut(
        status=verdict.status,
        valid=verdict.ok,
        message=str(selectors.VERDICT_TEXT.get(verdict.status, verdict.status)),
        detail=verdict.detail,
        issuer=verdict.issuer,
        issuer_name=verdict.issuer_name,
        kid=verdict.kid,
        vct=verdict.vct,
        issued_at=_time(verdict.issued_at),
        expires_at=_time(verdict.expires_at),
        key_binding=verdict.key_binding,
        claims=selectors.shown_claims(verdict) if verdict.ok else {},
    )


# --- A citizen's own credentials (their session, or an API token of theirs) --------------------


class CredentialOut(Schema):
    id: uuid.UUID
    title: str
    agency: str
    issued_at: dt.datetime
    status: str = Field(..., description="valid, suspended or revoked")
    vct: str


class CredentialTokenOut(CredentialOut):
    token: str = Field(..., description="The SD-JWT VC with every disclosure (application/dc+sd-jwt)")


def _credential_out(credential: Credential) -> dict[str, Any]:
    return {
        "id": credential.public_id,
        "title": credential.document.title,
        "agency": str(credential.agency),
        "issued_at": credential.issued_at,
        "status": credential.status,
        "vct": credential.vct,
    }


@router.get("/credentials", response={200: list[CredentialOut], 401: ErrorOut})
def my_credentials(request: HttpRequest) -> list[dict[str, Any]]:
    """The caller's own credentials, newest first."""
    return [_credential_out(credential) for credential in selectors.wallet(request.user)[:200]]


@router.get(
    "/credentials/{credential_id}",
    response={200: CredentialTokenOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut},
)
def my_credential(request: HttpRequest, credential_id: uuid.UUID) -> dict[str, Any]:
    """One of the caller's credentials, with its SD-JWT (every claim), for a wallet to hold."""
    credential = selectors.credential_of(request.user, credential_id)
    if selectors.fee_unpaid(credential):
        raise Conflict("Pay the application's fee to use your document.", code="fee_unpaid")
    return {**_credential_out(credential), "token": credential.token}


class PresentationIn(Schema):
    claims: list[str] = Field(
        ...,
        min_length=1,
        max_length=200,
        description="Claim paths to show, names joined by '/', e.g. 'decided_on/year'.",
        examples=[["decided_on/year", "result/child_full_name"]],
    )
    audience: str = Field(..., max_length=1000, description="Who it is for, shown to them and to the holder.")
    lifetime: str = Field("1d", description="How long it works: 1h, 1d, 7d or 30d.")


class PresentationOut(Schema):
    id: str
    url: str = Field(..., description="The link to give (its QR code is this URL).")
    token: str = Field(..., description="The presentation, bound to `url` (aud) and `id` (nonce).")
    audience: str
    expires_at: dt.datetime


@router.post(
    "/credentials/{credential_id}/presentations",
    response={201: PresentationOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
)
def present(request: HttpRequest, credential_id: uuid.UUID, body: PresentationIn) -> Status:
    """Share the chosen claims of one's own credential: a link and a presentation bound to it."""
    presentation = services.presentation_create(
        user=request.user,
        public_id=credential_id,
        paths=[claim.split("/") for claim in body.claims],
        audience=body.audience,
        lifetime=body.lifetime,
    )
    return Status(
        201,
        {
            "id": presentation.public_id,
            "url": services.presentation_url(presentation),
            "token": presentation.token,
            "audience": presentation.audience,
            "expires_at": presentation.expires_at,
        },
    )
