"""The public transparency log: one entry per issued, revoked, suspended, reinstated or re-issued
document, never edited or deleted. Entries carry only a document's SHA-256, never personal data;
every complete subtree's hash is stored once, when it completes, and never changes.
"""

from __future__ import annotations

import datetime as dt
import struct

from django.db import models
from django.utils.translation import gettext_lazy as _

from civicore.transparency.merkle import EMPTY_ROOT, leaf_hash

# Version 1 of the leaf encoding; a new encoding takes a new first byte, so old leaves still verify.
LEAF_VERSION = 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


class EntryKind(models.TextChoices):
    ISSUED = "issued", _("Issued")
    REVOKED = "revoked", _("Revoked")
    SUSPENDED = "suspended", _("Suspended")
    REINSTATED = "reinstated", _("Reinstated")
    REISSUED = "reissued", _("Re-issued")


def leaf_data(kind: str, document_hash: str, created_at: dt.datetime) -> bytes:
    """The bytes an entry's leaf hash is taken over (RFC 9162 leaf input), version 1:

        0x01                     version
        u8 n, n bytes            kind, ASCII ("issued", "revoked", ...)
        32 bytes                 the document's SHA-256 (document_hash decoded from hex)
        u64, big-endian          created_at in microseconds since 1970-01-01T00:00:00Z

    Everything is in the published entry, so anyone can recompute leaf_hash = SHA-256(0x00 || data).
    """
    kind_bytes = kind.encode("ascii")
    digest = bytes.fromhex(document_hash)
    if len(digest) != 32 or not kind_bytes or len(kind_bytes) > 255:
        raise ValueError("a leaf needs a kind of 1 to 255 ASCII characters and a 32-byte document hash")
    if created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    micros = (created_at - _EPOCH) // _MICROSECOND
    return struct.pack(">BB", LEAF_VERSION, len(kind_bytes)) + kind_bytes + digest + struct.pack(">Q", micros)


class LogEntry(models.Model):
    """One leaf of the log; ``position`` is its 0-based leaf index."""

    # Hashes are raw 32-byte binary (bytea on PostgreSQL, BLOB on SQLite): half the size of hex in
    # rows and indexes, and exactly what the Merkle code hashes, with no decoding on the proof path.
    position = models.PositiveBigIntegerField(unique=True)
    leaf_hash = models.BinaryField(max_length=32)
    kind = models.CharField(max_length=12, choices=EntryKind.choices)
    # Hex, lowercase: the form people paste and search for.
    document_hash = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["position"]
        verbose_name_plural = "log entries"

    def __str__(self) -> str:
        return f"#{self.position} {self.kind} {self.document_hash}"

    def leaf_data(self) -> bytes:
        return leaf_data(self.kind, self.document_hash, self.created_at)

    def computed_leaf_hash(self) -> bytes:
        """The leaf hash recomputed from the published fields; equals ``leaf_hash`` when intact."""
        return leaf_hash(self.leaf_data())


class Subtree(models.Model):
    """The hash of the complete subtree over leaves [index * 2**level, (index + 1) * 2**level)."""

    level = models.PositiveSmallIntegerField()
    index = models.PositiveBigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["level", "index"], name="transparency_subtree_node")]

    def __str__(self) -> str:
        return f"({self.level}, {self.index})"


class LogState(models.Model):
    """The log's single row: its size and root. Appends lock it, so they run one at a time."""

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    size = models.PositiveBigIntegerField(default=0)
    root = models.BinaryField(max_length=32, default=EMPTY_ROOT)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="transparency_logstate_single")]

    def __str__(self) -> str:
        return f"{self.size} entries, root {bytes(self.root).hex()}"


class TreeHead(models.Model):
    """A signed tree head (STH): the log's size and root at one moment, signed by the platform key.

    ``jws`` is the compact JWS exactly as issued (``typ: tree-head+jwt``), so anyone re-checks the
    signature over the very bytes that were published; the other fields repeat its payload for
    queries. Heads are never edited or deleted.
    """

    size = models.PositiveBigIntegerField(db_index=True)
    root = models.BinaryField(max_length=32)
    # Milliseconds since 1970-01-01T00:00:00Z, as in RFC 9162's tree heads.
    timestamp = models.PositiveBigIntegerField()
    jws = models.TextField()
    kid = models.CharField(max_length=100)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.size} entries, root {bytes(self.root).hex()} at {self.timestamp}"

    @property
    def signature(self) -> str:
        """The JWS's signature part (base64url), as shown on the public page."""
        return self.jws.rsplit(".", 1)[-1]

    @property
    def root_hex(self) -> str:
        return bytes(self.root).hex()

    @property
    def signed_at(self) -> dt.datetime:
        return _EPOCH + dt.timedelta(milliseconds=self.timestamp)
