"""Appending to the audit log, sealing it into a hash chain, and checking the chain.

`record()` is a plain insert inside the caller's transaction, so a change and its audit entry
commit together and requests never queue behind one another for the log. `seal()` (run by the
worker every second) takes the log's lock, numbers the committed unsealed entries and chains
their hashes. An entry is tamper-evident once sealed; `verify()` checks every sealed entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from civicore.audit.models import AuditEntry
from civicore.core import rowsql

GENESIS = "0" * 64
# Any constant works: it names the lock that serialises sealing on PostgreSQL.
_PG_LOCK_ID = 0x43495649
SEAL_BATCH = 2000


def _digest(entry: AuditEntry) -> str:
    body = {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "actor": entry.actor_id,
        "actor_label": entry.actor_label,
        "agency": entry.agency_id,
        "action": entry.action,
        "subject": f"{entry.subject_type}:{entry.subject_id}",
        "person": entry.person_id,
        "details": entry.details,
        "prev": entry.prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    *,
    actor: Any,
    action: str,
    subject: Any = None,
    subject_type: str = "",
    subject_id: str = "",
    person: Any = None,
    agency: Any = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction; the worker seals it into the chain."""
    new = entry(
        actor=actor,
        action=action,
        subject=subject,
        subject_type=subject_type,
        subject_id=subject_id,
        person=person,
        agency=agency,
        details=details,
    )
    new.save(force_insert=True)
    return new


def entry(
    *,
    actor: Any,
    action: str,
    subject: Any = None,
    subject_type: str = "",
    subject_id: str = "",
    person: Any = None,
    agency: Any = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """The entry `record()` appends, not yet saved: for a service that writes it in one statement
    with the rows it is about (`civicore.core.rowsql.insert`), in the same transaction. A
    subject written in the same statement needs its id first (`rowsql.reserve_ids`)."""
    if subject is not None:
        subject_type = subject_type or subject._meta.label_lower
        subject_id = subject_id or str(subject.pk)
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEntry(
        at=timezone.now(),
        actor=actor if is_user else None,
        actor_label=str(actor) if actor is not None else "system",
        agency=agency,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        person=person,
        details=json.loads(json.dumps(details or {}, default=str)),
    )


def record_many(*, actor: Any, entries: Iterable[tuple[str, str, str, int | None, dict[str, Any]]]) -> None:
    """`record()` for a batch of entries by one actor, each (action, subject_type, subject_id,
    agency id, details), in the caller's transaction: one COPY on PostgreSQL instead of an INSERT
    per entry (a bank statement's payments). The rows are the ones `record()` would write."""
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    actor_id = actor.pk if is_user else None
    label = str(actor) if actor is not None else "system"
    now = timezone.now()
    rowsql.insert_many(
        AuditEntry,
        ("at", "actor_id", "actor_label", "agency_id", "action", "subject_type", "subject_id", "details",
         "prev_hash", "hash"),
        (
            (now, actor_id, label, agency_id, action, subject_type, subject_id,
             json.loads(json.dumps(details, default=str)), "", "")
            for action, subject_type, subject_id, agency_id, details in entries
        ),
    )  # fmt: skip


def record_selected(*, actor: Any, select: str, params: Sequence[Any]) -> None:
    """`record_many` for entries the database derives from rows written in the same transaction
    (a bank statement's payment events), on PostgreSQL: `select` yields (agency id, action,
    subject type, subject id, details as jsonb) per entry, in order, and one INSERT … SELECT
    writes them, as `record()` would, for the worker to seal."""
    if connection.vendor != "postgresql":
        raise NotImplementedError("entries selected by the database are written on PostgreSQL only")
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    label = str(actor) if actor is not None else "system"
    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {table} (at, actor_id, actor_label, agency_id, action, subject_type, subject_id,
                    details, prev_hash, hash)
                SELECT %s, %s, %s, s.agency_id, s.action, s.subject_type, s.subject_id, s.details, '', ''
                FROM ({select}) AS s(agency_id, action, subject_type, subject_id, details)""",  # noqa: S608
            [timezone.now(), actor.pk if is_user else None, label, *params],
        )


def seal(batch_size: int = SEAL_BATCH) -> int:
    """Chain every committed, unsealed entry; returns how many were sealed."""
    sealed = 0
    while True:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PG_LOCK_ID])
            last = (
                AuditEntry.objects.filter(seq__isnull=False)
                .order_by("-seq")
                .values_list("seq", "hash")
                .first()
            )
            seq, prev_hash = (last[0] or 0, last[1]) if last else (0, GENESIS)
            pending = list(AuditEntry.objects.filter(seq__isnull=True).order_by("id")[:batch_size])
            for entry in pending:
                seq += 1
                entry.seq = seq
                entry.prev_hash = prev_hash
                entry.hash = _digest(entry)
                prev_hash = entry.hash
            AuditEntry.objects.bulk_update(pending, ["seq", "prev_hash", "hash"], batch_size=500)
        sealed += len(pending)
        if len(pending) < batch_size:
            return sealed


def unsealed_count() -> int:
    return AuditEntry.objects.filter(seq__isnull=True).count()


@dataclass
class ChainBreak:
    seq: int
    reason: str


def verify(batch_size: int = 2000) -> ChainBreak | None:
    """Walk the sealed chain; return the first entry that does not check out, or None."""
    expected_prev = GENESIS
    expected_seq = 1
    for entry in _iterate(batch_size):
        if entry.seq != expected_seq:
            return ChainBreak(expected_seq, f"entry #{expected_seq} is missing")
        if entry.prev_hash != expected_prev:
            return ChainBreak(entry.seq, "does not link to the entry before it")
        if _digest(entry) != entry.hash:
            return ChainBreak(entry.seq, "contents do not match its hash")
        expected_prev = entry.hash
        expected_seq += 1
    return None


def _iterate(batch_size: int) -> Iterator[AuditEntry]:
    last_seq = 0
    while True:
        chunk = list(AuditEntry.objects.filter(seq__gt=last_seq).order_by("seq")[:batch_size])
        if not chunk:
            return
        yield from chunk
        last_seq = chunk[-1].seq or last_seq
