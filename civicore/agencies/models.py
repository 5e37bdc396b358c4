"""Agencies, their teams, and the officers who work for them. An officer acts only for their
agency, and only with the permissions of the roles they hold (civicore.agencies.permissions):
a new officer holds none."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from civicore.agencies import permissions
from civicore.core.models import BilingualNameMixin


class Agency(BilingualNameMixin):
    class Level(models.TextChoices):
        NATIONAL = "national", _("National")
        PROVINCE = "province", _("Province")
        COMMUNE = "commune", _("Commune")

    code = models.SlugField(max_length=60, unique=True)
    level = models.CharField(max_length=20, choices=Level.choices, default=Level.PROVINCE)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    email = models.EmailField(blank=True)
    address = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name_plural = "agencies"
        ordering = ["code"]


class Team(models.Model):
    """A group of officers within one agency (a desk, a department)."""

    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="teams")
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["agency", "name"], name="agencies_team_unique")]

    def __str__(self) -> str:
        return self.name


class Officer(models.Model):
    """Membership of a user in an agency, with the roles (names from the permissions registry)
    an agency admin granted. Changed only through civicore.agencies.services, which audits it."""

    user = models.OneToOneField("identity.User", on_delete=models.CASCADE, related_name="officer")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="officers")
    roles = models.JSONField(default=list, blank=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="officers")
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.user} @ {self.agency.code}"

    def clean(self) -> None:
        if not isinstance(self.roles, list) or any(name not in permissions.ROLES for name in self.roles):
            raise ValidationError({"roles": _("Unknown role.")})
        if self.team is not None and self.team.agency_id != self.agency_id:
            raise ValidationError({"team": _("The team belongs to another agency.")})

    @property
    def permissions(self) -> frozenset[str]:
        return permissions.permissions_for(self.roles if isinstance(self.roles, list) else [])

    def has_perm(self, permission: str) -> bool:
        return permissions.has_perm(self, permission)
