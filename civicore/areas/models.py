"""Administrative areas (districts) with their boundaries, as the operator loads them from the
city's own GIS, so that what happens at a place can be counted by district."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Area(models.Model):
    """One district: its code and name, its boundary as a GeoJSON Polygon or MultiPolygon in
    WGS 84 longitude/latitude, and that boundary's bounding box."""

    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    geometry = models.JSONField()
    min_latitude = models.FloatField()
    min_longitude = models.FloatField()
    max_latitude = models.FloatField()
    max_longitude = models.FloatField()
    loaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"
