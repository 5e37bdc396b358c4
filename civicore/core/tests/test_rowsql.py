"""Rows written and read by civicore.core.rowsql are the rows the ORM writes and reads: same
values (encrypted, JSON, time zones), keys that point where they should, ids the tables would
have given, and statements Django still sees. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from civicore.applications.models import Application
from civicore.applications.tests.factories import make_service
from civicore.audit import services as audit
from civicore.audit.models import AuditEntry
from civicore.cases.models import Case, CaseEvent
from civicore.catalogue.models import Service
from civicore.core import rowsql
from civicore.core.models import Job
from civicore.identity.models import Person, ProfileItem
from civicore.identity.tests.factories import make_citizen
from civicore.notify.models import Notification

pytestmark = pytest.mark.django_db


def _application(person: Person, service: Service | None = None) -> Application:
    service = service or make_service()
    return Application(
        applicant=person,
        filed_by=person,
        service=service,
        service_version=service.current_version,
        answers={"child_full_name": "Nguyễn Thị Hoa", "note": "có dấu"},
        prefill={"applicant_full_name": {"item": "full_name"}},
        prefill_items=["full_name"],
    )


def _stored(obj: object) -> dict[str, object]:
    model = type(obj)
    fresh = model._default_manager.get(pk=obj.pk)  # type: ignore[attr-defined]
    return {f.attname: getattr(fresh, f.attname) for f in model._meta.concrete_fields}  # type: ignore[attr-defined]


def test_insert_writes_what_save_writes_and_links_rows_inserted_together() -> None:
    person = make_citizen()
    with transaction.atomic():
        application = _application(person)
        case = Case(application=application, agency=application.service.agency, due_at=timezone.now())
        event = CaseEvent(case=case, kind=CaseEvent.Kind.OPENED, actor=person.user)
        rowsql.insert(application, case, event)

    assert application.pk and case.pk and event.pk
    assert case.application_id == application.pk and event.case_id == case.pk
    stored = Application.objects.get(pk=application.pk)
    assert stored.answers == {"child_full_name": "Nguyễn Thị Hoa", "note": "có dấu"}
    assert stored.prefill == {"applicant_full_name": {"item": "full_name"}}
    assert stored.updated_at is not None  # auto_now filled in, as save() does
    assert Case.objects.get(pk=case.pk).application_id == application.pk
    assert CaseEvent.objects.get(pk=event.pk).case_id == case.pk
    # The answers are encrypted in the table, as the field stores them.
    with connection.cursor() as cursor:
        cursor.execute("SELECT answers FROM applications_application WHERE id = %s", [application.pk])
        assert "Hoa" not in cursor.fetchone()[0]

    twin = _application(person, application.service)
    twin.save()
    assert {
        k: v for k, v in _stored(twin).items() if k not in ("id", "public_id", "created_at", "updated_at")
    } == {
        k: v
        for k, v in _stored(application).items()
        if k not in ("id", "public_id", "created_at", "updated_at")
    }


def test_reserved_ids_are_used_and_the_table_carries_on_after_them() -> None:
    person = make_citizen()
    with transaction.atomic():
        notification = Notification(user=person.user, subject="Đã nhận", body="Nội dung")
        rowsql.reserve_ids(notification)
        reserved = notification.pk
        job = Job(name="notify.email", payload={"notification_id": notification.pk})
        rowsql.insert(notification, job)
    assert notification.pk == reserved
    assert Job.objects.get(pk=job.pk).payload == {"notification_id": reserved}
    later = Notification.objects.create(user=person.user, subject="Sau", body="Sau")
    assert later.pk > reserved
    with transaction.atomic():
        first, second = rowsql.next_ids(Notification, Notification)
    assert later.pk < first < second


def test_an_audit_entry_written_with_its_subject_names_it() -> None:
    person = make_citizen()
    with transaction.atomic():
        application = _application(person)
        rowsql.reserve_ids(application)
        entry = audit.entry(actor=person.user, action="application.start", subject=application, person=person)
        rowsql.insert(application, entry)
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.subject_type, stored.subject_id) == ("applications.application", str(application.pk))
    assert stored.actor_id == person.user.pk and stored.seq is None  # sealed later, as record() leaves it


def test_a_failing_row_takes_the_whole_insert_back() -> None:
    person = make_citizen()
    before = Application.objects.count()
    with pytest.raises(Exception), transaction.atomic():  # noqa: B017 - the database's own error
        application = _application(person)
        broken = CaseEvent(case_id=10**9, kind=CaseEvent.Kind.OPENED, actor=person.user)
        rowsql.insert(application, broken)
        # Foreign keys are checked at commit on PostgreSQL, at once elsewhere.
        connection.check_constraints()
    assert Application.objects.count() == before


def test_an_unsaved_object_outside_the_call_is_refused() -> None:
    person = make_citizen()
    application = _application(person)
    case = Case(application=application, agency=application.service.agency, due_at=timezone.now())
    with pytest.raises(ValueError, match="unsaved"), transaction.atomic():
        rowsql.insert(case)


def test_rows_read_back_are_the_instances_a_queryset_gives() -> None:
    person = make_citizen()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {rowsql.columns(ProfileItem, 'i')} FROM identity_profileitem i WHERE i.person_id = %s",  # noqa: S608
            [person.pk],
        )
        rows = cursor.fetchall()
    read = {item.key: item for item in (rowsql.from_row(ProfileItem, row) for row in rows) if item}
    expected = {item.key: item for item in ProfileItem.objects.filter(person=person)}
    assert read.keys() == expected.keys() and read
    for key, item in expected.items():
        assert [getattr(read[key], f.attname) for f in ProfileItem._meta.concrete_fields] == [
            getattr(item, f.attname) for f in ProfileItem._meta.concrete_fields
        ]
    assert rowsql.from_row(ProfileItem, [None] * rowsql.width(ProfileItem)) is None


def test_statements_are_counted_and_logged_like_any_other() -> None:
    person = make_citizen()
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        rowsql.insert(Notification(user=person.user, subject="Một", body="Hai"))
    assert any("notify_notification" in q["sql"] and "Một" in q["sql"] for q in queries.captured_queries)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_on_postgresql_a_statement_is_prepared_once_per_connection() -> None:
    person = make_citizen()
    sql = f"SELECT {rowsql.columns(Person, 'p')} FROM identity_person p WHERE p.id = %s"  # noqa: S608
    for _ in range(3):
        with rowsql.cursor() as cursor:
            cursor.execute(sql, [person.pk])
            assert rowsql.from_row(Person, cursor.fetchone()) == person
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%identity_person p%"]
        )
        assert cursor.fetchone()[0] == 1
