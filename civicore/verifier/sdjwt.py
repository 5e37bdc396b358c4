"""SD-JWT VC (RFC 9901, draft-ietf-oauth-sd-jwt-vc): issue a credential whose every claim is
selectively disclosable, let the holder present a chosen subset with a key-binding JWT, and
verify a presentation offline against a TrustList. `verify()` never raises and never fetches."""

from __future__ import annotations

import binascii
import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import BadSignature, MalformedError, VerifierError
from .jose import (
    b64url_encode,
    check_alg,
    json_dumps,
    json_loads,
    json_loads_each,
    load_public_jwk,
    sign_compact,
    split_compact,
    verify_signature,
)
from .statuslist import INVALID, SUSPENDED, VALID
from .trustlist import TrustList

SD_JWT_TYP = "dc+sd-jwt"
# "vc+sd-jwt" is what earlier drafts of SD-JWT VC called the same media type.
ACCEPTED_TYPS = frozenset({SD_JWT_TYP, "vc+sd-jwt"})
KB_JWT_TYP = "kb+jwt"
SD_ALG = "sha-256"
# Larger inputs are refused before any parsing (a credential with a photo stays well below).
MAX_TOKEN_LENGTH = 2 * 1024 * 1024
MAX_DEPTH = 32
# A key-binding JWT without `exp` is accepted for this long after its `iat`.
KB_MAX_AGE = 300
# Claims that stay plain in the issuer-signed JWT; a disclosure must never define them.
REGISTERED = frozenset({"iss", "vct", "vct#integrity", "iat", "exp", "nbf", "cnf", "status", "_sd_alg"})
_NEVER_NAMES = frozenset({"_sd", "..."})

StatusLookup = Callable[[str, int], int | None]

STATUSES = (
    "valid",
    "malformed",
    "tampered",
    "unknown_issuer",
    "key_not_valid",
    "key_compromised",
    "expired",
    "not_yet_valid",
    "revoked",
    "suspended",
    "status_unknown",
    "disclosure_mismatch",
    "key_binding_missing",
    "key_binding_invalid",
    "wrong_audience",
    "wrong_nonce",
    "presentation_expired",
)


@dataclass(frozen=True)
class Verdict:
    """The outcome of verify(). `ok` only when status is "valid". Issuer fields are filled once
    the signature verified; `claims` once the disclosures matched (even if later checks fail)."""

    status: str
    ok: bool
    code: str
    detail: str
    issuer: str | None = None
    issuer_name: dict[str, str] | None = None
    kid: str | None = None
    vct: str | None = None
    issued_at: int | None = None
    expires_at: int | None = None
    claims: dict[str, Any] = field(default_factory=dict)
    key_binding: bool = False
    audience: str | None = None
    status_ref: dict[str, Any] | None = None


@dataclass(frozen=True)
class Disclosure:
    """One disclosure: `path` is the claim path from the root, `value` the disclosed value as
    the disclosure carries it (a nested object still holds its own `_sd` digests)."""

    path: tuple[str, ...]
    name: str | None
    value: Any
    encoded: str
    digest: str


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_PAD = (b"", b"===", b"==", b"=")


def _digest(encoded: str) -> str:
    """base64url(SHA-256(ASCII text)): the 43 characters RFC 9901 puts in `_sd` and `sd_hash`."""
    digest = hashlib.sha256(encoded.encode("ascii")).digest()
    return binascii.b2a_base64(digest, newline=False)[:43].translate(_TO_URLSAFE).decode("ascii")


def _default_salt() -> str:
    return b64url_encode(secrets.token_bytes(16))


def _decoy() -> str:
    return b64url_encode(hashlib.sha256(secrets.token_bytes(32)).digest())


