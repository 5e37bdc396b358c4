"""Reading the transparency log: its size and root, proofs answered from stored subtrees, its
entries and its signed tree heads.

A proof takes one query for its subtree hashes, whatever the log's size; an inclusion proof at
most three in all (state, entry, subtrees). The public interfaces prove only to signed heads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from civicore.core import rowsql
from civicore.core.errors import NotFound, ValidationFailed
from civicore.transparency import merkle
from civicore.transparency.models import LogEntry, LogState, Subtree, TreeHead

# Two variables a node, well under SQLite's 999 a query.
_SQLITE_NODES_PER_QUERY = 400


class DatabaseStore:
    """The stored log's complete subtrees, as a `merkle.SubtreeStore`."""

    def subtree(self, level: int, index: int) -> bytes:
        return self.subtrees([(level, index)])[0]

    def subtrees(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        nodes = [(int(level), int(index)) for level, index in nodes]
        if not nodes:
            return []
        if connection.vendor == "postgresql":
            found = self._postgresql(nodes)
        else:
            found = {}
            unique = list(dict.fromkeys(nodes))
            for start in range(0, len(unique), _SQLITE_NODES_PER_QUERY):
                condition = Q()
                for level, index in unique[start : start + _SQLITE_NODES_PER_QUERY]:
                    condition |= Q(level=level, index=index)
                for level, index, digest in Subtree.objects.filter(condition).values_list(
                    "level", "index", "hash"
                ):
                    found[(level, index)] = bytes(digest)
        missing = [node for node in nodes if node not in found]
        if missing:
            raise LookupError(f"subtrees {missing[:5]} are not complete in the stored log")
        return [found[node] for node in nodes]

    @staticmethod
    def _postgresql(nodes: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        table = connection.ops.quote_name(Subtree._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT s.level, s."index", s.hash FROM {table} s '  # noqa: S608 - table name from the model
                'JOIN unnest(%s::smallint[], %s::bigint[]) AS wanted(level, "index") '
                'ON s.level = wanted.level AND s."index" = wanted."index"',
                [[level for level, _ in nodes], [index for _, index in nodes]],
            )
            return {(level, index): bytes(digest) for level, index, digest in cursor.fetchall()}


@dataclass(frozen=True)
class InclusionProof:
    entry: LogEntry
    size: int
    proof: list[bytes]


def state() -> tuple[int, bytes]:
    """The log's current (size, root); (0, the empty tree's root) before the first append."""
    row = LogState.objects.filter(pk=LogState.SINGLETON).values_list("size", "root").first()
    if row is None:
        return 0, merkle.EMPTY_ROOT
    return row[0], bytes(row[1])


def _require_size(size: int | None, current: int, name: str) -> int:
    if size is None:
        return current
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= current:
        raise ValidationFailed(
            _("The log has no tree of that size."),
            code="tree_size_out_of_range",
            details={name: size, "log_size": current},
        )
    return size


_ENTRY_COLUMNS = ("id", "position", "leaf_hash", "kind", "document_hash", "created_at")


def _inclusion_one_query(position: int, size: int) -> InclusionProof:
    """`inclusion` on PostgreSQL in one round trip: the log's size, the entry and the path's
    subtree hashes together (a proof in a log of a million entries is then well under 1 ms)."""
    covers = merkle.inclusion_proof_covers(position, size)
    nodes = [node for cover in covers for node in cover]
    entries = connection.ops.quote_name(LogEntry._meta.db_table)
    subtrees = connection.ops.quote_name(Subtree._meta.db_table)
    states = connection.ops.quote_name(LogState._meta.db_table)
    # Prepared once per connection (rowsql.cursor): planning this join costs more than running it.
    with rowsql.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT size FROM {states} WHERE id = %s), "  # noqa: S608 - table names from the models
            f"{', '.join(f'e.{column}' for column in _ENTRY_COLUMNS)}, "
            f"ARRAY(SELECT s.hash FROM unnest(%s::smallint[], %s::bigint[]) WITH ORDINALITY "
            f'AS wanted(level, "index", n) JOIN {subtrees} s ON s.level = wanted.level '
            f'AND s."index" = wanted."index" ORDER BY wanted.n) '
            f"FROM (SELECT 1) AS one LEFT JOIN {entries} e ON e.position = %s",
            # Arrays as text literals: the parameter types then never vary with the values, so
            # the prepared statement is reused instead of prepared again.
            [
                LogState.SINGLETON,
                "{" + ",".join(str(level) for level, _ in nodes) + "}",
                "{" + ",".join(str(index) for _, index in nodes) + "}",
                position,
            ],
        )
        row = cursor.fetchone()
    if row is None:  # the query always answers one row
        raise LookupError("the log's proof query answered nothing")
    current = row[0] or 0
    _require_size(size, current, "size")
    if row[1] is None:
        raise NotFound(
            _("There is no such entry in the log."),
            code="log_entry_not_found",
            details={"position": position, "size": size},
        )
    entry = LogEntry.from_db(connection.alias, list(_ENTRY_COLUMNS), row[1:7])
    # fold_covers refuses an answer short of any node: a subtree not complete in the stored log.
    return InclusionProof(entry=entry, size=size, proof=merkle.fold_covers(covers, row[7]))


