"""Registering agency applications, checking what they sign, and logging every message.

Agency systems never hold a shared secret: they sign with their own keys (published inline or at
`jwks_url`) and Civicore signs back with the platform keys (civicore.core.jose). `message_log_record`
runs in the caller's transaction, so a message and the change it caused commit together.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from civicore.audit import services as audit
from civicore.core import rowsql
from civicore.core.errors import ApplicationError, PermissionDenied, ValidationFailed
from civicore.registry.models import AgencyApplication, MessageLogEntry

# Clock skew tolerated on signed requests, and the longest a signed request may live.
LEEWAY_SECONDS = 60
MAX_LIFETIME_SECONDS = 300
JWKS_URL_CACHE_SECONDS = 300
SIGNING_ALGORITHMS = ["ES256", "EdDSA", "RS256", "PS256"]

_jwks_url_cache: dict[str, tuple[float, dict[str, Any]]] = {}
# Inline key sets as parsed, keyed by their own canonical JSON: a changed JWKS is a new key, so
# an application's new keys are used, and its removed ones refused, from the next request on.
_inline_key_sets: dict[str, KeySet] = {}
_INLINE_KEY_SETS_MAX = 512


class Unauthenticated(ApplicationError):
    """The request's signature could not be checked."""

    code = "invalid_signature"
    status = 401


def _known_items() -> set[str]:
    from civicore.identity.models import ProfileItem

    return set(ProfileItem.Key.values)


_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def _origin(uri: object) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an absolute URL, or None when it is not one."""
    if not isinstance(uri, str):
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port


def _local_http_allowed() -> bool:
    """Plain http to this computer only while Civicore itself runs here (DEBUG, or a local
    http SITE_URL as in development and tests); a public site needs https everywhere."""
    site = _origin(settings.SITE_URL)
    return bool(settings.DEBUG) or (site is not None and site[0] == "http" and site[1] in _LOCAL_HOSTS)


def logout_uri_errors(app: AgencyApplication) -> dict[str, str]:
    """OpenID Connect Back-Channel and Front-Channel Logout 1.0: each logout URI is an absolute
    https URL without a fragment or credentials (http only to this computer during
    development), and the front-channel one has the scheme, host and port of a redirect URI."""
    errors: dict[str, str] = {}
    for field in ("backchannel_logout_uri", "frontchannel_logout_uri"):
        uri = getattr(app, field)
        if not uri:
            continue
        origin = _origin(uri)
        local = origin is not None and origin[0] == "http" and origin[1] in _LOCAL_HOSTS
        if origin is None or not (origin[0] == "https" or (local and _local_http_allowed())):
            errors[field] = _("Logout URIs must be https (http only to this computer during development).")
        elif "#" in uri:
            errors[field] = _("A logout URI cannot have a fragment (#...).")
        elif "@" in urlsplit(uri).netloc:
            errors[field] = _("A logout URI cannot carry a user name or password.")
    front = app.frontchannel_logout_uri
    if front and "frontchannel_logout_uri" not in errors:
        redirect_uris = app.redirect_uris if isinstance(app.redirect_uris, list) else []
        if _origin(front) not in {_origin(uri) for uri in redirect_uris}:
            errors["frontchannel_logout_uri"] = _(
                "The front-channel logout URI must have the scheme, host and port of a redirect URI."
            )
    return errors


def _validate(app: AgencyApplication) -> None:
    errors: dict[str, str] = logout_uri_errors(app)
    known = _known_items()
    for field in ("allowed_items", "subscribed_items"):
        value = getattr(app, field)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            errors[field] = _("Must be a list of profile item keys.")
        elif unknown := sorted(set(value) - known):
            errors[field] = _("Unknown profile items: %(items)s") % {"items": ", ".join(unknown)}
    if isinstance(app.subscribed_items, list) and isinstance(app.allowed_items, list):
        if outside := sorted(set(app.subscribed_items) - set(app.allowed_items)):
            errors["subscribed_items"] = _("Subscribed items must be allowed items: %(items)s") % {
                "items": ", ".join(outside)
            }
    if app.subscribed_items and not app.webhook_url:
        errors["webhook_url"] = _("A webhook URL is needed to be told of changes.")
    elif app.payment_events and not app.webhook_url:
        errors["webhook_url"] = _("A webhook URL is needed to be told of payments.")
    if not isinstance(app.purposes, list) or not all(
        isinstance(p, dict) and p.get("code") and p.get("name_vi") for p in app.purposes
    ):
        errors["purposes"] = _("Each purpose needs a code and a Vietnamese name.")
    if not isinstance(app.redirect_uris, list) or not all(
        isinstance(u, str) and u.startswith(("https://", "http://127.0.0.1", "http://localhost"))
        for u in app.redirect_uris
    ):
        errors["redirect_uris"] = _("Redirect URIs must be https (or http on this computer).")
    if app.jwks:
        try:
            KeySet.import_key_set(app.jwks)
        except (JoseError, ValueError, TypeError, KeyError):
            errors["jwks"] = _("Not a valid JWK Set.")
    elif not app.jwks_url:
        errors["jwks"] = _("Give the application's public keys or the URL where they are published.")
    if errors:
        raise ValidationFailed(_("The application's registration is not valid."), details=errors)
    try:
        app.full_clean(exclude=["agency"])
    except ValidationError as exc:
        raise ValidationFailed(
            _("The application's registration is not valid."), details=exc.message_dict
        ) from exc


@transaction.atomic
def agency_application_register(*, actor: Any = None, **fields: Any) -> AgencyApplication:
    """Create or update (by client_id) an agency application."""
    client_id = fields.pop("client_id")
    app = AgencyApplication.objects.filter(client_id=client_id).first() or AgencyApplication(
        client_id=client_id
    )
    for name, value in fields.items():
        setattr(app, name, value)
    _validate(app)
    created = app.pk is None
    app.save()
    audit.record(
        actor=actor,
        action="registry.application." + ("create" if created else "update"),
        subject=app,
        agency=app.agency,
        details={
            "client_id": app.client_id,
            "allowed_items": app.allowed_items,
            "subscribed_items": app.subscribed_items,
            "payment_events": app.payment_events,
        },
    )
    return app


def application_keys(app: AgencyApplication) -> KeySet:
    """The application's public keys: inline, or fetched from its jwks_url (cached)."""
    if app.jwks:
        canonical = json.dumps(app.jwks, sort_keys=True, separators=(",", ":"))
        keys = _inline_key_sets.get(canonical)
        if keys is None:
            keys = KeySet.import_key_set(app.jwks)
            if len(_inline_key_sets) >= _INLINE_KEY_SETS_MAX:
                _inline_key_sets.clear()
            _inline_key_sets[canonical] = keys
        return keys
    cached = _jwks_url_cache.get(app.jwks_url)
    if cached and cached[0] > time.monotonic():
        return KeySet.import_key_set(cached[1])  # type: ignore[arg-type]
    try:
        with urllib.request.urlopen(app.jwks_url, timeout=5) as response:  # noqa: S310 - registered URL
            data = json.loads(response.read(1_000_000))
        keys = KeySet.import_key_set(data)
    except (OSError, ValueError, JoseError) as exc:
        raise Unauthenticated(
            _("The application's keys could not be fetched."), code="jwks_unavailable"
        ) from exc
    _jwks_url_cache[app.jwks_url] = (time.monotonic() + JWKS_URL_CACHE_SECONDS, data)
    return keys