def _check_claim_names(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise MalformedError("claims are nested too deeply", code="too_deep")
    if isinstance(value, dict):
        for name, inner in value.items():
            if not isinstance(name, str) or name in _NEVER_NAMES:
                raise MalformedError(f"claim name {name!r} is not allowed", code="bad_claim_name")
            _check_claim_names(inner, depth + 1)
    elif isinstance(value, list):
        for inner in value:
            _check_claim_names(inner, depth + 1)


def issue(
    claims: dict[str, Any],
    *,
    issuer: str,
    vct: str,
    key: Any,
    kid: str,
    iat: int,
    exp: int | None = None,
    holder_jwk: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    decoys: int = 2,
    salt: Callable[[], str] | None = None,
) -> str:
    """Issue an SD-JWT VC: `<jwt>~<disclosure>~...~`, every claim selectively disclosable
    (recursively inside objects; an array is one claim). `status` is {"idx": n, "uri": ...}."""
    if not isinstance(claims, dict):
        raise MalformedError("claims must be an object", code="bad_claims")
    _check_claim_names(claims)
    reserved = REGISTERED.intersection(claims)
    if reserved:
        raise MalformedError(f"claims may not define {sorted(reserved)}", code="reserved_claim")
    if decoys < 0:
        raise MalformedError("decoys must not be negative", code="bad_claims")
    if holder_jwk is not None:
        load_public_jwk(holder_jwk)
    make_salt = salt or _default_salt
    encoded: list[str] = []

    def conceal(obj: dict[str, Any]) -> dict[str, Any]:
        digests = []
        for name, value in obj.items():
            disclosed = conceal(value) if isinstance(value, dict) else value
            disclosure = b64url_encode(json_dumps([make_salt(), name, disclosed]))
            encoded.append(disclosure)
            digests.append(_digest(disclosure))
        digests.extend(_decoy() for _ in range(decoys))
        return {"_sd": sorted(digests)} if digests else {}

    payload: dict[str, Any] = {"iss": issuer, "iat": iat}
    if exp is not None:
        payload["exp"] = exp
    payload["vct"] = vct
    if status is not None:
        payload["status"] = {"status_list": _status_reference({"status_list": status})}
    if holder_jwk is not None:
        payload["cnf"] = {"jwk": dict(holder_jwk)}
    payload.update(conceal(claims))
    payload["_sd_alg"] = SD_ALG
    jwt = sign_compact({"typ": SD_JWT_TYP, "kid": kid}, payload, key)
    return "~".join([jwt, *encoded, ""])


def _split_presentation(token: str) -> tuple[str, list[str], str]:
    if not isinstance(token, str):
        raise MalformedError("an SD-JWT is a string", code="malformed")
    if not token.isascii():
        raise MalformedError("an SD-JWT is ASCII text", code="not_ascii")
    parts = token.split("~")
    if len(parts) < 2:
        raise MalformedError("an SD-JWT ends with '~' (no separator found)", code="malformed")
    return parts[0], parts[1:-1], parts[-1]


def _disclosure_text(encoded: str) -> str:
    # No canonical-encoding check here: the text itself is matched against a signed digest.
    try:
        raw = binascii.a2b_base64(encoded.encode("ascii").translate(_TO_STANDARD) + _PAD[len(encoded) % 4])
        return raw.decode("utf-8")
    except (ValueError, IndexError) as exc:
        raise MalformedError("a disclosure is not base64url-encoded UTF-8", code="bad_disclosure") from exc


def _checked_disclosure(value: Any) -> list[Any]:
    if type(value) is not list or len(value) not in (2, 3) or type(value[0]) is not str:
        raise MalformedError("a disclosure is [salt, name, value] or [salt, value]", code="bad_disclosure")
    if len(value) == 3 and (type(value[1]) is not str or value[1] in _NEVER_NAMES):
        raise MalformedError("a disclosure's claim name must be a string", code="bad_disclosure")
    return value


class _Mismatch(VerifierError):
    code = "disclosure_mismatch"


class _Unpacker:
    """Replace digests by the disclosed claims (RFC 9901 section 7.1, steps 3-5): every digest
    may appear once and every disclosure must be used. With `record`, each disclosure is kept
    with its claim path (array elements are named by their position)."""

    def __init__(self, disclosures: list[str], *, record: bool = False) -> None:
        # This loop runs for every disclosure of every verification: kept free of calls.
        by_digest: dict[str, str] = {}
        texts: list[str] | None = []
        sha256, b2a, a2b = hashlib.sha256, binascii.b2a_base64, binascii.a2b_base64
        for encoded in disclosures:
            if not encoded:
                raise MalformedError("an empty disclosure", code="bad_disclosure")
            data = encoded.encode("ascii")
            digest = b2a(sha256(data).digest(), newline=False)[:43].translate(_TO_URLSAFE).decode("ascii")
            if digest in by_digest:
                raise _Mismatch("the same disclosure is present twice", code="duplicate_disclosure")
            by_digest[digest] = encoded
            if texts is not None:
                try:
                    texts.append(a2b(data.translate(_TO_STANDARD) + _PAD[len(data) % 4]).decode("utf-8"))
                except ValueError:
                    texts = None
        self.by_digest = by_digest
        # The usual case, every disclosure well-formed, is parsed in one pass; otherwise each
        # referenced disclosure is parsed when it is reached (an unreferenced bad one is then a
        # mismatch, not a parse error).
        self.values: dict[str, Any] = {}
        if texts:
            values = json_loads_each(texts)
            if values is not None:
                self.values = dict(zip(by_digest, values, strict=True))
        self.seen: set[str] = set()
        self.record = record
        self.found: list[Disclosure] = []

    def _take(self, digest: Any) -> list[Any] | None:
        if not isinstance(digest, str):
            raise MalformedError("a digest must be a string", code="bad_digest")
        if digest in self.seen:
            raise _Mismatch("a digest appears more than once", code="duplicate_digest")
        self.seen.add(digest)
        if digest not in self.by_digest:
            return None
        return self._checked(digest)

    def _checked(self, digest: str) -> list[Any]:
        """The disclosure behind a known digest, parsed now if the one-pass parse failed."""
        if digest in self.values:
            return _checked_disclosure(self.values[digest])
        return _checked_disclosure(json_loads(_disclosure_text(self.by_digest[digest])))

    def _found(self, path: tuple[str, ...], disclosure: list[Any], digest: str) -> None:
        name = disclosure[1] if len(disclosure) == 3 else None
        self.found.append(Disclosure(path, name, disclosure[-1], self.by_digest[digest], digest))

    def unpack(self, value: Any, path: tuple[str, ...], depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise MalformedError("the credential is nested too deeply", code="too_deep")
        record = self.record
        if isinstance(value, dict):
            out = {}
            for name, inner in value.items():
                if name != "_sd":
                    # The registered claims (cnf, status...) are read as they are, not unpacked.
                    if isinstance(inner, dict | list) and not (depth == 0 and name in REGISTERED):
                        inner = self.unpack(inner, (*path, name) if record else path, depth + 1)
                    out[name] = inner
            if depth == 0:
                out.pop("_sd_alg", None)
            digests = value.get("_sd")
            if digests is None:
                return out
            if not isinstance(digests, list):
                raise MalformedError("_sd must be an array", code="bad_digest")
            seen, by_digest, values = self.seen, self.by_digest, self.values
            for digest in digests:
                # The common path of _take(), inlined: it runs once per digest.
                if type(digest) is not str:
                    raise MalformedError("a digest must be a string", code="bad_digest")
                if digest in seen:
                    raise _Mismatch("a digest appears more than once", code="duplicate_digest")
                seen.add(digest)
                if digest not in by_digest:
                    continue
                disclosure = values.get(digest)
                if disclosure is None or type(disclosure) is not list or len(disclosure) != 3:
                    disclosure = self._checked(digest)
                    if len(disclosure) != 3:
                        raise _Mismatch(
                            "an array-element disclosure is referenced from an object", code="wrong_kind"
                        )
                name = disclosure[1]
                if type(name) is not str or type(disclosure[0]) is not str or name in _NEVER_NAMES:
                    raise MalformedError(
                        "a disclosure's salt and claim name must be strings", code="bad_disclosure"
                    )
                if depth == 0 and name in REGISTERED:
                    raise _Mismatch(f"a disclosure may not define {name!r}", code="reserved_claim_disclosed")
                if name in out:
                    raise _Mismatch(f"a disclosure redefines {name!r}", code="claim_redefined")
                inner = disclosure[2]
                child = (*path, name) if record else path
                if record:
                    self._found(child, disclosure, digest)
                if isinstance(inner, dict | list):
                    inner = self.unpack(inner, child, depth + 1)
                out[name] = inner
            return out
        if isinstance(value, list):
            items = []
            for position, element in enumerate(value):
                child = (*path, str(position)) if record else path
                if isinstance(element, dict) and len(element) == 1 and "..." in element:
                    disclosure = self._take(element["..."])
                    if disclosure is None:
                        continue
                    if len(disclosure) != 2:
                        raise _Mismatch("an object disclosure is referenced from an array", code="wrong_kind")
                    if record:
                        self._found(child, disclosure, element["..."])
                    element = disclosure[1]
                items.append(
                    self.unpack(element, child, depth + 1) if isinstance(element, dict | list) else element
                )
            return items
        return value

    def check_all_used(self) -> None:
        if len(self.seen.intersection(self.by_digest)) != len(self.by_digest):
            raise _Mismatch("a disclosure is not part of this credential", code="unreferenced_disclosure")


def disclosures(token: str) -> list[Disclosure]:
    """The disclosures of an issued SD-JWT (or presentation), each with its claim path. This is
    a holder-side helper: it does not verify the issuer's signature."""
    jwt, encoded, _ = _split_presentation(token)
    _, payload, _, _ = split_compact(jwt)
    try:
        unpacker = _Unpacker(encoded, record=True)
        unpacker.unpack(payload, (), 0)
        unpacker.check_all_used()
    except _Mismatch as exc:
        raise MalformedError(exc.message, code=exc.code) from exc
    return list(unpacker.found)


def present(
    token: str,
    *,
    keep: Iterable[tuple[str, ...]],
    holder_key: Any = None,
    audience: str | None = None,
    nonce: str | None = None,
    iat: int | None = None,
    exp: int | None = None,
) -> str:
    """Keep the disclosures of the chosen claim paths and of their ancestors (not their
    descendants: keep each nested claim you want shown); sign a KB-JWT with `holder_key`."""
    jwt, _, _ = _split_presentation(token)
    available = disclosures(token)
    wanted = {tuple(path) for path in keep}
    known = {d.path for d in available}
    unknown = wanted - known
    if unknown:
        raise MalformedError(f"no disclosure for {sorted(unknown)}", code="unknown_path")
    chosen = set(wanted)
    for path in wanted:
        chosen.update(path[:end] for end in range(1, len(path)))
    kept = [d.encoded for d in available if d.path in chosen]
    presentation = "~".join([jwt, *kept, ""])
    if holder_key is None:
        return presentation
    if not isinstance(audience, str) or not isinstance(nonce, str):
        raise MalformedError("a key-binding JWT needs an audience and a nonce", code="kb_needs_aud_nonce")
    claims: dict[str, Any] = {
        "iat": int(time.time()) if iat is None else iat,
        "aud": audience,
        "nonce": nonce,
        "sd_hash": _digest(presentation),
    }
    if exp is not None:
        claims["exp"] = exp
    return presentation + sign_compact({"typ": KB_JWT_TYP}, claims, holder_key)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Fail(Exception):
    def __init__(self, status: str, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.code = status, detail, code or status


def verify(
    token: str | bytes,
    *,
    trust: TrustList,
    now: int,
    audience: str | None = None,
    nonce: str | None = None,
    statuses: StatusLookup | None = None,
    require_key_binding: bool = False,
    leeway: int = 60,
) -> Verdict:
    """Verify an SD-JWT VC presentation. Checks, in order: parse, issuer and key known,
    signature, key validity window and compromise, disclosures, time, key binding, status.

    Passing `audience` or `nonce` demands a key-binding JWT, as `require_key_binding` does.
    Never raises and never fetches: revocation comes from the `statuses` callable."""
    known: dict[str, Any] = {}
    try:
        return _verify(token, trust, now, audience, nonce, statuses, require_key_binding, leeway, known)
    except _Fail as fail:
        return Verdict(status=fail.status, ok=False, code=fail.code, detail=fail.detail, **known)
    except MalformedError as exc:
        return Verdict(status="malformed", ok=False, code=exc.code, detail=exc.message, **known)
    except Exception as exc:  # noqa: BLE001 - the contract is a Verdict for any input whatsoever
        return Verdict(
            status="malformed", ok=False, code="unprocessable", detail=f"{type(exc).__name__}", **known
        )


def _verify(
    token: str | bytes,
    trust: TrustList,
    now: int,
    audience: str | None,
    nonce: str | None,
    statuses: StatusLookup | None,
    require_key_binding: bool,
    leeway: int,
    known: dict[str, Any],
) -> Verdict:
    # 1. Parse.
    if isinstance(token, bytes | bytearray | memoryview):
        if len(token) > MAX_TOKEN_LENGTH:
            raise MalformedError("the token is too large", code="too_large")
        try:
            token = bytes(token).decode("ascii")
        except UnicodeDecodeError as exc:
            raise MalformedError("the token is not ASCII", code="not_ascii") from exc
    if not isinstance(token, str):
        raise MalformedError("the token must be a string", code="malformed")
    if len(token) > MAX_TOKEN_LENGTH:
        raise MalformedError("the token is too large", code="too_large")
    jwt, encoded, kb_jwt = _split_presentation(token)
    header, payload, signing_input, signature = split_compact(jwt)
    if header.get("typ") not in ACCEPTED_TYPS:
        raise MalformedError(f"typ must be {SD_JWT_TYP}", code="wrong_typ")
    iss, kid = payload.get("iss"), header.get("kid")
    if not isinstance(iss, str) or not isinstance(kid, str):
        raise MalformedError("iss and kid must be strings", code="malformed")
    sd_alg = payload.get("_sd_alg", SD_ALG)
    if sd_alg != SD_ALG:
        raise MalformedError(f"_sd_alg {sd_alg!r} is not supported", code="unsupported_sd_alg")

    # 2. Issuer and key known.
    if now >= trust.expires_at:
        raise _Fail("unknown_issuer", "the trust list has expired", "trust_list_expired")
    issuer = trust.issuers.get(iss)
    if issuer is None:
        raise _Fail("unknown_issuer", f"issuer {iss!r} is not on the trust list")
    trusted = issuer.keys.get(kid)
    if trusted is None:
        raise _Fail("unknown_issuer", f"issuer {iss!r} has no key {kid!r}", "unknown_kid")

    # 3. Signature.
    try:
        check_alg(header, trusted.public_key)
        verify_signature(trusted.public_key, signing_input, signature)
    except BadSignature as exc:
        raise _Fail("tampered", exc.message, exc.code if exc.code != "bad_signature" else "tampered") from exc
    iat: Any = payload.get("iat")
    exp: Any = payload.get("exp")
    nbf: Any = payload.get("nbf")
    vct = payload.get("vct")
    if not isinstance(vct, str):
        raise MalformedError("vct must be a string", code="malformed")
    if not _number(iat) or (exp is not None and not _number(exp)) or (nbf is not None and not _number(nbf)):
        raise MalformedError("iat must be a number, and exp and nbf when present", code="bad_time")
    status_ref = _status_reference(payload.get("status"))
    known.update(
        issuer=iss,
        issuer_name=dict(issuer.name),
        kid=kid,
        vct=vct,
        issued_at=int(iat),
        expires_at=int(exp) if exp is not None else None,
        status_ref=status_ref,
    )

    # 4. Key validity window and compromise, at the time the credential says it was signed.
    problem = trusted.problem_at(iat)
    if problem is not None:
        raise _Fail(*problem)

    # 5. Disclosures.
    try:
        unpacker = _Unpacker(encoded)
        processed = unpacker.unpack(payload, (), 0)
        unpacker.check_all_used()
    except _Mismatch as exc:
        raise _Fail("disclosure_mismatch", exc.message, exc.code) from exc
    for name in REGISTERED:
        processed.pop(name, None)
    known["claims"] = processed

    # 6. Time.
    if exp is not None and now >= exp + leeway:
        raise _Fail("expired", f"the credential expired at {int(exp)}")
    if nbf is not None and now + leeway < nbf:
        raise _Fail("not_yet_valid", f"the credential is valid from {int(nbf)}")
    if now + leeway < iat:
        raise _Fail(
            "not_yet_valid", f"the credential is dated in the future ({int(iat)})", "issued_in_future"
        )

    # 7. Key binding.
    if kb_jwt:
        known["audience"] = _check_key_binding(
            kb_jwt, payload.get("cnf"), token[: len(token) - len(kb_jwt)], now, audience, nonce, leeway
        )
        known["key_binding"] = True
    elif require_key_binding or audience is not None or nonce is not None:
        raise _Fail("key_binding_missing", "a key-binding JWT is required")

    # 8. Status.
    if statuses is not None and status_ref is not None:
        try:
            value = statuses(status_ref["uri"], status_ref["idx"])
        except Exception as exc:  # noqa: BLE001 - a failing lookup means the status is unknown
            raise _Fail("status_unknown", f"the status lookup failed: {type(exc).__name__}") from exc
        if value is None:
            raise _Fail("status_unknown", "the status of the credential is unknown")
        if value == INVALID:
            raise _Fail("revoked", "the credential is revoked")
        if value == SUSPENDED:
            raise _Fail("suspended", "the credential is suspended")
        if value != VALID:
            raise _Fail("status_unknown", f"unrecognised status value {value!r}", "unrecognised_status")

    return Verdict(status="valid", ok=True, code="valid", detail="the credential is valid", **known)


def _status_reference(status: Any) -> dict[str, Any] | None:
    if status is None:
        return None
    reference = status.get("status_list") if isinstance(status, dict) else None
    if not isinstance(reference, dict):
        raise MalformedError("status must hold a status_list reference", code="bad_status")
    idx, uri = reference.get("idx"), reference.get("uri")
    if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0 or not isinstance(uri, str) or not uri:
        raise MalformedError("status_list needs a non-negative idx and a uri", code="bad_status")
    return {"idx": idx, "uri": uri}


def _check_key_binding(
    kb_jwt: str,
    cnf: Any,
    presented: str,
    now: int,
    audience: str | None,
    nonce: str | None,
    leeway: int,
) -> str:
    """Verify the KB-JWT (RFC 9901 section 7.3); returns its audience."""
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if jwk is None:
        raise _Fail("key_binding_invalid", "the credential has no holder key (cnf.jwk)", "no_holder_key")
    try:
        holder_key = load_public_jwk(jwk)
        header, claims, signing_input, signature = split_compact(kb_jwt)
    except MalformedError as exc:
        raise _Fail("key_binding_invalid", exc.message, "kb_malformed") from exc
    if header.get("typ") != KB_JWT_TYP:
        raise _Fail("key_binding_invalid", f"the KB-JWT typ must be {KB_JWT_TYP}", "kb_wrong_typ")
    try:
        check_alg(header, holder_key)
        verify_signature(holder_key, signing_input, signature)
    except BadSignature as exc:
        raise _Fail("key_binding_invalid", exc.message, "kb_bad_signature") from exc
    kb_iat: Any = claims.get("iat")
    kb_exp: Any = claims.get("exp")
    kb_aud: Any = claims.get("aud")
    if not _number(kb_iat) or (kb_exp is not None and not _number(kb_exp)) or not isinstance(kb_aud, str):
        raise _Fail("key_binding_invalid", "the KB-JWT needs a numeric iat and a string aud", "kb_malformed")
    if claims.get("sd_hash") != _digest(presented):
        raise _Fail("key_binding_invalid", "sd_hash does not match the presentation", "sd_hash_mismatch")
    if kb_iat > now + leeway:
        raise _Fail("key_binding_invalid", "the KB-JWT is dated in the future", "kb_issued_in_future")
    if kb_exp is not None and now >= kb_exp + leeway:
        raise _Fail("presentation_expired", f"the presentation expired at {int(kb_exp)}")
    if kb_exp is None and now > kb_iat + KB_MAX_AGE + leeway:
        raise _Fail("presentation_expired", f"the presentation is older than {KB_MAX_AGE}s", "kb_too_old")
    if audience is not None and kb_aud != audience:
        raise _Fail("wrong_audience", f"the presentation is for {kb_aud!r}")
    if nonce is not None and claims.get("nonce") != nonce:
        raise _Fail("wrong_nonce", "the nonce does not match")
    if not isinstance(claims.get("nonce"), str):
        raise _Fail("key_binding_invalid", "the KB-JWT has no nonce", "kb_malformed")
    return kb_aud


__all__ = [
    "Disclosure",
    "StatusLookup",
    "Verdict",
    "disclosures",
    "issue",
    "present",
    "verify",
]
