from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from civicore.verifier import (
    MalformedError,
    Verdict,
    b64url_decode,
    b64url_encode,
    disclosures,
    present,
    public_jwk,
    sign_compact,
    verify,
)
from civicore.verifier.sdjwt import STATUSES

from .conftest import CLAIMS, ISS, ISS_ED, NOW, STATUS_URI, VCT, World

ALL_PATHS = [
    ("given_name",),
    ("family_name",),
    ("birthdate",),
    ("licence_number",),
    ("categories",),
    ("address",),
    ("address", "street_address"),
    ("address", "locality"),
    ("address", "country"),
    ("issuing_office",),
    ("valid_from",),
]


def payload_of(token: str) -> dict[str, Any]:
    return json.loads(b64url_decode(token.split("~")[0].split(".")[1]))


def header_of(token: str) -> dict[str, Any]:
    return json.loads(b64url_decode(token.split("~")[0].split(".")[0]))


def presentation(world: World, token: str | None = None, **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "keep": ALL_PATHS,
        "holder_key": world.holder_key,
        "audience": "https://bank.example",
        "nonce": "n-0S6_WzA2Mj",
        "iat": NOW - 10,
        "exp": NOW + 120,
    }
    arguments.update(overrides)
    return present(token or world.credential(), **arguments)


def check(world: World, token: Any, **overrides: Any) -> Verdict:
    arguments: dict[str, Any] = {
        "trust": world.trust,
        "now": NOW,
        "audience": "https://bank.example",
        "nonce": "n-0S6_WzA2Mj",
        "statuses": lambda uri, idx: 0,
    }
    arguments.update(overrides)
    return verify(token, **arguments)


def sign_raw(world: World, payload: dict[str, Any], disclosures_: list[str], **header: Any) -> str:
    """An issuer-signed SD-JWT with a payload built by hand (to test what issue() never makes)."""
    jwt = sign_compact({"typ": "dc+sd-jwt", "kid": world.issuer_kid, **header}, payload, world.issuer_key)
    return "~".join([jwt, *disclosures_, ""])


def disclosure(*parts: Any) -> tuple[str, str]:
    encoded = b64url_encode(json.dumps(list(parts)).encode())
    return encoded, b64url_encode(hashlib.sha256(encoded.encode()).digest())


# --- issuance -------------------------------------------------------------------------------


def test_issued_credential_has_only_plain_registered_claims(world: World) -> None:
    token = world.credential(decoys=3)
    assert token.endswith("~")
    assert header_of(token) == {"typ": "dc+sd-jwt", "kid": world.issuer_kid, "alg": "ES256"}
    payload = payload_of(token)
    assert set(payload) == {"iss", "iat", "exp", "vct", "status", "cnf", "_sd", "_sd_alg"}
    assert payload["_sd_alg"] == "sha-256"
    assert payload["status"] == {"status_list": {"idx": 7, "uri": STATUS_URI}}
    assert payload["cnf"] == {"jwk": public_jwk(world.holder_key)}
    assert payload["_sd"] == sorted(payload["_sd"])
    assert len(payload["_sd"]) == 8 + 3  # eight claims, three decoys
    for name, value in CLAIMS.items():
        assert name not in payload and json.dumps(value, ensure_ascii=False) not in json.dumps(payload)


def test_nested_objects_are_disclosable_member_by_member(world: World) -> None:
    found = {d.path: d for d in disclosures(world.credential(decoys=1))}
    assert set(found) == set(ALL_PATHS)
    address = found[("address",)]
    assert address.name == "address"
    assert set(address.value) == {"_sd"} and len(address.value["_sd"]) == 3 + 1
    assert found[("categories",)].value == ["A1", "B2"]  # an array is one claim
    assert found[("address", "locality")].value == "Hà Nội"
    assert all(
        d.digest in address.value["_sd"]
        for p, d in found.items()
        if p[:1] == ("address",) and p != ("address",)
    )