def signed_request_verify(*, token: str | bytes, audience: str) -> tuple[AgencyApplication, dict[str, Any]]:
    """Check a compact JWS sent by an agency system and return its application and claims.

    The payload is a JSON object with iss (the client_id), aud (the endpoint's URL), iat, exp
    (at most MAX_LIFETIME_SECONDS after iat) and jti (unique per request; a replay is refused when
    the message is logged). Anything wrong is a 401 with a specific code.
    """
    if isinstance(token, bytes):
        token = token.decode("ascii", errors="replace")
    token = token.strip()
    try:
        unverified = jws.extract_compact(token.encode())
        claims = json.loads(unverified.payload)
    except (JoseError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Unauthenticated(
            _("The request is not a signed JSON message."), code="malformed_request"
        ) from exc
    if not isinstance(claims, dict) or not isinstance(claims.get("iss"), str):
        raise Unauthenticated(_("The signed message does not name its sender."), code="malformed_request")
    app = (
        AgencyApplication.objects.select_related("agency")
        .filter(client_id=claims["iss"], active=True)
        .first()
    )
    if app is None:
        raise Unauthenticated(_("Unknown or inactive agency application."), code="unknown_client")
    try:
        jws.deserialize_compact(token, application_keys(app), algorithms=SIGNING_ALGORITHMS)
    except (JoseError, ValueError) as exc:
        raise Unauthenticated(_("The signature does not verify with the application's keys.")) from exc
    now = time.time()
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise Unauthenticated(_("The message was addressed to another endpoint."), code="wrong_audience")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise Unauthenticated(_("The message must carry iat and exp."), code="malformed_request")
    if iat > now + LEEWAY_SECONDS or exp < now - LEEWAY_SECONDS or exp - iat > MAX_LIFETIME_SECONDS:
        raise Unauthenticated(_("The message has expired or is not yet valid."), code="expired_request")
    if not isinstance(claims.get("jti"), str) or not 8 <= len(claims["jti"]) <= 200:
        raise Unauthenticated(
            _("The message needs a unique jti of 8 to 200 characters."), code="malformed_request"
        )
    return app, claims


def check_access(app: AgencyApplication, *, items: list[str], purpose: str | None) -> None:
    """403 unless the application may have every one of `items` for `purpose`."""
    if outside := sorted(set(items) - set(app.allowed_items)):
        raise PermissionDenied(
            _("This application may not receive: %(items)s") % {"items": ", ".join(outside)},
            code="items_not_allowed",
            details={"items": outside},
        )
    if purpose is not None and app.purpose(purpose) is None:
        raise PermissionDenied(
            _("This purpose is not registered for the application."), code="purpose_not_allowed"
        )


def digest(body: str | bytes) -> str:
    return hashlib.sha256(body if isinstance(body, bytes) else body.encode()).hexdigest()


def message_log_record(
    *,
    application: AgencyApplication,
    direction: str,
    operation: str,
    message_id: str,
    status: int,
    request_body: str = "",
    response_body: str = "",
    person: Any = None,
    items: list[str] | None = None,
    purpose: str = "",
    consent_id: str = "",
    actor: Any = None,
) -> MessageLogEntry:
    """Keep one message (encrypted) and seal its digests into the audit chain, in the caller's
    transaction. An inbound message_id seen before from the same application is a replay: 401."""
    request_digest = digest(request_body)
    response_digest = digest(response_body) if response_body else ""
    entry = audit.entry(
        actor=actor,
        action=f"exchange.{operation}",
        subject_type="registry.agencyapplication",
        subject_id=str(application.pk),
        person=person,
        agency=application.agency,
        details={
            "client_id": application.client_id,
            "direction": direction,
            "message_id": message_id,
            "items": items or [],
            "purpose": purpose,
            "consent": consent_id,
            "status": status,
            "request_sha256": request_digest,
            "response_sha256": response_digest,
        },
    )
    message = MessageLogEntry(
        at=entry.at,
        application=application,
        direction=direction,
        operation=operation,
        message_id=message_id,
        person=person,
        items=items or [],
        purpose=purpose,
        consent_id=consent_id,
        status=status,
        request_digest=request_digest,
        response_digest=response_digest,
        request_body=request_body,
        response_body=response_body,
        audit_entry=entry,
    )
    if direction != MessageLogEntry.Direction.INBOUND:
        # Only an inbound message_id must be new (registry_message_inbound_once): the entry and
        # the message are written together, in one statement.
        rowsql.insert(entry, message)
        return message
    rowsql.insert(entry)
    try:
        with transaction.atomic():
            rowsql.insert(message)
    except IntegrityError as exc:
        raise Unauthenticated(_("This message was already received."), code="replayed_request") from exc
    return message


def sign_response(payload: dict[str, Any], *, audience: str) -> str:
    """A compact JWS from the platform key, for replies to agency systems."""
    from civicore.core.jose import signing_key

    key = signing_key()
    now = int(timezone.now().timestamp())
    body = {"iss": "civicore", "aud": audience, "iat": now, **payload}
    header = {"alg": "ES256", "kid": key.kid, "typ": "JWT"}
    return jws.serialize_compact(header, json.dumps(body, separators=(",", ":"), ensure_ascii=False), key)


# Fields an agency's supervisors manage for their own applications. Access rights (allowed
# items, purposes, agency of record) are granted by platform administrators, so an agency can
# never widen its own access. (`payment_events` only ever sends the agency's own payments.)
OFFICER_EDITABLE = (
    "name_vi",
    "name_en",
    "description_vi",
    "description_en",
    "redirect_uris",
    "post_logout_redirect_uris",
    "require_par",
    "jwks",
    "jwks_url",
    "webhook_url",
    "subscribed_items",
    "payment_events",
    "active",
)


def _require_supervisor(officer: Any, app: AgencyApplication | None = None) -> None:
    from civicore.agencies import permissions

    permissions.require(
        officer,
        permissions.SYSTEMS_MANAGE,
        message=_("Only officers allowed to manage the agency's systems may do this."),
        code="not_supervisor",
    )
    if app is not None and app.agency_id != officer.agency_id:
        raise PermissionDenied(_("This system belongs to another agency."), code="other_agency")


@transaction.atomic
def agency_application_create_by_officer(*, officer: Any, slug: str, **fields: Any) -> AgencyApplication:
    """A supervisor registers a new system for their agency; it starts with no access rights."""
    _require_supervisor(officer)
    unknown = set(fields) - set(OFFICER_EDITABLE)
    if unknown:
        raise PermissionDenied(
            _("These settings are managed by platform administrators."), code="not_editable"
        )
    client_id = f"{officer.agency.code}-{slug}"[:100]
    if AgencyApplication.objects.filter(client_id=client_id).exists():
        raise ValidationFailed(
            _("A system with this identifier already exists."), details={"slug": _("Choose another.")}
        )
    return agency_application_register(
        actor=officer.user,
        client_id=client_id,
        agency=officer.agency,
        allowed_items=[],
        purposes=[],
        **fields,
    )


@transaction.atomic
def agency_application_update_by_officer(
    *, officer: Any, application: AgencyApplication, **fields: Any
) -> AgencyApplication:
    """A supervisor changes their own agency's system, within the access rights it was granted."""
    _require_supervisor(officer, application)
    unknown = set(fields) - set(OFFICER_EDITABLE)
    if unknown:
        raise PermissionDenied(
            _("These settings are managed by platform administrators."), code="not_editable"
        )
    locked = AgencyApplication.objects.select_for_update().get(pk=application.pk)
    return agency_application_register(
        actor=officer.user,
        client_id=locked.client_id,
        **{name: getattr(locked, name) for name in ("agency", "allowed_items", "purposes")},
        **fields,
    )
