"""OpenID Connect on top of consented sharing: scopes, claims, the login's context and ID tokens.

The standard scopes are names for profile items (`profile` is full name, date of birth and
gender; `email`, `phone` and `address` are the items of the same name), so one consent screen and
one Consent cover both. Claims carry an item's value only from the userinfo endpoint, where the
consent is checked on every call; the ID token says who logged in, how and when, never more.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from joserfc import jwt
from joserfc.jws import JWSRegistry

from civicore.identity.models import ProfileItem

OPENID = "openid"
OFFLINE_ACCESS = "offline_access"
# Standard scopes that name profile items; "email", "phone" and "address" are item keys too.
SCOPE_ITEMS: dict[str, tuple[str, ...]] = {
    "profile": ("full_name", "date_of_birth", "gender"),
    "email": ("email",),
    "phone": ("phone",),
    "address": ("address",),
}
ID_TOKEN_ALG = "ES256"  # noqa: S105 - an algorithm name
ID_TOKEN_LIFETIME_SECONDS = 600
ACR_VALUES = ["urn:civicore:loa:1", "urn:civicore:loa:2"]
SID_SESSION_KEY = "consent.oidc.sid"
# Profile items under their OpenID Connect claim names (OpenID Connect Core section 5.1); any
# other consented item is a claim named after its key, such as `national_id`.
STANDARD_CLAIMS = {
    "full_name": "name",
    "date_of_birth": "birthdate",
    "gender": "gender",
    "address": "address",
    "phone": "phone_number",
    "email": "email",
}
# allauth's authentication records as RFC 8176 method references.
_AMR_BY_METHOD = {"password": "pwd", "code": "otp", "password_reset": "pwd"}
_AMR_BY_MFA_TYPE = {"totp": "otp", "recovery_codes": "otp", "webauthn": "hwk"}


def issuer() -> str:
    return str(settings.SITE_URL)


# --- Scope ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestedScope:
    """A scope string read against the items an application may have."""

    tokens: list[str]  # each scope value once, in the order asked
    items: list[str]  # the profile items it stands for
    openid: bool
    offline: bool
    refused: list[str] = field(default_factory=list)  # values outside what may be asked

    @property
    def value(self) -> str:
        return " ".join(self.tokens)


def parse_scope(scope: str | None, allowed: Iterable[str]) -> RequestedScope:
    """Item keys must be in `allowed`; `profile` stands for those of its items that are (and is
    refused if none is); `openid` and `offline_access` ask for no item."""
    allowed_set = set(allowed)
    tokens = list(dict.fromkeys((scope or "").split()))
    items: list[str] = []
    refused: list[str] = []
    for token in tokens:
        if token in (OPENID, OFFLINE_ACCESS):
            continue
        if token in SCOPE_ITEMS:
            wanted = [item for item in SCOPE_ITEMS[token] if item in allowed_set]
        elif token in ProfileItem.Key.values and token in allowed_set:
            wanted = [token]
        else:
            wanted = []
        if not wanted:
            refused.append(token)
        items.extend(wanted)
    return RequestedScope(
        tokens=tokens,
        items=list(dict.fromkeys(items)),
        openid=OPENID in tokens,
        offline=OFFLINE_ACCESS in tokens,
        refused=refused,
    )


def scopes_supported() -> list[str]:
    return [
        OPENID,
        *SCOPE_ITEMS,
        OFFLINE_ACCESS,
        *(k for k in ProfileItem.Key.values if k not in SCOPE_ITEMS),
    ]


# --- Claims -----------------------------------------------------------------------------------


def _phone_e164(value: Any) -> Any:
    """Vietnamese numbers are kept as dialled at home (0901234567); OpenID Connect recommends
    E.164 (+84901234567)."""
    if isinstance(value, str) and value.startswith("0") and value.isdigit():
        return "+84" + value[1:]
    return value


def person_claims(held: dict[str, Any], items: Iterable[str]) -> dict[str, Any]:
    """The claims for the consented `items` the person holds (`held`: key -> HeldItem)."""
    claims: dict[str, Any] = {}
    for key in items:
        item = held.get(key)
        if item is None:
            continue
        name = STANDARD_CLAIMS.get(key, key)
        value = item.value
        if key == "address":
            value = {"formatted": value}
        elif key == "phone":
            value = _phone_e164(value)
        claims[name] = value
        if key in ("email", "phone"):
            claims[f"{name}_verified"] = item.verified_at is not None
    return claims


def claims_supported() -> list[str]:
    registered = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash"]
    items = [STANDARD_CLAIMS.get(key, key) for key in ProfileItem.Key.values]
    return [*registered, *items, "email_verified", "phone_number_verified"]


# --- The login behind a request -------------------------------------------------------------


@dataclass(frozen=True)
class LoginContext:
    acr: str
    amr: list[str]
    auth_time: datetime
    sid: str


def _authentication_records(request: HttpRequest) -> list[dict[str, Any]]:
    from allauth.account.authentication import get_authentication_records

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    return [r for r in get_authentication_records(request, user) if isinstance(r, dict)]


def _amr_from_records(records: list[dict[str, Any]]) -> list[str]:
    methods: list[str] = []
    for record in records:
        if record.get("method") == "mfa":
            amr = _AMR_BY_MFA_TYPE.get(str(record.get("type")))
        else:
            amr = _AMR_BY_METHOD.get(str(record.get("method")))
        if amr:
            methods.append(amr)
    methods = list(dict.fromkeys(methods))
    if len(methods) > 1:
        methods.append("mfa")
    return methods


def session_amr(request: HttpRequest) -> list[str]:
    """RFC 8176 values for how the citizen logged in, from the identity app when it says."""
    from civicore.identity import selectors as identity

    provided = getattr(identity, "session_amr", None)
    if provided is not None:
        return list(provided(request))
    return _amr_from_records(_authentication_records(request))


def session_acr(request: HttpRequest, amr: list[str]) -> str:
    from civicore.identity import selectors as identity

    provided = getattr(identity, "session_acr", None)
    if provided is not None:
        return str(provided(request))
    return ACR_VALUES[1] if "mfa" in amr else ACR_VALUES[0]


def session_auth_time(request: HttpRequest) -> datetime:
    """When the citizen last authenticated in this session (a reauthentication counts)."""
    times = [r["at"] for r in _authentication_records(request) if isinstance(r.get("at"), int | float)]
    if times:
        return datetime.fromtimestamp(max(times), tz=UTC)
    last_login = getattr(getattr(request, "user", None), "last_login", None)
    return last_login or timezone.now()


def session_sid(request: HttpRequest) -> str:
    """The OpenID Connect session id (`sid`) of this browser's login, made on first use."""
    sid = request.session.get(SID_SESSION_KEY)
    if not isinstance(sid, str) or not sid:
        sid = secrets.token_urlsafe(16)
        request.session[SID_SESSION_KEY] = sid
    return sid