def test_issue_uses_the_given_salt_and_refuses_reserved_names(world: World) -> None:
    counter = iter(range(1000))
    token = world.credential(claims={"a": 1}, salt=lambda: f"salt{next(counter)}", decoys=0)
    [only] = disclosures(token)
    assert json.loads(b64url_decode(only.encoded)) == ["salt0", "a", 1]
    assert payload_of(token)["_sd"] == [only.digest]
    for claims in ({"iss": "x"}, {"cnf": {}}, {"a": {"_sd": []}}, {"a": [{"...": "x"}]}):
        with pytest.raises(MalformedError):
            world.credential(claims=claims)
    with pytest.raises(MalformedError):
        world.credential(holder_jwk={"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"})


def test_an_ed25519_issuer_key_makes_eddsa_credentials(world: World) -> None:
    token = world.credential(key=world.ed_key, kid=world.ed_kid, issuer=ISS_ED)
    assert header_of(token)["alg"] == "EdDSA"
    verdict = check(world, presentation(world, token))
    assert verdict.ok, verdict
    assert verdict.issuer_name == {"vi": "Bộ Giao thông Vận tải", "en": "Ministry of Transport"}


# --- presentation and a valid verdict -------------------------------------------------------


def test_full_presentation_verifies_with_every_claim(world: World) -> None:
    verdict = check(world, presentation(world))
    assert verdict.ok and verdict.status == verdict.code == "valid"
    assert verdict.claims == CLAIMS
    assert verdict.issuer == ISS and verdict.issuer_name == {"vi": "Bộ Tư pháp", "en": "Ministry of Justice"}
    assert verdict.kid == world.issuer_kid and verdict.vct == VCT
    assert verdict.issued_at == NOW - 3600 and verdict.expires_at == NOW + 86400
    assert verdict.key_binding and verdict.audience == "https://bank.example"
    assert verdict.status_ref == {"idx": 7, "uri": STATUS_URI}


def test_selective_presentation_shows_the_chosen_claims_and_nothing_else(world: World) -> None:
    token = presentation(world, keep=[("given_name",), ("address", "locality")])
    assert len(token.split("~")) == 1 + 3 + 1  # jwt, three disclosures (locality's parent too), kb
    verdict = check(world, token)
    assert verdict.ok, verdict
    assert verdict.claims == {"given_name": "An", "address": {"locality": "Hà Nội"}}
    assert "Nguyễn" not in json.dumps(verdict.claims, ensure_ascii=False)


def test_presenting_a_parent_alone_discloses_an_empty_object(world: World) -> None:
    verdict = check(world, presentation(world, keep=[("address",)]))
    assert verdict.ok and verdict.claims == {"address": {}}


def test_presentation_without_key_binding(world: World) -> None:
    token = present(world.credential(), keep=[("birthdate",)])
    assert token.endswith("~")
    verdict = check(world, token, audience=None, nonce=None)
    assert verdict.ok and not verdict.key_binding and verdict.claims == {"birthdate": "1990-02-01"}
    assert (
        check(world, token, audience=None, nonce=None, require_key_binding=True).status
        == "key_binding_missing"
    )
    assert check(world, token).status == "key_binding_missing"  # a nonce was asked for


def test_present_refuses_unknown_paths_and_kb_without_nonce(world: World) -> None:
    with pytest.raises(MalformedError):
        present(world.credential(), keep=[("no_such_claim",)])
    with pytest.raises(MalformedError):
        present(world.credential(), keep=[("birthdate",)], holder_key=world.holder_key, audience="x")


def test_verify_accepts_bytes(world: World) -> None:
    assert check(world, presentation(world).encode("ascii")).ok


# --- each failure status ------------------------------------------------------------------------


def test_unknown_issuer_and_unknown_kid(world: World) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    verdict = check(world, presentation(world, world.credential(issuer="https://fake.gov.vn")))
    assert verdict.status == "unknown_issuer" and verdict.issuer is None
    verdict = check(world, presentation(world, world.credential(key=other, kid="other-kid")))
    assert (verdict.status, verdict.code) == ("unknown_issuer", "unknown_kid")


