"""Reads of the inbox."""

from __future__ import annotations

from django.db.models import QuerySet

from civicore.identity.models import User
from civicore.notify.models import Notification


def notifications_for(*, user: User) -> QuerySet[Notification]:
    """The user's notifications, newest first."""
    return Notification.objects.filter(user=user).order_by("-created_at", "-id")


def unread_count(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()
