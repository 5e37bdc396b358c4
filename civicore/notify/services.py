"""Writes for the inbox: sending a notification (copied by e-mail after commit) and marking it read."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from civicore.core import jobs, rowsql
from civicore.core.errors import NotFound, ValidationFailed
from civicore.core.models import Job
from civicore.identity.models import User
from civicore.notify.models import Notification

_SUBJECT_MAX = Notification._meta.get_field("subject").max_length or 300
_LINK_MAX = Notification._meta.get_field("link").max_length or 300
EMAIL_JOB = "notify.email"


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
    notification = notification_build(user=user, subject=subject, body=body, link=link)
    # Checks are done: from here on any failure should undo the caller's whole transaction, so
    # no savepoint is needed.
    with transaction.atomic(savepoint=False):
        notification.save()
        jobs.enqueue(EMAIL_JOB, notification_id=notification.pk)
    return notification


def notification_build(*, user: User, subject: str, body: str, link: str = "") -> Notification:
    """The checked notification `notification_send` saves, not yet saved: for a service that
    writes it together with its other rows (then with `email_job`)."""
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
    return notification


def email_job(notification: Notification) -> Job:
    """The queued job that sends a notification's e-mail copy, not yet saved: what
    `jobs.enqueue` writes, for a caller that writes it with the notification (`rowsql.insert`)
    and then calls `email_job_queued`. Without an id yet, the notification must be written
    earlier in the same statement, which fills the job's payload in."""
    jobs.handler_for(EMAIL_JOB)  # registered, as enqueue checks
    payload: Any = (
        {"notification_id": notification.pk}
        if notification.pk is not None
        else rowsql.Sql("jsonb_build_object('notification_id', %s)", [rowsql.PkOf(notification)])
    )
    return Job(
        name=EMAIL_JOB,
        payload=payload,
        max_attempts=settings.JOBS_MAX_ATTEMPTS,
        run_after=timezone.now(),
    )


def email_job_queued(job: Job) -> None:
    """After `email_job`'s row is written: what `jobs.enqueue` does then (with JOBS_RUN_INLINE,
    run it once the transaction commits)."""
    if settings.JOBS_RUN_INLINE:
        transaction.on_commit(lambda: jobs.run_one(job.pk))


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