def test_a_signature_by_another_key_with_a_trusted_kid_is_tampered(world: World) -> None:
    forged = world.credential(key=ec.generate_private_key(ec.SECP256R1()))
    verdict = check(world, presentation(world, forged))
    assert verdict.status == "tampered" and verdict.claims == {} and verdict.issuer is None


def test_alg_none_is_tampered(world: World) -> None:
    token = world.credential()
    jwt = token.split("~")[0]
    head, body, _ = jwt.split(".")
    header = {"typ": "dc+sd-jwt", "kid": world.issuer_kid, "alg": "none"}
    unsigned = b64url_encode(json.dumps(header).encode()) + "." + body + "."
    verdict = check(world, token.replace(jwt, unsigned), audience=None, nonce=None)
    assert (verdict.status, verdict.code) == ("tampered", "alg_not_allowed")


def test_an_ed25519_key_claiming_es256_is_tampered(world: World) -> None:
    token = world.credential(key=world.ed_key, kid=world.ed_kid, issuer=ISS_ED)
    jwt = token.split("~")[0]
    _, body, signature = jwt.split(".")
    header = {"typ": "dc+sd-jwt", "kid": world.ed_kid, "alg": "ES256"}
    relabelled = b64url_encode(json.dumps(header).encode()) + "." + body + "." + signature
    verdict = check(world, token.replace(jwt, relabelled), audience=None, nonce=None)
    assert (verdict.status, verdict.code) == ("tampered", "alg_mismatch")


def test_compromised_key_refuses_credentials_signed_from_that_date(world: World) -> None:
    trust = world.trust_with(compromised_since=NOW - 1000)
    before = check(world, presentation(world, world.credential(iat=NOW - 1001)), trust=trust)
    assert before.ok, before
    at = check(world, presentation(world, world.credential(iat=NOW - 1000)), trust=trust)
    after = check(world, presentation(world, world.credential(iat=NOW - 10)), trust=trust)
    assert at.status == after.status == "key_compromised"
    assert after.issuer == ISS  # the signature is genuine, so the issuer is known


def test_key_validity_window(world: World) -> None:
    trust = world.trust_with(not_before=NOW - 500, not_after=NOW - 100)
    assert (
        check(world, presentation(world, world.credential(iat=NOW - 501)), trust=trust).status
        == "key_not_valid"
    )
    assert (
        check(world, presentation(world, world.credential(iat=NOW - 99)), trust=trust).status
        == "key_not_valid"
    )
    assert check(world, presentation(world, world.credential(iat=NOW - 300)), trust=trust).ok


def test_expired_and_not_yet_valid_credentials(world: World) -> None:
    expired = check(world, presentation(world, world.credential(exp=NOW - 61)))
    assert expired.status == "expired" and expired.claims == CLAIMS and expired.expires_at == NOW - 61
    assert check(world, presentation(world, world.credential(exp=NOW - 30))).ok  # within leeway
    assert check(world, presentation(world, world.credential(exp=NOW - 30)), leeway=0).status == "expired"
    assert check(world, presentation(world, world.credential(iat=NOW + 3600))).status == "not_yet_valid"


def test_trust_list_expiry_makes_every_issuer_unknown(world: World) -> None:
    verdict = check(world, presentation(world), now=world.trust.expires_at)
    assert (verdict.status, verdict.code) == ("unknown_issuer", "trust_list_expired")


def test_replayed_presentation_after_kb_exp(world: World) -> None:
    token = presentation(world, iat=NOW - 10, exp=NOW + 120)
    assert check(world, token).ok
    assert check(world, token, now=NOW + 120 + 61).status == "presentation_expired"
    without_exp = presentation(world, iat=NOW - 10, exp=None)
    assert check(world, without_exp).ok
    late = check(world, without_exp, now=NOW + 3600)
    assert (late.status, late.code) == ("presentation_expired", "kb_too_old")


