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
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from joserfc import jwe, jws
from joserfc.errors import JoseError
from joserfc.jwk import Key

from civicore.agencies.models import Agency
from civicore.audit import services as audit
from civicore.consent import selectors
from civicore.consent.models import (
    AccessToken,
    AuthorizationCode,
    ClientAssertionUse,
    ClientSession,
    Consent,
    PushedAuthorizationRequest,
    RefreshToken,
)
from civicore.consent.oidc import (
    SID_SESSION_KEY,
    ClaimsRequest,
    LoginContext,
    logout_token_encode,
    parse_scope,
    person_claims,
    requested_claims,
)
from civicore.core import jobs, rowsql
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from civicore.exchange import conf as exchange_conf
from civicore.exchange.transport import Outgoing, Response, transport_from_settings
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
    consent, entry = _consent_prepare(
        person=person,
        application=application,
        items=items,
        purpose=purpose,
        days=days,
        offline_access=offline_access,
        sign_in=sign_in,
    )
    rowsql.insert(consent, entry)
    return consent


def _consents_replace(
    *, person: Person, application: AgencyApplication, purpose: str, now: datetime
) -> list[str]:
    """End the citizen's active consents to `application` for `purpose` (at most one, normally)
    and withdraw their tokens; their public ids. One statement locks and ends them."""
    table = connection.ops.quote_name(Consent._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    with rowsql.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET revoked_at = %s, ended_because = %s "  # noqa: S608 - ours
            "WHERE person_id = %s AND application_id = %s AND purpose = %s AND revoked_at IS NULL "
            "AND expires_at > %s RETURNING id, public_id, offline_access",
            [at, Consent.Ending.REPLACED.value, person.pk, application.pk, purpose, at],
        )
        replaced = cursor.fetchall()
    if not replaced:
        return []
    ids = [row[0] for row in replaced]
    tokens: list[Any] = [AccessToken]
    if any(row[2] for row in replaced):  # refresh tokens exist only under offline access
        tokens.append(RefreshToken)
    with rowsql.cursor() as cursor:
        for model in tokens:
            cursor.execute(
                f"UPDATE {connection.ops.quote_name(model._meta.db_table)} SET revoked_at = %s "  # noqa: S608
                f"WHERE consent_id IN ({', '.join(['%s'] * len(ids))}) AND revoked_at IS NULL",
                [at, *ids],
            )
    return [str(uuid.UUID(str(row[1]))) for row in replaced]


def _consent_prepare(
    *,
    person: Person,
    application: AgencyApplication,
    items: list[str],
    purpose: str,
    days: int,
    offline_access: bool,
    sign_in: bool,
) -> tuple[Consent, Any]:
    """Check the request, replace the consent it supersedes, and return the new consent (its id
    reserved) and its audit entry, both still to be inserted, in the caller's transaction."""
    _check_request(application, items, purpose, days, sign_in=sign_in)
    stated = application.purpose(purpose) or {}
    now = timezone.now()
    replaced = _consents_replace(person=person, application=application, purpose=purpose, now=now)
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
    # The citizen and the application are rows the caller holds, and public_id is a fresh UUID:
    # only the values themselves need checking.
    consent.full_clean(exclude=["person", "application"], validate_unique=False, validate_constraints=False)
    rowsql.reserve_ids(consent)
    entry = audit.entry(
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
            "replaces": replaced,
        },
    )
    return consent, entry


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
    claims: dict[str, Any] | None = None,
    covering: Consent | None = None,
) -> AuthorizationCode:
    """The citizen said yes: file the consent and the one-use code the agency will exchange.
    `scope` is the granted scope when it is more than the items (OpenID Connect); `login` is
    what the ID token will say about how and when the citizen logged in; `claims` the claims
    asked for by name (civicore.consent.oidc.ClaimsRequest), whose items are among `items`.
    With `covering` (prompt=none), nothing is granted: the code is issued under that active
    consent, which must still cover the request (ConsentNotCovering otherwise)."""
    requested = parse_scope(scope, items) if scope is not None else None
    pending: list[Any] = []
    if covering is not None:
        consent = _consent_reuse(
            covering=covering,
            person=person,
            application=application,
            items=items,
            purpose=purpose,
            offline=bool(requested and requested.offline),
        )
    else:
        # The consent, its audit entry and the code are written in one statement below.
        consent, entry = _consent_prepare(
            person=person,
            application=application,
            items=items,
            purpose=purpose,
            days=days,
            offline_access=bool(requested and requested.offline),
            sign_in=bool(requested and requested.openid),
        )
        pending = [consent, entry]
    now = timezone.now()
    issued = AuthorizationCode(
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
        claims=claims or {},
    )
    rowsql.insert(*pending, issued)
    return issued


