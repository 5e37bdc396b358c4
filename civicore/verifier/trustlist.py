"""The signed trust list: which agencies (`iss`) may issue credentials, with which keys, and when
each key was valid or became compromised. It is a compact JWS (`typ: trust-list+jwt`) signed by
an anchor key the verifier was configured with; keys are parsed once, when the list is loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import BadSignature, MalformedError, TrustListError
from .jose import (
    PublicKey,
    check_alg,
    jwk_thumbprint,
    load_public_jwk,
    sign_compact,
    split_compact,
    verify_signature,
)

TRUST_LIST_TYP = "trust-list+jwt"
# A trust list dated this far ahead of the verifier's clock is refused as not yet valid.
CLOCK_SKEW = 300


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require_int(value: Any, what: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if not _is_int(value):
        raise TrustListError(f"{what} must be an integer (seconds since the epoch)", code="malformed")
    return int(value)


@dataclass(frozen=True)
class TrustedKey:
    """One key of an agency. `not_before`/`not_after` bound the time the key may sign (checked
    against the credential's `iat`); from `compromised_since` on, its signatures are refused."""

    kid: str
    jwk: dict[str, Any]
    not_before: int
    not_after: int | None = None
    compromised_since: int | None = None
    public_key: PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not self.kid:
            raise TrustListError("a key needs a non-empty string kid", code="malformed")
        _require_int(self.not_before, "not_before")
        _require_int(self.not_after, "not_after", optional=True)
        _require_int(self.compromised_since, "compromised_since", optional=True)
        try:
            public_key = load_public_jwk(self.jwk)
        except MalformedError as exc:
            raise TrustListError(f"key {self.kid!r}: {exc.message}", code="malformed") from exc
        object.__setattr__(self, "public_key", public_key)

    def problem_at(self, signed_at: int | float) -> tuple[str, str] | None:
        """(status, detail) when a signature made at `signed_at` cannot be accepted, else None."""
        if self.compromised_since is not None and signed_at >= self.compromised_since:
            return "key_compromised", f"key {self.kid} is compromised since {self.compromised_since}"
        if signed_at < self.not_before or (self.not_after is not None and signed_at > self.not_after):
            return "key_not_valid", f"key {self.kid} was not valid at {int(signed_at)}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "jwk": dict(self.jwk),
            "not_before": self.not_before,
            "not_after": self.not_after,
            "compromised_since": self.compromised_since,
        }


@dataclass(frozen=True)
class Issuer:
    iss: str
    name: dict[str, str]
    keys: dict[str, TrustedKey]

    def to_dict(self) -> dict[str, Any]:
        return {"iss": self.iss, "name": dict(self.name), "keys": [k.to_dict() for k in self.keys.values()]}


