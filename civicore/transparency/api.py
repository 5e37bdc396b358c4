"""The transparency log under /api/v1/transparency: public, no login, read-only.

Anyone can fetch the signed tree heads, the log's entries and proofs that an entry is in a signed
tree and that each signed tree extends the previous one. Hashes in answers are base64 of the 32
bytes (RFC 9162's JSON form), except document hashes, which are hex as people paste them.
Proofs are only given to sizes the log has signed a head for: a proof means nothing without one.
"""

from __future__ import annotations

import base64
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from civicore.core.errors import ValidationFailed
from civicore.core.pagination import paginate
from civicore.core.schemas import errors
from civicore.transparency import selectors, services
from civicore.transparency.models import EntryKind, LogEntry, TreeHead

router = Router(tags=["transparency"])

# Sizes and positions are uint64 in RFC 9162; PostgreSQL's bigint stops at 2**63 - 1.
_MAX = (1 << 63) - 1
_ROOT_EXAMPLE = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
_DOC_EXAMPLE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
_HEAD_EXAMPLE: dict[str, Any] = {
    "log": "https://dichvucong.example.gov.vn",
    "size": 1024,
    "root": _ROOT_EXAMPLE,
    "timestamp": 1796544000000,
    "kid": "f1lJqk3Vv8m0q7N2d2eYc1x5rDk5WJ3ux6lHhxPZpUY",
    "jws": "eyJhbGciOiJFUzI1NiIsImtpZCI6ImYxbEpxazNWdjhtMHE3TjJkMmVZYzF4NXJEazVXSjN1eDZsSGh4UFpwVVkiLCJ0eXAi"
    "OiJ0cmVlLWhlYWQrand0In0.eyJsb2ciOi4uLn0.c2lnbmF0dXJl",
}


def _b64(digest: bytes | memoryview) -> str:
    return base64.b64encode(bytes(digest)).decode("ascii")


class TreeHeadOut(Schema):
    """A signed tree head. ``jws`` is the compact JWS as issued (header ``typ: tree-head+jwt``,
    ES256, ``kid`` a key of /.well-known/jwks.json); its payload holds ``log``, ``size``, ``root``
    and ``timestamp``, which are repeated here for convenience. Verify the JWS, not these."""

    model_config = {"json_schema_extra": {"examples": [_HEAD_EXAMPLE]}}

    log: str = Field(description="The log's identifier: the platform's origin URL.")
    size: int = Field(description="Number of entries in the tree.")
    root: str = Field(description="Base64 of the tree's 32-byte RFC 9162 root hash.")
    timestamp: int = Field(description="When the head was signed, in milliseconds since 1970-01-01 UTC.")
    kid: str = Field(description="The signing key's id in /.well-known/jwks.json.")
    jws: str = Field(description="The signed head, a compact JWS.")


class TreeHeadListOut(Schema):
    items: list[TreeHeadOut]
    next_cursor: str | None = None


class TreeHeadQuery(Schema):
    size: int | None = Field(None, ge=0, le=_MAX, description="Only the heads signed for this tree size.")
    cursor: str | None = Field(None, max_length=2000)
    limit: int = Field(20, ge=1, le=100)


class ConsistencyQuery(Schema):
    first: int = Field(ge=0, le=_MAX, description="The older tree size (a size some head was signed for).")
    second: int = Field(ge=0, le=_MAX, description="The newer tree size (a size some head was signed for).")


class ConsistencyOut(Schema):
    model_config = {
        "json_schema_extra": {"examples": [{"first": 500, "second": 1024, "proof": [_ROOT_EXAMPLE]}]}
    }

    first: int
    second: int
    proof: list[str] = Field(description="RFC 9162 consistency proof: base64 hashes, in order.")


class InclusionQuery(Schema):
    position: int | None = Field(None, ge=0, le=_MAX, description="The entry's position (0-based).")
    hash: str | None = Field(
        None,
        min_length=64,
        max_length=64,
        pattern="^[0-9a-f]{64}$",
        description="Instead of a position: the document's SHA-256, 64 lowercase hex characters. The "
        "earliest matching entry is proven.",
    )
    kind: EntryKind | None = Field(None, description="With `hash`: only an entry of this kind.")
    size: int | None = Field(
        None, ge=0, le=_MAX, description="A signed tree size; the latest signed head's if left out."
    )


class EntryOut(Schema):
    """One entry. Its leaf hash is SHA-256 of 0x00 followed by the version-1 leaf data: 0x01, the
    kind's length and ASCII bytes, the 32-byte document hash, and ``created_at`` as a big-endian
    64-bit count of microseconds since 1970-01-01 UTC."""

    position: int
    kind: str = Field(description="issued, revoked, suspended, reinstated or reissued.")
    document_hash: str = Field(description="The document's SHA-256, hex.")
    created_at: str = Field(description="ISO 8601 with microseconds, UTC.")
    leaf_hash: str = Field(description="Base64 of the entry's 32-byte leaf hash.")


