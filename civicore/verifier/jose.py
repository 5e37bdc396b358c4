"""The small part of JOSE the verifier needs: strict base64url, JWKs for EC P-256 and Ed25519,
RFC 7638 thumbprints and compact JWS (ES256 with raw r||s signatures, EdDSA).

Parsing is strict on purpose: one canonical encoding per value, no duplicate JSON members, no
NaN/Infinity, no `crit` extensions, and the algorithm must fit the key (never "none")."""

from __future__ import annotations

import binascii
import hashlib
import json
import math
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .errors import BadSignature, MalformedError

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_PAD = (b"", b"", b"==", b"=")
# Members a public JWK must never carry (RFC 7518 section 6): private key material.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_ECDSA = ec.ECDSA(hashes.SHA256())
_P256 = ec.SECP256R1()
# "Ed25519" is the fully-specified name (RFC 9864) of what "EdDSA" means for these keys.
ALGS_FOR_ED25519 = frozenset({"EdDSA", "Ed25519"})


def b64url_encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url; anything else (padding, '+', '/', whitespace, non-zero spare
    bits, impossible lengths) is a MalformedError, so every byte string has one encoding."""
    if not isinstance(text, str):
        raise MalformedError("base64url input must be text", code="bad_base64url")
    rest = len(text) % 4
    try:
        data = text.encode("ascii")
        if rest == 1 or b"+" in data or b"/" in data or b"=" in data:
            raise ValueError
        decoded = binascii.a2b_base64(data.translate(_TO_STANDARD) + _PAD[rest], strict_mode=True)
    except ValueError as exc:  # UnicodeEncodeError and binascii.Error are ValueErrors
        raise MalformedError("not base64url (urlsafe alphabet, no padding)", code="bad_base64url") from exc
    if rest and _VALUE[text[-1]] & (0x0F if rest == 2 else 0x03):
        raise MalformedError("non-canonical base64url (spare bits set)", code="bad_base64url")
    return decoded


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedError("duplicate member in a JSON object", code="duplicate_member")
    return obj


def _no_constant(name: str) -> Any:
    raise MalformedError(f"{name} is not JSON", code="bad_json")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedError("number out of range", code="bad_json")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_members, parse_constant=_no_constant, parse_float=_finite_float
)


def json_loads(data: bytes | str) -> Any:
    """Strict JSON: UTF-8 only, unique members, finite numbers; MalformedError on anything else
    (including nesting too deep for the parser and integers too long to convert)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        value, end = _DECODER.raw_decode(text)
        if end != len(text) and text[end:].strip(" \t\n\r"):
            raise MalformedError("trailing data after JSON", code="bad_json")
        return value
    except MalformedError:
        raise
    except (ValueError, RecursionError, TypeError) as exc:
        raise MalformedError(f"invalid JSON: {type(exc).__name__}", code="bad_json") from exc


def json_loads_each(texts: list[str]) -> list[Any] | None:
    """Strict JSON values of several texts, parsed in one pass over the texts joined by commas;
    each value must span exactly its own text. None when any text is not a lone JSON value (the
    caller then parses them one by one, to report which)."""
    joined = ",".join(texts)
    scan = _DECODER.scan_once  # type: ignore[attr-defined]  # the C scanner json uses itself
    values = []
    position = 0
    try:
        for text in texts:
            value, end = scan(joined, position)
            position += len(text)
            if end != position:
                return None
            values.append(value)
            position += 1
    except (MalformedError, ValueError, RecursionError, StopIteration):
        return None
    return values


def json_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def decode_segment_json(segment: str) -> dict[str, Any]:
    value = json_loads(b64url_decode(segment))
    if not isinstance(value, dict):
        raise MalformedError("a JOSE header or payload must be a JSON object", code="bad_json")
    return value


def _int_to_b64(value: int) -> str:
    return b64url_encode(value.to_bytes(32, "big"))


