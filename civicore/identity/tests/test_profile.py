"""The item registry, value validation, and the profile services with provenance and history."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone, translation

from civicore.audit.models import AuditEntry
from civicore.core.errors import Conflict, PermissionDenied
from civicore.identity import items
from civicore.identity.models import Person, ProfileItem, ProfileItemChange
from civicore.identity.selectors import person_find
from civicore.identity.services import (
    InvalidItemValues,
    ItemNotDeclarable,
    clean_item_values,
    profile_item_declare,
    profile_item_record,
    profile_items_record,
)
from civicore.identity.signals import profile_items_changed
from civicore.identity.tests.factories import make_citizen, make_register, population_register
from civicore.registry.tests.factories import make_application

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent() -> Any:
    """Every profile_items_changed sent, with whether it came inside a transaction."""
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        calls.append({**kwargs, "in_transaction": connection.in_atomic_block})

    profile_items_changed.connect(receiver, dispatch_uid="test_profile.sent")
    yield calls
    profile_items_changed.disconnect(dispatch_uid="test_profile.sent")


def _raw_value(item: ProfileItem) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM identity_profileitem WHERE id = %s", [item.pk])
        return cursor.fetchone()[0]


# --- the registry -------------------------------------------------------------------------


def test_registry_defines_every_model_key_with_matching_english_label():
    assert items.keys() == list(ProfileItem.Key.values)
    for definition in items.all_items():
        assert definition.label.en == ProfileItem.Key(definition.key).label
        assert definition.label.vi and definition.label.vi != definition.label.en


def test_who_may_change_what():
    editable = {d.key for d in items.all_items() if d.citizen_editable}
    assert editable == {"current_address", "phone", "email", "education"}
    assert {d.key for d in items.all_items() if d.identifies} == {"national_id", "phone", "email"}
    assert {d.key for d in items.all_items() if d.declarable} == {"education"}


def test_labels_follow_the_active_language():
    with translation.override("vi"):
        assert str(items.get("marital_status").label) == "Tình trạng hôn nhân"
    with translation.override("en"):
        assert str(items.get("marital_status").label) == "Marital status"


@pytest.mark.parametrize(
    ("key", "raw", "stored"),
    [
        ("full_name", "  Nguyễn Văn An ", "Nguyễn Văn An"),
        ("phone", "+84 901 234 567", "0901234567"),
        ("phone", "0901.234.567", "0901234567"),
        ("email", "An@Example.VN", "An@example.vn"),
        ("national_id", "0790 9000 1234", "079090001234"),
        ("date_of_birth", "1990-05-17", "1990-05-17"),
        ("date_of_birth", dt.date(1990, 5, 17), "1990-05-17"),
        ("marital_status", "married", "married"),
        ("address", "Số 1\r\nấp 3", "Số 1\nấp 3"),
        (
            "education",
            {"level": "bachelor", "institution": " Đại học Cần Thơ ", "year": 2012},
            '{"institution":"Đại học Cần Thơ","level":"bachelor","year":2012}',
        ),
        (
            "vehicle",
            [{"plate": "93H1-123.45", "kind": "motorbike"}],
            '[{"kind":"motorbike","plate":"93H1-123.45"}]',
        ),
        ("household_members", [], "[]"),
    ],
)
def test_values_are_normalised_before_they_are_stored(key, raw, stored):
    assert clean_item_values({key: raw}) == {key: stored}


@pytest.mark.parametrize(
    ("key", "raw", "path", "message"),
    [
        ("full_name", 42, "", "Enter the value as text."),
        ("full_name", "   ", "", "Enter a value."),
        ("full_name", "An\x00", "", "Remove the invisible control characters."),
        ("full_name", "x" * 201, "", "Use at most 200 characters."),
        ("full_name", "two\nlines", "", "Write this on one line."),
        ("phone", "12345", "", "Enter a Vietnamese phone number, for example 0901 234 567."),
        ("phone", 901234567, "", "Enter the value as text."),
        ("email", "not-an-email", "", "Enter an e-mail address, for example ten@example.vn."),
        ("national_id", "07909000123X", "", "A national ID number has 12 digits (or 9 on an old card)."),
        ("date_of_birth", "17/05/1990", "", "Enter a date as YYYY-MM-DD."),
        ("date_of_birth", "1990-02-30", "", "This date does not exist."),
        ("date_of_birth", "2999-01-01", "", "Enter a date between 1900 and today."),
        ("date_of_birth", 19900517, "", "Enter a date as YYYY-MM-DD."),
        ("marital_status", "complicated", "", "Choose one of: single (Single), married (Married), "),
        ("marital_status", ["married"], "", "Choose one of:"),
        ("education", "bachelor", "", "Give an object with the fields: level, institution, year."),
        ("education", {"level": "bachelor", "year": "2012"}, "year", "Enter a year between 1900 and 2100."),
        ("education", {"institution": "X"}, "level", "This is required."),
        ("education", {"level": "bachelor", "grade": "A"}, "", "Unknown fields: grade."),
        ("education", {"level": "wizard"}, "level", "Choose one of: primary (Primary school)"),
        ("vehicle", {"plate": "93H1"}, "", "Give a list of entries."),
        ("vehicle", ["93H1-123.45"], "0", "Each entry must be an object"),
        ("vehicle", [{"plate": "93H1", "kind": "spaceship"}], "0.kind", "Choose one of:"),
        ("vehicle", [{"plate": {"nested": ["deep"]}, "kind": "car"}], "0.plate", "Enter the value as text."),
        (
            "household_members",
            [{"name": "A", "relationship": "child", "date_of_birth": "2030-01-01"}],
            "0.date_of_birth",
            "Enter a date between 1900 and today.",
        ),
        (
            "household_members",
            [{"name": "A", "relationship": "child", "date_of_birth": "12/03/2019"}],
            "0.date_of_birth",
            "Enter a date as YYYY-MM-DD.",
        ),
        (
            "household_members",
            [
                {"name": "A", "relationship": "child"},
                {"name": "B", "relationship": "child", "date_of_birth": 1},
            ],
            "0.date_of_birth",
            "This is required.",
        ),
        ("vehicle", [{"plate": "P", "kind": "car"}] * 21, "", "Give at most 20 entries."),
    ],
)
def test_wrong_values_are_refused_with_a_message_per_field(key, raw, path, message):
    with pytest.raises(InvalidItemValues) as exc:
        clean_item_values({key: raw})
    errors = exc.value.field_errors[key]
    assert path in errors
    assert errors[path].startswith(message) or message in errors[path]
    assert exc.value.code == "invalid_item_values"
    assert exc.value.status == 422


def test_structured_errors_name_the_entry_and_field_for_api_clients():
    with pytest.raises(InvalidItemValues) as exc:
        clean_item_values(
            {"household_members": [{"name": "A", "relationship": "head", "date_of_birth": "1990-01-01"}, {}]}
        )
    assert exc.value.details["household_members"].startswith("Entry 2, Name: This is required.")


def test_validation_messages_use_the_active_language_for_labels():
    with translation.override("vi"), pytest.raises(InvalidItemValues) as exc:
        clean_item_values({"education": {"level": "bachelor", "year": "năm ngoái"}})
    assert exc.value.details["education"].startswith("Năm tốt nghiệp: ")


def test_unknown_item_is_reported_not_crashed():
    with pytest.raises(InvalidItemValues) as exc:
        clean_item_values({"favourite_colour": "blue"})
    assert "favourite_colour" in exc.value.details


# --- recording by an agency of record -----------------------------------------------------


def test_agency_records_a_verified_value_with_provenance_history_audit_and_signal(sent):
    person = make_citizen()
    civil_status = make_register("Civil status register")
    item = profile_item_record(person=person, key="marital_status", value="married", agency=civil_status)
    item.refresh_from_db()
    assert (item.value, item.source_kind, item.agency, item.application) == (
        "married",
        "agency",
        civil_status,
        None,
    )
    assert item.verified_at is not None
    change = item.changes.get()
    assert (change.old_value, change.new_value, change.cause, change.agency) == (
        "",
        "married",
        "agency.update",
        civil_status,
    )
    entry = AuditEntry.objects.filter(action="profile.record", person=person).last()
    assert entry.agency == civil_status and entry.details["changed"] == ["marital_status"]
    assert "married" not in json.dumps(entry.details)  # values never go into the audit log
    assert len(sent) == 1
    assert sent[0]["person"] == person and sent[0]["cause"] == "agency.update"
    assert sent[0]["changes"] == [
        {"key": "marital_status", "source": civil_status.code, "verified_at": item.verified_at.isoformat()}
    ]
    assert sent[0]["agency"] == civil_status and sent[0]["in_transaction"]


def test_recording_the_same_value_again_only_refreshes_verified_at(sent):
    person = make_citizen()
    register = make_register()
    first = profile_item_record(person=person, key="marital_status", value="single", agency=register)
    audited = AuditEntry.objects.filter(action="profile.record", person=person).count()
    later = timezone.now() + dt.timedelta(days=30)
    again = profile_item_record(
        person=person, key="marital_status", value="single", agency=register, verified_at=later
    )
    assert again.pk == first.pk
    again.refresh_from_db()
    assert again.verified_at == later
    assert again.changes.count() == 1
    assert len(sent) == 1
    assert AuditEntry.objects.filter(action="profile.record", person=person).count() == audited


def test_a_new_value_keeps_the_old_one_in_history(sent):
    person = make_citizen()
    register = make_register()
    profile_item_record(person=person, key="marital_status", value="single", agency=register)
    item = profile_item_record(person=person, key="marital_status", value="married", agency=register)
    history = list(item.changes.order_by("at", "id").values_list("old_value", "new_value"))
    assert history == [("", "single"), ("single", "married")]
    assert [s["changes"][0]["key"] for s in sent] == ["marital_status", "marital_status"]


def test_history_values_are_encrypted_at_rest():
    person = make_citizen()
    item = profile_item_record(person=person, key="phone", value="0987654321", agency=make_register())
    assert "0987654321" not in _raw_value(item)
    with connection.cursor() as cursor:
        cursor.execute("SELECT new_value FROM identity_profileitemchange WHERE item_id = %s", [item.pk])
        assert "0987654321" not in cursor.fetchone()[0]


def test_all_or_nothing_when_one_value_is_wrong(sent):
    person = make_citizen()
    with pytest.raises(InvalidItemValues) as exc:
        profile_items_record(
            person=person,
            values={"marital_status": "married", "vehicle": [{"plate": "X", "kind": "boat"}]},
            agency=make_register(),
        )
    assert set(exc.value.details) == {"vehicle"}
    assert not person.items.filter(key__in=["marital_status", "vehicle"]).exists()
    assert sent == []


def test_sql_looking_text_is_stored_verbatim():
    person = make_citizen()
    hostile = "Robert'); DROP TABLE identity_profileitem;-- ấp 3"
    item = profile_item_record(person=person, key="address", value=hostile, agency=population_register())
    assert ProfileItem.objects.get(pk=item.pk).value == hostile
    assert hostile not in _raw_value(item)


def test_signal_receivers_run_in_the_changes_transaction():
    person = make_citizen()

    def refuse(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("outbox down")

    profile_items_changed.connect(refuse, dispatch_uid="test_profile.refuse")
    try:
        with pytest.raises(RuntimeError):
            profile_item_record(person=person, key="marital_status", value="married", agency=make_register())
    finally:
        profile_items_changed.disconnect(dispatch_uid="test_profile.refuse")
    assert not person.items.filter(key="marital_status").exists()
    assert not ProfileItemChange.objects.filter(item__person=person, item__key="marital_status").exists()


def test_registration_records_history_but_announces_and_audits_nothing(sent):
    person = make_citizen()
    keys = set(person.items.values_list("key", flat=True))
    assert keys == {"full_name", "date_of_birth", "national_id", "address", "email"}
    causes = set(ProfileItemChange.objects.filter(item__person=person).values_list("cause", flat=True))
    assert causes == {"registration"}
    assert sent == []
    assert not AuditEntry.objects.filter(person=person).exists()


def test_application_must_be_the_agencys_agency_of_record_and_allowed():
    person = make_citizen()
    app, _key = make_application(allowed_items=["address"])
    with pytest.raises(PermissionDenied) as exc:
        profile_item_record(person=person, key="address", value="X", agency=app.agency, application=app)
    assert exc.value.code == "not_agency_of_record"
    app.is_agency_of_record = True
    app.save()
    with pytest.raises(PermissionDenied) as exc:
        profile_item_record(
            person=person, key="phone", value="0901234567", agency=app.agency, application=app
        )
    assert exc.value.code == "items_not_allowed"
    with pytest.raises(PermissionDenied) as exc:
        profile_item_record(person=person, key="address", value="X", agency=make_register(), application=app)
    assert exc.value.code == "not_agency_of_record"
    item = profile_item_record(person=person, key="address", value="X", agency=app.agency, application=app)
    assert item.application == app


def test_new_national_id_moves_the_persons_lookup_and_cannot_take_anothers():
    person, other = make_citizen(), make_citizen()
    register = population_register()
    profile_item_record(person=person, key="national_id", value="001099012345", agency=register)
    assert person_find(key="national_id", value="001 099 012 345") == person
    with pytest.raises(Conflict):
        profile_item_record(person=person, key="national_id", value=other.national_id, agency=register)
    assert Person.objects.get(pk=person.pk).national_id == "001099012345"


def test_full_name_from_the_register_renames_the_login():
    person = make_citizen()
    profile_item_record(person=person, key="full_name", value="Nguyễn Thị Mới", agency=population_register())
    person.user.refresh_from_db()
    assert person.user.full_name == "Nguyễn Thị Mới"


def test_people_are_found_by_identifying_items_only():
    person, neighbour = make_citizen(), make_citizen()
    profile_item_record(person=person, key="phone", value="0901 234 567", agency=make_register())
    assert person_find(key="phone", value="+84901234567") == person
    assert person_find(key="email", value=person.user.email.upper()) == person
    assert person_find(key="phone", value="0999999999") is None
    profile_item_record(person=neighbour, key="phone", value="0901234567", agency=make_register())
    assert person_find(key="phone", value="0901234567") is None  # shared: not an identity
    with pytest.raises(ValueError):
        person_find(key="address", value="12 Đường Lê Lợi, xã An Bình")


def test_history_is_append_only():
    person = make_citizen()
    change = ProfileItemChange.objects.filter(item__person=person).first()
    change.new_value = "tampered"
    with pytest.raises(ValueError):
        change.save()
    with pytest.raises(ValueError):
        change.delete()


# --- declaring by the citizen -------------------------------------------------------------


def test_citizen_declares_an_item_no_agency_holds(sent):
    person = make_citizen()
    value = {"level": "bachelor", "institution": "Đại học Cần Thơ", "year": 2012}
    item = profile_item_declare(person=person, key="education", value=value)
    assert item.source_kind == "declared" and item.agency is None and item.verified_at is None
    assert json.loads(item.value) == value
    change = item.changes.get()
    assert change.actor == person.user and change.cause == "citizen.declare"
    assert sent[0]["cause"] == "citizen.declare" and sent[0]["actor"] == person.user
    assert sent[0]["changes"] == [{"key": "education", "source": "declared", "verified_at": None}]
    assert AuditEntry.objects.filter(action="profile.declare", person=person, actor=person.user).exists()


@pytest.mark.parametrize("key", ["full_name", "date_of_birth", "national_id", "address", "gender", "vehicle"])
def test_citizen_can_never_overwrite_identity_items(key, sent):
    person = make_citizen()
    before = {i.key: i.value for i in person.items.all()}
    with pytest.raises(ItemNotDeclarable) as exc:
        profile_item_declare(person=person, key=key, value="1990-01-01")
    assert exc.value.code == "item_not_declarable" and exc.value.status == 403
    assert {i.key: i.value for i in person.items.all()} == before
    assert sent == []


def test_declarable_item_held_by_an_agency_is_no_longer_the_citizens_to_change():
    person = make_citizen()
    ministry = make_register("Ministry of Education")
    profile_item_record(person=person, key="education", value={"level": "bachelor"}, agency=ministry)
    with pytest.raises(ItemNotDeclarable) as exc:
        profile_item_declare(person=person, key="education", value={"level": "postgraduate"})
    assert "Ministry of Education" in exc.value.message
    assert json.loads(person.items.get(key="education").value) == {"level": "bachelor"}


def test_citizen_corrects_a_contact_detail_an_agency_recorded(sent):
    person = make_citizen()
    register = make_register()
    profile_item_record(person=person, key="phone", value="0901234567", agency=register)
    item = profile_item_declare(person=person, key="phone", value="0912 345 678")
    assert (item.value, item.source_kind, item.agency) == ("0912345678", "declared", None)
    history = list(item.changes.order_by("at", "id"))
    assert [(c.source_kind, c.agency) for c in history] == [("agency", register), ("declared", None)]
    assert history[-1].old_value == "0901234567"
    assert person_find(key="phone", value="0912345678") == person
    assert person_find(key="phone", value="0901234567") is None


def test_declaring_the_same_value_changes_nothing(sent):
    person = make_citizen()
    profile_item_declare(person=person, key="current_address", value="Số 8 Trần Phú")
    profile_item_declare(person=person, key="current_address", value=" Số 8 Trần Phú ")
    assert ProfileItemChange.objects.filter(item__person=person, item__key="current_address").count() == 1
    assert len(sent) == 1


def test_declared_value_is_validated():
    person = make_citizen()
    with pytest.raises(InvalidItemValues) as exc:
        profile_item_declare(person=person, key="email", value="not an email")
    assert "email" in exc.value.field_errors
    assert not person.items.filter(key="email", source_kind="declared").exists()


def test_recording_the_same_value_the_citizen_declared_verifies_it(sent):
    person = make_citizen()
    profile_item_declare(person=person, key="current_address", value="Số 8 Trần Phú")
    police = make_register("Commune police")
    item = profile_item_record(person=person, key="current_address", value="Số 8 Trần Phú", agency=police)
    assert (item.source_kind, item.agency) == ("agency", police) and item.verified_at
    assert item.changes.count() == 2
    assert len(sent) == 1  # the value did not change: nothing more to announce


def test_a_failed_change_leaves_no_half_written_history():
    person = make_citizen()
    with pytest.raises(Conflict), transaction.atomic():
        profile_items_record(
            person=person,
            values={"marital_status": "married", "national_id": make_citizen().national_id},
            agency=population_register(),
        )
    assert not person.items.filter(key="marital_status").exists()


# --- the data migration -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_migration_turns_source_strings_into_provenance():
    from django.db.migrations.executor import MigrationExecutor

    before = [("identity", "0002_profile_provenance_and_history")]
    after = [("identity", "0003_profile_provenance_data")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    User = old.get_model("identity", "User")
    Person = old.get_model("identity", "Person")
    Item = old.get_model("identity", "ProfileItem")
    Agency = old.get_model("agencies", "Agency")
    police = Agency.objects.create(code="cong-an-xa", name_vi="Công an xã")
    user = User.objects.create(username="old", email="old@example.test")
    person = Person.objects.create(user=user, national_id="079090009999", national_id_hash="h")
    rows = {
        "national_id": ("079090009999", "cong-an-xa"),
        "full_name": ("Nguyễn Văn Cũ", "National Population Database"),
        "phone": ("0901 234 567", "declared"),
        "address": ("Số 1", "National Population Database"),
    }
    for key, (value, source) in rows.items():
        Item.objects.create(person=person, key=key, value=value, source=source, source_kind="agency")

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new = executor.loader.project_state(after).apps
    items = {i.key: i for i in new.get_model("identity", "ProfileItem").objects.select_related("agency")}
    assert (items["national_id"].source_kind, items["national_id"].agency_id) == ("agency", police.pk)
    assert items["phone"].source_kind == "declared" and items["phone"].agency_id is None
    legacy = items["full_name"].agency
    assert legacy.name_vi == "National Population Database" and items["address"].agency_id == legacy.pk
    assert items["full_name"].value == "Nguyễn Văn Cũ"
    assert (
        items["phone"].lookup_hash and items["national_id"].lookup_hash and not items["address"].lookup_hash
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert person_find(key="phone", value="0901234567").pk == person.pk
