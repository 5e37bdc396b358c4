from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from civicore.verifier import (
    TrustedKey,
    TrustList,
    TrustListError,
    b64url_decode,
    jwk_thumbprint,
    load_trust_list,
    public_jwk,
    sign_compact,
    sign_trust_list,
)

from .conftest import ISS, ISS_ED, NOW, World, issuers_for


def load_code(token: str, anchors: list[dict[str, Any]], now: int = NOW) -> str:
    with pytest.raises(TrustListError) as caught:
        load_trust_list(token, anchors=anchors, now=now)
    return caught.value.code


def test_loaded_trust_list_finds_keys(world: World) -> None:
    trust = world.trust
    assert set(trust.issuers) == {ISS, ISS_ED}
    key = trust.key(ISS, world.issuer_kid)
    assert key is not None and key.jwk == public_jwk(world.issuer_key)
    assert key.public_key.public_numbers() == world.issuer_key.public_key().public_numbers()
    assert trust.key(ISS, world.ed_kid) is None and trust.key("https://nobody", world.issuer_kid) is None
    assert trust.issuers[ISS].name == {"vi": "Bộ Tư pháp", "en": "Ministry of Justice"}
    assert header(world.trust_token) == {"typ": "trust-list+jwt", "kid": anchor_kid(world), "alg": "EdDSA"}


def header(token: str) -> dict[str, Any]:
    return json.loads(b64url_decode(token.split(".")[0]))


def anchor_kid(world: World) -> str:
    return jwk_thumbprint(public_jwk(world.anchor_key))


def test_to_dict_from_dict_round_trip(world: World) -> None:
    cached = json.loads(json.dumps(world.trust.to_dict()))
    restored = TrustList.from_dict(cached)
    assert restored == world.trust
    assert restored.key(ISS, world.issuer_kid) is not None


def test_refusals(world: World) -> None:
    anchors = [public_jwk(world.anchor_key)]
    other_anchor = ed25519.Ed25519PrivateKey.generate()
    assert load_code(world.trust_token, [public_jwk(other_anchor)]) == "unknown_anchor"
    assert load_code(world.trust_token, anchors, now=NOW + 7 * 86400) == "expired"
    assert load_code("not.a.jws", anchors) == "malformed"
    assert load_code(world.trust_token + "x", anchors) == "malformed"
    # Signed by another key that claims the anchor's kid.
    forged = sign_trust_list(
        issuers_for(world.key_entry, world.ed_key, world.ed_kid),
        key=other_anchor,
        kid=anchor_kid(world),
        iss="https://trust.gov.vn",
        iat=NOW,
        exp=NOW + 60,
    )
    assert load_code(forged, anchors) == "bad_signature"
    # A credential-shaped token signed by the anchor is still not a trust list.
    wrong_typ = sign_compact({"typ": "JWT", "kid": anchor_kid(world)}, {"issuers": []}, world.anchor_key)
    assert load_code(wrong_typ, anchors) == "malformed"
    future = sign_trust_list(
        [], key=world.anchor_key, kid=anchor_kid(world), iss="t", iat=NOW + 3600, exp=NOW + 7200
    )
    assert load_code(future, anchors) == "not_yet_valid"
    # An anchor given with private material is refused, not silently used.
    assert load_code(world.trust_token, [{**anchors[0], "d": "AAAA"}]) == "malformed"


def test_anchor_may_be_named_by_its_own_kid(world: World) -> None:
    anchor = {**public_jwk(world.anchor_key), "kid": "anchor-2026"}
    token = sign_trust_list([], key=world.anchor_key, kid="anchor-2026", iss="t", iat=NOW, exp=NOW + 60)
    assert load_trust_list(token, anchors=[anchor], now=NOW).issuers == {}


@pytest.mark.parametrize(
    "issuers",
    [
        "not a list",
        [{"iss": "", "name": {}, "keys": []}],
        [{"iss": "a", "name": {"vi": 1}, "keys": []}],
        [{"iss": "a", "name": {}, "keys": "k"}],
        [{"iss": "a", "name": {}, "keys": []}, {"iss": "a", "name": {}, "keys": []}],
        [{"iss": "a", "name": {}, "keys": [{"kid": "k", "jwk": {"kty": "oct"}, "not_before": 0}]}],
        [{"iss": "a", "name": {}, "keys": [{"kid": "k", "jwk": None, "not_before": "yesterday"}]}],
    ],
)
def test_sign_trust_list_validates_issuers(world: World, issuers: Any) -> None:
    with pytest.raises(TrustListError) as caught:
        sign_trust_list(issuers, key=world.anchor_key, kid="a", iss="t", iat=NOW, exp=NOW + 60)
    assert caught.value.code == "malformed"


def test_duplicate_kid_is_refused(world: World) -> None:
    entry = world.key_entry
    with pytest.raises(TrustListError):
        sign_trust_list(
            [{"iss": "a", "name": {}, "keys": [entry, entry]}],
            key=world.anchor_key,
            kid="a",
            iss="t",
            iat=0,
            exp=1,
        )


def test_trusted_key_windows() -> None:
    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()))
    key = TrustedKey(kid="k", jwk=jwk, not_before=100, not_after=200, compromised_since=150)
    assert key.problem_at(99) == ("key_not_valid", "key k was not valid at 99")
    assert key.problem_at(100) is None and key.problem_at(149) is None
    assert key.problem_at(150)[0] == "key_compromised"  # type: ignore[index]
    assert TrustedKey(kid="k", jwk=jwk, not_before=100, not_after=200).problem_at(201)[0] == "key_not_valid"  # type: ignore[index]
    with pytest.raises(TrustListError):
        TrustedKey(kid="", jwk=jwk, not_before=0)


def test_anchors_of_other_key_types_are_ignored(world: World) -> None:
    # A platform JWKS may also list RSA keys: they match nothing, the EC/OKP anchor still does.
    rsa = {"kty": "RSA", "kid": "rsa-1", "n": "sXch", "e": "AQAB"}
    trust = load_trust_list(world.trust_token, anchors=[rsa, public_jwk(world.anchor_key)], now=NOW)
    assert set(trust.issuers) == {ISS, ISS_ED}
    assert load_code(world.trust_token, [rsa, "not a jwk"]) == "unknown_anchor"  # type: ignore[list-item]