class ConsentNotCovering(ApplicationError):
    """The consent a request without a consent screen relied on ended, or no longer covers it."""

    code = "consent_required"


def _consent_reuse(
    *,
    covering: Consent,
    person: Person,
    application: AgencyApplication,
    items: list[str],
    purpose: str,
    offline: bool,
) -> Consent:
    """The active consent a prompt=none request is answered under, locked and checked again."""
    consent = selectors.consent_for_update(pk=covering.pk)
    if (
        consent is None
        or consent.person_id != person.pk
        or consent.application_id != application.pk
        or consent.purpose != purpose
        or not selectors.consent_covers(consent, items=items, offline=offline)
    ):
        raise ConsentNotCovering(_("The consent this request relied on has ended."))
    audit.record(
        actor=person.user,
        action="consent.authorize.silent",
        subject=consent,
        person=person,
        agency=application.agency,
        details={"client_id": application.client_id, "consent": str(consent.public_id), "items": items},
    )
    return consent


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


# Rows nobody can use any more (spent assertions past their expiry, pushed requests long
# expired) are deleted by each process at most this often, not on every request.
PRUNE_INTERVAL_SECONDS = 60.0
_pruned_at: dict[str, float] = {}


def _prune_due(table: str) -> bool:
    now = time.monotonic()
    last = _pruned_at.get(table)
    if last is not None and now - last < PRUNE_INTERVAL_SECONDS:
        return False
    _pruned_at[table] = now
    return True


def client_assertion_use(*, application: AgencyApplication, jti: str, keep_until: datetime) -> bool:
    """Remember a client assertion's jti until it can no longer be accepted. False if it was
    seen before: a replay. One statement: the unique (application, jti) constraint decides, so
    two requests racing with the same assertion cannot both be accepted."""
    if _prune_due(ClientAssertionUse._meta.db_table):
        ClientAssertionUse.objects.filter(expires_at__lt=timezone.now()).delete()
    meta = ClientAssertionUse._meta
    qn = connection.ops.quote_name
    with rowsql.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(meta.db_table)} ({qn('application_id')}, {qn('jti')}, {qn('expires_at')}) "  # noqa: S608
            "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [application.pk, jti, meta.get_field("expires_at").get_db_prep_save(keep_until, connection)],
        )
        return cursor.rowcount == 1


def _revoke_family(code_id: int, now: datetime) -> int:
    """Withdraw every access and refresh token that descends from one authorization code."""
    revoked = AccessToken.objects.filter(code_id=code_id, revoked_at__isnull=True).update(revoked_at=now)
    revoked += RefreshToken.objects.filter(code_id=code_id, revoked_at__isnull=True).update(revoked_at=now)
    RefreshToken.objects.filter(code_id=code_id, successor_until__isnull=False).update(
        successor="", successor_until=None
    )
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
    rowsql.insert(_token_entry(consent, action, access, **extra))


