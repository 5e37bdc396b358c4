"""Agency systems and the verified profile, under /api/v1/exchange.

Agencies of record send verified values (`profile-updates`); agency systems ask for a person's
items for one of their registered purposes (`person-query`). A request body is a compact JWS
signed with the application's own key (civicore.registry), a reply is signed by the platform,
and every message after authentication, answered or refused, is kept in the message log.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Router
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from civicore.core import throttle
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from civicore.identity import items as item_registry
from civicore.identity.models import Person, ProfileItem
from civicore.identity.selectors import items_for_agency, person_find
from civicore.identity.services import profile_items_record
from civicore.registry.models import AgencyApplication, MessageLogEntry
from civicore.registry.services import (
    Unauthenticated,
    check_access,
    message_log_record,
    sign_response,
    signed_request_verify,
)

router = Router(tags=["exchange"], auth=None)
THROTTLE_SCOPE = "agency_api"

MAX_BODY_BYTES = 64 * 1024
JOSE = "application/jose"
IDENTIFIERS = ("national_id", "phone", "email")


class RequestTooLarge(ApplicationError):
    """The request body is larger than 64 KB."""

    code = "request_too_large"
    status = 413


class UnsupportedMediaType(ApplicationError):
    """The request body must be a compact JWS sent as application/jose."""

    code = "unsupported_media_type"
    status = 415


class PersonNotFound(NotFound):
    """No person has this identifier."""

    code = "person_not_found"


class PersonRef(BaseModel):
    """Exactly one identifying item of the person."""

    model_config = ConfigDict(extra="forbid")

    national_id: str | None = Field(None, min_length=1, max_length=20)
    phone: str | None = Field(None, min_length=1, max_length=30)
    email: str | None = Field(None, min_length=1, max_length=254)

    @model_validator(mode="after")
    def _exactly_one(self) -> PersonRef:
        given = [name for name in IDENTIFIERS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of national_id, phone, email")
        return self

    def find(self) -> Person:
        key = next(name for name in IDENTIFIERS if getattr(self, name) is not None)
        person = person_find(key=key, value=getattr(self, key))
        if person is None:
            raise PersonNotFound(_("No person has this identifier."))
        return person


class ProfileUpdateIn(BaseModel):
    person: PersonRef
    items: dict[str, Any] = Field(min_length=1, max_length=50)


class PersonQueryIn(BaseModel):
    person: PersonRef
    items: list[Annotated[str, Field(max_length=50)]] = Field(min_length=1, max_length=50)
    purpose: str = Field(min_length=1, max_length=60)


_Model = TypeVar("_Model", bound=BaseModel)


def _parse(model: type[_Model], claims: dict[str, Any]) -> _Model:
    try:
        return model.model_validate(claims)
    except ValidationError as exc:
        errors = json.loads(exc.json(include_url=False, include_input=False, include_context=False))
        raise ValidationFailed(
            _("The signed message does not have the expected fields."),
            code="invalid_request",
            details=[{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in errors],
        ) from exc


def _known(keys: list[str]) -> None:
    if unknown := sorted(set(keys) - set(item_registry.keys())):
        raise ValidationFailed(
            _("Unknown profile items: %(items)s") % {"items": ", ".join(unknown)},
            code="unknown_items",
            details={"items": unknown},
        )


def _read_body(request: HttpRequest) -> str:
    try:
        announced = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        announced = 0
    if announced > MAX_BODY_BYTES:
        raise RequestTooLarge(details={"max_bytes": MAX_BODY_BYTES})
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        raise RequestTooLarge(details={"max_bytes": MAX_BODY_BYTES})
    if request.content_type != JOSE:
        raise UnsupportedMediaType(details={"expected": JOSE})
    try:
        return body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise Unauthenticated(
            _("The request is not a signed JSON message."), code="malformed_request"
        ) from exc


def _claimed_client(body: str) -> str | None:
    """The client_id (iss) a compact JWS claims, unverified: a throttle key, nothing more."""
    try:
        payload = body.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, RecursionError):
        return None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return iss[:200] if isinstance(iss, str) and iss else None


@dataclass
class _Message:
    """What the message log keeps about a request besides its body."""

    application: AgencyApplication
    claims: dict[str, Any]
    person: Person | None = None
    items: list[str] = field(default_factory=list)
    purpose: str = ""


def _exchange(
    request: HttpRequest, *, operation: str, answer: Callable[[_Message], dict[str, Any]]
) -> HttpResponse:
    """Authenticate, answer and log one signed request. The answer and its log entry commit
    together; a refusal is logged on its own and then raised as the JSON error.

    Requests that do not authenticate are throttled per address and per claimed client_id
    (civicore.core.throttle); an address that has sent a verified request for a client answers
    only for its own failures, so nobody else can lock the agency's system out."""
    address = throttle.client_address(request)
    try:
        body = _read_body(request)
    except ApplicationError:
        # Nothing names a client yet: only the address counts, and a locked one hears so.
        decision = throttle.check(THROTTLE_SCOPE, {"address": address})
        if decision.allowed:
            decision = throttle.fail(THROTTLE_SCOPE, {"address": address})
        if not decision.allowed:
            return throttle.api_response(decision)
        raise
    claimed = _claimed_client(body)
    keys = throttle.keys_for(subject=claimed, address=address, realm=THROTTLE_SCOPE)
    audit_details = {"address": address, "client_id": claimed}
    decision = throttle.check(THROTTLE_SCOPE, keys, details=audit_details)
    if not decision.allowed:
        return throttle.api_response(decision)
    try:
        try:
            app, claims = signed_request_verify(token=body, audience=request.build_absolute_uri(request.path))
        except RecursionError as exc:  # absurdly nested JSON in the payload
            raise Unauthenticated(
                _("The request is not a signed JSON message."), code="malformed_request"
            ) from exc
    except Unauthenticated:
        throttle.fail(THROTTLE_SCOPE, keys, details=audit_details)
        raise
    throttle.succeed(THROTTLE_SCOPE, keys)
    if "source" not in keys:
        throttle.trust(THROTTLE_SCOPE, subject=app.client_id, address=address)
    message = _Message(application=app, claims=claims)
    try:
        with transaction.atomic():
            payload = answer(message)
            token = sign_response({**payload, "in_reply_to": claims["jti"]}, audience=app.client_id)
            _log(message, operation=operation, body=body, status=200, response=token)
    except ApplicationError as exc:
        if exc.code == "replayed_request":
            throttle.fail(THROTTLE_SCOPE, keys, details=audit_details)
            raise
        error = json.dumps({"code": exc.code, "message": exc.message, "details": exc.details}, default=str)
        with transaction.atomic():
            _log(message, operation=operation, body=body, status=exc.status, response=error)
        raise
    return HttpResponse(token, content_type=JOSE)


