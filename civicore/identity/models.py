"""People and their verified data.

A User logs in; a citizen's Person holds the national ID (encrypted, found by keyed hash) and
ProfileItems: one value per key with its source and when it was last verified, which pre-fill
application forms. API tokens are stored only as hashes.
"""

from __future__ import annotations

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
    """The citizen a user account belongs to."""

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="person")
    national_id = EncryptedTextField(_("national ID number"))
    national_id_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return str(self.user)


class ProfileItem(models.Model):
    """One verified (or declared) fact about a person, with where it came from."""

    class Key(models.TextChoices):
        FULL_NAME = "full_name", _("Full name")
        DATE_OF_BIRTH = "date_of_birth", _("Date of birth")
        NATIONAL_ID = "national_id", _("National ID number")
        ADDRESS = "address", _("Permanent address")
        PHONE = "phone", _("Phone number")
        EMAIL = "email", _("E-mail address")
        GENDER = "gender", _("Gender")

    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="items")
    key = models.CharField(max_length=50, choices=Key.choices)
    value = EncryptedTextField()
    source = models.CharField(
        max_length=200, help_text=_("Agency of record, or 'declared' when the citizen stated it")
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["person", "key"], name="identity_item_unique")]

    def __str__(self) -> str:
        return f"{self.person_id}:{self.key}"


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
