"""Background work for problem reports: e-mail updates to followers without an account."""

from __future__ import annotations

from civicore.core.jobs import job
from civicore.reports import services


@job(services.EMAIL_JOB)
def email_contact(report_id: int, recipient: str, subject: str, body: str) -> None:
    services.report_email_contact(report_id=report_id, recipient=recipient, subject=subject, body=body)