def _token_entry(consent: Consent, action: str, access: AccessToken, **extra: Any) -> Any:
    """The audit entry `_record_token` writes, for writing it with the token in one statement."""
    return audit.entry(
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
        with rowsql.cursor() as cursor:
            cursor.execute(
                f"UPDATE {connection.ops.quote_name(AuthorizationCode._meta.db_table)} "  # noqa: S608 - ours
                "SET used_at = %s WHERE id = %s AND used_at IS NULL",
                [connection.ops.adapt_datetimefield_value(now), code.pk],
            )
            spent = cursor.rowcount
        if spent:
            consent = code.consent
            access = AccessToken(
                token_hash=sha256_hex(token),
                application_id=code.application_id,
                consent=consent,
                code=code,
                scope=code.scope,
                issued_at=now,
                expires_at=now + timedelta(seconds=min(lifetime_seconds, TOKEN_LIFETIME_SECONDS)),
            )
            rows: list[Any] = [access]
            if refresh_token is not None:
                rows.append(
                    RefreshToken(
                        token_hash=sha256_hex(refresh_token),
                        application_id=code.application_id,
                        consent=consent,
                        code=code,
                        scope=code.scope,
                        issued_at=now,
                        expires_at=_refresh_expiry(consent, now),
                    )
                )
            issued = refresh_token is not None
            entry = _token_entry(consent, "consent.token.issue", access, refresh_token=issued)
            rowsql.insert(*rows, entry)  # the tokens and their audit entry, in one statement
            return access
    authorization_code_reuse(code=code)
    return None


class RefreshRefused(ApplicationError):
    """The refresh token cannot be used (any reason is invalid_grant to the client)."""

    code = "invalid_grant"


def refresh_grace() -> timedelta:
    """How long after a refresh the same client may repeat it and get the same tokens."""
    return timedelta(seconds=max(0, int(getattr(settings, "OAUTH_REFRESH_GRACE_SECONDS", 30))))


def _in_grace(token: RefreshToken, now: datetime) -> bool:
    return token.revoked_at is None and token.successor_until is not None and token.successor_until > now


def refresh_token_check(token: RefreshToken | None) -> RefreshToken:
    """A refresh token that may be spent now. A spent one is a replay: its whole family is
    withdrawn before the refusal, unless it was spent within the grace window (then
    refresh_token_rotate answers the retry with the pair it issued the first time)."""
    if token is None:
        raise RefreshRefused("Unknown refresh token.")
    now = timezone.now()
    if token.used_at is not None:
        if _in_grace(token, now):
            return token
        refresh_token_reuse(token=token)
        raise RefreshRefused("The refresh token was already used.")
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


@dataclass(frozen=True)
class RefreshIssue:
    """What a refresh hands the client: the access token row and the two token values. They are
    the values asked to be issued, or, for a retry within the grace window (`retried`), those
    the first use issued."""

    access: AccessToken
    access_token: str
    refresh_token: str
    retried: bool = False


def _successors_forget(now: datetime) -> None:
    """Wipe the successors kept for grace windows that have passed. Rows another request holds
    are skipped (the next refresh gets them), so two refreshes never wait on each other here."""
    with transaction.atomic():
        stale = list(
            RefreshToken.objects.select_for_update(skip_locked=True)
            .filter(successor_until__lte=now)
            .values_list("pk", flat=True)[:200]
        )
        if stale:
            RefreshToken.objects.filter(pk__in=stale).update(successor="", successor_until=None)


def _grace_retry(spent: RefreshToken, consent: Consent, now: datetime) -> RefreshIssue | None:
    """The pair `spent` was exchanged for, if it was spent within the grace window and neither
    token of the pair has been used, revoked or has expired since: the client is retrying."""
    if not _in_grace(spent, now) or not spent.successor:
        return None
    try:
        pair = json.loads(spent.successor)
        access_token, refresh_token = str(pair["access_token"]), str(pair["refresh_token"])
    except (ValueError, KeyError, TypeError):
        return None
    access = AccessToken.objects.filter(
        token_hash=sha256_hex(access_token),
        code_id=spent.code_id,
        revoked_at__isnull=True,
        expires_at__gt=now,
    ).first()
    unused = RefreshToken.objects.filter(
        token_hash=sha256_hex(refresh_token),
        code_id=spent.code_id,
        used_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=now,
    ).exists()
    if access is None or not unused:
        return None
    logger.info("oauth refresh retried within the grace window: client_id=%s", consent.application.client_id)
    _record_token(consent, "consent.token.refresh.retried", access)
    return RefreshIssue(access=access, access_token=access_token, refresh_token=refresh_token, retried=True)


def refresh_token_rotate(
    *, old: RefreshToken, token: str, refresh_token: str, scope: str, lifetime_seconds: int
) -> RefreshIssue:
    """Spend `old` and issue the next access and refresh tokens of its family. The consent and
    then the token are row-locked, so concurrent uses of one token are decided one at a time:
    within the grace window the later ones get the pair the first one issued; after it, or
    once that pair has been used, a repeat is a replay and the family is withdrawn."""
    now = timezone.now()
    grace = refresh_grace()
    _successors_forget(now)
    with transaction.atomic():
        consent = selectors.consent_for_update(pk=old.consent_id)
        current = RefreshToken.objects.select_for_update().filter(pk=old.pk).first()
        if current is None or (current.used_at is None and current.revoked_at is not None):
            raise RefreshRefused("The refresh token has expired or was revoked.")
        if consent is None or not consent.is_active(now) or not consent.offline_access:
            raise RefreshRefused("The citizen's consent has ended.")
        spent = 0
        if current.used_at is None:
            kept: dict[str, Any] = {}
            if grace:
                pair = json.dumps({"access_token": token, "refresh_token": refresh_token})
                kept = {"successor": pair, "successor_until": now + grace}
            # Conditional as well as locked: a token is spent once whatever the isolation level.
            spent = RefreshToken.objects.filter(
                pk=old.pk, used_at__isnull=True, revoked_at__isnull=True
            ).update(used_at=now, **kept)
            if not spent:
                current.refresh_from_db()
        if spent:
            # Its predecessors' retries are over once the family moves on.
            RefreshToken.objects.filter(code_id=old.code_id, successor_until__isnull=False).exclude(
                pk=old.pk
            ).update(successor="", successor_until=None)
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
            return RefreshIssue(access=access, access_token=token, refresh_token=refresh_token)
        retried = _grace_retry(current, consent, now)
        if retried is not None:
            return retried
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
    if _prune_due(PushedAuthorizationRequest._meta.db_table):
        PushedAuthorizationRequest.objects.filter(expires_at__lt=now - timedelta(hours=1)).delete()
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
    pushed = PushedAuthorizationRequest(
        request_uri_hash=sha256_hex(request_uri),
        application=application,
        parameters=parameters,
        created_at=now,
        expires_at=now + PUSHED_REQUEST_LIFETIME,
    )
    rowsql.insert(pushed)
    return request_uri, pushed


def _pushed_request_for_update(request_uri_hash: str) -> PushedAuthorizationRequest | None:
    """The pushed request, row-locked until the end of the caller's transaction, with its
    application and the application's agency: one plain statement."""
    split = rowsql.width(PushedAuthorizationRequest)
    agency_at = split + rowsql.width(AgencyApplication)
    lock = " FOR UPDATE OF p" if connection.features.has_select_for_update_of else ""
    with rowsql.cursor() as cursor:
        cursor.execute(
            f"SELECT {rowsql.columns(PushedAuthorizationRequest, 'p')}, "  # noqa: S608 - ours
            f"{rowsql.columns(AgencyApplication, 'c')}, {rowsql.columns(Agency, 'g')} "
            f"FROM {PushedAuthorizationRequest._meta.db_table} p "
            f"JOIN {AgencyApplication._meta.db_table} c ON c.id = p.application_id "
            f"JOIN {Agency._meta.db_table} g ON g.id = c.agency_id "
            f"WHERE p.request_uri_hash = %s{lock}",
            [request_uri_hash],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    pushed = rowsql.from_row(PushedAuthorizationRequest, row[:split])
    application = rowsql.from_row(AgencyApplication, row[split:agency_at])
    if pushed is None or application is None:
        return None
    agency = rowsql.from_row(Agency, row[agency_at:])
    AgencyApplication._meta.get_field("agency").set_cached_value(application, agency)
    pushed.application = application
    return pushed


@transaction.atomic
def pushed_request_open(
    *, request_uri: str, client_id: str, browser_secret: str
) -> PushedAuthorizationRequest:
    """The browser brought a request_uri to the authorization endpoint. The first browser to
    bring it in time holds it; only that browser may come back with it, until it decides."""
    if not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > 200:
        raise InvalidRequestURI("Unknown 'request_uri'.")
    pushed = _pushed_request_for_update(sha256_hex(request_uri))
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
        _pushed_request_update(pushed.pk, "browser_hash = %s, decide_by = %s", [browser, pushed.decide_by])
    elif not hmac.compare_digest(pushed.browser_hash, browser):
        raise InvalidRequestURI("The 'request_uri' is in use in another browser.", pushed=pushed)
    elif pushed.decide_by is None or pushed.decide_by <= now:
        raise InvalidRequestURI("The 'request_uri' has expired.", pushed=pushed)
    return pushed


def pushed_request_spend(*, pushed: PushedAuthorizationRequest) -> bool:
    """The citizen decided: the request cannot be used again. False if it already was."""
    return _pushed_request_update(pushed.pk, "used_at = %s", [timezone.now()], only_if="used_at IS NULL")


def _pushed_request_update(pk: int, assignments: str, values: list[Any], *, only_if: str = "") -> bool:
    """One plain UPDATE of a pushed request; whether a row changed."""
    values = [connection.ops.adapt_datetimefield_value(v) if isinstance(v, datetime) else v for v in values]
    condition = f" AND {only_if}" if only_if else ""
    with rowsql.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(PushedAuthorizationRequest._meta.db_table)} "  # noqa: S608 - ours
            f"SET {assignments} WHERE id = %s{condition}",
            [*values, pk],
        )
        return bool(cursor.rowcount)


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
    found = selectors.token_and_consent_for_update(sha256_hex(token)) if token else None
    if found is None:
        raise InvalidToken(_("The access token is not valid."))
    access, consent = found
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


