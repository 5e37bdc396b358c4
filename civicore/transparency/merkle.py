"""Merkle trees of an append-only log, as RFC 9162 (Certificate Transparency 2.0) defines them.

Hashes are SHA-256 with the 0x00 leaf / 0x01 node prefixes; a log only grows, so every complete
subtree's hash never changes and is all a store needs to keep to prove inclusion and consistency.
Needs only the standard library (hashlib for SHA-256), so witnesses and other systems can embed it.

Proof generation asks a `SubtreeStore` for the hashes of complete (perfect) subtrees only, all of
one proof in a single batched call, and for at most ``len(proof) + popcount(size) - 1`` of them.

Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step. Two forms are offered:
``verify_inclusion`` / ``verify_consistency`` return True or False and never raise, whatever they
are given; ``check_inclusion`` / ``check_consistency`` return None or raise a `ProofError`
subclass whose ``code`` says precisely why the proof was refused:

    malformed_input      an argument has the wrong type, a hash is not 32 bytes, a size or index is
                         negative or not below 2**64, a proof is not a list or tuple of hashes
    index_out_of_range   leaf index >= tree size (so every inclusion claim about an empty tree)
    sizes_out_of_order   old size > new size
    proof_too_short      the proof ends before it reaches the root
    proof_too_long       the proof has hashes left over after reaching the root
    root_mismatch        the inclusion proof leads to another root
    old_root_mismatch    the consistency proof does not rebuild the old root
    new_root_mismatch    the consistency proof does not rebuild the new root (or, for equal sizes,
                         the two roots differ: two different trees of the same size)

Verification trusts the size and root it is given to belong together, as a signed tree head makes
them: paired with a root that is not that size's, the RFC's algorithm can accept a proof made for
a tree of another size.

RFC 9162 defines consistency proofs for 0 < old_size < new_size only. Beyond it, this module
treats old_size == new_size as consistent with an empty proof when the roots are equal, and
old_size == 0 as consistent with an empty proof when old_root is the empty tree's hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "IndexOutOfRange",
    "MalformedInput",
    "MemoryLog",
    "NewRootMismatch",
    "OldRootMismatch",
    "ProofError",
    "ProofTooLong",
    "ProofTooShort",
    "RootMismatch",
    "SizesOutOfOrder",
    "SubtreeStore",
    "check_consistency",
    "check_inclusion",
    "fold_covers",
    "consistency_proof",
    "inclusion_proof",
    "inclusion_proof_covers",
    "leaf_hash",
    "node_hash",
    "root_from_store",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# Tree sizes and indices are uint64 in RFC 9162; bounding them also bounds every loop below.
_SIZE_LIMIT = 1 << 64
# No valid proof for a tree of fewer than 2**64 leaves has more hashes than this; longer ones are
# refused before their elements are even looked at.
_MAX_PROOF_LENGTH = 65

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256


# --- Hashing (RFC 9162 section 2.1.1) ---------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """The hash of one log entry: SHA-256(0x00 || data)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def root_hash(entries: Iterable[bytes]) -> bytes:
    """MTH of the entries, in O(n) time and O(log n) memory, without recursion.

    Keeps the roots of the complete subtrees seen so far (sizes strictly decreasing, like the
    binary digits of the count) and joins them right to left at the end, which is how MTH splits
    a list at the largest power of two smaller than its length.
    """
    stack: list[tuple[int, bytes]] = []
    for entry in entries:
        level, digest = 0, leaf_hash(entry)
        while stack and stack[-1][0] == level:
            digest = node_hash(stack.pop()[1], digest)
            level += 1
        stack.append((level, digest))
    if not stack:
        return EMPTY_ROOT
    return _fold_right([digest for _, digest in stack])


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    digest = hashes[-1]
    for left in reversed(hashes[:-1]):
        digest = node_hash(left, digest)
    return digest


# --- Errors -----------------------------------------------------------------------------------


class ProofError(ValueError):
    """A proof, or a request for one, was refused; ``code`` is stable and machine-readable."""

    code = "proof_error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = str(self)


