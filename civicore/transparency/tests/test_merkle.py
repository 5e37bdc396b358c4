"""The Merkle tree of the transparency log: known answers shared by Certificate Transparency
implementations, agreement with RFC 9162's recursive definitions for every small tree, refusal of
every altered or malformed proof, and proofs from few subtree lookups in a large log."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import pytest

from civicore.transparency import merkle
from civicore.transparency.merkle import (
    EMPTY_ROOT,
    MemoryLog,
    ProofError,
    check_consistency,
    check_inclusion,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_store,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

# Known answers. Leaf inputs, complete-subtree hashes and the roots of every prefix are the ones
# in transparency-dev/merkle, file testonly/constants.go; the inclusion and consistency proofs
# are from proof/verify_test.go in the same repository (which numbers leaves from 1; the indices
# below count from 0).
KAT_LEAVES = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]
KAT_SUBTREES = {
    (0, 0): h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    (0, 1): h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
    (0, 2): h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
    (0, 3): h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
    (0, 4): h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    (0, 5): h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
    (0, 6): h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
    (0, 7): h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    (1, 0): h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    (1, 1): h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
    (1, 2): h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
    (1, 3): h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    (2, 0): h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    (2, 1): h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    (3, 0): h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
}
KAT_ROOTS = {
    0: h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    1: h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    2: h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    3: h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    4: h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    5: h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    6: h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    7: h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    8: h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
}
# (index, size, audit path)
KAT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]
# (old size, new size, consistency proof)
KAT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]


# --- RFC 9162 section 2.1, written out as the RFC states it (recursive, slow, obviously right) --


def rfc_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def rfc_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def rfc_split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_mth(entries: Sequence[bytes]) -> bytes:
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return rfc_leaf(entries[0])
    k = rfc_split(n)
    return rfc_node(rfc_mth(entries[:k]), rfc_mth(entries[k:]))


def rfc_path(m: int, entries: Sequence[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = rfc_split(n)
    if m < k:
        return rfc_path(m, entries[:k]) + [rfc_mth(entries[k:])]
    return rfc_path(m - k, entries[k:]) + [rfc_mth(entries[:k])]


def rfc_subproof(m: int, entries: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [rfc_mth(entries)]
    k = rfc_split(n)
    if m <= k:
        return rfc_subproof(m, entries[:k], b) + [rfc_mth(entries[k:])]
    return rfc_subproof(m - k, entries[k:], False) + [rfc_mth(entries[:k])]


MAX_SIZE = 64
ENTRIES = [b"document %d" % i + bytes(i % 5) for i in range(MAX_SIZE + 2)]
ROOTS = [rfc_mth(ENTRIES[:size]) for size in range(MAX_SIZE + 2)]
LEAF_HASHES = [rfc_leaf(entry) for entry in ENTRIES]


@cache
def expected_path(index: int, size: int) -> list[bytes]:
    return rfc_path(index, ENTRIES[:size])


@cache
def expected_consistency(old_size: int, new_size: int) -> list[bytes]:
    """PROOF(m, D[n]) for 0 < m < n; empty for the cases this module adds (m == 0, m == n)."""
    if old_size in (0, new_size):
        return []
    return rfc_subproof(old_size, ENTRIES[:new_size], True)


@pytest.fixture(scope="module")
def log64() -> MemoryLog:
    return MemoryLog(ENTRIES[:MAX_SIZE])


def altered_proofs(proof: list[bytes], *extra: bytes) -> list[list[bytes]]:
    """The proof shortened, lengthened, reordered or with one bit flipped, every way we test."""
    variants = [proof + [extra_hash] for extra_hash in (*extra, bytes(32))] + [[bytes(32), *proof]]
    if proof:
        variants += [proof[:-1], proof[1:], [proof[0], *proof]]
        if len(proof) > 1 and proof[::-1] != proof:
            variants.append(proof[::-1])
    for position, item in enumerate(proof):
        for byte, bit in ((0, 0), (31, 7), (position % 32, 3)):
            flipped = bytearray(item)
            flipped[byte] ^= 1 << bit
            variants.append(proof[:position] + [bytes(flipped)] + proof[position + 1 :])
    return variants


# --- Hashing and known answers ----------------------------------------------------------------


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == KAT_ROOTS[0]
    assert root_hash([]) == KAT_ROOTS[0]
    assert MemoryLog().root() == KAT_ROOTS[0]
    assert MemoryLog().size == 0


def test_leaves_and_nodes_are_hashed_with_distinct_prefixes() -> None:
    assert leaf_hash(b"") == KAT_SUBTREES[(0, 0)]
    assert node_hash(KAT_SUBTREES[(0, 0)], KAT_SUBTREES[(0, 1)]) == KAT_SUBTREES[(1, 0)]
    # Without the prefixes a two-leaf tree's root would be the hash of a 64-byte leaf.
    pair = KAT_SUBTREES[(0, 0)] + KAT_SUBTREES[(0, 1)]
    assert leaf_hash(pair) != node_hash(KAT_SUBTREES[(0, 0)], KAT_SUBTREES[(0, 1)])


@pytest.mark.parametrize("size", range(0, 9))
def test_known_roots_of_every_prefix(size: int) -> None:
    assert root_hash(KAT_LEAVES[:size]) == KAT_ROOTS[size]
    assert root_hash(iter(KAT_LEAVES[:size])) == KAT_ROOTS[size]
    assert MemoryLog(KAT_LEAVES[:size]).root() == KAT_ROOTS[size]
    assert MemoryLog(KAT_LEAVES).root(size) == KAT_ROOTS[size]


def test_known_complete_subtrees_are_kept_level_by_level() -> None:
    log = MemoryLog()
    for entry in KAT_LEAVES:
        log.append(entry)
    for (level, index), expected in KAT_SUBTREES.items():
        assert log.subtree(level, index) == expected
    nodes = list(KAT_SUBTREES)
    assert log.subtrees(nodes) == [KAT_SUBTREES[node] for node in nodes]


@pytest.mark.parametrize(("index", "size", "expected"), KAT_INCLUSION)
def test_known_inclusion_proofs(index: int, size: int, expected: list[bytes]) -> None:
    log = MemoryLog(KAT_LEAVES)
    proof = log.inclusion_proof(index, size)
    assert proof == expected
    assert verify_inclusion(leaf_hash(KAT_LEAVES[index]), index, size, proof, KAT_ROOTS[size]) is True
    assert MemoryLog(KAT_LEAVES[:size]).inclusion_proof(index) == expected


@pytest.mark.parametrize(("old_size", "new_size", "expected"), KAT_CONSISTENCY)
def test_known_consistency_proofs(old_size: int, new_size: int, expected: list[bytes]) -> None:
    log = MemoryLog(KAT_LEAVES)
    proof = log.consistency_proof(old_size, new_size)
    assert proof == expected
    assert verify_consistency(old_size, new_size, KAT_ROOTS[old_size], KAT_ROOTS[new_size], proof) is True
    assert MemoryLog(KAT_LEAVES[:new_size]).consistency_proof(old_size) == expected


# --- Agreement with the RFC's definitions, every tree of 1 to 64 entries -------------------------


def test_roots_match_the_rfc_definition_for_every_size(log64: MemoryLog) -> None:
    for size in range(MAX_SIZE + 1):
        assert root_hash(ENTRIES[:size]) == ROOTS[size]
        assert log64.root(size) == ROOTS[size]
    assert log64.root() == ROOTS[MAX_SIZE]


@pytest.mark.parametrize("size", range(1, MAX_SIZE + 1))
def test_inclusion_proofs_match_the_rfc_and_verify(log64: MemoryLog, size: int) -> None:
    for index in range(size):
        proof = log64.inclusion_proof(index, size)
        assert proof == expected_path(index, size)
        assert verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size]) is True


@pytest.mark.parametrize("size", range(1, MAX_SIZE + 1))
def test_inclusion_proofs_fail_for_anything_else(log64: MemoryLog, size: int) -> None:
    root = ROOTS[size]
    for index in range(size):
        leaf = LEAF_HASHES[index]
        proof = expected_path(index, size)
        # Another root, or another leaf (including the entry hashed without its leaf prefix).
        for other_root in (ROOTS[size - 1], ROOTS[size + 1], leaf, bytes(32)):
            if other_root != root:
                assert not verify_inclusion(leaf, index, size, proof, other_root)
        for other_leaf in (LEAF_HASHES[index + 1], hashlib.sha256(ENTRIES[index]).digest(), root):
            if other_leaf != leaf:
                assert not verify_inclusion(other_leaf, index, size, proof, root)
        # Another index: the same proof never places the leaf anywhere else.
        for other_index in range(size + 1):
            if other_index != index:
                assert not verify_inclusion(leaf, other_index, size, proof, root)
        # Another size, with that tree's root: only if this happens to be that tree's path too.
        for other_size in {size - 1, size + 1, size * 2, size // 2, size ^ 1} - {size}:
            if index < other_size <= MAX_SIZE + 1:
                same_path = proof == expected_path(index, other_size)
                assert verify_inclusion(leaf, index, other_size, proof, ROOTS[other_size]) is same_path
        for altered in altered_proofs(proof, root, leaf):
            assert not verify_inclusion(leaf, index, size, altered, root), altered


@pytest.mark.parametrize("new_size", range(1, MAX_SIZE + 1))
def test_consistency_proofs_match_the_rfc_and_verify(log64: MemoryLog, new_size: int) -> None:
    for old_size in range(new_size + 1):
        proof = log64.consistency_proof(old_size, new_size)
        assert proof == expected_consistency(old_size, new_size)
        assert verify_consistency(old_size, new_size, ROOTS[old_size], ROOTS[new_size], proof) is True


@pytest.mark.parametrize("new_size", range(1, MAX_SIZE + 1))
def test_consistency_proofs_fail_for_anything_else(new_size: int) -> None:
    new_root = ROOTS[new_size]
    for old_size in range(new_size + 1):
        old_root = ROOTS[old_size]
        proof = expected_consistency(old_size, new_size)
        for other_root in (ROOTS[old_size + 1], new_root, bytes(32)):
            if other_root != old_root:
                assert not verify_consistency(old_size, new_size, other_root, new_root, proof)
        # Any tree extends the empty one, so with old size 0 only the old root is checked.
        if old_size:
            for other_root in (ROOTS[new_size - 1], ROOTS[new_size + 1], old_root, bytes(32)):
                if other_root != new_root:
                    assert not verify_consistency(old_size, new_size, old_root, other_root, proof)
        if old_size != new_size:
            assert not verify_consistency(old_size, new_size, new_root, old_root, proof)
            assert not verify_consistency(new_size, old_size, new_root, old_root, proof)
        # Other sizes with their own roots: only if this happens to be their proof too.
        for other_old in {old_size - 1, old_size + 1, old_size ^ 1, old_size // 2, old_size * 2}:
            if 0 <= other_old <= new_size and other_old != old_size:
                same = proof == expected_consistency(other_old, new_size)
                assert verify_consistency(other_old, new_size, ROOTS[other_old], new_root, proof) is same
        for other_new in {new_size - 1, new_size + 1, new_size ^ 1, new_size * 2}:
            if old_size <= other_new <= MAX_SIZE + 1 and other_new != new_size:
                same = proof == expected_consistency(old_size, other_new)
                assert verify_consistency(old_size, other_new, old_root, ROOTS[other_new], proof) is same
        for altered in altered_proofs(proof, old_root, new_root):
            assert not verify_consistency(old_size, new_size, old_root, new_root, altered), altered


# --- Hostile input: refused with a precise reason, never an unexpected exception ------------------

GOOD_INCLUSION = {
    "leaf_hash": leaf_hash(KAT_LEAVES[5]),
    "index": 5,
    "size": 8,
    "proof": KAT_INCLUSION[2][2],
    "root": KAT_ROOTS[8],
}
GOOD_CONSISTENCY = {
    "old_size": 6,
    "new_size": 8,
    "old_root": KAT_ROOTS[6],
    "new_root": KAT_ROOTS[8],
    "proof": KAT_CONSISTENCY[2][2],
}
NOT_HASHES: list[Any] = [b"", bytes(31), bytes(33), "0" * 32, None, 0, 32, [bytes(32)], 1.5, object()]
NOT_SIZES: list[Any] = [-1, 2**64, 2**200, 1.0, "1", b"1", None, True, False, [1], object()]
NOT_PROOFS: list[Any] = [
    None,
    "proof",
    bytes(32),
    bytes(96),
    {0: bytes(32)},
    iter([bytes(32)] * 3),
    [None],
    [bytes(31)],
    ["x" * 32] * 3,
    [bytes(32), 7, bytes(32)],
    [bytearray(33)] * 3,
]


def inclusion_cases() -> list[tuple[dict[str, Any], str]]:
    cases: list[tuple[dict[str, Any], str]] = []
    for value in NOT_HASHES:
        cases += [({"leaf_hash": value}, "malformed_input"), ({"root": value}, "malformed_input")]
    for value in NOT_SIZES:
        cases += [({"index": value}, "malformed_input"), ({"size": value}, "malformed_input")]
    cases += [({"proof": value}, "malformed_input") for value in NOT_PROOFS]
    proof = GOOD_INCLUSION["proof"]
    cases += [
        ({"index": 8}, "index_out_of_range"),
        ({"index": 2**64 - 1}, "index_out_of_range"),
        ({"size": 5}, "index_out_of_range"),
        ({"index": 0, "size": 0, "proof": []}, "index_out_of_range"),
        ({"proof": proof[:2]}, "proof_too_short"),
        ({"proof": []}, "proof_too_short"),
        ({"proof": [*proof, bytes(32)]}, "proof_too_long"),
        ({"proof": [bytes(32)] * 66}, "proof_too_long"),
        ({"proof": [bytes(32)] * 1_000_000}, "proof_too_long"),
        ({"proof": [proof[1], proof[0], proof[2]]}, "root_mismatch"),
        ({"root": KAT_ROOTS[7]}, "root_mismatch"),
        ({"leaf_hash": leaf_hash(KAT_LEAVES[4])}, "root_mismatch"),
        ({"index": 4}, "root_mismatch"),
    ]
    return cases


def consistency_cases() -> list[tuple[dict[str, Any], str]]:
    cases: list[tuple[dict[str, Any], str]] = []
    for value in NOT_HASHES:
        cases += [({"old_root": value}, "malformed_input"), ({"new_root": value}, "malformed_input")]
    for value in NOT_SIZES:
        cases += [({"old_size": value}, "malformed_input"), ({"new_size": value}, "malformed_input")]
    cases += [({"proof": value}, "malformed_input") for value in NOT_PROOFS]
    proof = GOOD_CONSISTENCY["proof"]
    cases += [
        ({"old_size": 9}, "sizes_out_of_order"),
        ({"new_size": 0}, "sizes_out_of_order"),
        ({"old_size": 8, "proof": []}, "new_root_mismatch"),
        ({"old_size": 8, "old_root": KAT_ROOTS[8]}, "proof_too_long"),
        ({"old_size": 0, "old_root": KAT_ROOTS[0]}, "proof_too_long"),
        ({"old_size": 0, "proof": []}, "old_root_mismatch"),
        ({"old_size": 0, "new_size": 0, "old_root": KAT_ROOTS[0], "proof": []}, "new_root_mismatch"),
        ({"proof": []}, "proof_too_short"),
        ({"proof": proof[:2]}, "proof_too_short"),
        ({"proof": [*proof, bytes(32)]}, "proof_too_long"),
        ({"proof": [bytes(32)] * 1_000_000}, "proof_too_long"),
        ({"old_root": KAT_ROOTS[5]}, "old_root_mismatch"),
        ({"new_root": KAT_ROOTS[7]}, "new_root_mismatch"),
        ({"proof": [proof[0], proof[1], bytes(32)]}, "old_root_mismatch"),
        ({"proof": [proof[0], bytes(32), proof[2]]}, "new_root_mismatch"),
    ]
    return cases


def test_the_good_arguments_used_below_do_verify() -> None:
    check_inclusion(**GOOD_INCLUSION)
    check_consistency(**GOOD_CONSISTENCY)


@pytest.mark.parametrize(("change", "code"), inclusion_cases())
def test_hostile_inclusion_input_is_refused_with_a_reason(change: dict[str, Any], code: str) -> None:
    arguments = {**GOOD_INCLUSION, **change}
    assert verify_inclusion(**arguments) is False
    with pytest.raises(ProofError) as refused:
        check_inclusion(**arguments)
    assert refused.value.code == code
    assert isinstance(refused.value, ValueError)


@pytest.mark.parametrize(("change", "code"), consistency_cases())
def test_hostile_consistency_input_is_refused_with_a_reason(change: dict[str, Any], code: str) -> None:
    arguments = {**GOOD_CONSISTENCY, **change}
    assert verify_consistency(**arguments) is False
    with pytest.raises(ProofError) as refused:
        check_consistency(**arguments)
    assert refused.value.code == code


def test_root_mismatches_can_be_caught_together() -> None:
    with pytest.raises(merkle.RootMismatch):
        check_consistency(**{**GOOD_CONSISTENCY, "old_root": KAT_ROOTS[5]})
    with pytest.raises(merkle.RootMismatch):
        check_consistency(**{**GOOD_CONSISTENCY, "new_root": KAT_ROOTS[5]})


def test_the_empty_tree_is_consistent_with_every_tree() -> None:
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, []) is True
    assert verify_consistency(0, 8, EMPTY_ROOT, KAT_ROOTS[8], []) is True
    assert verify_consistency(0, 8, EMPTY_ROOT, KAT_ROOTS[8], ()) is True
    assert MemoryLog(KAT_LEAVES).consistency_proof(0) == []


def test_bytearrays_are_accepted_as_hashes() -> None:
    arguments = {**GOOD_INCLUSION, "root": bytearray(KAT_ROOTS[8]), "proof": tuple(GOOD_INCLUSION["proof"])}
    assert verify_inclusion(**arguments) is True


@pytest.mark.parametrize(
    ("make_proof", "error"),
    [
        (lambda log: log.inclusion_proof(8), merkle.IndexOutOfRange),
        (lambda log: log.inclusion_proof(0, 0), merkle.IndexOutOfRange),
        (lambda log: log.inclusion_proof(-1), merkle.MalformedInput),
        (lambda log: log.inclusion_proof("1"), merkle.MalformedInput),
        (lambda log: log.consistency_proof(9, 8), merkle.SizesOutOfOrder),
        (lambda log: log.consistency_proof(1, -8), merkle.MalformedInput),
        (lambda log: log.root(-1), merkle.MalformedInput),
        # Beyond what the store holds: the store's own LookupError.
        (lambda log: log.inclusion_proof(0, 9), LookupError),
        (lambda log: log.consistency_proof(3, 9), LookupError),
        (lambda log: log.root(9), LookupError),
    ],
)
def test_proofs_are_not_made_for_impossible_requests(
    make_proof: Callable[[MemoryLog], object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        make_proof(MemoryLog(KAT_LEAVES))


# --- The in-memory log --------------------------------------------------------------------------


def test_batches_and_single_appends_build_the_same_tree() -> None:
    entries = [b"entry %d" % i for i in range(1000)]
    one_by_one = MemoryLog()
    for index, entry in enumerate(entries):
        assert one_by_one.append(entry) == index
    batched = MemoryLog()
    rng = random.Random(9162)
    position = 0
    while position < len(entries):
        batch = entries[position : position + rng.choice([0, 1, 2, 3, 7, 64, 100, 255])]
        assert batched.extend(iter(batch)) == range(position, position + len(batch))
        position += len(batch)
        assert batched.root() == one_by_one.root(position)
    assert batched._levels == one_by_one._levels
    assert len(batched) == batched.size == 1000
    assert batched.root() == root_hash(entries) == rfc_mth(entries)


def test_earlier_roots_stay_available() -> None:
    entries = [b"%d" % i for i in range(300)]
    log = MemoryLog(entries)
    for size in range(301):
        assert log.root(size) == root_hash(entries[:size])


def test_each_complete_subtree_is_hashed_exactly_once(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = []
    real_sha256 = hashlib.sha256

    def counting_sha256(data: bytes) -> Any:
        hashed.append(data[:1])
        return real_sha256(data)

    monkeypatch.setattr(merkle, "_sha256", counting_sha256)
    log = MemoryLog()
    size = 0
    for batch in (1, 1, 2, 5, 1, 1000, 3, 1, 1024, 4096, 1):
        hashed.clear()
        log.extend(bytes(1) for _ in range(batch))
        new_nodes = (size + batch - (size + batch).bit_count()) - (size - size.bit_count())
        assert hashed.count(b"\x00") == batch
        assert hashed.count(b"\x01") == new_nodes
        size += batch


def test_a_failed_batch_adds_nothing() -> None:
    log = MemoryLog(KAT_LEAVES[:3])
    with pytest.raises(TypeError):
        log.extend([b"fine", "not bytes"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        log.append(None)  # type: ignore[arg-type]
    assert log.size == 3
    assert log.root() == KAT_ROOTS[3]


@pytest.mark.parametrize(("level", "index"), [(0, 5), (1, 2), (2, 1), (3, 0), (40, 0), (-1, 0), (0, -1)])
def test_incomplete_subtrees_are_not_in_the_store(level: int, index: int) -> None:
    log = MemoryLog(KAT_LEAVES[:5])
    with pytest.raises(LookupError):
        log.subtree(level, index)


def test_root_hash_does_not_recurse() -> None:
    entries = [i.to_bytes(4, "big") for i in range(100_003)]
    assert root_hash(entries) == MemoryLog(entries).root()


class CountingStore:
    """Wraps a store, counting the subtrees it is asked for and the calls made to it."""

    def __init__(self, inner: MemoryLog) -> None:
        self.inner = inner
        self.lookups = 0
        self.calls = 0

    def subtree(self, level: int, index: int) -> bytes:
        self.lookups += 1
        self.calls += 1
        return self.inner.subtree(level, index)

    def subtrees(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        self.lookups += len(nodes)
        self.calls += 1
        return self.inner.subtrees(nodes)


def test_a_store_answering_garbage_is_not_believed() -> None:
    class BrokenStore(CountingStore):
        def subtrees(self, nodes: Sequence[tuple[int, int]]) -> list[Any]:
            return [32 for _ in nodes]

    class ShortStore(CountingStore):
        def subtrees(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
            return super().subtrees(nodes)[:-1]

    class MemoryviewStore(CountingStore):
        def subtrees(self, nodes: Sequence[tuple[int, int]]) -> list[Any]:
            return [memoryview(digest) for digest in super().subtrees(nodes)]

    log = MemoryLog(KAT_LEAVES)
    for store in (BrokenStore(log), ShortStore(log)):
        with pytest.raises(LookupError):
            inclusion_proof(5, 8, store)
        with pytest.raises(LookupError):
            root_from_store(8, store)
    assert inclusion_proof(5, 8, MemoryviewStore(log)) == KAT_INCLUSION[2][2]


# --- Scale --------------------------------------------------------------------------------------

BIG = 1_000_000


@pytest.fixture(scope="module")
def big_log() -> MemoryLog:
    log = MemoryLog()
    batch = 1 << 16
    for start in range(0, BIG, batch):
        log.extend(i.to_bytes(4, "big") for i in range(start, min(start + batch, BIG)))
    return log


@pytest.mark.parametrize("index", [0, 1, 123_456, 524_287, 524_288, 786_431, 999_423, 999_424, 999_999])
def test_an_inclusion_proof_in_a_million_entries_needs_few_lookups(big_log: MemoryLog, index: int) -> None:
    store = CountingStore(big_log)
    root = root_from_store(BIG, store)
    assert store.lookups == BIG.bit_count() == 7
    store.lookups = store.calls = 0
    proof = inclusion_proof(index, BIG, store)
    assert store.calls == 1
    # One lookup per proof hash, except the single range on the tree's right edge, which is
    # folded from at most popcount(size) - 1 complete subtrees.
    assert len(proof) <= 20
    assert store.lookups <= len(proof) + BIG.bit_count() - 2 <= 25
    assert verify_inclusion(leaf_hash(index.to_bytes(4, "big")), index, BIG, proof, root) is True


@pytest.mark.parametrize("old_size", [1, 2, 3, 1000, 524_288, 524_289, 999_999])
def test_a_consistency_proof_in_a_million_entries_needs_few_lookups(
    big_log: MemoryLog, old_size: int
) -> None:
    store = CountingStore(big_log)
    proof = consistency_proof(old_size, BIG, store)
    assert store.calls == 1
    assert store.lookups <= len(proof) + BIG.bit_count() - 2 <= 26
    assert verify_consistency(old_size, BIG, big_log.root(old_size), big_log.root(), proof) is True