def login_context(request: HttpRequest) -> LoginContext:
    amr = session_amr(request)
    return LoginContext(
        acr=session_acr(request, amr),
        amr=amr,
        auth_time=session_auth_time(request),
        sid=session_sid(request),
    )


# --- ID tokens --------------------------------------------------------------------------------


def _at_hash(access_token: str) -> str:
    """OpenID Connect Core 3.1.3.6: the left half of the SHA-256 of the token, base64url."""
    import base64

    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def id_token_encode(
    *,
    subject: str,
    client_id: str,
    auth_time: datetime | None,
    acr: str,
    amr: list[str],
    sid: str,
    nonce: str = "",
    access_token: str | None = None,
) -> str:
    """An ID token signed with the active platform ES256 key (its kid in the header)."""
    from civicore.core.jose import signing_key

    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer(),
        "sub": subject,
        "aud": client_id,
        "exp": now + ID_TOKEN_LIFETIME_SECONDS,
        "iat": now,
        "auth_time": int((auth_time or timezone.now()).timestamp()),
    }
    if nonce:
        claims["nonce"] = nonce
    if acr:
        claims["acr"] = acr
    if amr:
        claims["amr"] = amr
    if sid:
        claims["sid"] = sid
    if access_token:
        claims["at_hash"] = _at_hash(access_token)
    key = signing_key(ID_TOKEN_ALG)
    header = {"alg": ID_TOKEN_ALG, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=[ID_TOKEN_ALG])


# --- Discovery --------------------------------------------------------------------------------


def provider_metadata() -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 (and RFC 8414) metadata for this site."""
    from civicore.registry.services import SIGNING_ALGORITHMS

    base = issuer()

    def url(name: str) -> str:
        return base + reverse(name)

    assertion_algs = [alg for alg in SIGNING_ALGORITHMS if alg in JWSRegistry.algorithms]
    return {
        "issuer": base,
        "authorization_endpoint": url("consent:authorize"),
        "token_endpoint": url("consent:token"),
        "userinfo_endpoint": url("consent:userinfo"),
        "jwks_uri": url("jwks"),
        "pushed_authorization_request_endpoint": url("consent:par"),
        "require_pushed_authorization_requests": False,
        "revocation_endpoint": url("consent:token_revoke"),
        "end_session_endpoint": url("consent:logout"),
        "scopes_supported": scopes_supported(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": [ID_TOKEN_ALG],
        "userinfo_signing_alg_values_supported": [ID_TOKEN_ALG],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": ["private_key_jwt"],
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims_supported(),
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": False,
        "acr_values_supported": ACR_VALUES,
        "prompt_values_supported": ["none", "login", "consent"],
        "request_parameter_supported": False,
        "ui_locales_supported": ["vi", "en"],
    }
