"""Writes for the inbox: sending a notification (copied by e-mail after commit) and marking it read."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from civicore.core import jobs
from civicore.core.errors import NotFound, ValidationFailed
from civicore.identity.models import User
from civicore.notify.models import Notification

_SUBJECT_MAX = Notification._meta.get_field("subject").max_length or 300
_LINK_MAX = Notification._meta.get_field("link").max_length or 300


def _safe_link(link: str) -> str:
    """Only site-relative links: a notification must never send someone to another site."""
    link = link.strip()
    if not link:
        return ""
    if not link.startswith("/") or link.startswith("//") or "\\" in link:
        raise ValidationFailed(_("A notification link must be a path on this site."), code="invalid_link")
    return link


def notification_send(*, user: User, subject: str, body: str, link: str = "") -> Notification:
    """Put a message in the user's inbox and queue its e-mail copy in the same transaction."""
    subject = " ".join(subject.split())
    if not subject:
        raise ValidationFailed(_("A notification needs a subject."), code="invalid_subject")
    notification = Notification(
        user=user,
        subject=subject[:_SUBJECT_MAX],
        body=body.strip(),
        link=_safe_link(link)[:_LINK_MAX],
    )
    # The user is a loaded instance; validating the foreign key would only repeat a query.
    notification.full_clean(exclude=["user"])
    # Checks are done: from here on any failure should undo the caller's whole transaction, so
    # no savepoint is needed.
    with transaction.atomic(savepoint=False):
        notification.save()
        jobs.enqueue("notify.email", notification_id=notification.pk)
    return notification


@transaction.atomic
def notification_mark_read(*, user: User, notification_id: int) -> Notification:
    """Mark one of the user's own notifications read; someone else's is reported as not found."""
    notification = (
        Notification.objects.select_for_update().filter(pk=notification_id, user=user).first()
        if user.is_authenticated
        else None
    )
    if notification is None:
        raise NotFound(_("Notification not found."), code="notification_not_found")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
def notification_email(*, notification_id: int) -> bool:
    """Send the e-mail copy of a notification once; returns False when there was nothing to send.

    The row stays locked while the message goes out, so two workers running the same job cannot
    both send it; if sending fails the transaction rolls back and the job is retried.
    """
    notification = (
        Notification.objects.select_for_update().select_related("user").filter(pk=notification_id).first()
    )
    if notification is None or notification.emailed_at is not None:
        return False
    user = notification.user
    if not user.email or not user.is_active:
        return False
    with translation.override(user.preferred_language or settings.LANGUAGE_CODE):
        lines = [notification.body, ""]
        if notification.link:
            lines.append(_("Open it: %(url)s") % {"url": settings.SITE_URL + notification.link})
        lines.append(_("All your messages: %(url)s") % {"url": settings.SITE_URL + reverse("notify:inbox")})
        send_mail(
            subject=notification.subject,
            message="\n".join(lines),
            from_email=None,
            recipient_list=[user.email],
        )
    notification.emailed_at = timezone.now()
    notification.save(update_fields=["emailed_at"])
    return True
