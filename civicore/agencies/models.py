"""Agencies and the officers who work for them. An officer acts only for their agency."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

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


class Officer(models.Model):
    """Membership of a user in an agency with a role."""

    class Role(models.TextChoices):
        CASEWORKER = "caseworker", _("Caseworker")
        SUPERVISOR = "supervisor", _("Supervisor")

    user = models.OneToOneField("identity.User", on_delete=models.CASCADE, related_name="officer")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="officers")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.CASEWORKER)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.user} @ {self.agency.code}"
