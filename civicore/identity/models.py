"""People and their verified data.

A User logs in; a citizen's Person holds the national ID (encrypted, found by keyed hash) and
ProfileItems: one value per key with its provenance (agency of record or the citizen) and an
append-only history, which pre-fill application forms. API tokens are stored only as hashes.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from civicore.core.crypto import EncryptedTextField


class User(AbstractUser):
    """Logs in by e-mail. `full_name` is what the portal greets the user with."""

    email = models.EmailField(_("e-mail address"), unique=True)
    full_name = models.CharField(_("full name"), max_length=200, blank=True)
    preferred_language = models.CharField(max_length=8, default="vi")

    REQUIRED_FIELDS = ["email"]

    def __str__(self) -> str:
        return self.full_name or self.email


class Person(models.Model):
    """The citizen a user account belongs to.

    `assurance_level` is how sure we are that the account holder is the person with this national
    ID: 1 when they registered themselves (the number is only claimed), 2 once an agency of record
    or an officer who saw them in person confirmed it (`assurance_verified_by` is that agency)."""

    class AssuranceLevel(models.IntegerChoices):
        SELF_REGISTERED = 1, _("Self-registered")
        VERIFIED = 2, _("Verified")

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="person")
    national_id = EncryptedTextField(_("national ID number"))
    national_id_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    assurance_level = models.PositiveSmallIntegerField(
        _("identity assurance level"), choices=AssuranceLevel.choices, default=AssuranceLevel.SELF_REGISTERED
    )
    assurance_verified_at = models.DateTimeField(_("identity verified at"), null=True, blank=True)
    assurance_verified_by = models.ForeignKey(
        "agencies.Agency",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("identity verified by"),
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(assurance_level=1) | models.Q(assurance_verified_at__isnull=False),
                name="identity_person_verified_has_date",
            ),
        ]

    def __str__(self) -> str:
        return str(self.user)


class ProfileItem(models.Model):
    """One fact about a person (see civicore.identity.items for the kinds), with where it came from:
    recorded by an agency of record (`agency`, and the `application` that sent it) or declared by
    the citizen. Written only by the profile services, which keep `changes` alongside."""

    class Key(models.TextChoices):
        FULL_NAME = "full_name", _("Full name")
        DATE_OF_BIRTH = "date_of_birth", _("Date of birth")
        GENDER = "gender", _("Gender")
        NATIONAL_ID = "national_id", _("National ID number")
        ADDRESS = "address", _("Permanent address")
        CURRENT_ADDRESS = "current_address", _("Current address")
        PHONE = "phone", _("Phone number")
        EMAIL = "email", _("E-mail address")
        MARITAL_STATUS = "marital_status", _("Marital status")
        HOUSEHOLD_MEMBERS = "household_members", _("Household members")
        VEHICLE = "vehicle", _("Registered vehicles")
        EDUCATION = "education", _("Education")

    class Source(models.TextChoices):
        AGENCY = "agency", _("Agency of record")
        DECLARED = "declared", _("Declared by the citizen")

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="items")
    key = models.CharField(max_length=50, choices=Key.choices)
    value = EncryptedTextField()
    source_kind = models.CharField(max_length=10, choices=Source.choices)
    agency = models.ForeignKey(
        "agencies.Agency", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    application = models.ForeignKey(
        "registry.AgencyApplication", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lookup_hash = models.CharField(
        max_length=64, blank=True, help_text=_("Keyed hash of an identifying value, to find its person")
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["person", "key"], name="identity_item_unique"),
            models.CheckConstraint(
                condition=models.Q(source_kind="declared", agency__isnull=True)
                | models.Q(source_kind="agency", agency__isnull=False),
                name="identity_item_source_has_agency",
            ),
        ]
        indexes = [
            models.Index(
                fields=["key", "lookup_hash"],
                name="identity_item_lookup",
                condition=~models.Q(lookup_hash=""),
            )
        ]

    def __str__(self) -> str:
        return f"{self.person_id}:{self.key}"

    @property
    def is_declared(self) -> bool:
        return self.source_kind == self.Source.DECLARED

    @property
    def source_label(self) -> str:
        """Who stands behind the value, in the active language."""
        if self.agency is not None:
            return self.agency.name
        return str(_("Declared by the citizen"))


class ProfileItemChange(models.Model):
    """Append-only history of a profile item: one row per change of value or of provenance."""

    class Cause(models.TextChoices):
        REGISTRATION = "registration", _("Registered with a verified identity")
        SELF_REGISTRATION = "self_registration", _("Stated by the citizen when creating their account")
        AGENCY_UPDATE = "agency.update", _("Updated by the agency of record")
        CITIZEN_DECLARE = "citizen.declare", _("Declared by the citizen")

    item = models.ForeignKey(ProfileItem, on_delete=models.CASCADE, related_name="changes")
    old_value = EncryptedTextField(blank=True)
    new_value = EncryptedTextField()
    source_kind = models.CharField(max_length=10, choices=ProfileItem.Source.choices)
    agency = models.ForeignKey(
        "agencies.Agency", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    application = models.ForeignKey(
        "registry.AgencyApplication", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    cause = models.CharField(max_length=30, choices=Cause.choices)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["item", "-at"], name="identity_change_item_at")]

    def __str__(self) -> str:
        return f"{self.item_id}@{self.at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Profile history is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("Profile history is append-only")


class ApiToken(models.Model):
    """A bearer token for API clients; only its SHA-256 is kept."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
