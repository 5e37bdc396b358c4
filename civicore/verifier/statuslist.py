"""IETF Token Status List (draft-ietf-oauth-status-list): a compressed bit array with one status
per issued credential, and the signed status list token (`typ: statuslist+jwt`) that carries it.
Statuses are packed least significant bit first within each byte; decoding refuses zip bombs."""

from __future__ import annotations

import zlib
from typing import Any

from .errors import BadSignature, MalformedError, StatusListError
from .jose import b64url_decode, b64url_encode, check_alg, sign_compact, split_compact, verify_signature
from .trustlist import TrustList

VALID = 0
INVALID = 1
SUSPENDED = 2

STATUS_LIST_TYP = "statuslist+jwt"
MAX_BYTES = 16 * 1024 * 1024
_BITS = (1, 2, 4, 8)
# A status list token dated this far ahead of the verifier's clock is refused.
CLOCK_SKEW = 300


class StatusList:
    """`size` statuses of `bits` bits each, all VALID at first."""

    __slots__ = ("bits", "size", "_data", "_mask", "_per_byte")

    def __init__(self, bits: int = 2, *, size: int) -> None:
        if isinstance(bits, bool) or bits not in _BITS:
            raise StatusListError("bits must be 1, 2, 4 or 8", code="malformed")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise StatusListError("size must be a positive integer", code="malformed")
        self.bits = bits
        self._per_byte = 8 // bits
        self._mask = (1 << bits) - 1
        self.size = size
        self._data = bytearray(-(-size // self._per_byte))

    @classmethod
    def from_bytes(cls, data: bytes, *, bits: int) -> StatusList:
        """A list over already packed bytes: its size is every slot the bytes hold."""
        if not data:
            raise StatusListError("an empty status list", code="malformed")
        status_list = cls(bits, size=len(data) * (8 // bits) if bits in _BITS else 1)
        status_list._data[:] = data
        return status_list

    def _position(self, idx: int) -> tuple[int, int]:
        if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < self.size:
            raise StatusListError(
                f"index {idx!r} is outside the list (size {self.size})", code="out_of_range"
            )
        return idx // self._per_byte, (idx % self._per_byte) * self.bits

    def get(self, idx: int) -> int:
        byte, shift = self._position(idx)
        return (self._data[byte] >> shift) & self._mask

    def set(self, idx: int, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= self._mask:
            raise StatusListError(f"a {self.bits}-bit status cannot hold {value!r}", code="out_of_range")
        byte, shift = self._position(idx)
        self._data[byte] = (self._data[byte] & ~(self._mask << shift) & 0xFF) | (value << shift)

    def to_bytes(self) -> bytes:
        return bytes(self._data)

    def encode(self) -> dict[str, Any]:
        """{"bits", "lst"}: the packed bytes, ZLIB (DEFLATE) compressed, base64url."""
        return {"bits": self.bits, "lst": b64url_encode(zlib.compress(bytes(self._data), 9))}

    @classmethod
    def decode(cls, obj: Any, *, max_bytes: int = MAX_BYTES) -> StatusList:
        """Parse {"bits", "lst"}; refuses more than `max_bytes` of decompressed data."""
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise StatusListError("max_bytes must be a positive integer", code="malformed")
        if not isinstance(obj, dict):
            raise StatusListError("a status list must be an object", code="malformed")
        bits: Any = obj.get("bits")
        lst: Any = obj.get("lst")
        if isinstance(bits, bool) or bits not in _BITS:
            raise StatusListError("bits must be 1, 2, 4 or 8", code="malformed")
        try:
            compressed = b64url_decode(lst)
        except MalformedError as exc:
            raise StatusListError("lst is not base64url", code="malformed") from exc
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(compressed, max_bytes)
        except zlib.error as exc:
            raise StatusListError("lst is not ZLIB data", code="malformed") from exc
        if inflater.unconsumed_tail:
            raise StatusListError(
                f"the status list inflates to more than {max_bytes} bytes", code="too_large"
            )
        if not inflater.eof or inflater.unused_data:
            raise StatusListError("lst is truncated or has trailing data", code="malformed")
        return cls.from_bytes(data, bits=bits)


def sign_status_list_token(
    status_list: StatusList,
    *,
    uri: str,
    iss: str,
    key: Any,
    kid: str,
    iat: int,
    exp: int | None = None,
    ttl: int | None = None,
) -> str:
    """Sign a status list token (typ statuslist+jwt): `sub` is the list's URI, `ttl` how long a
    relying party may cache it."""
    payload: dict[str, Any] = {"iss": iss, "sub": uri, "iat": iat}
    if exp is not None:
        payload["exp"] = exp
    if ttl is not None:
        payload["ttl"] = ttl
    payload["status_list"] = status_list.encode()
    return sign_compact({"typ": STATUS_LIST_TYP, "kid": kid}, payload, key)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_status_list_token(
    token: str, *, trust: TrustList, uri: str, now: int, iss: str | None = None
) -> StatusList:
    """Verify a status list token (signed by a trusted key of its `iss`, `sub` equal to `uri`,
    not expired) and return its list. Pass `iss` to insist on the issuer the credentials name.

    Raises StatusListError with code malformed, wrong_typ, unknown_issuer, bad_signature,
    key_not_valid, key_compromised, wrong_subject, wrong_issuer, expired or not_yet_valid."""
    try:
        header, payload, signing_input, signature = split_compact(token)
    except MalformedError as exc:
        raise StatusListError(f"not a compact JWS: {exc.message}", code="malformed") from exc
    if header.get("typ") != STATUS_LIST_TYP:
        raise StatusListError(f"typ must be {STATUS_LIST_TYP}", code="wrong_typ")
    token_iss, kid = payload.get("iss"), header.get("kid")
    if not isinstance(token_iss, str) or not isinstance(kid, str):
        raise StatusListError("iss and kid must be strings", code="malformed")
    if iss is not None and token_iss != iss:
        raise StatusListError(f"signed by {token_iss!r}, expected {iss!r}", code="wrong_issuer")
    trusted = trust.key(token_iss, kid)
    if trusted is None:
        raise StatusListError(f"no trusted key {kid!r} for {token_iss!r}", code="unknown_issuer")
    try:
        check_alg(header, trusted.public_key)
        verify_signature(trusted.public_key, signing_input, signature)
    except BadSignature as exc:
        raise StatusListError(exc.message, code="bad_signature") from exc
    iat: Any = payload.get("iat")
    exp: Any = payload.get("exp")
    if not _is_int(iat) or (exp is not None and not _is_int(exp)):
        raise StatusListError("iat (and exp when present) must be integers", code="malformed")
    problem = trusted.problem_at(iat)
    if problem is not None:
        raise StatusListError(problem[1], code=problem[0])
    if payload.get("sub") != uri:
        raise StatusListError(f"the token is for {payload.get('sub')!r}, not {uri!r}", code="wrong_subject")
    if exp is not None and now >= exp:
        raise StatusListError(f"the status list token expired at {exp}", code="expired")
    if iat > now + CLOCK_SKEW:
        raise StatusListError("the status list token is dated in the future", code="not_yet_valid")
    return StatusList.decode(payload.get("status_list"))
