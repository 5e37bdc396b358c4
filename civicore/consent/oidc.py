"""OpenID Connect on top of consented sharing: scopes, claims, the login's context and ID tokens.

The standard scopes are names for profile items (`profile` is full name, date of birth and
gender; `email`, `phone` and `address` are the items of the same name), so one consent screen and
one Consent cover both. Claims carry an item's value from the userinfo endpoint, where the
consent is checked on every call, and in the ID token only when the client asked for that claim
there with the `claims` parameter (section 5.5) and the citizen consented to its item.
"""

from __future__ import annotations

import hashlib
import json
import re
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
from civicore.registry.models import SIGNING_ALGORITHMS as CLIENT_SIGNING_ALGORITHMS

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
# What a client may register as id_token_signed_response_alg and userinfo_signed_response_alg;
# OpenID Connect Discovery requires RS256 among them.
CLIENT_SIGNING_ALGS = [alg for alg, _label in CLIENT_SIGNING_ALGORITHMS]
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


# --- The claims request parameter (OpenID Connect Core section 5.5) -------------------------

CLAIMS_TARGETS = ("userinfo", "id_token")
CLAIMS_PARAMETER_MAX_LENGTH = 4096
_MAX_CLAIMS_PER_TARGET = 50
_MAX_CLAIM_VALUES = 20
# Claims that are not profile items but that a request may qualify: `sub` with the subject the
# client expects to be signed in, `acr` with the levels it wants. Every other registered claim
# (auth_time included) is always in the ID token and needs no asking.
REQUESTABLE_REGISTERED_CLAIMS = ("sub", "acr")


_UNSHOWN = re.compile(r"[^A-Za-z0-9_.:-]")


class InvalidClaimsRequest(ValueError):
    """The `claims` parameter is not the JSON object section 5.5 describes."""


def item_for_claim(name: str) -> str | None:
    """The profile item a claim carries (`name` is full_name, `email_verified` is email), if any."""
    for key, claim in STANDARD_CLAIMS.items():
        if name == claim:
            return key
    if name == "email_verified":
        return "email"
    if name == "phone_number_verified":
        return "phone"
    if name in ProfileItem.Key.values and name not in STANDARD_CLAIMS:
        return name
    return None


@dataclass(frozen=True)
class ClaimsRequest:
    """The claims a client asked for by name, per place they are returned: {claim: None or
    {"essential", "value", "values"}}. Only claims of items the client may ask for, and `sub`
    and `acr`, are kept; any other is ignored, as section 5.5 allows."""

    userinfo: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    id_token: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.userinfo or self.id_token)

    def target(self, name: str) -> dict[str, dict[str, Any] | None]:
        return self.id_token if name == "id_token" else self.userinfo

    def items(self, target: str | None = None) -> list[str]:
        """The profile items behind the claims asked for (in `target`, or anywhere), each once."""
        names = [*self.target(target)] if target else [*self.userinfo, *self.id_token]
        return list(dict.fromkeys(key for name in names if (key := item_for_claim(name))))

    def essential_items(self) -> set[str]:
        return {
            key
            for member in (self.userinfo, self.id_token)
            for name, spec in member.items()
            if spec and spec.get("essential") is True and (key := item_for_claim(name))
        }

    def expected(self, claim: str) -> list[Any]:
        """The values the client asked `claim` to have (value, or values), wherever it asked."""
        found: list[Any] = []
        for member in (self.id_token, self.userinfo):
            spec = member.get(claim)
            if spec and "value" in spec:
                found.append(spec["value"])
            if spec and "values" in spec:
                found.extend(spec["values"])
        return found

    def as_json(self) -> dict[str, Any]:
        return {name: member for name in CLAIMS_TARGETS if (member := self.target(name))}

    @classmethod
    def from_json(cls, data: Any) -> ClaimsRequest:
        """A request as stored with its authorization code (already checked)."""
        if not isinstance(data, dict):
            return cls()
        return cls(userinfo=dict(data.get("userinfo") or {}), id_token=dict(data.get("id_token") or {}))


def _claim_spec(name: str, spec: Any) -> dict[str, Any] | None:
    if spec is None:
        return None
    # Error descriptions allow printable ASCII only, without quotes (RFC 6749 section 5.2).
    shown = _UNSHOWN.sub("?", name[:40])
    if not isinstance(spec, dict):
        raise InvalidClaimsRequest(f"The request for '{shown}' must be null or an object.")
    kept: dict[str, Any] = {}
    if "essential" in spec:
        if not isinstance(spec["essential"], bool):
            raise InvalidClaimsRequest(f"'essential' for '{shown}' must be true or false.")
        kept["essential"] = spec["essential"]
    if "value" in spec:
        if isinstance(spec["value"], dict | list):
            raise InvalidClaimsRequest(f"'value' for '{shown}' must be a single value.")
        kept["value"] = spec["value"]
    if "values" in spec:
        values = spec["values"]
        if not isinstance(values, list) or not values or len(values) > _MAX_CLAIM_VALUES:
            raise InvalidClaimsRequest(
                f"'values' for '{shown}' must be a list of 1 to {_MAX_CLAIM_VALUES} values."
            )
        if any(isinstance(value, dict | list) for value in values):
            raise InvalidClaimsRequest(f"'values' for '{shown}' must hold single values.")
        kept["values"] = values
    return kept or None


