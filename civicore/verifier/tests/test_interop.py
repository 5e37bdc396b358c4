"""Interoperability with the OpenWallet Foundation's reference SD-JWT implementation (PyPI
`sd-jwt` 0.10.4, on jwcrypto), which nobody here wrote: what we issue and present verifies
there, and what it issues and presents verifies here."""

from __future__ import annotations

import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from civicore.verifier import (
    disclosures,
    jwk_thumbprint,
    load_trust_list,
    present,
    public_jwk,
    sign_trust_list,
    verify,
)

from .conftest import CLAIMS, ISS, VCT, World

pytest.importorskip("sd_jwt", reason="the reference library sd-jwt==0.10.4 (dev dependency) is not installed")
JWK = pytest.importorskip("jwcrypto.jwk", reason="jwcrypto (needed by sd-jwt) is not installed").JWK

from sd_jwt.common import SDObj  # noqa: E402
from sd_jwt.holder import SDJWTHolder  # noqa: E402
from sd_jwt.issuer import SDJWTIssuer  # noqa: E402
from sd_jwt.verifier import SDJWTVerifier  # noqa: E402

REGISTERED = {"iss", "iat", "exp", "vct", "cnf", "status"}


def reference_verify(world: World, token: str, audience: str, nonce: str) -> dict[str, Any]:
    issuer_jwk = JWK(**public_jwk(world.issuer_key))

    def issuer_key(iss: str, header: dict[str, Any]) -> Any:
        assert iss == ISS and header["kid"] == world.issuer_kid
        return issuer_jwk

    return SDJWTVerifier(
        token, issuer_key, expected_aud=audience, expected_nonce=nonce
    ).get_verified_payload()


def test_our_presentation_verifies_in_the_reference_verifier(world: World) -> None:
    now = int(time.time())
    credential = world.credential(iat=now - 60, exp=now + 3600)
    keep = [("given_name",), ("address", "locality"), ("categories",)]
    token = present(
        credential, keep=keep, holder_key=world.holder_key, audience="https://bank.example", nonce="abc"
    )
    payload = reference_verify(world, token, "https://bank.example", "abc")
    assert {k: v for k, v in payload.items() if k not in REGISTERED} == {
        "given_name": "An",
        "address": {"locality": "Hà Nội"},
        "categories": ["A1", "B2"],
    }
    assert payload["iss"] == ISS and payload["vct"] == VCT
    # The reference verifier checks key binding too: a wrong nonce fails there.
    with pytest.raises(ValueError, match="nonce"):
        reference_verify(world, token, "https://bank.example", "other")


def test_our_full_presentation_verifies_with_every_claim(world: World) -> None:
    now = int(time.time())
    credential = world.credential(iat=now - 60, exp=now + 3600)
    token = present(
        credential,
        keep=[d.path for d in disclosures(credential)],
        holder_key=world.holder_key,
        audience="https://bank.example",
        nonce="n",
    )
    payload = reference_verify(world, token, "https://bank.example", "n")
    assert {k: v for k, v in payload.items() if k not in REGISTERED} == CLAIMS


def test_reference_credential_and_presentation_verify_here() -> None:
    now = int(time.time())
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    holder_key = ec.generate_private_key(ec.SECP256R1())
    anchor_key = ec.generate_private_key(ec.SECP256R1())
    kid = jwk_thumbprint(public_jwk(issuer_key))
    trust_token = sign_trust_list(
        [
            {
                "iss": ISS,
                "name": {"vi": "Bộ Tư pháp", "en": "Ministry of Justice"},
                "keys": [{"kid": kid, "jwk": public_jwk(issuer_key), "not_before": now - 3600}],
            }
        ],
        key=anchor_key,
        kid="anchor",
        iss="https://trust.gov.vn",
        iat=now,
        exp=now + 3600,
    )
    trust = load_trust_list(trust_token, anchors=[{**public_jwk(anchor_key), "kid": "anchor"}], now=now)
    user_claims = {
        "iss": ISS,
        "iat": now - 60,
        "exp": now + 3600,
        "vct": VCT,
        SDObj("given_name"): "An",
        SDObj("family_name"): "Nguyễn",
        SDObj("address"): {SDObj("locality"): "Hà Nội", SDObj("country"): "VN", "region": "HN"},
        SDObj("nationalities"): [SDObj("VN"), SDObj("FR"), "DE"],
    }
    issuer = SDJWTIssuer(
        user_claims,
        JWK.from_pyca(issuer_key),
        holder_key=JWK.from_pyca(holder_key),
        sign_alg="ES256",
        add_decoy_claims=True,
        extra_header_parameters={"typ": "dc+sd-jwt", "kid": kid},
    )
    issuance = issuer.sd_jwt_issuance

    # The whole issuance, without key binding.
    verdict = verify(issuance, trust=trust, now=now)
    assert verdict.ok, verdict
    assert verdict.claims == {
        "given_name": "An",
        "family_name": "Nguyễn",
        "address": {"locality": "Hà Nội", "country": "VN", "region": "HN"},
        "nationalities": ["VN", "FR", "DE"],
    }

    holder = SDJWTHolder(issuance)
    holder.create_presentation(
        {"given_name": True, "address": {"locality": True}, "nationalities": [None, True]},
        nonce="nonce-1",
        aud="https://bank.example",
        holder_key=JWK.from_pyca(holder_key),
        sign_alg="ES256",
    )
    token = holder.sd_jwt_presentation
    verdict = verify(token, trust=trust, now=now, audience="https://bank.example", nonce="nonce-1")
    assert verdict.ok, verdict
    assert verdict.key_binding
    assert verdict.claims == {
        "given_name": "An",
        "address": {"locality": "Hà Nội", "region": "HN"},
        "nationalities": ["FR", "DE"],
    }
    assert (
        verify(token, trust=trust, now=now, audience="https://other", nonce="nonce-1").status
        == "wrong_audience"
    )
    assert (
        verify(token, trust=trust, now=now, audience="https://bank.example", nonce="x").status
        == "wrong_nonce"
    )