def test_other_audience_and_wrong_nonce(world: World) -> None:
    token = presentation(world)
    assert check(world, token, audience="https://other.example").status == "wrong_audience"
    assert check(world, token, nonce="another-nonce").status == "wrong_nonce"


def test_key_binding_by_another_key_or_over_other_disclosures(world: World) -> None:
    stranger = presentation(world, holder_key=ec.generate_private_key(ec.SECP256R1()))
    assert (check(world, stranger).status, check(world, stranger).code) == (
        "key_binding_invalid",
        "kb_bad_signature",
    )
    # Drop one disclosure from a bound presentation: sd_hash no longer matches. The dropped one is a
    # leaf (given_name): the disclosures come in random order, and dropping `address` would leave
    # its nested claims' disclosures unreferenced, a different fault found first.
    parts = presentation(world).split("~")
    leaf = next(
        i for i, part in enumerate(parts[1:-1], 1) if json.loads(b64url_decode(part))[1] == "given_name"
    )
    shortened = "~".join(parts[:leaf] + parts[leaf + 1 :])
    verdict = check(world, shortened)
    assert (verdict.status, verdict.code) == ("key_binding_invalid", "sd_hash_mismatch")
    # A credential without a holder key cannot carry key binding.
    unbound = world.credential(holder_jwk=None)
    kb = presentation(world).split("~")[-1]
    verdict = check(world, present(unbound, keep=[("birthdate",)]) + kb)
    assert (verdict.status, verdict.code) == ("key_binding_invalid", "no_holder_key")


def test_a_disclosure_from_another_credential(world: World) -> None:
    mine = present(world.credential(), keep=[("given_name",)])
    theirs = disclosures(world.credential(claims={"role": "judge"}))
    verdict = check(world, mine + theirs[0].encoded + "~", audience=None, nonce=None)
    assert (verdict.status, verdict.code) == ("disclosure_mismatch", "unreferenced_disclosure")


def test_duplicated_disclosure(world: World) -> None:
    token = present(world.credential(), keep=[("given_name",)])
    doubled = token + token.split("~")[1] + "~"
    verdict = check(world, doubled, audience=None, nonce=None)
    assert (verdict.status, verdict.code) == ("disclosure_mismatch", "duplicate_disclosure")


def test_duplicate_digest_in_the_payload(world: World) -> None:
    encoded, digest = disclosure("s1", "given_name", "An")
    base = {"iss": ISS, "iat": NOW - 10, "vct": VCT, "_sd_alg": "sha-256"}
    token = sign_raw(world, {**base, "_sd": [digest, digest]}, [encoded])
    verdict = check(world, token, audience=None, nonce=None)
    assert (verdict.status, verdict.code) == ("disclosure_mismatch", "duplicate_digest")
    nested = sign_raw(world, {**base, "_sd": [digest], "a": {"_sd": [digest]}}, [encoded])
    assert check(world, nested, audience=None, nonce=None).code == "duplicate_digest"


@pytest.mark.parametrize("name", ["iss", "vct", "cnf", "status", "exp", "_sd_alg"])
def test_a_disclosure_may_not_define_registered_claims(world: World, name: str) -> None:
    encoded, digest = disclosure("s1", name, "https://evil.example")
    payload = {"iss": ISS, "iat": NOW - 10, "vct": VCT, "_sd": [digest], "_sd_alg": "sha-256"}
    verdict = check(world, sign_raw(world, payload, [encoded]), audience=None, nonce=None)
    assert verdict.status == "disclosure_mismatch"


def test_a_disclosure_may_not_redefine_a_plain_claim_or_be_named_sd(world: World) -> None:
    encoded, digest = disclosure("s1", "role", "admin")
    payload = {"iss": ISS, "iat": NOW - 10, "vct": VCT, "role": "user", "_sd": [digest]}
    verdict = check(world, sign_raw(world, payload, [encoded]), audience=None, nonce=None)
    assert (verdict.status, verdict.code) == ("disclosure_mismatch", "claim_redefined")
    encoded, digest = disclosure("s1", "_sd", ["x"])
    payload = {"iss": ISS, "iat": NOW - 10, "vct": VCT, "_sd": [digest]}
    assert not check(world, sign_raw(world, payload, [encoded]), audience=None, nonce=None).ok


