"""Consented sharing: a citizen's consent given, used and withdrawn.

Approving on the consent screen files a Consent and a one-use code (`authorization_approve`); the
agency swaps the code for a ten-minute token (`access_token_issue`) and reads the person with it
(`person_data_release`), which re-checks the consent on every call and seals the message into the
audit chain. `consent_revoke` therefore takes effect on the agency's very next call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from joserfc import jwe, jws
from joserfc.errors import JoseError
from joserfc.jwk import Key

from civicore.audit import services as audit
from civicore.consent import selectors
from civicore.consent.models import AccessToken, AuthorizationCode, ClientAssertionUse, Consent
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from civicore.identity.models import Person
from civicore.registry.models import AgencyApplication
from civicore.registry.services import Unauthenticated, application_keys, message_log_record

CODE_LIFETIME = timedelta(seconds=60)
TOKEN_LIFETIME_SECONDS = 600
DEFAULT_CONSENT_DAYS = 90
MAX_CONSENT_DAYS = 90
# How long the signed person data is valid as a statement; the agency keeps what it received.
PERSON_JWT_LIFETIME_SECONDS = 300
PERSON_JWT_TYPE = "person+jwt"
# Encryption to the agency's key: the key-management algorithm by key type, and the content cipher.
ENCRYPTION_ALGORITHMS = {"RSA": "RSA-OAEP-256", "EC": "ECDH-ES", "OKP": "ECDH-ES"}
CONTENT_ENCRYPTION = "A256GCM"


class InvalidToken(ApplicationError):
    """The access token is unknown, expired or revoked, or the consent behind it has ended."""

    code = "invalid_token"
    status = 401


class KeysUnavailable(ApplicationError):
    """The agency application's published keys could not be loaded, so nothing is released."""

    code = "jwks_unavailable"
    status = 503


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def pairwise_subject(*, person: Person, client_id: str) -> str:
    """A stable identifier for `person` that differs for every application, so two agencies
    cannot join what they hold on the same citizen by comparing subjects."""
    message = f"civicore.consent.sub\x00{client_id}\x00{person.pk}".encode()
    digest = hmac.new(settings.LOOKUP_HASH_KEY.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# --- Consent ---------------------------------------------------------------------------------


def _check_request(application: AgencyApplication, items: list[str], purpose: str, days: int) -> None:
    if not items:
        raise ValidationFailed(_("Ask for at least one item."), code="invalid_scope")
    if outside := sorted(set(items) - set(application.allowed_items)):
        raise PermissionDenied(
            _("This application may not receive: %(items)s") % {"items": ", ".join(outside)},
            code="invalid_scope",
            details={"items": outside},
        )
    if application.purpose(purpose) is None:
        raise PermissionDenied(
            _("This purpose is not registered for the application."), code="invalid_purpose"
        )
    if not 1 <= days <= MAX_CONSENT_DAYS:
        raise ValidationFailed(_("A consent lasts from 1 to %(days)d days.") % {"days": MAX_CONSENT_DAYS})


@transaction.atomic
def consent_grant(
    *, person: Person, application: AgencyApplication, items: list[str], purpose: str, days: int
) -> Consent:
    """File the citizen's consent. A still-active consent to the same application for the same
    purpose is replaced, so there is one consent per application and purpose to look after."""
    _check_request(application, items, purpose, days)
    stated = application.purpose(purpose) or {}
    now = timezone.now()
    replaced = list(
        Consent.objects.select_for_update()
        .filter(person=person, application=application, purpose=purpose, revoked_at__isnull=True)
        .filter(expires_at__gt=now)
    )
    for old in replaced:
        old.revoked_at = now
        old.ended_because = Consent.Ending.REPLACED
        old.save(update_fields=["revoked_at", "ended_because"])
    AccessToken.objects.filter(consent__in=replaced, revoked_at__isnull=True).update(revoked_at=now)
    consent = Consent(
        person=person,
        application=application,
        items=list(items),
        purpose=purpose,
        purpose_name_vi=stated.get("name_vi", purpose),
        purpose_name_en=stated.get("name_en", ""),
        granted_at=now,
        expires_at=now + timedelta(days=days),
    )
    consent.full_clean()
    consent.save()
    audit.record(
        actor=person.user,
        action="consent.grant",
        subject=consent,
        person=person,
        agency=application.agency,
        details={
            "client_id": application.client_id,
            "consent": str(consent.public_id),
            "items": consent.items,
            "purpose": purpose,
            "expires_at": consent.expires_at.isoformat(),
            "replaces": [str(old.public_id) for old in replaced],
        },
    )
    return consent


@transaction.atomic
def authorization_approve(
    *,
    person: Person,
    application: AgencyApplication,
    items: list[str],
    purpose: str,
    days: int,
    code: str,
    redirect_uri: str,
    code_challenge: str,
    code_challenge_method: str,
) -> AuthorizationCode:
    """The citizen said yes: file the consent and the one-use code the agency will exchange."""
    consent = consent_grant(person=person, application=application, items=items, purpose=purpose, days=days)
    now = timezone.now()
    return AuthorizationCode.objects.create(
        code_hash=sha256_hex(code),
        application=application,
        consent=consent,
        redirect_uri=redirect_uri,
        scope=" ".join(items),
        code_challenge=code_challenge,
        code_challenge_method=code_challenge_method,
        issued_at=now,
        expires_at=now + CODE_LIFETIME,
    )


def authorization_decline(
    *, person: Person, application: AgencyApplication, items: list[str], purpose: str
) -> None:
    audit.record(
        actor=person.user,
        action="consent.decline",
        subject=application,
        person=person,
        agency=application.agency,
        details={"client_id": application.client_id, "items": items, "purpose": purpose},
    )


def authorization_refuse(
    *, person: Person | None, application: AgencyApplication, error: str, details: dict[str, Any]
) -> None:
    """An application asked for more than it is registered for; keep a record of the attempt."""
    audit.record(
        actor=person.user if person is not None else None,
        action="consent.authorize.refused",
        subject=application,
        person=person,
        agency=application.agency,
        details={"client_id": application.client_id, "error": error, **details},
    )


@transaction.atomic
def consent_revoke(*, person: Person, consent_id: uuid.UUID | str) -> Consent:
    """Withdraw a consent at once: its tokens stop working on the agency's next call."""
    try:
        public_id = uuid.UUID(str(consent_id))
    except ValueError as exc:
        raise NotFound(_("No such consent.")) from exc
    consent = (
        Consent.objects.select_for_update()
        .select_related("application__agency")
        .filter(person=person, public_id=public_id)
        .first()
    )
    if consent is None:
        raise NotFound(_("No such consent."))
    if consent.revoked_at is not None:
        return consent
    now = timezone.now()
    consent.revoked_at = now
    consent.ended_because = Consent.Ending.REVOKED
    consent.save(update_fields=["revoked_at", "ended_because"])
    revoked_tokens = AccessToken.objects.filter(consent=consent, revoked_at__isnull=True).update(
        revoked_at=now
    )
    audit.record(
        actor=person.user,
        action="consent.revoke",
        subject=consent,
        person=person,
        agency=consent.application.agency,
        details={
            "client_id": consent.application.client_id,
            "consent": str(consent.public_id),
            "tokens_revoked": revoked_tokens,
        },
    )
    return consent


# --- Token endpoint --------------------------------------------------------------------------


def client_assertion_use(*, application: AgencyApplication, jti: str, keep_until: datetime) -> bool:
    """Remember a client assertion's jti until it can no longer be accepted. False if it was
    seen before: a replay."""
    ClientAssertionUse.objects.filter(expires_at__lt=timezone.now()).delete()
    try:
        with transaction.atomic():
            ClientAssertionUse.objects.create(application=application, jti=jti, expires_at=keep_until)
    except IntegrityError:
        return False
    return True


@transaction.atomic
def authorization_code_reuse(*, code: AuthorizationCode) -> int:
    """A spent code came back. It may have leaked, so every token it produced is withdrawn
    (RFC 6749 section 4.1.2)."""
    revoked = AccessToken.objects.filter(code=code, revoked_at__isnull=True).update(revoked_at=timezone.now())
    consent = code.consent
    audit.record(
        actor=None,
        action="consent.code.reused",
        subject=consent,
        person=consent.person,
        agency=consent.application.agency,
        details={"client_id": consent.application.client_id, "tokens_revoked": revoked},
    )
    return revoked


def access_token_issue(*, code: AuthorizationCode, token: str, lifetime_seconds: int) -> AccessToken | None:
    """Spend the code and store the new token's hash, bound to the code's consent. Returns None
    when another request spent the code first; the tokens it produced are then withdrawn."""
    now = timezone.now()
    with transaction.atomic():
        spent = AuthorizationCode.objects.filter(pk=code.pk, used_at__isnull=True).update(used_at=now)
        if spent:
            consent = code.consent
            access = AccessToken.objects.create(
                token_hash=sha256_hex(token),
                application=code.application,
                consent=consent,
                code=code,
                scope=code.scope,
                issued_at=now,
                expires_at=now + timedelta(seconds=min(lifetime_seconds, TOKEN_LIFETIME_SECONDS)),
            )
            audit.record(
                actor=None,
                action="consent.token.issue",
                subject=consent,
                person=consent.person,
                agency=consent.application.agency,
                details={
                    "client_id": consent.application.client_id,
                    "consent": str(consent.public_id),
                    "expires_at": access.expires_at.isoformat(),
                },
            )
            return access
    authorization_code_reuse(code=code)
    return None


# --- Person data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonRelease:
    body: str
    content_type: str
    consent: Consent
    items: list[str]


def encryption_key_for(application: AgencyApplication) -> tuple[Key, str] | None:
    """The application's first usable encryption key ("use": "enc") and its algorithm."""
    try:
        keys = application_keys(application)
    except (Unauthenticated, JoseError, ValueError, TypeError) as exc:
        raise KeysUnavailable(_("The application's keys could not be loaded.")) from exc
    for key in keys.keys:
        if key.get("use") != "enc":
            continue
        alg = key.get("alg") or ENCRYPTION_ALGORITHMS.get(key.key_type)
        if alg != ENCRYPTION_ALGORITHMS.get(key.key_type):
            continue
        if key.key_type == "OKP" and key.get("crv") not in ("X25519", "X448"):
            continue
        return key, str(alg)
    return None


def _person_claims(consent: Consent, released: dict[str, Any], now: int) -> dict[str, Any]:
    items: dict[str, Any] = {}
    for key in consent.items:
        item = released.get(key)
        if item is None:
            continue
        items[key] = {
            "value": item.value,
            "source": item.source,
            "verified_at": item.verified_at.isoformat() if item.verified_at else None,
        }
    return {
        "iss": settings.SITE_URL,
        "aud": consent.application.client_id,
        "sub": pairwise_subject(person=consent.person, client_id=consent.application.client_id),
        "iat": now,
        "exp": now + PERSON_JWT_LIFETIME_SECONDS,
        "jti": uuid.uuid4().hex,
        "consent_id": str(consent.public_id),
        "purpose": consent.purpose,
        "items": items,
    }


def _sign(claims: dict[str, Any]) -> str:
    from civicore.core.jose import signing_key

    key = signing_key("ES256")
    header = {"alg": "ES256", "kid": key.kid, "typ": PERSON_JWT_TYPE}
    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False)
    return jws.serialize_compact(header, payload, key, algorithms=["ES256"])


