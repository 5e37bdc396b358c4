"""Signing and checking Civicore's change webhooks (Standard Webhooks, asymmetric "v1a").

Civicore signs `"{webhook-id}.{webhook-timestamp}.{body}"` with its Ed25519 platform key and sends
`webhook-signature: v1a,<base64 signature>` plus `webhook-key-id: <kid>`; the public key is in
Civicore's JWKS (/.well-known/jwks.json). An agency checks a delivery with `verify()`: this module
needs only the standard library and `cryptography`, so an agency may copy it as it is:

    payload = verify(headers=request.headers, body=request.body, jwks=cached_jwks)

`webhook-id` is the idempotency key: the same on every retry of one event to one agency, so a
receiver that has seen it already should answer 2xx and do nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
HEADER_KEY_ID = "webhook-key-id"
VERSION = "v1a"
# How far a delivery's timestamp may be from the receiver's clock (replay protection).
DEFAULT_TOLERANCE_SECONDS = 300


class WebhookVerificationError(Exception):
    """The delivery is not a genuine, current Civicore webhook. `code` says why."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(*, private_key: Ed25519PrivateKey, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one delivery attempt."""
    signature = private_key.sign(signed_content(msg_id, timestamp, body))
    return f"{VERSION},{base64.b64encode(signature).decode()}"


def sign_headers(
    *, private_key: Ed25519PrivateKey, key_id: str, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(private_key=private_key, msg_id=msg_id, timestamp=timestamp, body=body),
        HEADER_KEY_ID: key_id,
    }


@lru_cache(maxsize=64)
def _public_key(x: str) -> Ed25519PublicKey:
    raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    return Ed25519PublicKey.from_public_bytes(raw)


def _candidate_keys(
    jwks: Mapping[str, Any] | Iterable[Mapping[str, Any]], kid: str
) -> list[Ed25519PublicKey]:
    entries = jwks.get("keys", []) if isinstance(jwks, Mapping) else list(jwks)
    keys = []
    for entry in entries:
        if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519" or not entry.get("x"):
            continue
        if kid and entry.get("kid") != kid:
            continue
        try:
            keys.append(_public_key(entry["x"]))
        except (ValueError, binascii.Error):
            continue
    return keys


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # a plain dict is case-sensitive; HTTP header names are not
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return (value or "").strip()


def verify(
    *,
    headers: Mapping[str, str],
    body: bytes,
    jwks: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery's signature and timestamp against Civicore's JWKS; return its JSON body.

    Raises WebhookVerificationError (code missing_headers, stale_timestamp, unknown_key,
    invalid_signature, invalid_body). An unknown key id means the JWKS should be fetched again.
    """
    msg_id = _header(headers, HEADER_ID)
    timestamp = _header(headers, HEADER_TIMESTAMP)
    signatures = _header(headers, HEADER_SIGNATURE)
    kid = _header(headers, HEADER_KEY_ID)
    if not msg_id or not timestamp or not signatures:
        raise WebhookVerificationError(
            "webhook-id, webhook-timestamp and webhook-signature are required", "missing_headers"
        )
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise WebhookVerificationError("webhook-timestamp is not a number", "missing_headers") from exc
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        raise WebhookVerificationError("webhook-timestamp is too old or in the future", "stale_timestamp")
    keys = _candidate_keys(jwks, kid)
    if not keys:
        raise WebhookVerificationError("no Ed25519 key with this id in the JWKS", "unknown_key")
    content = signed_content(msg_id, sent_at, body)
    for token in signatures.split():
        version, _, encoded = token.partition(",")
        if version != VERSION:
            continue
        try:
            signature = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            continue
        for key in keys:
            try:
                key.verify(signature, content)
            except InvalidSignature:
                continue
            try:
                payload = json.loads(body)
            except ValueError as exc:
                raise WebhookVerificationError("the body is not JSON", "invalid_body") from exc
            if not isinstance(payload, dict):
                raise WebhookVerificationError("the body is not a JSON object", "invalid_body")
            return payload
    raise WebhookVerificationError("no signature verifies with Civicore's keys", "invalid_signature")
