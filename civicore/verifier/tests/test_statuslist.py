from __future__ import annotations

import zlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from civicore.verifier import (
    INVALID,
    SUSPENDED,
    VALID,
    StatusList,
    StatusListError,
    b64url_encode,
    load_status_list_token,
    sign_compact,
    sign_status_list_token,
)

from .conftest import ISS, ISS_ED, NOW, STATUS_URI, World

# draft-ietf-oauth-status-list, section 4.1 (Compressed Byte Array) and its JSON example in
# section 4.2 (Status List in JSON Format): 16 one-bit statuses packed to 0xB9 0xA3, and 12
# two-bit statuses packed to 0xC9 0x44 0xF9.
ONE_BIT = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
TWO_BIT = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]


def test_draft_example_one_bit() -> None:
    decoded = StatusList.decode({"bits": 1, "lst": "eNrbuRgAAhcBXQ"})
    assert decoded.to_bytes() == bytes([0xB9, 0xA3])
    assert [decoded.get(i) for i in range(16)] == ONE_BIT
    built = StatusList(1, size=16)
    for idx, value in enumerate(ONE_BIT):
        built.set(idx, value)
    assert built.encode() == {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}


def test_draft_example_two_bits() -> None:
    decoded = StatusList.decode({"bits": 2, "lst": "eNo76fITAAPfAgc"})
    assert decoded.to_bytes() == bytes([0xC9, 0x44, 0xF9])
    assert [decoded.get(i) for i in range(12)] == TWO_BIT
    built = StatusList(size=12)  # two bits by default
    for idx, value in enumerate(TWO_BIT):
        built.set(idx, value)
    assert built.encode() == {"bits": 2, "lst": "eNo76fITAAPfAgc"}


@settings(max_examples=150, deadline=None)
@given(
    bits=st.sampled_from([1, 2, 4, 8]),
    data=st.data(),
)
def test_round_trip(bits: int, data: st.DataObject) -> None:
    values = data.draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=1, max_size=300))
    status_list = StatusList(bits, size=len(values))
    for idx, value in enumerate(values):
        status_list.set(idx, value)
    decoded = StatusList.decode(status_list.encode())
    assert [decoded.get(i) for i in range(len(values))] == values
    # Padding slots of the last byte decode as VALID.
    assert all(decoded.get(i) == VALID for i in range(len(values), decoded.size))


def test_set_overwrites_only_its_own_slot() -> None:
    status_list = StatusList(2, size=8)
    status_list.set(1, SUSPENDED)
    status_list.set(2, INVALID)
    status_list.set(1, VALID)
    assert [status_list.get(i) for i in range(8)] == [0, 0, 1, 0, 0, 0, 0, 0]


def test_out_of_range_values_and_indexes() -> None:
    status_list = StatusList(1, size=10)
    for bad in (-1, 10, True, "1"):
        with pytest.raises(StatusListError):
            status_list.get(bad)  # type: ignore[arg-type]
    with pytest.raises(StatusListError):
        status_list.set(0, 2)
    for bits, size in ((3, 1), (2, 0), (True, 1)):
        with pytest.raises(StatusListError):
            StatusList(bits, size=size)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "obj",
    [
        None,
        {"bits": 2},
        {"bits": 5, "lst": "eNo76fITAAPfAgc"},
        {"bits": 2, "lst": "not base64!"},
        {"bits": 2, "lst": b64url_encode(b"not zlib")},
        {"bits": 2, "lst": "eNo76fITAAPfAg"},  # truncated stream
        {"bits": 2, "lst": b64url_encode(zlib.compress(b"\x01") + b"trailing")},
        {"bits": 2, "lst": b64url_encode(zlib.compress(b""))},
    ],
)
def test_decode_refuses_bad_lists(obj: object) -> None:
    with pytest.raises(StatusListError):
        StatusList.decode(obj)


def test_zip_bomb_is_refused() -> None:
    # 64 MiB of zeros compresses to about 64 KiB.
    bomb = zlib.compressobj(9)
    chunk = bytes(1024 * 1024)
    compressed = b"".join(bomb.compress(chunk) for _ in range(64)) + bomb.flush()
    assert len(compressed) < 100_000
    with pytest.raises(StatusListError) as caught:
        StatusList.decode({"bits": 1, "lst": b64url_encode(compressed)})
    assert caught.value.code == "too_large"
    with pytest.raises(StatusListError):
        StatusList.decode({"bits": 1, "lst": b64url_encode(zlib.compress(bytes(2000)))}, max_bytes=1000)
    assert StatusList.decode({"bits": 1, "lst": b64url_encode(zlib.compress(bytes(1000)))}, max_bytes=1000)


def _token(world: World, status_list: StatusList, **overrides: object) -> str:
    arguments: dict = {
        "uri": STATUS_URI,
        "iss": ISS,
        "key": world.issuer_key,
        "kid": world.issuer_kid,
        "iat": NOW - 60,
        "exp": NOW + 3600,
        "ttl": 300,
    }
    arguments.update(overrides)
    return sign_status_list_token(status_list, **arguments)


def test_status_list_token_round_trip(world: World) -> None:
    status_list = StatusList(size=100)
    status_list.set(7, INVALID)
    token = _token(world, status_list)
    loaded = load_status_list_token(token, trust=world.trust, uri=STATUS_URI, now=NOW, iss=ISS)
    assert loaded.get(7) == INVALID and loaded.get(8) == VALID


def test_status_list_token_refusals(world: World) -> None:
    status_list = StatusList(size=8)

    def code(token: str, **overrides: object) -> str:
        arguments: dict = {"trust": world.trust, "uri": STATUS_URI, "now": NOW}
        arguments.update(overrides)
        with pytest.raises(StatusListError) as caught:
            load_status_list_token(token, **arguments)
        return caught.value.code

    good = _token(world, status_list)
    assert code(good, uri="https://tuphap.gov.vn/status/2") == "wrong_subject"
    assert code(good, now=NOW + 3600) == "expired"
    assert code(good, iss=ISS_ED) == "wrong_issuer"
    assert code(_token(world, status_list, kid="nope")) == "unknown_issuer"
    forged = _token(world, status_list, key=ec.generate_private_key(ec.SECP256R1()))
    assert code(forged) == "bad_signature"
    assert code(good[:-4]) in {"bad_signature", "malformed"}
    assert code("garbage") == "malformed"
    wrong_typ = sign_compact(
        {"typ": "dc+sd-jwt", "kid": world.issuer_kid},
        {"iss": ISS, "sub": STATUS_URI, "iat": NOW, "status_list": status_list.encode()},
        world.issuer_key,
    )
    assert code(wrong_typ) == "wrong_typ"
    compromised = world.trust_with(compromised_since=NOW - 3600)
    assert code(good, trust=compromised) == "key_compromised"
    assert code(_token(world, status_list, iat=NOW + 3600, exp=None)) == "not_yet_valid"