def _claims_asked(access: AccessToken) -> ClaimsRequest:
    """The claims asked for by name when the grant behind a token was authorized (its code is
    read with the token, selectors.token_and_consent_for_update)."""
    code = access.code
    return ClaimsRequest.from_json(code.claims) if code is not None else ClaimsRequest()


def userinfo_release(*, token: str, endpoint: str) -> UserinfoRelease:
    """OpenID Connect userinfo: `sub` and the claims for the consented items the token's scope
    covers, with those asked for in `userinfo` by the `claims` parameter. Checked and logged like
    person_data_release."""
    with transaction.atomic():
        access, consent = _live_token(token)
        requested = parse_scope(access.scope, consent.items)
        if not requested.openid:
            raise InsufficientScope(
                _("The access token was not issued with the openid scope."),
                details={"client_id": consent.application.client_id},
            )
        application = consent.application
        asked = _claims_asked(access)
        named = [key for key in asked.items("userinfo") if key in consent.items]
        keys = list(dict.fromkeys([*requested.items, *named]))
        released = selectors.profile_items_for(person=consent.person, keys=keys)
        claims = {
            "sub": pairwise_subject(person=consent.person, client_id=application.client_id),
            **requested_claims(released, asked, "userinfo", consent.items),
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
            items=[key for key in keys if key in released],
            purpose=consent.purpose,
            consent_id=str(consent.public_id),
        )
    return UserinfoRelease(claims=claims, consent=consent)