class MalformedInput(ProofError):
    """An argument has the wrong type, length or range."""

    code = "malformed_input"


class IndexOutOfRange(ProofError):
    """The leaf index is not below the tree size."""

    code = "index_out_of_range"


class SizesOutOfOrder(ProofError):
    """The old tree size is larger than the new one."""

    code = "sizes_out_of_order"


class ProofTooShort(ProofError):
    """The proof ends before reaching the root."""

    code = "proof_too_short"


class ProofTooLong(ProofError):
    """The proof has hashes left over after reaching the root."""

    code = "proof_too_long"


class RootMismatch(ProofError):
    """The proof does not lead to the given root."""

    code = "root_mismatch"


class OldRootMismatch(RootMismatch):
    """The consistency proof does not rebuild the old root."""

    code = "old_root_mismatch"


class NewRootMismatch(RootMismatch):
    """The consistency proof does not rebuild the new root."""

    code = "new_root_mismatch"


def _require_size(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _SIZE_LIMIT:
        raise MalformedInput(f"{name} must be an integer from 0 to 2**64 - 1")
    return value


def _require_hash(value: object, name: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise MalformedInput(f"{name} must be {HASH_SIZE} bytes")
    return bytes(value)


def _require_proof(proof: object) -> list[bytes]:
    if not isinstance(proof, list | tuple):
        raise MalformedInput("proof must be a list or tuple of hashes")
    if len(proof) > _MAX_PROOF_LENGTH:
        raise ProofTooLong(f"proof has {len(proof)} hashes; no valid proof has more than {_MAX_PROOF_LENGTH}")
    return [_require_hash(item, f"proof[{position}]") for position, item in enumerate(proof)]


# --- Stores of complete subtrees --------------------------------------------------------------


class SubtreeStore(Protocol):
    """Hashes of complete subtrees of one append-only log.

    ``(level, index)`` names the perfect subtree over leaves [index * 2**level, (index + 1) *
    2**level); level 0 holds the leaf hashes. A store raises LookupError for a subtree that is not
    complete (yet) in the log it holds.
    """

    def subtree(self, level: int, index: int) -> bytes:
        """The root hash of one complete subtree."""
        ...

    def subtrees(self, nodes: Sequence[tuple[int, int]]) -> Sequence[bytes]:
        """The root hashes of many complete subtrees, in the order asked (one query for a database)."""
        ...


def _perfect_cover(start: int, end: int) -> list[tuple[int, int]]:
    """The complete subtrees that tile leaves [start, end), left to right, largest first.

    Only for ranges MTH itself splits off, whose ``start`` is a multiple of a power of two at
    least as large as the range: each piece is then the largest power of two that fits, and the
    right-to-left fold of their hashes is the MTH of the range.
    """
    nodes = []
    while start < end:
        level = (end - start).bit_length() - 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def _range_hashes(ranges: Sequence[tuple[int, int]], store: SubtreeStore) -> list[bytes]:
    """MTH of each leaf range, fetching every subtree needed in one batched store call."""
    covers = [_perfect_cover(start, end) for start, end in ranges]
    wanted = [node for cover in covers for node in cover]
    return fold_covers(covers, list(store.subtrees(wanted)) if wanted else [])


def fold_covers(covers: Sequence[Sequence[tuple[int, int]]], answer: Sequence[object]) -> list[bytes]:
    """The MTH of each range from the hashes of the complete subtrees tiling it (``answer``, in
    the order of the covers' nodes, as a store gave them)."""
    wanted = sum(len(cover) for cover in covers)
    # A database driver may hand back memoryview or bytearray for a binary column.
    if not all(isinstance(digest, bytes | bytearray | memoryview) for digest in answer):
        raise LookupError("the store answered something other than bytes")
    found = [bytes(digest) for digest in answer]  # type: ignore[call-overload]
    if len(found) != wanted or any(len(digest) != HASH_SIZE for digest in found):
        raise LookupError(f"the store did not answer {wanted} hashes of {HASH_SIZE} bytes")
    hashes, position = [], 0
    for cover in covers:
        hashes.append(_fold_right(found[position : position + len(cover)]))
        position += len(cover)
    return hashes


def _split(count: int) -> int:
    """The largest power of two smaller than count (count >= 2)."""
    return 1 << ((count - 1).bit_length() - 1)


def root_from_store(size: int, store: SubtreeStore) -> bytes:
    """MTH of the first ``size`` leaves of the store's log, from at most popcount(size) lookups."""
    _require_size(size, "size")
    if size == 0:
        return EMPTY_ROOT
    return _range_hashes([(0, size)], store)[0]


# --- Proof generation (RFC 9162 sections 2.1.3.1 and 2.1.4.1) ---------------------------------
#
# PATH and SUBPROOF recurse on the split of a range at the largest power of two below its
# length, appending one sibling MTH per level. Both are walked here from the root down without
# recursion; every left part is a complete subtree, and at most one right part (the one on the
# tree's right edge) is not, whose MTH is folded from the complete subtrees tiling it.


def inclusion_proof(index: int, size: int, store: SubtreeStore) -> list[bytes]:
    """PATH(index, D[0:size]): the audit path of leaf ``index`` in the tree of ``size`` leaves."""
    return _range_hashes(_inclusion_ranges(index, size), store)


def inclusion_proof_covers(index: int, size: int) -> list[list[tuple[int, int]]]:
    """The complete subtrees PATH(index, D[0:size]) is folded from, one list per proof hash: for
    a store that fetches them with other data, then `fold_covers` gives the proof."""
    return [_perfect_cover(start, end) for start, end in _inclusion_ranges(index, size)]


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    _require_size(index, "index")
    _require_size(size, "size")
    if index >= size:
        raise IndexOutOfRange(f"leaf {index} is not in a tree of {size} leaves")
    siblings: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            siblings.append((middle, end))
            end = middle
        else:
            siblings.append((start, middle))
            start = middle
    siblings.reverse()
    return siblings


def consistency_proof(old_size: int, new_size: int, store: SubtreeStore) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]); empty when old_size is 0 or equals new_size."""
    _require_size(old_size, "old_size")
    _require_size(new_size, "new_size")
    if old_size > new_size:
        raise SizesOutOfOrder(f"old size {old_size} is larger than new size {new_size}")
    if old_size in (0, new_size):
        return []
    parts: list[tuple[int, int]] = []
    start, end = 0, new_size
    # RFC 9162's flag b: the current range is still the old tree's own root, which the verifier
    # already has, so it is left out of the proof.
    whole_old_tree = True
    # Invariant: start < old_size <= end, so the walk stops at a range ending at old_size.
    while old_size != end:
        middle = start + _split(end - start)
        if old_size <= middle:
            parts.append((middle, end))
            end = middle
        else:
            parts.append((start, middle))
            start = middle
            whole_old_tree = False
    if not whole_old_tree:
        parts.append((start, end))
    parts.reverse()
    return _range_hashes(parts, store)


# --- Verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) -------------------------------------


def check_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Return if ``proof`` shows the leaf at ``index`` in the tree (size, root); else raise ProofError."""
    digest = _require_hash(leaf_hash, "leaf_hash")
    expected = _require_hash(root, "root")
    fn = _require_size(index, "index")
    size = _require_size(size, "size")
    path = _require_proof(proof)
    if fn >= size:
        raise IndexOutOfRange(f"leaf {fn} is not in a tree of {size} leaves")
    sn = size - 1
    for sibling in path:
        if sn == 0:
            raise ProofTooLong()
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            digest = node_hash(digest, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofTooShort()
    if digest != expected:
        raise RootMismatch()


def check_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Return if ``proof`` shows tree (old_size, old_root) is a prefix of (new_size, new_root);
    else raise ProofError."""
    first = _require_size(old_size, "old_size")
    second = _require_size(new_size, "new_size")
    first_hash = _require_hash(old_root, "old_root")
    second_hash = _require_hash(new_root, "new_root")
    path = _require_proof(proof)
    if first > second:
        raise SizesOutOfOrder(f"old size {first} is larger than new size {second}")
    if first == 0 or first == second:
        if path:
            raise ProofTooLong("this proof must be empty")
        if first == 0 and first_hash != EMPTY_ROOT:
            raise OldRootMismatch("the root of the empty tree is SHA-256 of nothing")
        if first == second and first_hash != second_hash:
            raise NewRootMismatch("two different trees of the same size")
        return
    if not path:
        raise ProofTooShort()
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for sibling in path[1:]:
        if sn == 0:
            raise ProofTooLong()
        if fn & 1 or fn == sn:
            fr = node_hash(sibling, fr)
            sr = node_hash(sibling, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofTooShort()
    if fr != first_hash:
        raise OldRootMismatch()
    if sr != second_hash:
        raise NewRootMismatch()


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """True if ``proof`` shows the leaf at ``index`` in the tree (size, root); never raises."""
    try:
        check_inclusion(leaf_hash, index, size, proof, root)
    except ProofError:
        return False
    return True


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True if ``proof`` shows (old_size, old_root) is a prefix of (new_size, new_root); never raises."""
    try:
        check_consistency(old_size, new_size, old_root, new_root, proof)
    except ProofError:
        return False
    return True


# --- An in-memory log -------------------------------------------------------------------------


class MemoryLog:
    """An append-only log in memory keeping every complete subtree's hash, level by level.

    Level L is one bytearray of the 32-byte hashes of its complete subtrees, left to right, so a
    log of n entries holds under 2n hashes (64 MB for a million entries). Appending k entries
    computes k leaf hashes and fewer than k node hashes. Not safe to share between threads
    without a lock.
    """

    def __init__(self, entries: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self.extend(entries)

    @property
    def size(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    def __len__(self) -> int:
        return self.size

    def append(self, entry: bytes) -> int:
        """Add one entry; return its index."""
        return self.extend((entry,)).start

    def extend(self, entries: Iterable[bytes]) -> range:
        """Add entries in order; return their indices. Nothing is added if one is not bytes."""
        start = self.size
        hashes = b"".join([_sha256(_LEAF_PREFIX + entry).digest() for entry in entries])
        self._levels[0] += hashes
        self._complete_subtrees()
        return range(start, self.size)

    def _complete_subtrees(self) -> None:
        level = 0
        while len(self._levels[level]) >= 2 * HASH_SIZE:
            if level + 1 == len(self._levels):
                self._levels.append(bytearray())
            below, above = self._levels[level], self._levels[level + 1]
            done = len(above) // HASH_SIZE
            complete = len(below) // (2 * HASH_SIZE)
            if done == complete:
                break  # nothing new at this level, so nothing new above it either
            pair = 2 * HASH_SIZE
            above += b"".join(
                [
                    _sha256(_NODE_PREFIX + below[offset : offset + pair]).digest()
                    for offset in range(done * pair, complete * pair, pair)
                ]
            )
            level += 1

    def subtree(self, level: int, index: int) -> bytes:
        if type(level) is not int or type(index) is not int or level < 0 or index < 0:
            raise LookupError(f"no subtree ({level!r}, {index!r})")
        if level >= len(self._levels) or (index + 1) * HASH_SIZE > len(self._levels[level]):
            raise LookupError(f"subtree ({level}, {index}) is not complete in a log of {self.size} entries")
        offset = index * HASH_SIZE
        return bytes(self._levels[level][offset : offset + HASH_SIZE])

    def subtrees(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        return [self.subtree(level, index) for level, index in nodes]

    def root(self, size: int | None = None) -> bytes:
        """MTH of the whole log, or of its first ``size`` entries."""
        return root_from_store(self.size if size is None else size, self)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return consistency_proof(old_size, self.size if new_size is None else new_size, self)
