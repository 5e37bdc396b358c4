from __future__ import annotations

from pathlib import Path

import pytest

from civicore.core import jobs
from civicore.core.models import Job
from civicore.credentials.models import ResultDocument
from civicore.credentials.tests.factories import make_application

pytestmark = pytest.mark.django_db


def test_issue_job_issues_and_notifies_the_applicant(signing_dir: Path) -> None:
    application = make_application()
    job = jobs.enqueue("credentials.issue", application_id=application.pk)

    assert jobs.run_one(job.pk) is True
    document = ResultDocument.objects.get(application=application)
    Notification = pytest.importorskip("civicore.notify.models").Notification
    [notification] = Notification.objects.filter(user=application.applicant.user)
    assert document.title in notification.subject
    assert notification.link == f"/results/{application.public_id}/"


def test_issue_job_rerun_does_not_issue_twice(signing_dir: Path) -> None:
    application = make_application()
    jobs.handler_for("credentials.issue")(application_id=application.pk)
    jobs.handler_for("credentials.issue")(application_id=application.pk)
    assert ResultDocument.objects.filter(application=application).count() == 1


def test_issue_job_without_signing_keys_is_retried(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    from civicore.credentials.services import signing_material_reset

    settings.SIGNING_DIR = tmp_path / "missing"
    signing_material_reset()
    job = jobs.enqueue("credentials.issue", application_id=make_application().pk)
    assert jobs.run_one(job.pk) is False
    job.refresh_from_db()
    assert job.status == Job.Status.PENDING and "signing" in job.last_error.lower()
