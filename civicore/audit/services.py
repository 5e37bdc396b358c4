"""Appending to the audit log and checking its chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from civicore.audit.models import AuditEntry

GENESIS = "0" * 64
# Any constant works: it names the lock that serialises appends on PostgreSQL.
_PG_LOCK_ID = 0x43495649


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
    """Append one entry. Call it last in the transaction that makes the change: the append
    holds the log's lock until that transaction commits."""
    if subject is not None:
        subject_type = subject_type or subject._meta.label_lower
        subject_id = subject_id or str(subject.pk)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PG_LOCK_ID])
        last = AuditEntry.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
        is_user = actor is not None and getattr(actor, "is_authenticated", False)
        entry = AuditEntry(
            seq=seq,
            at=timezone.now(),
            actor=actor if is_user else None,
            actor_label=str(actor) if actor is not None else "system",
            agency=agency,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            person=person,
            details=json.loads(json.dumps(details or {}, default=str)),
            prev_hash=prev_hash,
        )
        entry.hash = _digest(entry)
        entry.save(force_insert=True)
    return entry


@dataclass
class ChainBreak:
    seq: int
    reason: str


def verify(batch_size: int = 2000) -> ChainBreak | None:
    """Walk the whole chain; return the first entry that does not check out, or None."""
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
        last_seq = chunk[-1].seq
