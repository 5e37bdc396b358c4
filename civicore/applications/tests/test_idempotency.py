"""An Idempotency-Key is claimed in the filing's own transaction: a filing that does not commit
(refused, or cut short by a crash) leaves the key free, and requests racing with one key file once."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from civicore.applications import services
from civicore.applications.models import Application
from civicore.applications.tests.factories import VALID_ANSWERS, make_service
from civicore.cases.models import Case
from civicore.core import crypto
from civicore.core.models import IdempotencyRecord
from civicore.core.tests.database_sessions import postgresql_only
from civicore.identity.tests.factories import make_citizen
from civicore.notify.models import Notification


@pytest.fixture(autouse=True)
def _forget_data_keys():
    yield
    # Transactional tests end by emptying the tables, data keys included: the next test must not
    # seal values under a key this process still remembers but the database no longer has.
    crypto.reset_keyring()


@pytest.mark.django_db
def test_a_filing_that_did_not_commit_leaves_its_key_for_the_retry():
    person = make_citizen()
    service = make_service(documents=[])
    incomplete = {k: v for k, v in VALID_ANSWERS.items() if k != "child_full_name"}
    with pytest.raises(services.InvalidAnswers):
        services.application_file(
            person=person, service=service, answers=incomplete, submit=True, idempotency_key="retry-1"
        )
    assert not IdempotencyRecord.objects.exists()
    application, created = services.application_file(
        person=person, service=service, answers=dict(VALID_ANSWERS), submit=True, idempotency_key="retry-1"
    )
    assert created and application.status == Application.Status.SUBMITTED
    assert IdempotencyRecord.objects.get().result_id == str(application.public_id)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_requests_racing_with_one_key_file_one_application():
    person = make_citizen()
    service = make_service(documents=[])
    start = threading.Barrier(4)
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []

    def file() -> None:
        try:
            start.wait(10)
            application, created = services.application_file(
                person=person,
                service=service,
                answers=dict(VALID_ANSWERS),
                submit=True,
                idempotency_key="race",
            )
            results.append((str(application.public_id), created))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=file) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len({public_id for public_id, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert Application.objects.count() == Case.objects.count() == Notification.objects.count() == 1
