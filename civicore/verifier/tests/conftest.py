"""A small world for the verifier's tests: a trust anchor, two agencies (one EC P-256, one
Ed25519 key), a citizen's holder key and a typical credential. No database is touched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from civicore.verifier import (
    TrustList,
    issue,
    jwk_thumbprint,
    load_trust_list,
    public_jwk,
    sign_trust_list,
)

NOW = 1_800_000_000
ISS = "https://tuphap.gov.vn"
ISS_ED = "https://gtvt.gov.vn"
VCT = "https://civicore.gov.vn/vct/driving-licence"
STATUS_URI = "https://tuphap.gov.vn/status/1"
CLAIMS: dict[str, Any] = {
    "given_name": "An",
    "family_name": "Nguyễn",
    "birthdate": "1990-02-01",
    "licence_number": "AB-1234",
    "categories": ["A1", "B2"],
    "address": {"street_address": "1 Tràng Tiền", "locality": "Hà Nội", "country": "VN"},
    "issuing_office": "Sở Tư pháp Hà Nội",
    "valid_from": "2024-01-01",
}


@dataclass
class World:
    anchor_key: ed25519.Ed25519PrivateKey
    issuer_key: ec.EllipticCurvePrivateKey
    issuer_kid: str
    ed_key: ed25519.Ed25519PrivateKey
    ed_kid: str
    holder_key: ec.EllipticCurvePrivateKey
    trust_token: str
    trust: TrustList
    key_entry: dict[str, Any]

    def credential(self, **overrides: Any) -> str:
        arguments: dict[str, Any] = {
            "issuer": ISS,
            "vct": VCT,
            "key": self.issuer_key,
            "kid": self.issuer_kid,
            "iat": NOW - 3600,
            "exp": NOW + 86400,
            "holder_jwk": public_jwk(self.holder_key),
            "status": {"idx": 7, "uri": STATUS_URI},
        }
        claims = overrides.pop("claims", CLAIMS)
        arguments.update(overrides)
        return issue(claims, **arguments)

    def trust_with(self, **key_fields: Any) -> TrustList:
        """The same trust list with the P-256 key's entry changed (e.g. compromised_since)."""
        entry = {**self.key_entry, **key_fields}
        token = sign_trust_list(
            issuers_for(entry, self.ed_key, self.ed_kid),
            key=self.anchor_key,
            kid=jwk_thumbprint(public_jwk(self.anchor_key)),
            iss="https://trust.gov.vn",
            iat=NOW - 60,
            exp=NOW + 7 * 86400,
        )
        return load_trust_list(token, anchors=[public_jwk(self.anchor_key)], now=NOW)


def issuers_for(entry: dict[str, Any], ed_key: Any, ed_kid: str) -> list[dict[str, Any]]:
    return [
        {"iss": ISS, "name": {"vi": "Bộ Tư pháp", "en": "Ministry of Justice"}, "keys": [entry]},
        {
            "iss": ISS_ED,
            "name": {"vi": "Bộ Giao thông Vận tải", "en": "Ministry of Transport"},
            "keys": [
                {
                    "kid": ed_kid,
                    "jwk": public_jwk(ed_key),
                    "not_before": NOW - 86400 * 365,
                    "not_after": None,
                    "compromised_since": None,
                }
            ],
        },
    ]


@pytest.fixture(scope="session")
def world() -> World:
    anchor_key = ed25519.Ed25519PrivateKey.generate()
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    issuer_kid = jwk_thumbprint(public_jwk(issuer_key))
    ed_kid = jwk_thumbprint(public_jwk(ed_key))
    entry = {
        "kid": issuer_kid,
        "jwk": public_jwk(issuer_key),
        "not_before": NOW - 86400 * 365,
        "not_after": NOW + 86400 * 365,
        "compromised_since": None,
    }
    trust_token = sign_trust_list(
        issuers_for(entry, ed_key, ed_kid),
        key=anchor_key,
        kid=jwk_thumbprint(public_jwk(anchor_key)),
        iss="https://trust.gov.vn",
        iat=NOW - 60,
        exp=NOW + 7 * 86400,
    )
    trust = load_trust_list(trust_token, anchors=[public_jwk(anchor_key)], now=NOW)
    return World(
        anchor_key=anchor_key,
        issuer_key=issuer_key,
        issuer_kid=issuer_kid,
        ed_key=ed_key,
        ed_kid=ed_kid,
        holder_key=ec.generate_private_key(ec.SECP256R1()),
        trust_token=trust_token,
        trust=trust,
        key_entry=entry,
    )
