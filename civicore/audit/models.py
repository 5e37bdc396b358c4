"""The audit log: append-only, each entry sealed with the hash of the one before it.

Entries are written in the transaction that makes the change and sealed into the chain (seq,
prev_hash, hash) moments later by the worker, in the order they committed. Editing or deleting a
sealed row breaks the chain from that row on, which `civicore audit verify` reports. `person` is
whose data the entry concerns, so citizens can see who viewed it.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class AuditEntry(models.Model):
    seq = models.PositiveBigIntegerField(unique=True, null=True, blank=True)
    at = models.DateTimeField()
    # Indexed below where set: most entries are written by the platform itself, with no actor.
    actor = models.ForeignKey(
        "identity.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    actor_label = models.CharField(max_length=200)
    agency = models.ForeignKey(
        "agencies.Agency", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=60)
    subject_type = models.CharField(max_length=60)
    subject_id = models.CharField(max_length=64)
    # Indexed by (person, -id) below where set, which serves lookups by person alone too.
    person = models.ForeignKey(
        "identity.Person",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_entries",
        db_index=False,
    )
    details = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["id"]
        # Partial: entries about nobody in particular (a ledger's, a sensor's) and entries with no
        # officer or citizen acting add nothing to these indexes, and lookups name a person or a user.
        indexes = [
            models.Index(fields=["person", "-id"], name="audit_person_id", condition=Q(person__isnull=False)),
            models.Index(fields=["actor"], name="audit_actor", condition=Q(actor__isnull=False)),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.subject_type}:{self.subject_id}"