class InclusionOut(Schema):
    entry: EntryOut
    size: int = Field(description="The size of the signed tree the proof leads to.")
    proof: list[str] = Field(description="RFC 9162 audit path: base64 hashes, leaf to root.")


class EntriesQuery(Schema):
    start: int = Field(0, ge=0, le=_MAX, description="The first position, included.")
    end: int | None = Field(
        None, ge=0, le=_MAX, description="The position after the last, excluded; start + 1,000 at most."
    )


class EntriesOut(Schema):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "entries": [
                        {
                            "position": 0,
                            "kind": "issued",
                            "document_hash": _DOC_EXAMPLE,
                            "created_at": "2026-12-06T07:00:00.123456+00:00",
                            "leaf_hash": _ROOT_EXAMPLE,
                        }
                    ],
                    "log_size": 1,
                }
            ]
        }
    }

    entries: list[EntryOut]
    log_size: int = Field(description="The log's size when read; entries beyond it are not returned.")


def _head(head: TreeHead) -> dict[str, Any]:
    return {
        "log": services.log_id(),
        "size": head.size,
        "root": _b64(head.root),
        "timestamp": head.timestamp,
        "kid": head.kid,
        "jws": head.jws,
    }


def _entry(entry: LogEntry) -> dict[str, Any]:
    return {
        "position": entry.position,
        "kind": entry.kind,
        "document_hash": entry.document_hash,
        "created_at": entry.created_at.isoformat(timespec="microseconds"),
        "leaf_hash": _b64(entry.leaf_hash),
    }


@router.get(
    "/tree-heads/latest",
    auth=None,
    response={200: TreeHeadOut, **errors(404)},
    summary="The latest signed tree head",
    description="404 `tree_head_not_found` before the first head is signed.",
)
def tree_head_latest(request: HttpRequest) -> dict[str, Any]:
    return _head(selectors.tree_head_latest())


@router.get(
    "/tree-heads",
    auth=None,
    response={200: TreeHeadListOut, **errors(404, 422)},
    summary="Signed tree heads, newest first",
    description="With `size`: the heads signed for that size (404 `tree_head_not_found` if none). "
    "Cursor-paginated.",
)
def tree_head_list(request: HttpRequest, filters: Query[TreeHeadQuery]) -> dict[str, Any]:
    heads = selectors.tree_heads()
    if filters.size is not None:
        selectors.tree_head_of_size(filters.size)
        heads = heads.filter(size=filters.size)
    rows, next_cursor = paginate(heads, cursor=filters.cursor, limit=filters.limit, order=("-id",))
    return {"items": [_head(head) for head in rows], "next_cursor": next_cursor}


@router.get(
    "/proofs/consistency",
    auth=None,
    response={200: ConsistencyOut, **errors(404, 422)},
    summary="Proof that one signed tree extends another",
    description="Both sizes must have signed heads (404 `tree_head_not_found`); `first` larger than "
    "`second` is 422 `tree_size_out_of_range`. Verify with RFC 9162 section 2.1.4.2.",
)
def consistency_proof(request: HttpRequest, query: Query[ConsistencyQuery]) -> dict[str, Any]:
    proof = selectors.head_consistency(query.first, query.second)
    return {"first": query.first, "second": query.second, "proof": [_b64(digest) for digest in proof]}


@router.get(
    "/proofs/inclusion",
    auth=None,
    response={200: InclusionOut, **errors(404, 422)},
    summary="Proof that an entry is in a signed tree",
    description="Name the entry by `position` or by document `hash` (and `kind`), not both (422 "
    "`entry_selector_required`). 404 `log_entry_not_found` when no such entry is in the tree, "
    "`tree_head_not_found` for a size no head was signed for.",
)
def inclusion_proof(request: HttpRequest, query: Query[InclusionQuery]) -> dict[str, Any]:
    if (query.position is None) == (query.hash is None):
        raise ValidationFailed(
            _("Give either a position or a document hash, not both."), code="entry_selector_required"
        )
    proof = selectors.head_inclusion(
        size=query.size,
        position=query.position,
        document_hash=query.hash,
        kind=str(query.kind.value) if query.kind else None,
    )
    return {
        "entry": _entry(proof.entry),
        "size": proof.size,
        "proof": [_b64(digest) for digest in proof.proof],
    }


@router.get(
    "/entries",
    auth=None,
    response={200: EntriesOut, **errors(422)},
    summary="The log's entries by position",
    description="Positions [start, end), at most 1,000 at once (422 `entry_range_too_large`); a start "
    "beyond the log or after the end is 422 `entry_range_out_of_range`. The answer stops at the log's "
    "size.",
)
def entry_list(request: HttpRequest, query: Query[EntriesQuery]) -> dict[str, Any]:
    rows = selectors.entries(query.start, query.end)
    size, _root = selectors.state()
    return {"entries": [_entry(entry) for entry in rows], "log_size": size}