def parse_claims_request(text: str | None, allowed: Iterable[str]) -> ClaimsRequest:
    """Read a `claims` parameter. Malformed JSON or members of the wrong type raise
    InvalidClaimsRequest; claims of items outside `allowed`, unknown claims and unknown members
    are left out. No parameter, or an empty string, asks for nothing."""
    if text is None or text == "":
        return ClaimsRequest()
    if len(text) > CLAIMS_PARAMETER_MAX_LENGTH:
        raise InvalidClaimsRequest(f"'claims' is longer than {CLAIMS_PARAMETER_MAX_LENGTH} characters.")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidClaimsRequest("'claims' is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise InvalidClaimsRequest("'claims' must be a JSON object.")
    allowed_set = set(allowed)
    members: dict[str, dict[str, dict[str, Any] | None]] = {}
    for target in CLAIMS_TARGETS:
        requested = data.get(target)
        if requested is None:
            members[target] = {}
            continue
        if not isinstance(requested, dict):
            raise InvalidClaimsRequest(f"'{target}' in 'claims' must be an object.")
        if len(requested) > _MAX_CLAIMS_PER_TARGET:
            raise InvalidClaimsRequest(f"Ask for at most {_MAX_CLAIMS_PER_TARGET} claims in '{target}'.")
        kept: dict[str, dict[str, Any] | None] = {}
        for name, spec in requested.items():
            checked = _claim_spec(name, spec)
            item = item_for_claim(name)
            if name in REQUESTABLE_REGISTERED_CLAIMS or (item is not None and item in allowed_set):
                kept[name] = checked
        members[target] = kept
    return ClaimsRequest(userinfo=members["userinfo"], id_token=members["id_token"])


def requested_claims(
    held: dict[str, Any], request: ClaimsRequest, target: str, consented: Iterable[str]
) -> dict[str, Any]:
    """The claims asked for by name in `target` whose items the citizen consented to and holds
    (`held`: key -> HeldItem); only the claims named, not their companions."""
    names = request.target(target)
    allowed = set(consented)
    items = [key for key in request.items(target) if key in allowed]
    return {name: value for name, value in person_claims(held, items).items() if name in names}


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


def login_context(request: HttpRequest, acr_asked: AcrRequest | None = None) -> LoginContext:
    """The login as the ID token describes it; with `acr_asked`, its acr is the one
    `acr_reported` names for what the client asked."""
    amr = session_amr(request)
    return LoginContext(
        acr=acr_reported(acr_asked, session_acr(request, amr)),
        amr=amr,
        auth_time=session_auth_time(request),
        sid=session_sid(request),
    )


# --- Authentication context: acr_values and an essential acr claim ----------------------------

# Each of ACR_VALUES is a level, and a login at one level satisfies every lower one.
ACR_LEVELS = {value: level for level, value in enumerate(ACR_VALUES, start=1)}
ACR_VALUES_MAX_LENGTH = 1000


@dataclass(frozen=True)
class AcrRequest:
    """The levels a client asked the login to reach, in its order of preference: with
    `acr_values` or a voluntary `acr` claim (OpenID Connect Core 3.1.2.1, 5.5.1.1) they are a
    wish; as an essential `acr` claim in the ID token, a condition. `values` keeps the values
    Civicore knows; `asked` is whether any value was named at all."""

    values: tuple[str, ...]
    essential: bool = False
    asked: bool = False


def acr_request(acr_values: str | None, claims: ClaimsRequest | None) -> AcrRequest | None:
    """What a request asks of the login's acr, or None when it asks nothing. An essential
    `acr` claim with value(s) wins over `acr_values`; unknown values are left out."""
    spec = (claims.id_token.get("acr") if claims else None) or {}
    named: list[Any] = []
    if "value" in spec:
        named.append(spec["value"])
    named.extend(spec.get("values") or [])
    essential = spec.get("essential") is True and bool(named)
    if not named:
        named = (acr_values or "").split()
    if not named:
        return None
    known = tuple(dict.fromkeys(value for value in named if isinstance(value, str) and value in ACR_LEVELS))
    return AcrRequest(values=known, essential=essential, asked=True)


@dataclass(frozen=True)
class AcrPlan:
    """What to do before a code is issued: `met` (go on), `step_up` (the citizen confirms with
    their second factor to reach `target`), or `unmet` (an essential level cannot be reached)."""

    outcome: str
    target: str = ""


def acr_plan(asked: AcrRequest | None, *, current: str, reachable: str) -> AcrPlan:
    """The first level, in the client's order of preference, the citizen can reach is the
    target. A voluntary request nobody can reach goes on at the login's own level (the best
    this citizen can do); an essential one is unmet."""
    if asked is None or not asked.asked:
        return AcrPlan("met")
    have, can = ACR_LEVELS.get(current, 0), max(ACR_LEVELS.get(reachable, 0), ACR_LEVELS.get(current, 0))
    target = next((value for value in asked.values if ACR_LEVELS[value] <= can), "")
    if not target:
        return AcrPlan("unmet" if asked.essential else "met")
    if ACR_LEVELS[target] > have:
        return AcrPlan("step_up", target)
    return AcrPlan("met", target)


def acr_reported(asked: AcrRequest | None, achieved: str) -> str:
    """The acr the ID token carries: the level the login reached. When the client made acr an
    essential claim with values, it must be one of them (Core 5.5.1.1), so the highest asked
    level the login satisfies is named instead."""
    if asked is None or not asked.essential or achieved in asked.values:
        return achieved
    level = ACR_LEVELS.get(achieved, 0)
    satisfied = [value for value in asked.values if ACR_LEVELS[value] <= level]
    return max(satisfied, key=ACR_LEVELS.__getitem__) if satisfied else achieved


def reachable_acr(request: HttpRequest, person: Any) -> str:
    """The highest level this citizen can reach in this session without logging in again: loa:2
    needs a verified identity (assurance level 2) and a second factor set up to confirm with."""
    from civicore.identity.models import Person
    from civicore.identity.selectors import second_factor_types

    current = session_acr(request, session_amr(request))
    if person.assurance_level >= Person.AssuranceLevel.VERIFIED and second_factor_types(person.user):
        return ACR_VALUES[1]
    return current


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
    alg: str = ID_TOKEN_ALG,
    person: dict[str, Any] | None = None,
) -> str:
    """An ID token signed with the active platform key for `alg`, the client's registered
    id_token_signed_response_alg (its kid in the header). `person` holds the claims the client
    asked to find in the ID token; they never replace a registered claim."""
    from civicore.core.jose import signing_key

    if alg not in CLIENT_SIGNING_ALGS:
        raise ValueError(f"Unsupported ID token algorithm {alg!r}")
    now = int(time.time())
    claims: dict[str, Any] = {
        **(person or {}),
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
    key = signing_key(alg)
    header = {"alg": alg, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=[alg])


# --- Logout tokens (OpenID Connect Back-Channel Logout 1.0) ------------------------------------

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE = "logout+jwt"  # noqa: S105 - a media type, not a secret
# A logout token is sent at once and checked on arrival: it need not live long.
LOGOUT_TOKEN_LIFETIME_SECONDS = 120


def logout_token_encode(
    *, subject: str, client_id: str, sid: str, alg: str = ID_TOKEN_ALG
) -> tuple[str, str]:
    """A Logout Token (section 2.4) for one session of one client, signed like that client's ID
    tokens: iss, aud, iat, exp, a fresh jti, sub and sid, the back-channel logout event, never a
    nonce; explicitly typed logout+jwt. Returns the token and its jti."""
    from civicore.core.jose import signing_key

    if alg not in CLIENT_SIGNING_ALGS:
        alg = ID_TOKEN_ALG
    now = int(time.time())
    jti = secrets.token_urlsafe(18)
    claims: dict[str, Any] = {
        "iss": issuer(),
        "aud": client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_LIFETIME_SECONDS,
        "jti": jti,
        "sub": subject,
        "sid": sid,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    key = signing_key(alg)
    header = {"alg": alg, "kid": key.kid, "typ": LOGOUT_TOKEN_TYPE}
    return jwt.encode(header, claims, key, algorithms=[alg]), jti


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
        "id_token_signing_alg_values_supported": CLIENT_SIGNING_ALGS,
        "userinfo_signing_alg_values_supported": CLIENT_SIGNING_ALGS,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": ["private_key_jwt"],
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims_supported(),
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": True,
        "acr_values_supported": ACR_VALUES,
        # Logout tokens and front-channel logout URLs can always carry the session's sid.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
        "prompt_values_supported": ["none", "login", "consent"],
        "request_parameter_supported": False,
        "ui_locales_supported": ["vi", "en"],
    }
