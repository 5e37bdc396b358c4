"""Appending to the transparency log.

Appends lock the log's single state row, so they are serialised across processes and positions
have no gaps; an append computes only the new leaves, the subtrees they complete and the new root.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.core.errors import ValidationFailed
from civicore.transparency.merkle import leaf_hash, node_hash
from civicore.transparency.models import EntryKind, LogEntry, LogState, Subtree, leaf_data

_DOCUMENT_HASH = re.compile(r"[0-9a-f]{64}")
_KINDS = frozenset(EntryKind.values)
# Rows per INSERT: an append of up to 1,000 entries (and the up to 2,000 subtrees it completes)
# takes one INSERT per table on PostgreSQL; SQLite's backend splits further (999 variables a query).
ENTRY_BATCH = 1000
SUBTREE_BATCH = 2000


def _validate(entries: Sequence[tuple[str, str]]) -> None:
    for number, (kind, document_hash) in enumerate(entries):
        if kind not in _KINDS:
            raise ValidationFailed(
                _("There is no such kind of log entry."),
                code="unknown_entry_kind",
                details={"entry": number, "kind": kind},
            )
        if not isinstance(document_hash, str) or not _DOCUMENT_HASH.fullmatch(document_hash):
            raise ValidationFailed(
                _("A document hash is 64 lowercase hexadecimal characters."),
                code="invalid_document_hash",
                details={"entry": number},
            )


def _locked_state() -> LogState:
    state = LogState.objects.select_for_update().filter(pk=LogState.SINGLETON).first()
    if state is None:
        # First append ever: a concurrent first append blocks on the primary key, then finds it.
        state, _created = LogState.objects.select_for_update().get_or_create(pk=LogState.SINGLETON)
    return state


def _frontier(size: int) -> dict[int, bytes]:
    """The right edge of a log of ``size`` leaves: the complete subtree at each level whose bit is
    set in ``size`` (the cover of [0, size)), by level, read in one query."""
    nodes = [(level, (size >> level) - 1) for level in range(size.bit_length()) if size >> level & 1]
    if not nodes:
        return {}
    condition = Q()
    for level, index in nodes:
        condition |= Q(level=level, index=index)
    found = {
        level: bytes(digest)
        for level, digest in Subtree.objects.filter(condition).values_list("level", "hash")
    }
    if len(found) != len(nodes):
        raise LookupError(f"the stored log of {size} entries is missing right-edge subtrees")
    return found


def log_append(*, entries: Sequence[tuple[str, str]]) -> list[LogEntry]:
    """Append (kind, document_hash) pairs in order, in the caller's transaction; return the entries.

    Nothing is written if one pair is refused. Costs O(k + log n) hashing for k entries on a log of
    n, and a fixed number of queries (one INSERT per table per batch of rows).
    """
    entries = list(entries)
    _validate(entries)
    if not entries:
        return []
    with transaction.atomic():
        state = _locked_state()
        old_size = state.size
        # Taken under the lock, so created_at never decreases along positions.
        created_at = timezone.now()
        rows = []
        leaves = []
        for offset, (kind, document_hash) in enumerate(entries):
            digest = leaf_hash(leaf_data(kind, document_hash, created_at))
            leaves.append(digest)
            rows.append(
                LogEntry(
                    position=old_size + offset,
                    leaf_hash=digest,
                    kind=kind,
                    document_hash=document_hash,
                    created_at=created_at,
                )
            )
        new_size = old_size + len(leaves)
        frontier = _frontier(old_size)

        # Level by level, the new complete subtrees: hashes[level] holds those from index
        # first[level] on. A new node whose left child is old takes that child from the frontier.
        hashes: dict[int, list[bytes]] = {0: leaves}
        first: dict[int, int] = {0: old_size}
        level = 0
        while True:
            row, start = hashes[level], first[level]
            if start & 1:
                row, start = [frontier[level], *row], start - 1
            above = [node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
            if not above:
                break
            hashes[level + 1], first[level + 1] = above, start >> 1
            level += 1

        def node(level: int, index: int) -> bytes:
            if level in first and index >= first[level]:
                return hashes[level][index - first[level]]
            return frontier[level]  # the last complete node of an old level is on the old edge

        cover = [
            node(level, (new_size >> level) - 1)
            for level in reversed(range(new_size.bit_length()))
            if new_size >> level & 1
        ]
        root = cover[-1]
        for left in reversed(cover[:-1]):
            root = node_hash(left, root)

        LogEntry.objects.bulk_create(rows, batch_size=ENTRY_BATCH)
        Subtree.objects.bulk_create(
            [
                Subtree(level=level, index=first[level] + offset, hash=digest)
                for level, row in hashes.items()
                for offset, digest in enumerate(row)
            ],
            batch_size=SUBTREE_BATCH,
        )
        state.size, state.root = new_size, root
        state.save(update_fields=["size", "root"])
    return rows
