"""The payments ledger.

A Payment is one attempt to collect an application's fee, by VietQR transfer or through a
gateway, with a reference that the money comes back with. Its status changes only through
`services`, one PaymentEvent per change; an outside event (a gateway callback, a status answer, a
bank statement line) carries a key, and a key is applied once, so whatever arrives twice is
counted once. Bank statements are kept line by line; lines that match nothing, or match with the
wrong amount, wait in a queue for an officer.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from civicore.core.crypto import EncryptedTextField


class CollectionAccount(models.Model):
    """An agency's bank account that citizens pay fees into: named in VietQR codes, and the
    account a bank statement is for."""

    agency = models.ForeignKey(
        "agencies.Agency", on_delete=models.PROTECT, related_name="collection_accounts"
    )
    bank_bin = models.CharField(max_length=6, help_text=_("The bank's six-digit Napas BIN."))
    bank_name = models.CharField(max_length=100)
    account_number = models.CharField(max_length=19)
    account_name = models.CharField(max_length=70)
    currency = models.CharField(max_length=3, default="VND")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["agency", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["bank_bin", "account_number"], name="payments_account_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.bank_name} {self.account_number}"


class Payment(models.Model):
    class Status(models.TextChoices):
        CREATED = "created", _("Created")
        PENDING = "pending", _("Waiting for payment")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")
        REFUNDED = "refunded", _("Refunded")
        PARTIALLY_REFUNDED = "partially_refunded", _("Partly refunded")

    class Method(models.TextChoices):
        VIETQR = "vietqr", _("Bank transfer (VietQR)")
        GATEWAY = "gateway", _("Card or e-wallet")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Letters and digits with a check character: what the payer's bank carries back to us.
    reference = models.CharField(max_length=24, unique=True)
    application = models.ForeignKey(
        "applications.Application", on_delete=models.PROTECT, related_name="payments"
    )
    service = models.ForeignKey("catalogue.Service", on_delete=models.PROTECT, related_name="+")
    # Indexed by (agency, created_at) below, which serves lookups by agency alone too.
    agency = models.ForeignKey(
        "agencies.Agency", on_delete=models.PROTECT, related_name="payments", db_index=False
    )
    payer = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="payments")
    organisation = models.ForeignKey(
        "organisations.Organisation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
        db_index=False,
    )
    method = models.CharField(max_length=10, choices=Method.choices)
    # A bank transfer: the account the VietQR code names.
    collection_account = models.ForeignKey(
        CollectionAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    gateway = models.CharField(max_length=20, blank=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    breakdown = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CREATED)
    paid_minor = models.BigIntegerField(default=0)
    refunded_minor = models.BigIntegerField(default=0)
    gateway_transaction = models.CharField(max_length=64, blank=True)
    bank_reference = models.CharField(max_length=80, blank=True)
    # Money that arrived after the payment had expired or failed: counted, and shown to officers.
    late = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["agency", "created_at"], name="payments_agency_created"),
            models.Index(
                fields=["expires_at"],
                name="payments_open_expiry",
                condition=Q(status__in=["created", "pending"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payments_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_minor__gte=0) & Q(refunded_minor__lte=F("paid_minor")),
                name="payments_refund_within_paid",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.CREATED, self.Status.PENDING)

    @property
    def refundable_minor(self) -> int:
        return self.paid_minor - self.refunded_minor


class PaymentEvent(models.Model):
    """One change to a payment, or an outside event that changed nothing, and why."""

    class Source(models.TextChoices):
        PAYER = "payer", _("Payer")
        GATEWAY_CALLBACK = "gateway_callback", _("Gateway callback")
        GATEWAY_QUERY = "gateway_query", _("Gateway status query")
        STATEMENT = "statement", _("Bank statement")
        OFFICER = "officer", _("Officer")
        SYSTEM = "system", _("System")

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="events")
    # The outside event's own identity (e.g. "vnpay:14012345:00", "bank:VCB:FT2633912345"): a key
    # is applied once. Null for changes made here (an officer, the expiry sweep).
    key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    kind = models.CharField(max_length=30)
    from_status = models.CharField(max_length=20)
    to_status = models.CharField(max_length=20)
    amount_minor = models.BigIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status}->{self.to_status}"


class Refund(models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed", _("Proposed")
        REQUESTED = "requested", _("Requested")
        SUCCEEDED = "succeeded", _("Refunded")
        FAILED = "failed", _("Failed")
        DECLINED = "declined", _("Declined")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    reference = models.CharField(max_length=24, unique=True)
    amount_minor = models.BigIntegerField()
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    gateway_code = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payments_refund_positive"),
        ]

    def __str__(self) -> str:
        return self.reference


class StatementImport(models.Model):
    """A bank statement file read once: the same file again is refused by its checksum."""

    checksum = models.CharField(max_length=64, unique=True)
    filename = models.CharField(max_length=255)
    message_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=10)  # camt.053 or camt.054
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    imported_at = models.DateTimeField(default=timezone.now)
    lines = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    queued = models.PositiveIntegerField(default=0)
    repeated = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return self.filename


class StatementLine(models.Model):
    """A credit to an agency's account as the bank reported it, and what it was matched to."""

    class Status(models.TextChoices):
        MATCHED = "matched", _("Matched")
        UNMATCHED = "unmatched", _("No matching payment")
        MISMATCH = "mismatch", _("Amount or currency differs")
        PAID_TWICE = "paid_twice", _("Payment already paid")
        RESOLVED = "resolved", _("Resolved by an officer")

    statement = models.ForeignKey(StatementImport, on_delete=models.PROTECT, related_name="entries")
    # Whose queue the line waits in when it matches nothing: the account's agency.
    collection_account = models.ForeignKey(CollectionAccount, on_delete=models.PROTECT, related_name="+")
    account = models.CharField(max_length=64)
    # The bank's own id for the entry: a line in a notification and again in the day's statement
    # is one credit.
    bank_reference = models.CharField(max_length=80)
    booked_on = models.DateField()
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    remittance = models.CharField(max_length=500, blank=True)
    debtor_name = EncryptedTextField(blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="statement_lines"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    resolution = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["booked_on", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["account", "bank_reference"], name="payments_line_once"),
        ]
        indexes = [
            models.Index(
                fields=["status"],
                name="payments_line_queue",
                condition=Q(status__in=["unmatched", "mismatch", "paid_twice"]),
            ),
            # Only lines an officer resolved: a statement's matched lines add nothing to it.
            models.Index(
                fields=["resolved_by"], name="payments_line_resolver", condition=Q(resolved_by__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.bank_reference}"


class Receipt(models.Model):
    """The signed e-receipt of a paid payment, issued once and never changed: a later refund is
    a refund of its own, not a new receipt. The register entry (serial, SHA-256 of the exact
    bytes issued) lets /verify vouch for the PDF, as it does for results."""

    serial = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.CharField(max_length=32, unique=True)
    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="receipt")
    # What the receipt states was paid, as printed on it.
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    file = models.FileField(upload_to="receipts/", max_length=300)
    sha256 = models.CharField(max_length=64, db_index=True)
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return self.number