def inclusion(position: int, size: int | None = None) -> InclusionProof:
    """The entry at ``position`` and its audit path in the tree of ``size`` entries (now, if None)."""
    if (
        connection.vendor == "postgresql"
        and type(size) is int
        and type(position) is int
        and 0 <= position < size < 1 << 63
    ):
        return _inclusion_one_query(position, size)
    current, _root = state()
    tree_size = _require_size(size, current, "size")
    entry = LogEntry.objects.filter(position=position).first() if 0 <= position < tree_size else None
    if entry is None:
        raise NotFound(
            _("There is no such entry in the log."),
            code="log_entry_not_found",
            details={"position": position, "size": tree_size},
        )
    return InclusionProof(
        entry=entry, size=tree_size, proof=merkle.inclusion_proof(position, tree_size, DatabaseStore())
    )


def consistency(old_size: int, new_size: int | None = None) -> list[bytes]:
    """The proof that the tree of ``old_size`` entries is a prefix of that of ``new_size`` (now, if None)."""
    current, _root = state()
    second = _require_size(new_size, current, "new_size")
    first = _require_size(old_size, second, "old_size")
    return merkle.consistency_proof(first, second, DatabaseStore())


def root(size: int | None = None) -> bytes:
    """The root of the tree of ``size`` entries (the current one, if None)."""
    current, current_root = state()
    tree_size = _require_size(size, current, "size")
    if tree_size == current:
        return current_root
    return merkle.root_from_store(tree_size, DatabaseStore())


# --- Signed tree heads and entries, as the public API and page show them -----------------------

MAX_ENTRIES = 1000


def tree_heads() -> QuerySet[TreeHead]:
    """Every signed head, newest first."""
    return TreeHead.objects.order_by("-id")


def tree_head_latest() -> TreeHead:
    head = tree_heads().first()
    if head is None:
        raise NotFound(_("The log has not signed a tree head yet."), code="tree_head_not_found")
    return head


def tree_head_of_size(size: int) -> TreeHead:
    """The latest head signed for a log of ``size`` entries; 404 for a size never signed."""
    head = tree_heads().filter(size=size).first() if 0 <= size < 1 << 63 else None
    if head is None:
        raise NotFound(
            _("No tree head was signed for a log of this size."),
            code="tree_head_not_found",
            details={"size": size},
        )
    return head


def head_consistency(first: int, second: int) -> list[bytes]:
    """The consistency proof between two signed sizes."""
    if first > second:
        raise ValidationFailed(
            _("The first tree size must not be larger than the second."),
            code="tree_size_out_of_range",
            details={"first": first, "second": second},
        )
    tree_head_of_size(second)
    tree_head_of_size(first)
    return consistency(first, second)


def head_inclusion(
    *,
    size: int | None,
    position: int | None = None,
    document_hash: str | None = None,
    kind: str | None = None,
) -> InclusionProof:
    """The inclusion proof of an entry, found by position or by document hash (and kind), in the
    tree of a signed head (the latest, if ``size`` is None)."""
    tree_size = tree_head_latest().size if size is None else tree_head_of_size(size).size
    if position is None:
        found = LogEntry.objects.filter(document_hash=document_hash, position__lt=tree_size)
        if kind:
            found = found.filter(kind=kind)
        position = found.order_by("position").values_list("position", flat=True).first()
        if position is None:
            raise NotFound(
                _("There is no such entry in the log."),
                code="log_entry_not_found",
                details={"document_hash": document_hash, "kind": kind, "size": tree_size},
            )
    return inclusion(position, tree_size)


def entries(start: int, end: int | None = None) -> list[LogEntry]:
    """Entries at positions [start, end), at most MAX_ENTRIES, cut at the log's current size."""
    size, _root = state()
    if end is None:
        end = start + MAX_ENTRIES
    if not 0 <= start <= end or start > size:
        raise ValidationFailed(
            _("Ask for entries from a start position up to an end position, within the log."),
            code="entry_range_out_of_range",
            details={"start": start, "end": end, "log_size": size},
        )
    if end - start > MAX_ENTRIES:
        raise ValidationFailed(
            _("At most %(max)d entries can be read at once.") % {"max": MAX_ENTRIES},
            code="entry_range_too_large",
            details={"start": start, "end": end, "max": MAX_ENTRIES},
        )
    return list(
        LogEntry.objects.filter(position__gte=start, position__lt=min(end, size)).order_by("position")
    )


def latest_entries(*, offset: int, limit: int) -> list[LogEntry]:
    """The newest entries, newest first, skipping the ``offset`` newest (by position, not OFFSET)."""
    size, _root = state()
    high = size - offset
    return list(LogEntry.objects.filter(position__lt=high, position__gte=high - limit).order_by("-position"))
