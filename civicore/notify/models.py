"""Messages to users: an inbox in the portal, copied by e-mail by a background job."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Notification(models.Model):
    user = models.ForeignKey("identity.User", on_delete=models.CASCADE, related_name="notifications")
    subject = models.CharField(max_length=300)
    body = models.TextField()
    link = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="notify_user_created")]

    def __str__(self) -> str:
        return self.subject
