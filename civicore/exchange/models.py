"""Tell us once: each change to a person's profile, and its delivery to every subscribed agency;
and each payment event, to the paying agency's systems that asked for them.

A ChangeEvent and its Deliveries are written in the transaction that changes the profile or the
payment (the outbox), so an agency is told exactly about the changes that committed. A Delivery is retried
until its receiver confirms (2xx) or its attempts run out (dead, for an officer to replay); its
`webhook_id` never changes, so an agency recognises a repeated message.
"""

from __future__ import annotations

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ChangeEvent(models.Model):
    """Some of a person's profile items changed (which items, never their values); or, for a
    payment event, a payment of `agency` (paid by `person`) was paid, refunded or held."""

    class Kind(models.TextChoices):
        PROFILE = "profile", _("Profile change")
        PAYMENT = "payment", _("Payment")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PROFILE)
    person = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="change_events")
    items = models.JSONField(default=list, help_text=_("Keys of the profile items that changed"))
    data = models.JSONField(
        default=dict,
        blank=True,
        encoder=DjangoJSONEncoder,
        help_text=_("A payment event's payload (type, payment, statuses, amounts); empty for profiles"),
    )
    changes = models.JSONField(
        default=list, encoder=DjangoJSONEncoder, help_text=_('[{"key", "source", "verified_at"}]')
    )
    cause = models.CharField(max_length=60, blank=True)
    agency = models.ForeignKey(
        "agencies.Agency", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    receipt_sent_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the citizen was sent the receipt for this change")
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["person", "-id"], name="exchange_event_person"),
            # The citizen's receipts are for profile changes only: payment events never get one.
            models.Index(
                fields=["id"],
                condition=models.Q(receipt_sent_at__isnull=True, kind="profile"),
                name="exchange_event_unreceipted",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.PAYMENT:
            return f"{self.uuid} {self.data.get('type', 'payment')}"
        return f"{self.uuid} {','.join(self.items)}"


class Delivery(models.Model):
    """One change or payment event for one subscribed agency application."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Being sent")
        DELIVERED = "delivered", _("Confirmed")
        DEAD = "dead", _("Failed")

    # Indexed with its status below (and first in the unique constraint), not on its own.
    event = models.ForeignKey(
        ChangeEvent, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    application = models.ForeignKey(
        "registry.AgencyApplication", on_delete=models.PROTECT, related_name="deliveries"
    )
    webhook_id = models.CharField(
        max_length=64, unique=True, help_text=_("Idempotency key: the same on every attempt")
    )
    items = models.JSONField(default=list, help_text=_("Changed items this subscriber receives"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # While a worker holds the delivery, next_attempt_at is also the lease's end: a worker that
    # dies leaves a row that becomes due again when the lease runs out.
    locked_until = models.DateTimeField(null=True, blank=True)
    locked_by = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "application"], name="exchange_delivery_once"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=models.Q(status="pending"),
                name="exchange_delivery_due",
            ),
            # "Is anything of this event still pending?" for every unreceipted event.
            models.Index(fields=["event", "status"], name="exchange_delivery_event_status"),
            models.Index(fields=["application", "status"], name="exchange_delivery_app_status"),
            models.Index(fields=["-id"], condition=models.Q(status="dead"), name="exchange_delivery_dead"),
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} ({self.status})"

    @property
    def is_failing(self) -> bool:
        return self.status == self.Status.DEAD or (self.status == self.Status.PENDING and self.attempts > 0)
