"""Background work for the inbox: the e-mail copy of each notification."""

from __future__ import annotations

from civicore.core.jobs import job
from civicore.notify import services


@job(services.EMAIL_JOB)
def email(notification_id: int) -> None:
    services.notification_email(notification_id=notification_id)