def id_token_claims_release(*, code: AuthorizationCode, consent: Consent, endpoint: str) -> dict[str, Any]:
    """The claims the client asked to find in the ID token (the `claims` parameter), for items
    the citizen consented to and holds. A release of personal data, so it is logged like
    userinfo; nothing is read or logged when none was asked for."""
    asked = ClaimsRequest.from_json(code.claims)
    keys = [key for key in asked.items("id_token") if key in consent.items]
    if not keys:
        return {}
    with transaction.atomic():
        held = selectors.profile_items_for(person=consent.person, keys=keys)
        claims = requested_claims(held, asked, "id_token", consent.items)
        if claims:
            message_log_record(
                application=consent.application,
                direction="out",
                operation="person.read",
                message_id=uuid.uuid4().hex,
                status=200,
                request_body=f"POST {endpoint}\nid_token",
                response_body=json.dumps(claims, ensure_ascii=False, sort_keys=True),
                person=consent.person,
                items=[key for key in keys if key in held],
                purpose=consent.purpose,
                consent_id=str(consent.public_id),
            )
    return claims


def userinfo_sign(*, claims: dict[str, Any], client_id: str, alg: str) -> str:
    """Userinfo as a JWT signed with the platform key for `alg`, the client's registered
    userinfo_signed_response_alg, with iss and aud (OpenID Connect Core section 5.3.2)."""
    from civicore.core.jose import signing_key

    key = signing_key(alg)
    now = int(timezone.now().timestamp())
    body = {**claims, "iss": settings.SITE_URL, "aud": client_id, "iat": now}
    header = {"alg": alg, "kid": key.kid, "typ": "JWT"}
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return jws.serialize_compact(header, payload, key, algorithms=[alg])