def public_jwk(key: Any) -> dict[str, str]:
    """The public JWK of an EC P-256 or Ed25519 key (public or private): public members only."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        key = key.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise MalformedError("only the P-256 curve is supported", code="unsupported_key")
        numbers = key.public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": _int_to_b64(numbers.x), "y": _int_to_b64(numbers.y)}
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    raise MalformedError("only EC P-256 and Ed25519 keys are supported", code="unsupported_key")


def _coordinate(jwk: dict[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise MalformedError(f"JWK member {name!r} missing or not a string", code="bad_jwk")
    raw = b64url_decode(value)
    if len(raw) != 32:
        raise MalformedError(f"JWK member {name!r} must be 32 bytes", code="bad_jwk")
    return raw


def load_public_jwk(jwk: dict[str, Any]) -> PublicKey:
    """A public key from a JWK: EC P-256 or OKP Ed25519, public members only."""
    if not isinstance(jwk, dict):
        raise MalformedError("a JWK must be a JSON object", code="bad_jwk")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise MalformedError("the JWK carries private key material", code="private_jwk")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    try:
        if kty == "EC" and crv == "P-256":
            point = b"\x04" + _coordinate(jwk, "x") + _coordinate(jwk, "y")
            return ec.EllipticCurvePublicKey.from_encoded_point(_P256, point)
        if kty == "OKP" and crv == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(_coordinate(jwk, "x"))
    except ValueError as exc:  # not a point on the curve
        raise MalformedError("the JWK is not a valid public key", code="bad_jwk") from exc
    raise MalformedError("only EC P-256 and OKP Ed25519 JWKs are supported", code="unsupported_key")


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of a public EC or OKP JWK."""
    if not isinstance(jwk, dict):
        raise MalformedError("a JWK must be a JSON object", code="bad_jwk")
    kty = jwk.get("kty")
    names = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}.get(kty)  # type: ignore[arg-type]
    if names is None:
        raise MalformedError("only EC and OKP JWKs are supported", code="unsupported_key")
    members = {}
    for name in names:
        if not isinstance(jwk.get(name), str):
            raise MalformedError(f"JWK member {name!r} missing or not a string", code="bad_jwk")
        members[name] = jwk[name]
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def alg_for_key(key: Any) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ES256"
    elif isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise MalformedError("only EC P-256 and Ed25519 keys are supported", code="unsupported_key")


def alg_fits_key(alg: Any, public_key: PublicKey) -> bool:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return alg == "ES256"
    return alg in ALGS_FOR_ED25519


def sign_compact(header: dict[str, Any], payload: dict[str, Any], private_key: Any) -> str:
    """A compact JWS over `payload`; `alg` in the header is set from the key."""
    if not isinstance(private_key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise MalformedError("signing needs an EC P-256 or Ed25519 private key", code="unsupported_key")
    alg = alg_for_key(private_key)
    signing_input = (
        b64url_encode(json_dumps({**header, "alg": alg})) + "." + b64url_encode(json_dumps(payload))
    )
    data = signing_input.encode("ascii")
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(private_key.sign(data, _ECDSA))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = private_key.sign(data)
    return signing_input + "." + b64url_encode(signature)


def verify_signature(public_key: PublicKey, signing_input: bytes, signature: bytes) -> None:
    """Raise BadSignature unless `signature` (raw r||s for ES256) is valid for the input."""
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise BadSignature("an ES256 signature is 64 bytes", code="bad_signature")
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            public_key.verify(der, signing_input, _ECDSA)
        else:
            public_key.verify(signature, signing_input)
    except InvalidSignature as exc:
        raise BadSignature("the signature does not verify", code="bad_signature") from exc


def split_compact(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, payload, signing input, signature) of a compact JWS, not yet verified."""
    if not isinstance(token, str):
        raise MalformedError("a compact JWS is a string", code="malformed")
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedError("a compact JWS has three parts", code="malformed")
    header = decode_segment_json(parts[0])
    payload = decode_segment_json(parts[1])
    signature = b64url_decode(parts[2])
    if "crit" in header:
        raise MalformedError("critical header extensions are not supported", code="unsupported_crit")
    try:
        signing_input = (parts[0] + "." + parts[1]).encode("ascii")
    except UnicodeEncodeError as exc:  # pragma: no cover - base64url checked above
        raise MalformedError("not ASCII", code="malformed") from exc
    return header, payload, signing_input, signature


def check_alg(header: dict[str, Any], public_key: PublicKey) -> None:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise BadSignature("unsigned tokens (alg none) are refused", code="alg_not_allowed")
    if not alg_fits_key(alg, public_key):
        raise BadSignature(f"alg {alg!r} does not fit the key", code="alg_mismatch")


def verify_compact(token: str, public_key: PublicKey) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a compact JWS with `public_key`; returns (header, payload)."""
    header, payload, signing_input, signature = split_compact(token)
    check_alg(header, public_key)
    verify_signature(public_key, signing_input, signature)
    return header, payload
