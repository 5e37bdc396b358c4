"""Alarms raised by rules: one open alarm per rule and device, worked by the agency's operators,
audited; and the other things a rule can do for officers: notify them and clear its alarm."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import translation

from civicore.agencies.permissions import MissingPermission
from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.audit.models import AuditEntry
from civicore.core.errors import PermissionDenied, ValidationFailed
from civicore.notify.models import Notification
from civicore.sensors import alarms, rules, storage
from civicore.sensors.broker import reset_broker
from civicore.sensors.models import Alarm, RuleFiring
from civicore.sensors.tests.factories import sensor_engineer, sensor_operator
from civicore.sensors.tests.test_rules import Feed, Park, local, make_park

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_engine() -> Iterator[None]:
    storage.forget_partitions()
    rules.forget_cache()
    reset_broker()
    yield
    reset_broker()
    rules.forget_cache()


@pytest.fixture
def park() -> Park:
    return make_park()


@pytest.fixture
def feed(django_capture_on_commit_callbacks: Any) -> Feed:
    from civicore.sensors.types import StoredReading

    def run(device: Any, quantity: str, value: float, at: Any) -> list[RuleFiring]:
        with django_capture_on_commit_callbacks(execute=True):
            batch = storage.Batch()
            batch.add(device.pk, quantity, at.timestamp(), value)
            storage.store(batch)
            return rules.evaluate([StoredReading(device.pk, device.device_id, quantity, at, value)], now=at)

    return run


def dry_alarm_rule(park: Park, *, on_clear: list[dict[str, Any]] | None = None) -> None:
    rules.rule_save(
        rule_or_none=None,
        agency=park.agency,
        code="dry-soil",
        name="Dry soil",
        definition={
            "target": {"device_type": park.soil_type.code},
            "when": {"threshold": {"quantity": "soil_moisture", "op": "below", "value": 10, "clear": 15}},
            "on_fire": [
                {"alarm": {"severity": "warning", "message": {"vi": "Đất quá khô", "en": "Soil too dry"}}},
                {"notify": {}},
            ],
            "on_clear": on_clear or [],
        },
        actor=park.engineer,
    )


def test_a_rule_that_fires_again_before_anyone_cleared_its_alarm_raises_no_second_one(
    park: Park, feed: Feed
) -> None:
    dry_alarm_rule(park)
    start = local(11, 2)
    feed(park.soil, "soil_moisture", 8.0, start)
    feed(park.soil, "soil_moisture", 7.0, start + timedelta(minutes=5))  # still active
    feed(park.soil, "soil_moisture", 20.0, start + timedelta(minutes=10))  # clears
    feed(park.soil, "soil_moisture", 8.0, start + timedelta(minutes=15))  # fires again
    assert RuleFiring.objects.filter(kind=RuleFiring.Kind.FIRED).count() == 2
    alarm = Alarm.objects.get()
    assert (alarm.status, alarm.severity, alarm.message) == ("active", "warning", "Đất quá khô")
    assert alarm.rule is not None and alarm.rule.code == "dry-soil" and alarm.agency_id == park.agency.pk

    operator = sensor_operator(park.agency)
    alarms.alarm_clear(alarm=alarm, officer=operator, note="watered by hand")
    feed(park.soil, "soil_moisture", 20.0, start + timedelta(minutes=20))
    feed(park.soil, "soil_moisture", 8.0, start + timedelta(minutes=25))
    assert Alarm.objects.filter(status="active").count() == 1
    assert Alarm.objects.count() == 2


def test_operators_acknowledge_then_clear_and_both_are_audited(park: Park, feed: Feed) -> None:
    dry_alarm_rule(park)
    feed(park.soil, "soil_moisture", 8.0, local(11, 2))
    alarm = Alarm.objects.get()
    operator = sensor_operator(park.agency)

    alarms.alarm_acknowledge(alarm=alarm, officer=operator, note="  on my way ")
    alarm.refresh_from_db()
    assert (alarm.status, alarm.acknowledged_by, alarm.note) == ("acknowledged", operator.user, "on my way")
    with pytest.raises(alarms.AlarmNotOpen):
        alarms.alarm_acknowledge(alarm=alarm, officer=operator)

    alarms.alarm_clear(alarm=alarm, officer=operator, note="valve fixed")
    alarm.refresh_from_db()
    assert (alarm.status, alarm.cleared_by, alarm.note) == ("cleared", operator.user, "valve fixed")
    assert alarm.cleared_at is not None
    with pytest.raises(alarms.AlarmNotOpen) as caught:
        alarms.alarm_clear(alarm=alarm, officer=operator)
    assert caught.value.code == "sensors.alarm_not_open" and caught.value.status == 409
    actions = set(
        AuditEntry.objects.filter(actor=operator.user, agency=park.agency).values_list("action", flat=True)
    )
    assert actions == {"sensor.alarm.acknowledge", "sensor.alarm.clear"}


def test_only_the_agencys_operators_work_its_alarms(park: Park, feed: Feed) -> None:
    dry_alarm_rule(park)
    feed(park.soil, "soil_moisture", 8.0, local(11, 2))
    alarm = Alarm.objects.get()
    with pytest.raises(MissingPermission):
        alarms.alarm_acknowledge(
            alarm=alarm, officer=make_officer(agency=park.agency, roles=("report_handler",))
        )
    with pytest.raises(PermissionDenied) as caught:
        alarms.alarm_clear(alarm=alarm, officer=sensor_operator(AgencyFactory()))
    assert caught.value.code == "other_agency"
    inactive = sensor_operator(park.agency)
    inactive.active = False
    inactive.save()
    with pytest.raises(MissingPermission):
        alarms.alarm_clear(alarm=alarm, officer=inactive)
    with pytest.raises(ValidationFailed) as too_long:
        alarms.alarm_clear(alarm=alarm, officer=sensor_operator(park.agency), note="x" * 301)
    assert "note" in too_long.value.details
    alarm.refresh_from_db()
    assert alarm.status == "active"
    # An engineer holds sensor.operate too.
    alarms.alarm_acknowledge(alarm=alarm, officer=sensor_engineer(park.agency))


def test_the_alarm_speaks_the_readers_language(park: Park, feed: Feed) -> None:
    dry_alarm_rule(park)
    feed(park.soil, "soil_moisture", 8.0, local(11, 2))
    alarm = Alarm.objects.get()
    assert alarms.alarm_text(alarm, "en") == "Soil too dry"
    assert alarms.alarm_text(alarm, "vi") == "Đất quá khô"
    with translation.override("en"):
        assert alarms.alarm_text(alarm) == "Soil too dry"


def test_the_agencys_operators_are_notified_in_their_language(park: Park, feed: Feed) -> None:
    dry_alarm_rule(park)
    english = sensor_operator(park.agency)
    english.user.preferred_language = "en"
    english.user.save()
    vietnamese = sensor_operator(park.agency)
    bystander = make_officer(agency=park.agency, roles=("report_handler",))
    stranger = sensor_operator(AgencyFactory())

    (firing,) = feed(park.soil, "soil_moisture", 8.0, local(11, 2))

    told = Notification.objects.filter(user__in=[english.user, vietnamese.user])
    assert told.count() == 2
    assert not Notification.objects.filter(user__in=[bystander.user, stranger.user]).exists()
    assert (
        Notification.objects.get(user=english.user).subject == f"Rule Dry soil fired on {park.soil.device_id}"
    )
    vietnamese_note = Notification.objects.get(user=vietnamese.user)
    assert park.soil.device_id in vietnamese_note.subject
    assert vietnamese_note.link == f"/office/sensors/devices/{park.soil.device_id}/"
    assert "soil_moisture = 8.0" in vietnamese_note.body
    # The park's engineer from the fixture is an operator too.
    assert firing.actions[1] == {"type": "notify", "officers": 3}


def test_a_rule_can_clear_its_own_alarm(park: Park, feed: Feed) -> None:
    dry_alarm_rule(park, on_clear=[{"clear_alarm": {}}])
    feed(park.soil, "soil_moisture", 8.0, local(11, 2))
    assert Alarm.objects.get().status == "active"
    feed(park.soil, "soil_moisture", 12.0, local(11, 2, 5))  # within the hysteresis band
    assert Alarm.objects.get().status == "active"
    (cleared,) = feed(park.soil, "soil_moisture", 16.0, local(11, 2, 10))
    alarm = Alarm.objects.get()
    assert alarm.status == "cleared" and alarm.cleared_by is None
    assert cleared.actions == [{"type": "clear_alarm", "cleared": 1}]