@dataclass(frozen=True)
class TrustList:
    issuers: dict[str, Issuer]
    issued_at: int
    expires_at: int

    def key(self, iss: str, kid: str) -> TrustedKey | None:
        issuer = self.issuers.get(iss)
        return issuer.keys.get(kid) if issuer is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "issuers": [issuer.to_dict() for issuer in self.issuers.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrustList:
        if not isinstance(data, dict):
            raise TrustListError("a cached trust list must be an object", code="malformed")
        issued_at = _require_int(data.get("issued_at"), "issued_at")
        expires_at = _require_int(data.get("expires_at"), "expires_at")
        assert issued_at is not None and expires_at is not None
        return cls(issuers=parse_issuers(data.get("issuers")), issued_at=issued_at, expires_at=expires_at)


def _parse_key(data: Any) -> TrustedKey:
    if not isinstance(data, dict):
        raise TrustListError("a key entry must be an object", code="malformed")
    not_before = _require_int(data.get("not_before"), "not_before")
    assert not_before is not None
    return TrustedKey(
        kid=data.get("kid"),  # type: ignore[arg-type]  # checked in __post_init__
        jwk=data.get("jwk"),  # type: ignore[arg-type]
        not_before=not_before,
        not_after=_require_int(data.get("not_after"), "not_after", optional=True),
        compromised_since=_require_int(data.get("compromised_since"), "compromised_since", optional=True),
    )


def parse_issuers(entries: Any) -> dict[str, Issuer]:
    """Issuers from their JSON-friendly form, validated: TrustListError(code="malformed")."""
    if not isinstance(entries, list):
        raise TrustListError("issuers must be a list", code="malformed")
    issuers: dict[str, Issuer] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise TrustListError("an issuer entry must be an object", code="malformed")
        iss, name, keys = entry.get("iss"), entry.get("name"), entry.get("keys")
        if not isinstance(iss, str) or not iss:
            raise TrustListError("an issuer needs a non-empty string iss", code="malformed")
        if iss in issuers:
            raise TrustListError(f"issuer {iss!r} is listed twice", code="malformed")
        if not isinstance(name, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in name.items()
        ):
            raise TrustListError(f"issuer {iss!r}: name must map languages to strings", code="malformed")
        if not isinstance(keys, list):
            raise TrustListError(f"issuer {iss!r}: keys must be a list", code="malformed")
        parsed: dict[str, TrustedKey] = {}
        for key_entry in keys:
            key = _parse_key(key_entry)
            if key.kid in parsed:
                raise TrustListError(f"issuer {iss!r}: kid {key.kid!r} is listed twice", code="malformed")
            parsed[key.kid] = key
        issuers[iss] = Issuer(iss=iss, name=dict(name), keys=parsed)
    return issuers


def sign_trust_list(
    issuers: list[dict[str, Any]], *, key: Any, kid: str, iss: str, iat: int, exp: int
) -> str:
    """Sign the trust list (compact JWS, typ trust-list+jwt) with an anchor's private key."""
    normalised = [issuer.to_dict() for issuer in parse_issuers(issuers).values()]
    payload = {"iss": iss, "iat": iat, "exp": exp, "issuers": normalised}
    return sign_compact({"typ": TRUST_LIST_TYP, "kid": kid}, payload, key)


def _anchor_ids(anchor: Any) -> set[str]:
    """The names an anchor answers to: its `kid` and its RFC 7638 thumbprint. A JWKS may hold
    keys of other types (RSA...): they simply match nothing here."""
    if not isinstance(anchor, dict):
        return set()
    ids = {anchor["kid"]} if isinstance(anchor.get("kid"), str) else set()
    try:
        ids.add(jwk_thumbprint(anchor))
    except MalformedError:
        pass
    return ids


def load_trust_list(token: str, *, anchors: list[dict[str, Any]], now: int) -> TrustList:
    """Verify a signed trust list against the configured anchor JWKs and parse it.

    Raises TrustListError with code malformed, unknown_anchor, bad_signature, expired or
    not_yet_valid."""
    try:
        header, payload, signing_input, signature = split_compact(token)
    except MalformedError as exc:
        raise TrustListError(f"the trust list is not a compact JWS: {exc.message}", code="malformed") from exc
    if header.get("typ") != TRUST_LIST_TYP:
        raise TrustListError(f"typ must be {TRUST_LIST_TYP}", code="malformed")
    kid = header.get("kid")
    anchor_key = None
    for anchor in anchors:
        try:
            if kid in _anchor_ids(anchor):
                anchor_key = load_public_jwk(anchor)
                break
        except MalformedError as exc:
            raise TrustListError(
                f"an anchor is not a usable public JWK: {exc.message}", code="malformed"
            ) from exc
    if anchor_key is None:
        raise TrustListError(f"no anchor with kid {kid!r}", code="unknown_anchor")
    try:
        check_alg(header, anchor_key)
        verify_signature(anchor_key, signing_input, signature)
    except BadSignature as exc:
        raise TrustListError(
            f"the trust list signature is invalid: {exc.message}", code="bad_signature"
        ) from exc
    iat = _require_int(payload.get("iat"), "iat")
    exp = _require_int(payload.get("exp"), "exp")
    assert iat is not None and exp is not None
    if now >= exp:
        raise TrustListError(f"the trust list expired at {exp}", code="expired")
    if iat > now + CLOCK_SKEW:
        raise TrustListError(f"the trust list is dated in the future ({iat})", code="not_yet_valid")
    return TrustList(issuers=parse_issuers(payload.get("issuers")), issued_at=iat, expires_at=exp)
