"""Appending to the transparency log, and signing its tree heads.

Appends lock the log's single state row, so they are serialised across processes and positions
have no gaps; an append computes only the new leaves, the subtrees they complete and the new root.
Signing a tree head reads the committed (size, root) without that lock, so it never delays appends.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import struct
import time
from collections.abc import Sequence

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from joserfc import jws

from civicore.core import jose
from civicore.core.errors import ValidationFailed
from civicore.transparency.merkle import EMPTY_ROOT, node_hash
from civicore.transparency.models import LEAF_VERSION, EntryKind, LogEntry, LogState, Subtree, TreeHead

_DOCUMENT_HASH = re.compile(r"[0-9a-f]{64}")
_KINDS = frozenset(EntryKind.values)
# Rows per INSERT: an append of up to 1,000 entries (and the up to 2,000 subtrees it completes)
# takes one INSERT per table on PostgreSQL; SQLite's backend splits further (999 variables a query).
ENTRY_BATCH = 1000
SUBTREE_BATCH = 2000
_ENTRY_TABLE = LogEntry._meta.db_table
_SUBTREE_TABLE = Subtree._meta.db_table
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


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


def _leaf_hashes(entries: Sequence[tuple[str, str]], created_at: dt.datetime) -> list[bytes]:
    """The leaf hash of each (kind, document_hash) at ``created_at``: `models.leaf_data` unrolled,
    since every entry of a batch shares its time, so only the kind and the digest vary."""
    micros = struct.pack(">Q", (created_at - _EPOCH) // _MICROSECOND)
    prefixes = {
        kind: b"\x00" + struct.pack(">BB", LEAF_VERSION, len(kind)) + kind.encode("ascii") for kind in _KINDS
    }
    sha256, fromhex = hashlib.sha256, bytes.fromhex
    return [sha256(prefixes[kind] + fromhex(digest) + micros).digest() for kind, digest in entries]


def _copy_rows(table: str, columns: str, lines: list[str]) -> None:
    """One COPY of tab-separated text rows (PostgreSQL): no statement to parse, no parameters."""
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        copy.write("".join(lines))


def _insert(
    old_size: int,
    entries: list[tuple[str, str]],
    leaves: list[bytes],
    created_at: dt.datetime,
    subtrees: dict[int, tuple[int, list[bytes]]],
) -> None:
    if connection.vendor == "postgresql":
        # Text COPY: bytea as \\x<hex>, the time in ISO 8601 with its offset.
        stamp = created_at.isoformat()
        _copy_rows(
            _ENTRY_TABLE,
            "position, leaf_hash, kind, document_hash, created_at",
            [
                f"{old_size + offset}\t\\\\x{digest.hex()}\t{kind}\t{document_hash}\t{stamp}\n"
                for offset, (digest, (kind, document_hash)) in enumerate(zip(leaves, entries, strict=True))
            ],
        )
        _copy_rows(
            _SUBTREE_TABLE,
            'level, "index", hash',
            [
                f"{level}\t{first + offset}\t\\\\x{digest.hex()}\n"
                for level, (first, row) in subtrees.items()
                for offset, digest in enumerate(row)
            ],
        )
        return
    LogEntry.objects.bulk_create(
        [
            LogEntry(None, old_size + offset, digest, kind, document_hash, created_at)
            for offset, (digest, (kind, document_hash)) in enumerate(zip(leaves, entries, strict=True))
        ],
        batch_size=ENTRY_BATCH,
    )
    Subtree.objects.bulk_create(
        [
            Subtree(level=level, index=first + offset, hash=digest)
            for level, (first, row) in subtrees.items()
            for offset, digest in enumerate(row)
        ],
        batch_size=SUBTREE_BATCH,
    )


def log_append(*, entries: Sequence[tuple[str, str]]) -> list[LogEntry]:
    """Append (kind, document_hash) pairs in order, in the caller's transaction; return the entries.

    Nothing is written if one pair is refused. Costs O(k + log n) hashing for k entries on a log of
    n, and a fixed number of statements (on PostgreSQL one COPY per table; elsewhere one INSERT per
    table per batch of rows). The returned entries are built after the lock is released.
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
        leaves = _leaf_hashes(entries, created_at)
        new_size = old_size + len(leaves)
        frontier = _frontier(old_size)

        # Level by level, the new complete subtrees: hashes[level] holds those from index
        # first[level] on. A new node whose left child is old takes that child from the frontier.
        hashes: dict[int, list[bytes]] = {0: leaves}
        first: dict[int, int] = {0: old_size}
        level = 0
        sha256 = hashlib.sha256
        while True:
            row, start = hashes[level], first[level]
            if start & 1:
                row, start = [frontier[level], *row], start - 1
            above = [sha256(b"\x01" + row[i] + row[i + 1]).digest() for i in range(0, len(row) - 1, 2)]
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

        _insert(old_size, entries, leaves, created_at, {lvl: (first[lvl], hashes[lvl]) for lvl in hashes})
        state.size, state.root = new_size, root
        state.save(update_fields=["size", "root"])
    return [
        LogEntry(None, old_size + offset, digest, kind, document_hash, created_at)
        for offset, (digest, (kind, document_hash)) in enumerate(zip(leaves, entries, strict=True))
    ]


# --- Signed tree heads ------------------------------------------------------------------------

TREE_HEAD_TYPE = "tree-head+jwt"
TREE_HEAD_ALGORITHM = "ES256"


def log_id() -> str:
    """The log's identifier in every tree head: the platform's origin URL."""
    return str(settings.SITE_URL)


def _committed_state() -> tuple[int, bytes]:
    # The single state row as last committed: no lock, so appends carry on while a head is signed.
    row = LogState.objects.filter(pk=LogState.SINGLETON).values_list("size", "root").first()
    return (0, EMPTY_ROOT) if row is None else (row[0], bytes(row[1]))


def tree_head_sign_now() -> TreeHead:
    """Sign the log's current size and root with the platform's ES256 key and store the head."""
    size, root = _committed_state()
    latest = TreeHead.objects.order_by("-id").only("timestamp").first()
    # Strictly increasing timestamps, even when the clock steps back or two heads share a millisecond.
    timestamp = max(time.time_ns() // 1_000_000, latest.timestamp + 1 if latest else 0)
    key = jose.signing_key(TREE_HEAD_ALGORITHM)
    header = {"alg": TREE_HEAD_ALGORITHM, "kid": str(key.kid), "typ": TREE_HEAD_TYPE}
    payload = {
        "log": log_id(),
        "size": size,
        "root": base64.b64encode(root).decode("ascii"),
        "timestamp": timestamp,
    }
    token = jws.serialize_compact(
        header, json.dumps(payload, separators=(",", ":")), key, algorithms=[TREE_HEAD_ALGORITHM]
    )
    return TreeHead.objects.create(size=size, root=root, timestamp=timestamp, jws=token, kid=str(key.kid))


def tree_head_sign_if_due(*, max_age_seconds: float | None = None) -> TreeHead | None:
    """Sign a head when the log has grown since the latest one, or when that one is older than
    ``max_age_seconds`` (an hour by default), so watchers see the log is alive; else do nothing."""
    if max_age_seconds is None:
        max_age_seconds = float(getattr(settings, "TRANSPARENCY_TREE_HEAD_MAX_AGE_SECONDS", 3600))
    latest = TreeHead.objects.order_by("-id").only("size", "timestamp").first()
    if latest is not None:
        size, _root = _committed_state()
        age_ms = time.time_ns() // 1_000_000 - latest.timestamp
        if size == latest.size and age_ms < max_age_seconds * 1000:
            return None
    return tree_head_sign_now()
