from __future__ import annotations

import pytest
from django.core import mail

from civicore.core import jobs
from civicore.core.errors import NotFound, ValidationFailed
from civicore.core.models import Job
from civicore.identity.tests.factories import UserFactory
from civicore.notify.models import Notification
from civicore.notify.services import notification_mark_read, notification_send

pytestmark = pytest.mark.django_db


def test_send_puts_the_message_in_the_inbox_and_queues_one_email() -> None:
    user = UserFactory()
    notification = notification_send(
        user=user, subject="Hồ sơ đã được tiếp nhận", body="Mã hồ sơ: HS-1", link="/applications/1/"
    )
    assert Notification.objects.get().user == user
    queued = Job.objects.get(name="notify.email")
    assert queued.payload == {"notification_id": notification.pk}
    assert mail.outbox == []  # nothing goes out before the worker runs


def test_subject_cannot_smuggle_extra_mail_headers() -> None:
    notification = notification_send(
        user=UserFactory(), subject="Hello\r\nBcc: victim@example.test", body="x"
    )
    assert "\n" not in notification.subject and "\r" not in notification.subject
    jobs.work(once=True)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].bcc == []


@pytest.mark.parametrize(
    "link", ["https://evil.example/phish", "//evil.example/phish", "javascript:alert(1)", "/\\evil.example"]
)
def test_links_must_stay_on_this_site(link: str) -> None:
    with pytest.raises(ValidationFailed):
        notification_send(user=UserFactory(), subject="Hi", body="x", link=link)
    assert not Notification.objects.exists()
    assert not Job.objects.exists()


def test_empty_subject_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        notification_send(user=UserFactory(), subject="   ", body="x")


def test_mark_read_sets_read_time_once() -> None:
    user = UserFactory()
    notification = notification_send(user=user, subject="Hi", body="x")
    first = notification_mark_read(user=user, notification_id=notification.pk)
    assert first.read_at is not None
    again = notification_mark_read(user=user, notification_id=notification.pk)
    assert again.read_at == first.read_at


def test_someone_elses_notification_is_not_found() -> None:
    owner, other = UserFactory(), UserFactory()
    notification = notification_send(user=owner, subject="Private", body="x")
    with pytest.raises(NotFound):
        notification_mark_read(user=other, notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.read_at is None


def test_unknown_notification_is_not_found() -> None:
    with pytest.raises(NotFound):
        notification_mark_read(user=UserFactory(), notification_id=987654)


def test_email_job_sends_exactly_one_email_even_when_run_twice() -> None:
    user = UserFactory(email="an@example.test")
    notification = notification_send(
        user=user, subject="Kết quả", body="Hồ sơ đã được duyệt.", link="/applications/7/"
    )
    assert jobs.work(once=True) == 1
    # A retry after a lost acknowledgement, or a second job for the same notification.
    jobs.enqueue("notify.email", notification_id=notification.pk)
    assert jobs.work(once=True) == 1
    # A worker that died after sending but before recording the job as done runs the handler again.
    jobs.handler_for("notify.email")(notification_id=notification.pk)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["an@example.test"]
    assert message.subject == "Kết quả"
    assert "Hồ sơ đã được duyệt." in message.body
    assert "/applications/7/" in message.body
    notification.refresh_from_db()
    assert notification.emailed_at is not None


def test_email_job_for_a_deleted_notification_does_nothing() -> None:
    notification = notification_send(user=UserFactory(), subject="Hi", body="x")
    notification.delete()
    assert jobs.work(once=True) == 1
    assert mail.outbox == []
    assert Job.objects.get().status == Job.Status.DONE


def test_failed_send_is_retried_and_not_marked_emailed(settings: object) -> None:
    notification = notification_send(user=UserFactory(), subject="Hi", body="x")
    settings.EMAIL_BACKEND = "civicore.notify.tests.test_services.BrokenBackend"  # type: ignore[attr-defined]
    jobs.work(once=True)
    notification.refresh_from_db()
    assert notification.emailed_at is None
    job_row = Job.objects.get()
    assert job_row.status == Job.Status.PENDING and job_row.attempts == 1


class BrokenBackend:
    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def send_messages(self, messages: object) -> int:
        raise ConnectionError("SMTP server down")
