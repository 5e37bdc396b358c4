"""Verifiable credentials: agencies' issuer keys, the SD-JWT VC beside each result, its status,
and the presentations a citizen shares.

A credential's token holds personal data (every claim, with its salt), so it is stored encrypted,
as is the holder key the platform keeps for the citizen to sign presentations with. The public
parts (issuer keys, status indexes, the hash appended to the transparency log) are plain.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from civicore.core.crypto import EncryptedTextField


class IssuerKey(models.Model):
    """A key an agency signs credentials (and its status list) with.

    Published in the trust list from creation. It signs from `activates_at` until `retired_at`;
    a retired key stays published for good, so what it signed keeps verifying. A compromised key
    is marked with `compromised_since`: what it signed from then on fails.
    """

    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    kid = models.CharField(max_length=64, unique=True)
    alg = models.CharField(max_length=10, default="ES256")
    public_jwk = models.JSONField()
    private_pem = EncryptedTextField()
    created_at = models.DateTimeField(default=timezone.now)
    activates_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    compromised_since = models.DateTimeField(null=True, blank=True)
    compromise_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["agency_id", "-activates_at", "-id"]

    def __str__(self) -> str:
        return f"{self.agency_id} {self.kid}"


def new_presentation_id() -> str:
    return secrets.token_urlsafe(18)


class Credential(models.Model):
    class Status(models.TextChoices):
        VALID = "valid", _("Valid")
        SUSPENDED = "suspended", _("Suspended")
        REVOKED = "revoked", _("Revoked")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    document = models.OneToOneField(
        "credentials.ResultDocument", on_delete=models.PROTECT, related_name="credential"
    )
    person = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="+")
    issuer_key = models.ForeignKey(IssuerKey, on_delete=models.PROTECT, related_name="+")
    vct = models.CharField(max_length=300)
    # The result lines' labels by claim name ({"vi": ..., "en": ...}), for showing claims.
    labels = models.JSONField(default=dict)
    # The SD-JWT with every disclosure, and the private JWK of the key presentations are bound to.
    token = EncryptedTextField()
    holder_key = EncryptedTextField()
    # SHA-256 (hex) of the issuer-signed JWT: what the transparency log holds for this credential.
    sha256 = models.CharField(max_length=64, unique=True)
    status_index = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.VALID)
    status_reason = models.CharField(max_length=500, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "status_index"], name="vc_credential_status_index"),
        ]

    def __str__(self) -> str:
        return str(self.public_id)


class Presentation(models.Model):
    """What a citizen chose to show, to whom, until when: a link (and its QR code) to a signed
    presentation with only the chosen claims."""

    public_id = models.CharField(max_length=32, unique=True, default=new_presentation_id, editable=False)
    credential = models.ForeignKey(Credential, on_delete=models.CASCADE, related_name="presentations")
    paths = models.JSONField()  # the disclosed claim paths, as lists of names
    audience = models.CharField(max_length=200)
    token = EncryptedTextField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.public_id


class PresentationCheck(models.Model):
    """One look at a shared presentation: when, how, and by which agency or system if known."""

    class Via(models.TextChoices):
        LINK = "link", _("Opened the link")
        API = "api", _("An agency's system")

    presentation = models.ForeignKey(Presentation, on_delete=models.CASCADE, related_name="checks")
    checked_at = models.DateTimeField(default=timezone.now)
    via = models.CharField(max_length=10, choices=Via.choices)
    verdict = models.CharField(max_length=40)
    checker_agency = models.ForeignKey(
        "agencies.Agency", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    checker_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    checker_label = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-checked_at", "-id"]

    def __str__(self) -> str:
        return f"{self.presentation_id} {self.via} {self.checked_at:%Y-%m-%d %H:%M}"