def test_array_element_disclosures_from_other_issuers_are_understood(world: World) -> None:
    first, first_digest = disclosure("s1", "DE")
    second, second_digest = disclosure("s2", "FR")
    payload = {
        "iss": ISS,
        "iat": NOW - 10,
        "vct": VCT,
        "nationalities": [{"...": first_digest}, {"...": second_digest}, "VN"],
        "_sd_alg": "sha-256",
    }
    verdict = check(world, sign_raw(world, payload, [first]), audience=None, nonce=None)
    assert verdict.ok, verdict
    assert verdict.claims == {"nationalities": ["DE", "VN"]}
    paths = [d.path for d in disclosures(sign_raw(world, payload, [first, second]))]
    assert paths == [("nationalities", "0"), ("nationalities", "1")]
    # An object-member disclosure cannot stand in an array, and the other way round.
    named, named_digest = disclosure("s3", "x", 1)
    payload["nationalities"] = [{"...": named_digest}]
    assert check(world, sign_raw(world, payload, [named]), audience=None, nonce=None).code == "wrong_kind"


def test_wrong_typ_and_unsupported_sd_alg_are_malformed(world: World) -> None:
    payload = {"iss": ISS, "iat": NOW - 10, "vct": VCT}
    assert check(
        world, sign_raw(world, payload, [], typ="statuslist+jwt"), audience=None, nonce=None
    ).code == ("wrong_typ")
    sha512 = {**payload, "_sd_alg": "sha-512"}
    assert check(world, sign_raw(world, sha512, []), audience=None, nonce=None).code == "unsupported_sd_alg"


@pytest.mark.parametrize(
    ("value", "status"),
    [(0, "valid"), (1, "revoked"), (2, "suspended"), (None, "status_unknown"), (3, "status_unknown")],
)
def test_status_lookup(world: World, value: int | None, status: str) -> None:
    asked: list[tuple[str, int]] = []

    def lookup(uri: str, idx: int) -> int | None:
        asked.append((uri, idx))
        return value

    assert check(world, presentation(world), statuses=lookup).status == status
    assert asked == [(STATUS_URI, 7)]


def test_a_failing_status_lookup_is_unknown_not_an_exception(world: World) -> None:
    def broken(uri: str, idx: int) -> int | None:
        raise ConnectionError("no network")

    assert check(world, presentation(world), statuses=broken).status == "status_unknown"


def test_every_status_name_is_documented() -> None:
    assert len(STATUSES) == 17 and "valid" in STATUSES


# --- hostile input ------------------------------------------------------------------------------


def test_every_byte_flipped_gives_a_non_valid_verdict(world: World) -> None:
    credential = world.credential(claims={"a": 1, "b": {"c": 2}}, decoys=1)
    token = presentation(world, credential, keep=[d.path for d in disclosures(credential)])
    assert check(world, token).ok
    data = token.encode("ascii")
    seen: set[str] = set()
    for position in range(len(data)):
        for flip in (0x01, 0x80):
            mutated = bytearray(data)
            mutated[position] ^= flip
            verdict = check(world, bytes(mutated))
            assert isinstance(verdict, Verdict)
            assert not verdict.ok, (position, flip, verdict)
            assert verdict.code != "unprocessable", (position, flip, verdict)  # no unforeseen error
            seen.add(verdict.status)
    assert {"malformed", "tampered", "disclosure_mismatch", "key_binding_invalid"} <= seen


