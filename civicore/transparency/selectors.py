"""Reading the transparency log: its size and root, and proofs answered from stored subtrees.

A proof takes one query for its subtree hashes, whatever the log's size; an inclusion proof at
most three in all (state, entry, subtrees).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q
from django.utils.translation import gettext as _

from civicore.core.errors import NotFound, ValidationFailed
from civicore.transparency import merkle
from civicore.transparency.models import LogEntry, LogState, Subtree

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


def inclusion(position: int, size: int | None = None) -> InclusionProof:
    """The entry at ``position`` and its audit path in the tree of ``size`` entries (now, if None)."""
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
