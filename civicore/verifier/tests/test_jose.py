from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from civicore.verifier import (
    BadSignature,
    MalformedError,
    b64url_decode,
    b64url_encode,
    jwk_thumbprint,
    load_public_jwk,
    public_jwk,
    sign_compact,
    verify_compact,
)


@pytest.mark.parametrize("data", [b"", b"f", b"fo", b"foo", b"\xff\xfe\xfd\xfc", bytes(range(256))])
def test_base64url_round_trip_without_padding(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64url_decode(text) == data


@pytest.mark.parametrize(
    "text",
    ["Zm9v=", "Zg==", "a+b/", "a b", "Zm9v\n", "A", "Zh", "Zm9", "Zm9vYg=", "é", "Zm9v\x00"],
)
def test_base64url_decode_is_strict(text: str) -> None:
    # "Zh" and "Zm9" decode to the same bytes as "Zg" and "Zm8" with spare bits set: refused,
    # so a signature has exactly one encoding.
    with pytest.raises(MalformedError) as caught:
        b64url_decode(text)
    assert caught.value.code == "bad_base64url"


def test_b64url_decode_refuses_non_strings() -> None:
    with pytest.raises(MalformedError):
        b64url_decode(b"Zm9v")  # type: ignore[arg-type]


def test_thumbprint_matches_rfc_8037_example() -> None:
    # RFC 8037 Appendix A.3: the thumbprint of the Ed25519 example key.
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jwk_thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_thumbprint_ignores_member_order_and_extra_members() -> None:
    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()))
    shuffled = {"y": jwk["y"], "x": jwk["x"], "kid": "whatever", "crv": "P-256", "kty": "EC"}
    assert jwk_thumbprint(shuffled) == jwk_thumbprint(jwk)


@pytest.mark.parametrize(
    "private_key", [ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()]
)
def test_public_jwk_round_trip_has_public_members_only(private_key: object) -> None:
    jwk = public_jwk(private_key)
    assert "d" not in jwk
    assert public_jwk(load_public_jwk(jwk)) == jwk
    assert public_jwk(private_key.public_key()) == jwk  # type: ignore[attr-defined]


def test_load_public_jwk_refuses_private_material_other_curves_and_bad_points() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = public_jwk(key)
    d = b64url_encode(key.private_numbers().private_value.to_bytes(32, "big"))
    with pytest.raises(MalformedError) as caught:
        load_public_jwk({**jwk, "d": d})
    assert caught.value.code == "private_jwk"
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    with pytest.raises(MalformedError):
        load_public_jwk(
            {
                "kty": "EC",
                "crv": "P-384",
                "x": b64url_encode(p384.x.to_bytes(48, "big")),
                "y": b64url_encode(p384.y.to_bytes(48, "big")),
            }
        )
    with pytest.raises(MalformedError):  # not a point on the curve
        load_public_jwk({**jwk, "y": jwk["x"]})
    with pytest.raises(MalformedError):
        load_public_jwk({"kty": "OKP", "crv": "X25519", "x": jwk["x"]})
    with pytest.raises(MalformedError):
        load_public_jwk({"kty": "oct", "k": "c2VjcmV0"})
    with pytest.raises(MalformedError):
        load_public_jwk({"kty": "EC", "crv": "P-256", "x": 1, "y": 2})
    with pytest.raises(MalformedError):
        load_public_jwk("not a dict")  # type: ignore[arg-type]
    with pytest.raises(MalformedError):
        public_jwk(ec.generate_private_key(ec.SECP384R1()))


@pytest.mark.parametrize(
    ("private_key", "alg"),
    [(ec.generate_private_key(ec.SECP256R1()), "ES256"), (ed25519.Ed25519PrivateKey.generate(), "EdDSA")],
)
def test_sign_and_verify_compact(private_key: object, alg: str) -> None:
    token = sign_compact({"typ": "JWT", "alg": "ignored"}, {"sub": "x", "n": 1}, private_key)
    header, payload = verify_compact(token, private_key.public_key())  # type: ignore[attr-defined]
    assert header == {"typ": "JWT", "alg": alg}
    assert payload == {"sub": "x", "n": 1}
    if alg == "ES256":  # raw r||s, not DER
        assert len(b64url_decode(token.rsplit(".", 1)[1])) == 64


def _forge(header: dict, payload: dict, signature: bytes = b"") -> str:
    return ".".join(
        [
            b64url_encode(json.dumps(header).encode()),
            b64url_encode(json.dumps(payload).encode()),
            b64url_encode(signature),
        ]
    )


def test_verify_compact_refuses_alg_none_and_mismatched_algs() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(BadSignature) as caught:
        verify_compact(_forge({"alg": "none"}, {"a": 1}), ec_key.public_key())
    assert caught.value.code == "alg_not_allowed"
    # An Ed25519 signature that claims to be ES256.
    token = sign_compact({}, {"a": 1}, ed_key)
    head, body, sig = token.split(".")
    claimed = b64url_encode(json.dumps({"alg": "ES256"}).encode())
    with pytest.raises(BadSignature) as caught:
        verify_compact(f"{claimed}.{body}.{sig}", ed_key.public_key())
    assert caught.value.code == "alg_mismatch"
    # An ES256 token checked with an Ed25519 key.
    with pytest.raises(BadSignature):
        verify_compact(sign_compact({}, {"a": 1}, ec_key), ed_key.public_key())
    # The wrong key of the right type.
    with pytest.raises(BadSignature):
        verify_compact(
            sign_compact({}, {"a": 1}, ec_key), ec.generate_private_key(ec.SECP256R1()).public_key()
        )


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "e30.e30.",  # empty signature
        _forge({"alg": "ES256"}, {"a": 1})[:-1] + "!",
        b64url_encode(b'{"alg":"ES256","alg":"none"}') + ".e30.AAAA",  # duplicate member
        b64url_encode(b"[1]") + ".e30.AAAA",  # header not an object
        b64url_encode(b'{"alg":"ES256"}') + "." + b64url_encode(b"NaN") + ".AAAA",
        b64url_encode(b'{"alg":"ES256","crit":["x"],"x":1}') + ".e30.AAAA",
        b64url_encode(b'{"alg":"ES256"}\xff') + ".e30.AAAA",
    ],
)
def test_verify_compact_refuses_malformed_tokens(token: str) -> None:
    with pytest.raises((MalformedError, BadSignature)):
        verify_compact(token, ec.generate_private_key(ec.SECP256R1()).public_key())


def test_sign_compact_needs_a_supported_private_key() -> None:
    with pytest.raises(MalformedError):
        sign_compact({}, {}, ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(MalformedError):
        sign_compact({}, {}, ec.generate_private_key(ec.SECP384R1()))