def _log(message: _Message, *, operation: str, body: str, status: int, response: str) -> MessageLogEntry:
    return message_log_record(
        application=message.application,
        direction=MessageLogEntry.Direction.INBOUND,
        operation=operation,
        message_id=message.claims["jti"],
        status=status,
        request_body=body,
        response_body=response,
        person=message.person,
        items=message.items,
        purpose=message.purpose,
    )


def _error(description: str, **extra: Any) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/ErrorOut"}
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


_JOSE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            JOSE: {"schema": {"type": "string", "description": "Compact JWS (see docs/agency-api.md)"}}
        },
    },
    "responses": {
        "200": {
            "description": "Platform-signed compact JWS",
            "content": {JOSE: {"schema": {"type": "string"}}},
        },
        "401": _error("Not a valid signed request: signature, issuer, audience, expiry or replay."),
        "403": _error("not_agency_of_record, items_not_allowed, purpose_not_allowed"),
        "404": _error("person_not_found"),
        "413": _error("request_too_large"),
        "415": _error("unsupported_media_type: the body must be sent as application/jose."),
        "422": _error("invalid_request, unknown_items, invalid_item_values"),
        "429": _error(
            "throttled: too many failed requests from this address or for this client.",
            headers={"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
        ),
    },
}


@router.post("/profile-updates", url_name="exchange_profile_updates", openapi_extra=_JOSE_BODY)
def profile_updates(request: HttpRequest) -> HttpResponse:
    """An agency of record records verified values of its allowed items: all or nothing.

    Payload: `{"person": {"national_id": "..."}, "items": {"address": "...", ...}}`.
    Errors: 401 (signature, expiry, replay), 403 not_agency_of_record / items_not_allowed,
    404 person_not_found, 413 request_too_large, 422 invalid_request / unknown_items /
    invalid_item_values (a message per item; nothing saved)."""

    def answer(message: _Message) -> dict[str, Any]:
        app = message.application
        if not app.is_agency_of_record:
            raise PermissionDenied(
                _("This application is not an agency of record."), code="not_agency_of_record"
            )
        data = _parse(ProfileUpdateIn, message.claims)
        _known(list(data.items))
        message.items = sorted(data.items)
        check_access(app, items=message.items, purpose=None)
        message.person = data.person.find()
        recorded = profile_items_record(
            person=message.person, values=data.items, agency=app.agency, application=app
        )
        return {
            "operation": "profile.update",
            "items": {
                item.key: {"verified_at": item.verified_at.isoformat() if item.verified_at else None}
                for item in recorded
            },
        }

    return _exchange(request, operation="profile.update", answer=answer)


def _item_out(definition: item_registry.ItemDefinition, item: ProfileItem | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {
        "value": definition.type.parse(item.value),
        "source": {
            "kind": item.source_kind,
            "agency": item.agency.code if item.agency else None,
            "agency_name": {"vi": item.agency.name_vi, "en": item.agency.name_en} if item.agency else None,
        },
        "verified_at": item.verified_at.isoformat() if item.verified_at else None,
    }


@router.post("/person-query", url_name="exchange_person_query", openapi_extra=_JOSE_BODY)
def person_query(request: HttpRequest) -> HttpResponse:
    """An agency system reads items of a person for one of its registered purposes; the message
    log's audit entry names the person, so the citizen sees the access on "Who viewed my data".

    Payload: `{"person": {"national_id": "..."}, "items": ["address"], "purpose": "benefit"}`.
    Each item is answered with its value, source and verified_at, or null when not held.
    Errors: 401, 403 items_not_allowed / purpose_not_allowed, 404 person_not_found, 413, 422."""

    def answer(message: _Message) -> dict[str, Any]:
        app = message.application
        data = _parse(PersonQueryIn, message.claims)
        keys = list(dict.fromkeys(data.items))
        _known(keys)
        message.items, message.purpose = keys, data.purpose
        check_access(app, items=keys, purpose=data.purpose)
        person = message.person = data.person.find()
        held = items_for_agency(person=person, keys=keys)
        return {
            "operation": "person.query",
            "purpose": data.purpose,
            "items": {key: _item_out(item_registry.get(key), held.get(key)) for key in keys},
        }

    return _exchange(request, operation="person.query", answer=answer)