# --- Login sessions and logout (OpenID Connect Back- and Front-Channel Logout 1.0) -----------

BACKCHANNEL_LOGOUT_JOB = "consent.backchannel_logout"
LOGOUT_CONTENT_TYPE = "application/x-www-form-urlencoded"
# HTTP answers after which sending the same logout again cannot help: the application refused
# the token (section 2.8 asks for 400). Any other failure is retried with back-off.
_FINAL_REFUSALS = frozenset(range(400, 500)) - {408, 425, 429}


class LogoutNotDelivered(Exception):
    """The application could not be reached, or failed; the job is tried again later."""


def client_session_record(*, code: AuthorizationCode) -> None:
    """The code's application now holds an ID token from the login session `code.sid`."""
    if not code.sid:
        return
    meta = ClientSession._meta
    qn = connection.ops.quote_name
    with rowsql.cursor() as cursor:  # one plain statement: this runs with every ID token issued
        cursor.execute(
            f"INSERT INTO {qn(meta.db_table)} ({qn('sid')}, {qn('application_id')}, {qn('person_id')}, "  # noqa: S608
            f"{qn('issued_at')}, {qn('ended_at')}) VALUES (%s, %s, %s, %s, NULL) ON CONFLICT DO NOTHING",
            [
                code.sid,
                code.application_id,
                code.consent.person_id,
                connection.ops.adapt_datetimefield_value(timezone.now()),
            ],
        )


def _client_sessions_end(sessions: Any, *, cause: str, actor: Any) -> list[ClientSession]:
    """End the open ones among `sessions`: each application with a back-channel logout URI gets
    a logout token through the job queue once this transaction commits."""
    now = timezone.now()
    rows = list(
        sessions.filter(ended_at__isnull=True)
        .select_for_update(of=("self",))
        .select_related("application__agency", "person")
        .order_by("pk")
    )
    if not rows:
        return []
    ClientSession.objects.filter(pk__in=[row.pk for row in rows]).update(ended_at=now)
    notified: dict[int, list[str]] = {}
    for row in rows:
        row.ended_at = now
        application = row.application
        if application.backchannel_logout_uri and application.active:
            jobs.enqueue(BACKCHANNEL_LOGOUT_JOB, client_session_id=row.pk)
            notified.setdefault(row.person_id, []).append(application.client_id)
    for person_id in dict.fromkeys(row.person_id for row in rows):
        mine = [row for row in rows if row.person_id == person_id]
        audit.record(
            actor=actor,
            action="consent.session.end",
            subject=mine[0].person,
            person=mine[0].person,
            details={
                "cause": cause,
                "clients": [row.application.client_id for row in mine],
                "backchannel": notified.get(person_id, []),
            },
        )
    return rows


@transaction.atomic
def login_session_end(*, sid: str, cause: str, actor: Any = None) -> list[ClientSession]:
    """The login session `sid` ended (logout, or ended from the sessions page): every
    application that was issued an ID token in it is told."""
    if not isinstance(sid, str) or not sid:
        return []
    return _client_sessions_end(ClientSession.objects.filter(sid=sid), cause=cause, actor=actor)


