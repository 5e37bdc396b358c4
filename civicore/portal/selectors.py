"""Reads for the front page."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from civicore.catalogue.models import Service

POPULAR_WINDOW = timedelta(days=90)


def popular_services(*, limit: int = 6) -> QuerySet[Service]:
    """Published online services, most applied-for in the last 90 days first."""
    since = timezone.now() - POPULAR_WINDOW
    return (
        Service.objects.filter(current_version__isnull=False, online=True)
        .select_related("agency")
        .annotate(recent=Count("applications", filter=Q(applications__created_at__gte=since)))
        .order_by("-recent", "code")[:limit]
    )