def test_truncated_tokens_are_never_valid(world: World) -> None:
    token = presentation(world, world.credential(claims={"a": 1}, decoys=0), keep=[("a",)])
    for end in range(len(token)):
        verdict = check(world, token[:end])
        # Cutting the KB-JWT off entirely leaves a well-formed presentation without key binding.
        assert not verdict.ok and verdict.code != "unprocessable", (end, verdict)


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"~",
        b"\xff\xfe\x00garbage",
        "é~".encode(),
        b"A" * (3 * 1024 * 1024),
        ("a." * 500_000 + "~").encode(),
        ("~" * 1_000_000).encode(),
        (b64url_encode(b"[" * 100_000) + ".e30.AAAA~").encode(),
        (b64url_encode(b'{"alg":"ES256","kid":' + b"9" * 5000 + b"}") + ".e30.AAAA~").encode(),
        (
            b64url_encode(b'{"typ":"dc+sd-jwt","alg":"ES256","kid":"k"}')
            + "."
            + b64url_encode(b"1e999")
            + ".AA~"
        ).encode(),
    ],
)
def test_garbage_is_malformed_never_an_exception(world: World, garbage: bytes) -> None:
    verdict = check(world, garbage)
    assert verdict.status == "malformed" and not verdict.ok and verdict.code != "unprocessable"
    assert check(world, garbage.decode("utf-8", "replace")).status == "malformed"


@pytest.mark.parametrize("value", [None, 42, 4.2, ["a"], {"a": 1}, object()])
def test_non_string_tokens_are_malformed(world: World, value: Any) -> None:
    assert check(world, value).status == "malformed"


def test_deeply_nested_disclosure_value_is_malformed(world: World) -> None:
    deep: Any = "x"
    for _ in range(200):
        deep = {"n": deep}
    encoded, digest = disclosure("s", "deep", deep)
    payload = {"iss": ISS, "iat": NOW - 10, "vct": VCT, "_sd": [digest]}
    verdict = check(world, sign_raw(world, payload, [encoded]), audience=None, nonce=None)
    assert (verdict.status, verdict.code) == ("malformed", "too_deep")
    bomb = b64url_encode(b"[" * 1_000_000)
    digest = b64url_encode(hashlib.sha256(bomb.encode()).digest())
    payload = {"iss": ISS, "iat": NOW - 10, "vct": VCT, "_sd": [digest]}
    assert check(world, sign_raw(world, payload, [bomb]), audience=None, nonce=None).status == "malformed"


def test_hostile_claim_types_are_malformed(world: World) -> None:
    base = {"iss": ISS, "iat": NOW - 10, "vct": VCT}
    for payload in (
        {**base, "iat": "yesterday"},
        {**base, "iat": True},
        {**base, "exp": [1]},
        {**base, "vct": 7},
        {**base, "_sd": "not-a-list"},
        {**base, "_sd": [1]},
        {**base, "status": {"status_list": {"idx": -1, "uri": STATUS_URI}}},
        {**base, "status": {"status_list": {"idx": 1.5, "uri": STATUS_URI}}},
        {**base, "status": "revoked?"},
    ):
        verdict = check(world, sign_raw(world, payload, []), audience=None, nonce=None)
        assert verdict.status == "malformed", (payload, verdict)
    huge = {**base, "exp": 10**300}
    assert check(world, sign_raw(world, huge, []), audience=None, nonce=None).ok


def test_holder_key_material_is_checked(world: World) -> None:
    credential = world.credential(holder_jwk=public_jwk(ed25519.Ed25519PrivateKey.generate()))
    token = presentation(world, credential)  # signed with the (EC) holder key, not the bound one
    assert check(world, token).status == "key_binding_invalid"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=2000), st.text(max_size=2000)))
def test_arbitrary_input_gives_a_verdict(world: World, data: bytes | str) -> None:
    verdict = check(world, data)
    assert isinstance(verdict, Verdict) and not verdict.ok


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_recombined_parts_of_real_tokens_never_crash(world: World, data: st.DataObject) -> None:
    parts = presentation(world).split("~") + present(world.credential(), keep=[("given_name",)]).split("~")
    pieces = data.draw(st.lists(st.sampled_from(parts), min_size=1, max_size=8))
    verdict = check(world, "~".join(pieces))
    assert isinstance(verdict, Verdict) and verdict.code != "unprocessable"