@transaction.atomic
def login_sessions_end_for_user(*, user: Any, keep_sid: str = "", cause: str) -> list[ClientSession]:
    """Every login session of the user ended but `keep_sid` (a password change signs out the
    other browsers): the applications that took part in them are told."""
    sessions = ClientSession.objects.filter(person__user_id=user.pk)
    if keep_sid:
        sessions = sessions.exclude(sid=keep_sid)
    return _client_sessions_end(sessions, cause=cause, actor=user)


def _post_logout_token(url: str, body: bytes, delivery_id: int) -> Response:
    """POST the form through the exchange's transport (the one webhooks use) and wait for the
    answer, or for the transport's timeout."""
    answered = threading.Event()
    answers: list[Response] = []

    def done(response: Response) -> None:
        answers.append(response)
        answered.set()

    transport = transport_from_settings()
    try:
        transport.submit(
            Outgoing(
                delivery_id=delivery_id, url=url, headers={"Content-Type": LOGOUT_CONTENT_TYPE}, body=body
            ),
            done,
        )
        answered.wait(exchange_conf.get_float("EXCHANGE_TIMEOUT_SECONDS") * 2 + 5)
    finally:
        transport.close()
    return answers[0] if answers else Response(delivery_id, None, "timeout", time.time())


def backchannel_logout_deliver(*, client_session_id: int) -> bool:
    """Post a fresh logout token for one ended session to its application's back-channel logout
    URI. True once the application acknowledged it (200, or 204), False when there is nothing
    to send or the application refused the token: both outcomes are kept in the message log
    (and so in the audit chain). Otherwise LogoutNotDelivered: the job queue undoes this
    attempt's writes, records the failure on the job and tries again after a back-off."""
    row = (
        ClientSession.objects.select_related("application__agency", "person")
        .filter(pk=client_session_id, ended_at__isnull=False)
        .first()
    )
    if row is None:
        return False
    application = row.application
    url = application.backchannel_logout_uri
    if not url or not application.active:
        return False
    token, jti = logout_token_encode(
        subject=pairwise_subject(person=row.person, client_id=application.client_id),
        client_id=application.client_id,
        sid=row.sid,
        alg=application.id_token_signed_response_alg,
    )
    body = urlencode({"logout_token": token})
    answer = _post_logout_token(url, body.encode(), row.pk)
    outcome = f"HTTP {answer.status}" if answer.status is not None else answer.error or "no answer"
    with transaction.atomic():
        message_log_record(
            application=application,
            direction="out",
            operation="session.logout",
            message_id=jti,
            status=answer.status or 0,
            request_body=f"POST {url}\n{body}",
            response_body=outcome,
        )
    if answer.status is not None and 200 <= answer.status < 300:
        return True
    if answer.status in _FINAL_REFUSALS:
        logger.warning(
            "back-channel logout refused: client_id=%s status=%s", application.client_id, answer.status
        )
        return False
    raise LogoutNotDelivered(f"{application.client_id}: {outcome}")


# Signal receivers (connected in ConsentConfig.ready): the ways a login session ends.


def on_user_logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """Django's logout, before the session is flushed: Civicore's own sign-out, RP-initiated
    logout, and allauth ending the current session."""
    session = getattr(request, "session", None)
    sid = session.get(SID_SESSION_KEY) if session is not None else None
    if isinstance(sid, str) and sid:
        login_session_end(sid=sid, cause="logout", actor=user)


def on_session_ending(sender: Any, user: Any = None, session_key: str = "", **kwargs: Any) -> None:
    """A session ended from a sessions page (identity.signals.session_ending), read while its
    data still exists."""
    if not session_key:
        return
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    sid = store.get(SID_SESSION_KEY)
    if isinstance(sid, str) and sid:
        login_session_end(sid=sid, cause="session_ended", actor=user)


def on_password_changed(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """A new password (changed, set or reset) invalidates every other session of the user;
    the current one, when it stays signed in, goes on."""
    if user is None or getattr(user, "pk", None) is None:
        return
    keep = ""
    current = getattr(request, "user", None)
    if current is not None and current.is_authenticated and hasattr(request, "session"):
        keep = request.session.get(SID_SESSION_KEY) or ""
    login_sessions_end_for_user(
        user=user, keep_sid=keep if isinstance(keep, str) else "", cause="password_changed"
    )
