"""Businesses and the people who act for them.

An Organisation is verified against the national business registry by its registration number.
Its members (Membership) are people invited by an admin, who join once they accept. A member
acts for the organisation only through a RoleGrant: one permission (file, view, pay) for one
service or all, until it expires (at most a year) or is revoked. Grants are checked each time
they are used, so an expired or revoked one stops working at once.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from civicore.organisations.numbers import PATTERN

MAX_GRANT_DAYS = 366


class Organisation(models.Model):
    registration_number = models.CharField(
        _("business registration number"),
        max_length=14,
        unique=True,
        validators=[RegexValidator(PATTERN, _("Not a valid business registration number."))],
    )
    name = models.CharField(_("name"), max_length=300)
    address = models.CharField(_("address"), max_length=300, blank=True)
    verified_source = models.CharField(max_length=200)
    verified_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "registration_number"]

    def __str__(self) -> str:
        return f"{self.name} ({self.registration_number})"


class Membership(models.Model):
    """A person's place in an organisation. Pending until they accept the invitation; a removed
    member keeps the row (and its grants) for the record."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="memberships")
    person = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="memberships")
    is_admin = models.BooleanField(default=False)
    granted_by = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    granted_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "person"], name="organisations_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.person_id} in {self.organisation_id}"

    @property
    def is_current(self) -> bool:
        return self.accepted_at is not None and self.removed_at is None


class RoleGrant(models.Model):
    class Permission(models.TextChoices):
        FILE = "file", _("File applications")
        VIEW = "view", _("View applications")
        PAY = "pay", _("Pay fees")

    membership = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="grants")
    service = models.ForeignKey(
        "catalogue.Service",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Empty: every service."),
    )
    permission = models.CharField(max_length=10, choices=Permission.choices)
    expires_at = models.DateTimeField()
    granted_by = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-granted_at", "-id"]
        indexes = [models.Index(fields=["membership", "permission"], name="org_grant_member_perm")]

    def __str__(self) -> str:
        return f"{self.permission} for {self.service_id or 'all'} until {self.expires_at:%Y-%m-%d}"

    def clean(self) -> None:
        granted = self.granted_at or timezone.now()
        if self.expires_at is None:
            raise ValidationError({"expires_at": _("Choose when the role ends.")})
        if self.expires_at <= granted:
            raise ValidationError({"expires_at": _("The role must end in the future.")})
        if self.expires_at > granted + dt.timedelta(days=MAX_GRANT_DAYS):
            raise ValidationError({"expires_at": _("A role lasts at most one year.")})

    def is_current(self, at: dt.datetime | None = None) -> bool:
        return self.revoked_at is None and self.expires_at > (at or timezone.now())
