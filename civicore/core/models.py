"""Shared model bases and the durable job queue."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone

from civicore.core import request_ids


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Job(models.Model):
    """A unit of background work, written in the same transaction as the change that caused it.

    A worker locks the row while it runs the job and marks it done in the same transaction as
    the job's writes, so a worker killed mid-job leaves it pending for the next one at once.
    locked_until/locked_by are leases of workers of earlier versions, still respected.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        DEAD = "dead"

    name = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=8)
    run_after = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=100, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The request that enqueued the job (civicore.core.request_ids), set again while the job
    # runs; blank outside a request. A default, so every way of writing a Job row records it.
    request_id = models.CharField(max_length=64, blank=True, default=request_ids.get)

    class Meta:
        indexes = [models.Index(fields=["status", "run_after"], name="core_job_ready")]

    def __str__(self) -> str:
        return f"{self.name}#{self.pk} ({self.status})"


class IdempotencyRecord(models.Model):
    """Remembers the result of a request sent with an Idempotency-Key so a retry gets the same
    answer instead of filing twice."""

    key = models.CharField(max_length=200)
    owner_id = models.BigIntegerField()
    scope = models.CharField(max_length=100)
    result_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner_id", "scope", "key"], name="core_idempotency_unique")
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"


class BilingualNameMixin(models.Model):
    """Vietnamese and English names; `name` answers in the active language."""

    name_vi = models.CharField(max_length=300)
    name_en = models.CharField(max_length=300, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        from django.utils.translation import get_language

        if (get_language() or "vi").startswith("en") and self.name_en:
            return self.name_en
        return self.name_vi


class SigningKey(models.Model):
    """A platform key that signs what Civicore sends to agencies (JWS person data, ID tokens,
    webhook deliveries). Its private half is encrypted at rest; its public half is published in
    the JWKS from creation until some time after it is retired, so signatures made just before a
    rotation still verify."""

    class Algorithm(models.TextChoices):
        ES256 = "ES256"
        EDDSA = "EdDSA"
        RS256 = "RS256"

    kid = models.CharField(max_length=64, unique=True)
    alg = models.CharField(max_length=10, choices=Algorithm.choices)
    private_jwk = models.TextField()  # encrypted JSON, see civicore.core.jose
    public_jwk = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    # Published from creation, signs from this moment on: a rotated-in key waits until every
    # relying party's cached JWKS holds it.
    activates_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-activates_at", "-id"]

    def __str__(self) -> str:
        return f"{self.alg} {self.kid}"


def new_data_key_id() -> str:
    """16 random hex characters: never reused, so a process may cache an unwrapped key by its id
    for its whole life (a sequence would hand a rolled-back key's id to a different key)."""
    return secrets.token_hex(8)


class DataKey(models.Model):
    """A data-encryption key (DEK) that seals personal data, stored only wrapped under a
    key-encryption key (KEK) from FIELD_ENCRYPTION_KEYS, whose id it records. Rows are never
    deleted: every encrypted value names the DEK that sealed it. At most one is active (seals new
    values); rotating the KEK re-wraps these rows and leaves the data untouched."""

    id = models.CharField(primary_key=True, max_length=16, default=new_data_key_id, editable=False)
    wrapped_key = models.TextField()  # base64(nonce + AES-GCM(KEK, DEK)), see civicore.core.crypto
    kek_id = models.CharField(max_length=64)
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            # Two processes creating the first key at once: the second insert fails and that
            # process uses the winner's key instead.
            models.UniqueConstraint(
                fields=["active"], condition=models.Q(active=True), name="core_datakey_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"{self.id} ({'active, ' if self.active else ''}wrapped under {self.kek_id})"
