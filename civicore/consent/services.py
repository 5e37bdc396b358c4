"""Consented sharing: a citizen's consent given, used and withdrawn.

Approving on the consent screen files a Consent and a one-use code (`authorization_approve`); the
agency swaps the code for a ten-minute token (`access_token_issue`), plus a refresh token when the
citizen allowed offline access (`refresh_token_rotate` spends it for the next), and reads the
person with it (`person_data_release`, `userinfo_release`), which re-checks the consent on every
call and seals the message into the audit chain. `consent_revoke` therefore takes effect on the
agency's very next call. Requests an agency pushes first (RFC 9126) wait in
`pushed_request_store` until a browser brings them to the consent screen.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
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
from civicore.consent.models import (
    AccessToken,
    AuthorizationCode,
    ClientAssertionUse,
    Consent,
    PushedAuthorizationRequest,
    RefreshToken,
)
from civicore.consent.oidc import LoginContext, parse_scope, person_claims
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from civicore.identity.models import Person
from civicore.registry.models import AgencyApplication
from civicore.registry.services import Unauthenticated, application_keys, message_log_record

logger = logging.getLogger("civicore.consent")

CODE_LIFETIME = timedelta(seconds=60)
TOKEN_LIFETIME_SECONDS = 600
# A refresh token unused this long expires; none outlives its consent.
REFRESH_TOKEN_IDLE = timedelta(days=30)
# A pushed request must reach the authorization endpoint within PUSHED_REQUEST_LIFETIME; the
# browser that brings it then has PUSHED_REQUEST_DECISION_WINDOW to log in and decide.
PUSHED_REQUEST_LIFETIME = timedelta(seconds=90)
PUSHED_REQUEST_DECISION_WINDOW = timedelta(minutes=10)
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
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


class InsufficientScope(ApplicationError):
    """The access token was not issued for this endpoint (userinfo needs the openid scope)."""

    code = "insufficient_scope"
    status = 403


class InvalidRequestURI(ApplicationError):
    """A pushed request_uri that is unknown, another client's, expired, held by another browser
    or already decided. `pushed` is set when the request is known and belongs to the client, so
    the client can be told at its verified redirect URI."""

    code = "invalid_request_uri"
    status = 400

    def __init__(self, message: str, *, pushed: PushedAuthorizationRequest | None = None):
        super().__init__(message)
        self.pushed = pushed


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


def _check_request(
    application: AgencyApplication, items: list[str], purpose: str, days: int, *, sign_in: bool
) -> None:
    if not items and not sign_in:
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
    *,
    person: Person,
    application: AgencyApplication,
    items: list[str],
    purpose: str,
    days: int,
    offline_access: bool = False,
    sign_in: bool = False,
) -> Consent:
    """File the citizen's consent. A still-active consent to the same application for the same
    purpose is replaced, so there is one consent per application and purpose to look after.
    `sign_in` (OpenID Connect) allows a consent with no item: the application learns only the
    citizen's pairwise identifier and how they logged in."""
    _check_request(application, items, purpose, days, sign_in=sign_in)
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
    if replaced:
        AccessToken.objects.filter(consent__in=replaced, revoked_at__isnull=True).update(revoked_at=now)
        RefreshToken.objects.filter(consent__in=replaced, revoked_at__isnull=True).update(revoked_at=now)
    consent = Consent(
        person=person,
        application=application,
        items=list(items),
        purpose=purpose,
        purpose_name_vi=stated.get("name_vi", purpose),
        purpose_name_en=stated.get("name_en", ""),
        granted_at=now,
        expires_at=now + timedelta(days=days),
        offline_access=offline_access,
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
            "offline_access": offline_access,
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
    scope: str | None = None,
    nonce: str = "",
    login: LoginContext | None = None,
) -> AuthorizationCode:
    """The citizen said yes: file the consent and the one-use code the agency will exchange.
    `scope` is the granted scope when it is more than the items (OpenID Connect); `login` is
    what the ID token will say about how and when the citizen logged in."""
    requested = parse_scope(scope, items) if scope is not None else None
    consent = consent_grant(
        person=person,
        application=application,
        items=items,
        purpose=purpose,
        days=days,
        offline_access=bool(requested and requested.offline),
        sign_in=bool(requested and requested.openid),
    )
    now = timezone.now()
    return AuthorizationCode.objects.create(
        code_hash=sha256_hex(code),
        application=application,
        consent=consent,
        redirect_uri=redirect_uri,
        scope=scope if scope is not None else " ".join(items),
        code_challenge=code_challenge,
        code_challenge_method=code_challenge_method,
        issued_at=now,
        expires_at=now + CODE_LIFETIME,
        nonce=nonce,
        auth_time=login.auth_time if login else None,
        acr=login.acr if login else "",
        amr=login.amr if login else [],
        sid=login.sid if login else "",
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
    revoked_tokens += RefreshToken.objects.filter(consent=consent, revoked_at__isnull=True).update(
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


def _revoke_family(code_id: int, now: datetime) -> int:
    """Withdraw every access and refresh token that descends from one authorization code."""
    revoked = AccessToken.objects.filter(code_id=code_id, revoked_at__isnull=True).update(revoked_at=now)
    revoked += RefreshToken.objects.filter(code_id=code_id, revoked_at__isnull=True).update(revoked_at=now)
    return revoked


@transaction.atomic
def authorization_code_reuse(*, code: AuthorizationCode) -> int:
    """A spent code came back. It may have leaked, so every token it produced is withdrawn
    (RFC 6749 section 4.1.2), refresh tokens included."""
    revoked = _revoke_family(code.pk, timezone.now())
    logger.warning(
        "oauth refused: endpoint=token client_id=%s error=invalid_grant reason=code_reused tokens_revoked=%d",
        code.consent.application.client_id,
        revoked,
    )
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


def _record_token(consent: Consent, action: str, access: AccessToken, **extra: Any) -> None:
    """Audit an access token handed to an agency system, against the citizen it is about."""
    audit.record(
        actor=None,
        action=action,
        subject=consent,
        person=consent.person,
        agency=consent.application.agency,
        details={
            "client_id": consent.application.client_id,
            "consent": str(consent.public_id),
            "expires_at": access.expires_at.isoformat(),
            **extra,
        },
    )


def _refresh_expiry(consent: Consent, now: datetime) -> datetime:
    return min(consent.expires_at, now + REFRESH_TOKEN_IDLE)


def access_token_issue(
    *, code: AuthorizationCode, token: str, lifetime_seconds: int, refresh_token: str | None = None
) -> AccessToken | None:
    """Spend the code and store the new token's hash, bound to the code's consent, with the
    refresh token's when one is issued. Returns None when another request spent the code first;
    the tokens it produced are then withdrawn."""
    now = timezone.now()
    with transaction.atomic():
        spent = AuthorizationCode.objects.filter(pk=code.pk, used_at__isnull=True).update(used_at=now)
        if spent:
            consent = code.consent
            access = AccessToken.objects.create(
                token_hash=sha256_hex(token),
                application_id=code.application_id,
                consent=consent,
                code=code,
                scope=code.scope,
                issued_at=now,
                expires_at=now + timedelta(seconds=min(lifetime_seconds, TOKEN_LIFETIME_SECONDS)),
            )
            if refresh_token is not None:
                RefreshToken.objects.create(
                    token_hash=sha256_hex(refresh_token),
                    application_id=code.application_id,
                    consent=consent,
                    code=code,
                    scope=code.scope,
                    issued_at=now,
                    expires_at=_refresh_expiry(consent, now),
                )
            _record_token(consent, "consent.token.issue", access, refresh_token=refresh_token is not None)
            return access
    authorization_code_reuse(code=code)
    return None


class RefreshRefused(ApplicationError):
    """The refresh token cannot be used (any reason is invalid_grant to the client)."""

    code = "invalid_grant"


def refresh_token_check(token: RefreshToken | None) -> RefreshToken:
    """A refresh token that may be spent now. A spent one is a replay: its whole family is
    withdrawn before the refusal."""
    if token is None:
        raise RefreshRefused("Unknown refresh token.")
    if token.used_at is not None:
        refresh_token_reuse(token=token)
        raise RefreshRefused("The refresh token was already used.")
    now = timezone.now()
    if token.revoked_at is not None or token.expires_at <= now:
        raise RefreshRefused("The refresh token has expired or was revoked.")
    consent = token.consent
    if not consent.is_active(now) or not consent.offline_access:
        raise RefreshRefused("The citizen's consent has ended.")
    return token


@transaction.atomic
def refresh_token_reuse(*, token: RefreshToken) -> int:
    """A spent refresh token came back: it or its successor is in someone else's hands, so the
    family (every token from the same authorization code) is withdrawn (RFC 9700 section 4.14)."""
    revoked = _revoke_family(token.code_id, timezone.now())
    consent = token.consent
    logger.warning(
        "oauth refused: endpoint=token client_id=%s error=invalid_grant reason=refresh_token_reused "
        "tokens_revoked=%d",
        consent.application.client_id,
        revoked,
    )
    audit.record(
        actor=None,
        action="consent.refresh.reused",
        subject=consent,
        person=consent.person,
        agency=consent.application.agency,
        details={"client_id": consent.application.client_id, "tokens_revoked": revoked},
    )
    return revoked


def refresh_token_rotate(
    *, old: RefreshToken, token: str, refresh_token: str, scope: str, lifetime_seconds: int
) -> AccessToken:
    """Spend `old` and issue the next access and refresh tokens of its family. If another
    request spent it first, that is a replay: the family is withdrawn."""
    now = timezone.now()
    with transaction.atomic():
        consent = selectors.consent_for_update(pk=old.consent_id)
        spent = RefreshToken.objects.filter(pk=old.pk, used_at__isnull=True, revoked_at__isnull=True).update(
            used_at=now
        )
        if spent and consent is not None and consent.is_active(now) and consent.offline_access:
            access = AccessToken.objects.create(
                token_hash=sha256_hex(token),
                application_id=old.application_id,
                consent=consent,
                code_id=old.code_id,
                scope=scope,
                issued_at=now,
                expires_at=now + timedelta(seconds=min(lifetime_seconds, TOKEN_LIFETIME_SECONDS)),
            )
            RefreshToken.objects.create(
                token_hash=sha256_hex(refresh_token),
                application_id=old.application_id,
                consent=consent,
                code_id=old.code_id,
                scope=old.scope,  # RFC 6749 section 6: the new refresh token keeps the old scope
                issued_at=now,
                expires_at=_refresh_expiry(consent, now),
            )
            _record_token(consent, "consent.token.refresh", access)
            return access
        if spent:
            raise RefreshRefused("The citizen's consent has ended.")
    refresh_token_reuse(token=old)
    raise RefreshRefused("The refresh token was already used.")


@transaction.atomic
def token_revoke(*, application: AgencyApplication, token: AccessToken | RefreshToken) -> int:
    """RFC 7009: the application gives up a token. Revoking a refresh token also withdraws
    every token of its family."""
    now = timezone.now()
    if isinstance(token, RefreshToken):
        revoked = _revoke_family(token.code_id, now)
    else:
        revoked = AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    audit.record(
        actor=None,
        action="consent.token.revoke",
        subject=application,
        agency=application.agency,
        details={
            "client_id": application.client_id,
            "token_type": "refresh_token" if isinstance(token, RefreshToken) else "access_token",
            "tokens_revoked": revoked,
        },
    )
    return revoked


# --- Pushed authorization requests (RFC 9126) --------------------------------------------------


def pushed_request_store(
    *, application: AgencyApplication, parameters: dict[str, str]
) -> tuple[str, PushedAuthorizationRequest]:
    """Keep a validated authorization request; returns its request_uri (shown once, stored as
    a hash) and the row."""
    now = timezone.now()
    PushedAuthorizationRequest.objects.filter(expires_at__lt=now - timedelta(hours=1)).delete()
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
    pushed = PushedAuthorizationRequest.objects.create(
        request_uri_hash=sha256_hex(request_uri),
        application=application,
        parameters=parameters,
        created_at=now,
        expires_at=now + PUSHED_REQUEST_LIFETIME,
    )
    return request_uri, pushed


@transaction.atomic
def pushed_request_open(
    *, request_uri: str, client_id: str, browser_secret: str
) -> PushedAuthorizationRequest:
    """The browser brought a request_uri to the authorization endpoint. The first browser to
    bring it in time holds it; only that browser may come back with it, until it decides."""
    if not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > 200:
        raise InvalidRequestURI("Unknown 'request_uri'.")
    pushed = (
        PushedAuthorizationRequest.objects.select_for_update(of=("self",))
        .select_related("application")
        .filter(request_uri_hash=sha256_hex(request_uri))
        .first()
    )
    if pushed is None or pushed.application.client_id != client_id:
        raise InvalidRequestURI("Unknown 'request_uri' for this client.")
    now = timezone.now()
    if pushed.used_at is not None:
        raise InvalidRequestURI("The 'request_uri' was already used.", pushed=pushed)
    browser = sha256_hex(browser_secret)
    if not pushed.browser_hash:
        if pushed.expires_at <= now:
            raise InvalidRequestURI("The 'request_uri' has expired.", pushed=pushed)
        pushed.browser_hash = browser
        pushed.decide_by = now + PUSHED_REQUEST_DECISION_WINDOW
        pushed.save(update_fields=["browser_hash", "decide_by"])
    elif not hmac.compare_digest(pushed.browser_hash, browser):
        raise InvalidRequestURI("The 'request_uri' is in use in another browser.", pushed=pushed)
    elif pushed.decide_by is None or pushed.decide_by <= now:
        raise InvalidRequestURI("The 'request_uri' has expired.", pushed=pushed)
    return pushed


def pushed_request_spend(*, pushed: PushedAuthorizationRequest) -> bool:
    """The citizen decided: the request cannot be used again. False if it already was."""
    return bool(
        PushedAuthorizationRequest.objects.filter(pk=pushed.pk, used_at__isnull=True).update(
            used_at=timezone.now()
        )
    )


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


def _live_token(token: str) -> tuple[AccessToken, Consent]:
    """The access token and its consent, both still valid, the consent locked until the end of
    the caller's transaction so a withdrawal and a read never overlap: a read either happens
    before the withdrawal commits or is refused."""
    access = selectors.token_by_hash(sha256_hex(token)) if token else None
    if access is None:
        raise InvalidToken(_("The access token is not valid."))
    consent = selectors.consent_for_update(pk=access.consent_id)
    now = timezone.now()
    known = {"client_id": consent.application.client_id} if consent is not None else None
    if access.revoked_at is not None or access.expires_at <= now:
        raise InvalidToken(_("The access token has expired or was revoked."), details=known)
    if consent is None or not consent.is_active(now):
        raise InvalidToken(_("The citizen's consent has ended."), details=known)
    if not consent.application.active:
        raise InvalidToken(_("The application is switched off."), details=known)
    return access, consent


def person_data_release(*, token: str, endpoint: str) -> PersonRelease:
    """The consented items of the token's person, signed with the platform key and, when the
    application publishes an encryption key, encrypted to it. The token and its consent are
    checked on every call; each release is kept in the message log and the audit chain."""
    with transaction.atomic():
        access, consent = _live_token(token)
        now = timezone.now()
        application = consent.application
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


@dataclass(frozen=True)
class UserinfoRelease:
    claims: dict[str, Any]
    consent: Consent


def userinfo_release(*, token: str, endpoint: str) -> UserinfoRelease:
    """OpenID Connect userinfo: `sub` and the claims for the consented items the token's scope
    covers. Checked and logged like person_data_release."""
    with transaction.atomic():
        access, consent = _live_token(token)
        requested = parse_scope(access.scope, consent.items)
        if not requested.openid:
            raise InsufficientScope(
                _("The access token was not issued with the openid scope."),
                details={"client_id": consent.application.client_id},
            )
        application = consent.application
        released = selectors.profile_items_for(person=consent.person, keys=requested.items)
        claims = {
            "sub": pairwise_subject(person=consent.person, client_id=application.client_id),
            **person_claims(released, requested.items),
        }
        message_id = uuid.uuid4().hex
        message_log_record(
            application=application,
            direction="out",
            operation="person.read",
            message_id=message_id,
            status=200,
            request_body=f"GET {endpoint}\ntoken_sha256={access.token_hash}",
            response_body=json.dumps(claims, ensure_ascii=False, sort_keys=True),
            person=consent.person,
            items=[key for key in requested.items if key in released],
            purpose=consent.purpose,
            consent_id=str(consent.public_id),
        )
    return UserinfoRelease(claims=claims, consent=consent)


def userinfo_sign(*, claims: dict[str, Any], client_id: str) -> str:
    """Userinfo as a JWT signed with the platform key (OpenID Connect Core section 5.3.2)."""
    from civicore.core.jose import signing_key

    key = signing_key("ES256")
    now = int(timezone.now().timestamp())
    body = {**claims, "iss": settings.SITE_URL, "aud": client_id, "iat": now}
    header = {"alg": "ES256", "kid": key.kid, "typ": "JWT"}
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return jws.serialize_compact(header, payload, key, algorithms=["ES256"])
