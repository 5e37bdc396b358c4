from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from civicore.core import jose
from civicore.exchange import signing

BODY = json.dumps({"type": "person.changed", "data": {"event_id": "e1"}}).encode()


def _headers(msg_id: str = "msg_1", timestamp: int | None = None, body: bytes = BODY) -> dict[str, str]:
    key = jose.signing_key("EdDSA")
    return signing.sign_headers(
        private_key=key.private_key,  # type: ignore[arg-type]
        key_id=str(key.kid),
        msg_id=msg_id,
        timestamp=timestamp or int(time.time()),
        body=body,
    )


def test_a_signed_delivery_verifies_with_the_published_jwks(jwks):
    headers = _headers()
    assert headers["webhook-signature"].startswith("v1a,")
    assert headers["webhook-key-id"] in {k["kid"] for k in jwks["keys"]}
    assert signing.verify(headers=headers, body=BODY, jwks=jwks) == json.loads(BODY)
    # HTTP header names are case-insensitive; a plain dict with other casing still works.
    shouted = {k.title(): v for k, v in headers.items()}
    assert signing.verify(headers=shouted, body=BODY, jwks=jwks)["data"]["event_id"] == "e1"


def test_the_signature_covers_id_timestamp_and_body(jwks):
    headers = _headers()
    with pytest.raises(signing.WebhookVerificationError) as body_changed:
        signing.verify(headers=headers, body=BODY.replace(b"e1", b"e2"), jwks=jwks)
    assert body_changed.value.code == "invalid_signature"
    with pytest.raises(signing.WebhookVerificationError) as id_changed:
        signing.verify(headers={**headers, "webhook-id": "msg_2"}, body=BODY, jwks=jwks)
    assert id_changed.value.code == "invalid_signature"
    later = str(int(headers["webhook-timestamp"]) + 1)
    with pytest.raises(signing.WebhookVerificationError) as ts_changed:
        signing.verify(headers={**headers, "webhook-timestamp": later}, body=BODY, jwks=jwks)
    assert ts_changed.value.code == "invalid_signature"


def test_old_timestamps_unknown_keys_and_missing_headers_are_refused(jwks):
    old = _headers(timestamp=int(time.time()) - 3600)
    with pytest.raises(signing.WebhookVerificationError) as stale:
        signing.verify(headers=old, body=BODY, jwks=jwks)
    assert stale.value.code == "stale_timestamp"
    with pytest.raises(signing.WebhookVerificationError) as unknown:
        signing.verify(headers={**_headers(), "webhook-key-id": "not-ours"}, body=BODY, jwks=jwks)
    assert unknown.value.code == "unknown_key"
    with pytest.raises(signing.WebhookVerificationError) as missing:
        signing.verify(headers={"webhook-id": "x"}, body=BODY, jwks=jwks)
    assert missing.value.code == "missing_headers"


def test_a_signature_from_another_key_is_refused_and_any_valid_one_of_several_passes(jwks):
    headers = _headers()
    forged = signing.sign(
        private_key=Ed25519PrivateKey.generate(),
        msg_id=headers["webhook-id"],
        timestamp=int(headers["webhook-timestamp"]),
        body=BODY,
    )
    with pytest.raises(signing.WebhookVerificationError):
        signing.verify(headers={**headers, "webhook-signature": forged}, body=BODY, jwks=jwks)
    both = f"v1,{base64.b64encode(b'hmac').decode()} {forged} {headers['webhook-signature']}"
    assert signing.verify(headers={**headers, "webhook-signature": both}, body=BODY, jwks=jwks)


def test_without_a_key_id_every_published_ed25519_key_is_tried(jwks):
    headers = _headers()
    del headers["webhook-key-id"]
    assert signing.verify(headers=headers, body=BODY, jwks=jwks)["type"] == "person.changed"