def _encrypt(signed: str, key: Key, alg: str) -> str:
    header: dict[str, Any] = {"alg": alg, "enc": CONTENT_ENCRYPTION, "cty": "JWT"}
    if key.kid:
        header["kid"] = key.kid
    return jwe.encrypt_compact(header, signed.encode(), key, algorithms=[alg, CONTENT_ENCRYPTION])


def person_data_release(*, token: str, endpoint: str) -> PersonRelease:
    """The consented items of the token's person, signed with the platform key and, when the
    application publishes an encryption key, encrypted to it. The token and its consent are
    checked on every call; each release is kept in the message log and the audit chain."""
    with transaction.atomic():
        access = selectors.token_by_hash(sha256_hex(token)) if token else None
        if access is None:
            raise InvalidToken(_("The access token is not valid."))
        # Lock the consent so a withdrawal and a read never overlap: a read either happens before
        # the withdrawal commits or is refused.
        consent = selectors.consent_for_update(pk=access.consent_id)
        now = timezone.now()
        if access.revoked_at is not None or access.expires_at <= now:
            raise InvalidToken(_("The access token has expired or was revoked."))
        if consent is None or not consent.is_active(now):
            raise InvalidToken(_("The citizen's consent has ended."))
        application = consent.application
        if not application.active:
            raise InvalidToken(_("The application is switched off."))
        released = selectors.profile_items_for(person=consent.person, keys=consent.items)
        claims = _person_claims(consent, released, int(now.timestamp()))
        signed = _sign(claims)
        body, content_type = signed, "application/jwt"
        if encryption := encryption_key_for(application):
            body, content_type = _encrypt(signed, *encryption), "application/jose"
        items = list(claims["items"])
        message_log_record(
            application=application,
            direction="out",
            operation="person.read",
            message_id=claims["jti"],
            status=200,
            request_body=f"GET {endpoint}\ntoken_sha256={access.token_hash}",
            response_body=signed,
            person=consent.person,
            items=items,
            purpose=consent.purpose,
            consent_id=str(consent.public_id),
        )
    return PersonRelease(body=body, content_type=content_type, consent=consent, items=items)
