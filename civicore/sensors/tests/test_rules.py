"""The rules engine on a park: a soil sensor, a rain gauge and two valves. Readings are stored as
ingestion stores them, then run through the engine; commands reach the in-memory broker."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from civicore.agencies.models import Agency
from civicore.agencies.permissions import MissingPermission
from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.audit.models import AuditEntry
from civicore.core.errors import PermissionDenied
from civicore.reports import selectors as report_selectors
from civicore.reports.models import Report
from civicore.sensors import commands, rules, storage
from civicore.sensors.broker import broker, reset_broker
from civicore.sensors.models import Command, Device, DeviceType, Rule, RuleFiring, RuleState, RuleVersion
from civicore.sensors.ruledef import RuleInvalid
from civicore.sensors.tests.factories import (
    make_provisioned_device,
    rain_gauge_type,
    sensor_engineer,
    sensor_operator,
    soil_moisture_type,
    valve_type,
)
from civicore.sensors.types import StoredReading

pytestmark = pytest.mark.django_db


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in the agency's time zone (a June night in the park, by default)."""
    return datetime(2026, 6, day, hour, minute, tzinfo=ZoneInfo(settings.TIME_ZONE))


@dataclass
class Park:
    agency: Agency
    soil_type: DeviceType
    gauge_type: DeviceType
    valve_type: DeviceType
    soil: Device
    gauge: Device
    valves: list[Device]
    far_valve: Device  # the same type, in another park
    engineer: Any

    def irrigation(self, **changes: Any) -> dict[str, Any]:
        """Soil moisture below 20 % for 30 minutes, not between 10:00 and 16:00, no rain from the
        park's gauge in the last hour => open the park's valves for 10 minutes; clear above 35 %."""
        definition: dict[str, Any] = {
            "target": {"device_type": self.soil_type.code},
            "when": {
                "all": [
                    {
                        "threshold": {
                            "quantity": "soil_moisture",
                            "op": "below",
                            "value": 20,
                            "clear": 35,
                            "for_s": 1800,
                        }
                    },
                    {"schedule": {"not_between": ["10:00", "16:00"]}},
                    {
                        "group": {
                            "device_type": self.gauge_type.code,
                            "quantity": "rainfall",
                            "aggregate": "sum",
                            "window_s": 3600,
                            "op": "at_most",
                            "value": 0,
                        }
                    },
                ]
            },
            "on_fire": [
                {
                    "command": {
                        "to": {"device_type": self.valve_type.code},
                        "name": "open",
                        "params": {"duration_s": 600},
                    }
                }
            ],
            "on_clear": [{"command": {"to": {"device_type": self.valve_type.code}, "name": "close"}}],
        }
        definition.update(changes)
        return definition


def heartbeat(devices: list[Device], at: datetime) -> None:
    Device.objects.filter(pk__in=[device.pk for device in devices]).update(last_seen_at=at)
    for device in devices:
        device.last_seen_at = at


def make_park(agency: Agency | None = None, group: str = "tao-dan") -> Park:
    agency = agency or AgencyFactory()
    soil_type = soil_moisture_type(agency)
    gauge_type = rain_gauge_type(agency)
    # Valves report hourly here, so they stay online through a night of readings.
    kind = valve_type(agency, expected_interval_s=3600, max_run_s=900)
    soil, _ = make_provisioned_device(soil_type, group=group)
    gauge, _ = make_provisioned_device(gauge_type, group=group)
    valves = [make_provisioned_device(kind, group=group)[0] for _ in range(2)]
    far_valve, _ = make_provisioned_device(kind, group="gia-dinh")
    heartbeat([*valves, far_valve, gauge], local(11, 1, 0))
    return Park(agency, soil_type, gauge_type, kind, soil, gauge, valves, far_valve, sensor_engineer(agency))


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


Feed = Callable[[Device, str, float, datetime], list[RuleFiring]]


@pytest.fixture
def feed(django_capture_on_commit_callbacks: Any) -> Feed:
    """Store one reading as ingestion does and run the engine over it (what commits, publishes)."""

    def run(device: Device, quantity: str, value: float, at: datetime) -> list[RuleFiring]:
        with django_capture_on_commit_callbacks(execute=True):
            batch = storage.Batch()
            batch.add(device.pk, quantity, at.timestamp(), value)
            storage.store(batch)
            return rules.evaluate(
                [StoredReading(device.pk, device.device_id, quantity, at.astimezone(UTC), value)], now=at
            )

    return run


def published(topic_part: str = "") -> list[tuple[str, dict[str, Any]]]:
    return [
        (message.topic, json.loads(message.payload))
        for message in broker().published  # type: ignore[attr-defined]
        if topic_part in message.topic
    ]


def save(park: Park, definition: dict[str, Any], code: str = "irrigation") -> RuleVersion:
    return rules.rule_save(
        rule_or_none=None,
        agency=park.agency,
        code=code,
        name="Tưới công viên",
        definition=definition,
        note="first",
        actor=park.engineer,
    )


def dry_night(park: Park, feed: Feed, *, until_minute: int = 30, value: float = 19.0) -> list[RuleFiring]:
    firings = []
    for minute in range(0, until_minute + 1, 10):
        firings += feed(park.soil, "soil_moisture", value, local(11, 2, minute))
    return firings


# --- the example rule --------------------------------------------------------------------------


def test_dry_soil_for_half_an_hour_at_night_without_rain_opens_the_parks_valves(
    park: Park, feed: Feed
) -> None:
    save(park, park.irrigation())
    feed(park.gauge, "rainfall", 0.0, local(11, 1, 50))
    firings = dry_night(park, feed, until_minute=20)
    assert firings == [] and published() == []
    assert RuleState.objects.get(device=park.soil).pending_since == local(11, 2, 0)

    (firing,) = feed(park.soil, "soil_moisture", 18.5, local(11, 2, 30))

    assert firing.kind == RuleFiring.Kind.FIRED
    messages = published()
    assert sorted(topic for topic, _ in messages) == sorted(
        f"civicore/v1/devices/{valve.device_id}/commands" for valve in park.valves
    )
    for topic, body in messages:
        command = Command.objects.get(public_id=body["id"])
        assert topic.endswith(f"/{command.device.device_id}/commands")
        assert body["name"] == "open" and body["params"] == {"duration_s": 600}
        assert body["expires"] == int(command.deadline.timestamp())
        assert command.status == Command.Status.SENT and command.firing == firing
        assert broker().published[0].qos == 1  # type: ignore[attr-defined]
    assert not Command.objects.filter(device=park.far_valve).exists()
    # The readings that caused it: the first dry reading, the last one, and the gauge's hour.
    times = [item.get("time") for item in firing.readings if item.get("quantity") == "soil_moisture"]
    assert times == [
        local(11, 2, 0).astimezone(UTC).isoformat(),
        local(11, 2, 30).astimezone(UTC).isoformat(),
    ]
    rain = next(item for item in firing.readings if item.get("aggregate") == "sum")
    assert rain["value"] == 0.0 and rain["devices"] == 1
    assert firing.actions[0]["type"] == "command" and len(firing.actions[0]["commands"]) == 2
    entry = AuditEntry.objects.get(action="sensor.rule.fire")
    assert entry.details["device"] == park.soil.device_id and entry.details["readings"] == firing.readings
    assert entry.agency_id == park.agency.pk


def test_rain_in_the_last_hour_keeps_the_valves_closed(park: Park, feed: Feed) -> None:
    save(park, park.irrigation())
    feed(park.gauge, "rainfall", 1.2, local(11, 1, 45))
    assert dry_night(park, feed, until_minute=40) == []
    assert published() == []


def test_rain_more_than_an_hour_ago_does_not_count(park: Park, feed: Feed) -> None:
    save(park, park.irrigation())
    feed(park.gauge, "rainfall", 4.0, local(11, 1, 20))
    firings = dry_night(park, feed, until_minute=30)
    assert [firing.kind for firing in firings] == [RuleFiring.Kind.FIRED]


def test_between_ten_and_four_nothing_is_watered_and_at_four_it_is(park: Park, feed: Feed) -> None:
    save(park, park.irrigation())
    heartbeat(park.valves, local(11, 15, 0))
    for minute in range(0, 60, 10):
        assert feed(park.soil, "soil_moisture", 15.0, local(11, 10, minute)) == []
    assert feed(park.soil, "soil_moisture", 15.0, local(11, 15, 50)) == []
    assert published() == []
    # Dry all afternoon: the first reading after 16:00 fires at once.
    (firing,) = feed(park.soil, "soil_moisture", 15.0, local(11, 16, 0))
    assert firing.kind == RuleFiring.Kind.FIRED
    assert len(published()) == 2


def test_hysteresis_fires_once_and_clears_above_35(park: Park, feed: Feed) -> None:
    save(park, park.irrigation())
    assert len(dry_night(park, feed)) == 1
    assert feed(park.soil, "soil_moisture", 21.0, local(11, 2, 40)) == []
    assert feed(park.soil, "soil_moisture", 19.0, local(11, 2, 50)) == []
    assert feed(park.soil, "soil_moisture", 34.0, local(11, 3, 0)) == []
    assert RuleFiring.objects.count() == 1
    assert [body["name"] for _, body in published()] == ["open", "open"]

    (cleared,) = feed(park.soil, "soil_moisture", 36.0, local(11, 3, 10))

    assert cleared.kind == RuleFiring.Kind.CLEARED
    assert cleared.readings[0]["value"] == 36.0
    assert [body["name"] for _, body in published()][2:] == ["close", "close"]
    assert not RuleState.objects.get(device=park.soil).active
    assert AuditEntry.objects.filter(action="sensor.rule.clear").count() == 1


def test_a_dry_spell_interrupted_by_a_wet_reading_starts_its_half_hour_again(park: Park, feed: Feed) -> None:
    save(park, park.irrigation())
    feed(park.soil, "soil_moisture", 19.0, local(11, 2, 0))
    feed(park.soil, "soil_moisture", 19.0, local(11, 2, 20))
    feed(park.soil, "soil_moisture", 25.0, local(11, 2, 25))
    assert RuleState.objects.get(device=park.soil).pending_since is None
    assert feed(park.soil, "soil_moisture", 19.0, local(11, 2, 30)) == []
    assert feed(park.soil, "soil_moisture", 19.0, local(11, 2, 50)) == []
    assert len(feed(park.soil, "soil_moisture", 19.0, local(11, 3, 0))) == 1


def test_the_interlock_closes_the_valves_after_the_run_time_even_if_the_rule_never_clears(
    park: Park, feed: Feed, django_capture_on_commit_callbacks: Any
) -> None:
    save(park, park.irrigation())
    (firing,) = dry_night(park, feed)
    opened = list(Command.objects.filter(firing=firing, interlock=False))
    fired_at = min(command.sent_at for command in opened if command.sent_at)
    for command in opened:  # the valves confirm they opened
        ack = {"id": str(command.public_id), "status": "ok"}
        commands.acknowledge(command.device.device_id, json.dumps(ack).encode(), now=fired_at)
    with django_capture_on_commit_callbacks(execute=True):
        commands.supervise(now=fired_at + timedelta(seconds=590))
    assert [body["name"] for _, body in published()] == ["open", "open"]
    with django_capture_on_commit_callbacks(execute=True):
        commands.supervise(now=fired_at + timedelta(seconds=601))
    closes = [(topic, body) for topic, body in published() if body["name"] == "close"]
    assert sorted(topic for topic, _ in closes) == sorted(
        f"civicore/v1/devices/{valve.device_id}/commands" for valve in park.valves
    )
    assert all(Command.objects.get(public_id=body["id"]).interlock for _, body in closes)
    assert RuleState.objects.get(device=park.soil).active  # the rule itself still holds


def test_a_second_process_with_a_fresh_cache_does_not_fire_again(park: Park, feed: Feed) -> None:
    save(park, park.irrigation())
    dry_night(park, feed, until_minute=20)
    reading = StoredReading(park.soil.pk, park.soil.device_id, "soil_moisture", local(11, 2, 30), 19.0)
    batch = storage.Batch()
    batch.add(park.soil.pk, "soil_moisture", reading.time.timestamp(), 19.0)
    storage.store(batch)
    first = rules.evaluate([reading], now=reading.time)
    rules.forget_cache()
    second = rules.evaluate([reading], now=reading.time + timedelta(milliseconds=5))
    assert len(first) == 1 and second == []
    assert RuleFiring.objects.count() == 1


def test_two_processes_holding_the_same_stale_state_fire_once(park: Park, feed: Feed) -> None:
    save(park, park.irrigation())
    dry_night(park, feed, until_minute=20)
    stale = RuleState.objects.get(device=park.soil)  # what a second process read before the firing
    assert not stale.active
    reading = StoredReading(park.soil.pk, park.soil.device_id, "soil_moisture", local(11, 2, 30), 19.0)
    assert len(rules.evaluate([reading], now=reading.time)) == 1

    ruleset = rules.rule_set()
    compiled = next(iter(ruleset.by_id.values()))
    info = rules._device_infos([park.soil.pk])[park.soil.pk]
    late = rules._run_pair(compiled, info, stale, [reading], rules._Batch(reading.time))

    assert late == []
    assert RuleFiring.objects.count() == 1
    assert Command.objects.filter(interlock=False).count() == 2


def test_firing_to_publication_is_fast(park: Park, django_capture_on_commit_callbacks: Any) -> None:
    soil_type, kind = park.soil_type, park.valve_type
    sensors = [make_provisioned_device(soil_type, group=f"zone-{index}")[0] for index in range(12)]
    valves = [make_provisioned_device(kind, group=f"zone-{index}")[0] for index in range(12)]
    heartbeat(valves, local(11, 2, 0))
    definition = park.irrigation()
    definition["when"] = {"threshold": {"quantity": "soil_moisture", "op": "below", "value": 20}}
    save(park, definition)
    commands.publish_latencies.clear()
    readings = []
    batch = storage.Batch()
    for sensor in sensors:
        batch.add(sensor.pk, "soil_moisture", local(11, 2, 0).timestamp(), 12.0)
        readings.append(StoredReading(sensor.pk, sensor.device_id, "soil_moisture", local(11, 2, 0), 12.0))
    storage.store(batch)
    with django_capture_on_commit_callbacks(execute=True):
        firings = rules.evaluate(readings, now=local(11, 2, 0))

    assert len(firings) == 12
    gaps = []
    for firing in firings:
        for command in firing.commands.filter(interlock=False):
            assert command.sent_at is not None
            gaps.append((command.sent_at - firing.at).total_seconds())
    assert len(gaps) == 12 and min(gaps) >= 0
    latencies = sorted(commands.publish_latencies)
    assert len(latencies) == 12
    p50, p99 = statistics.median(latencies), latencies[-1]
    print(
        f"firing -> sent_at p50 {statistics.median(gaps) * 1000:.2f} ms; -> published p50 {p50 * 1000:.2f} ms"
    )
    assert max(gaps) < 0.5 and p99 < 1.0


# --- other conditions --------------------------------------------------------------------------


def test_a_fast_rising_canal_raises_one_alarm(feed: Feed) -> None:
    agency = AgencyFactory()
    kind = DeviceType.objects.create(
        code="canal-level",
        agency=agency,
        name_vi="Mực nước",
        quantities=[{"name": "water_level", "unit": "cm"}],
    )
    gauge, _ = make_provisioned_device(kind, group="canal")
    rules.rule_save(
        rule_or_none=None,
        agency=agency,
        code="canal-rising",
        name="Canal rising",
        definition={
            "target": {"devices": [gauge.device_id]},
            "when": {
                "rate_of_change": {"quantity": "water_level", "op": "above", "per_minute": 2, "window_s": 600}
            },
            "on_fire": [
                {
                    "alarm": {
                        "severity": "critical",
                        "message": {"vi": "Nước lên nhanh", "en": "Water rising fast"},
                    }
                }
            ],
        },
        actor=None,
    )
    start = local(11, 4, 0)
    assert feed(gauge, "water_level", 100.0, start) == []
    assert feed(gauge, "water_level", 104.0, start + timedelta(minutes=5)) == []  # 0.8 cm/min
    (firing,) = feed(gauge, "water_level", 130.0, start + timedelta(minutes=10))  # 3 cm/min
    assert firing.readings[-1]["per_minute"] == pytest.approx(3.0)
    assert (
        feed(gauge, "water_level", 160.0, start + timedelta(minutes=15)) == []
    )  # still rising: no new firing
    alarm = gauge.alarms.get()
    assert alarm.severity == "critical" and alarm.status == "active"
    # Falling back: the rule clears; the alarm stays for an officer.
    (cleared,) = feed(gauge, "water_level", 161.0, start + timedelta(minutes=25))
    assert cleared.kind == RuleFiring.Kind.CLEARED
    assert gauge.alarms.get().status == "active"


def test_a_sensor_silent_for_a_day_opens_one_case_in_the_agencys_inbox(park: Park) -> None:
    rules.rule_save(
        rule_or_none=None,
        agency=park.agency,
        code="silent-sensor",
        name="Silent sensor",
        definition={
            "target": {"device_type": park.soil_type.code},
            "when": {"missing": {"after_s": 86400}},
            "on_fire": [{"case": {"description": {"vi": "Cảm biến độ ẩm đất không gửi dữ liệu một ngày"}}}],
        },
        actor=park.engineer,
    )
    now = local(12, 9, 0)
    heartbeat([park.soil], now - timedelta(hours=23))
    assert rules.check_offline(now=now) == []
    heartbeat([park.soil], now - timedelta(hours=25))

    (firing,) = rules.check_offline(now=now)

    report = Report.objects.get()
    assert (report.source, report.status, report.agency_id) == ("sensor", "open", park.agency.pk)
    assert report.description == "Cảm biến độ ẩm đất không gửi dữ liệu một ngày"
    assert (report.latitude, report.longitude) == (park.soil.latitude, park.soil.longitude)
    handler = make_officer(agency=park.agency, roles=("report_handler",))
    assert list(report_selectors.inbox(officer=handler)) == [report]
    assert firing.readings[0]["silent_s"] == 25 * 3600
    assert firing.actions == [{"type": "case", "report": report.reference}]
    # Still silent an hour later: no second case.
    assert rules.check_offline(now=now + timedelta(hours=1)) == []
    assert Report.objects.count() == 1
    # Heard from again: the rule clears.
    heartbeat([park.soil], now + timedelta(hours=2))
    (cleared,) = rules.check_offline(now=now + timedelta(hours=2, seconds=1))
    assert cleared.kind == RuleFiring.Kind.CLEARED


def test_missing_counts_expected_intervals_of_the_device_type(park: Park) -> None:
    definition = {
        "target": {"devices": [park.gauge.device_id]},
        "when": {"missing": {"intervals": 10}},
        "on_fire": [{"alarm": {"message": "Trạm đo mưa im lặng"}}],
    }
    rules.rule_save(rule_or_none=None, agency=park.agency, code="gauge", name="Gauge", definition=definition)
    now = local(12, 9, 0)
    heartbeat([park.gauge], now - timedelta(seconds=599))  # the gauge reports every 60 s
    assert rules.check_offline(now=now) == []
    heartbeat([park.gauge], now - timedelta(seconds=601))
    assert len(rules.check_offline(now=now)) == 1
    assert park.gauge.alarms.count() == 1


def test_readings_of_quantities_no_rule_reads_cost_no_query(
    park: Park, feed: Feed, django_assert_num_queries: Any
) -> None:
    save(park, park.irrigation())
    readings = [
        StoredReading(
            park.soil.pk, park.soil.device_id, "battery", local(11, 2, 0) + timedelta(seconds=i), 80.0
        )
        for i in range(10_000)
    ]
    assert rules.watched_quantities() == {"soil_moisture"}  # the rules are loaded once
    with django_assert_num_queries(0):
        assert rules.evaluate(readings, now=local(11, 2, 0)) == []


def test_a_disabled_rule_does_not_fire_and_starts_afresh_when_enabled(park: Park, feed: Feed) -> None:
    version = save(park, park.irrigation())
    dry_night(park, feed, until_minute=20)
    rules.rule_disable(rule=version.rule, actor=park.engineer)
    assert feed(park.soil, "soil_moisture", 19.0, local(11, 2, 30)) == []
    assert not RuleState.objects.exists()
    rules.rule_enable(rule=version.rule, actor=park.engineer)
    assert feed(park.soil, "soil_moisture", 19.0, local(11, 2, 40)) == []  # its half hour starts again
    assert len(feed(park.soil, "soil_moisture", 19.0, local(11, 3, 10))) == 1
    actions = list(
        AuditEntry.objects.filter(action__startswith="sensor.rule.").values_list("action", flat=True)
    )
    assert "sensor.rule.disable" in actions and "sensor.rule.enable" in actions


# --- saving rules ------------------------------------------------------------------------------


def test_each_save_is_a_new_version_and_old_ones_stay_as_they_were(park: Park, feed: Feed) -> None:
    first = save(park, park.irrigation())
    changed = park.irrigation()
    changed["when"]["all"][0]["threshold"]["value"] = 25
    second = rules.rule_save(
        rule_or_none=first.rule,
        agency=park.agency,
        code="irrigation",
        name="Tưới công viên Tao Đàn",
        definition=json.dumps(changed),
        note="drier parks",
        actor=park.engineer,
    )
    first.refresh_from_db()
    assert (first.number, second.number) == (1, 2)
    assert first.definition["when"]["all"][0]["threshold"]["value"] == 20
    rule = Rule.objects.get()
    assert rule.current_version == second and rule.name == "Tưới công viên Tao Đàn"
    assert second.created_by == park.engineer.user and second.note == "drier parks"
    # The engine uses the new version at once: 24 % is now dry.
    firings = dry_night(park, feed, value=24.0)
    assert [firing.rule_version_id for firing in firings] == [second.pk]


def test_only_the_agencys_engineers_edit_its_rules(park: Park) -> None:
    with pytest.raises(MissingPermission):
        rules.rule_save(
            rule_or_none=None,
            agency=park.agency,
            code="x",
            name="x",
            definition=park.irrigation(),
            actor=sensor_operator(park.agency),
        )
    stranger = sensor_engineer(AgencyFactory())
    with pytest.raises(PermissionDenied) as caught:
        rules.rule_save(
            rule_or_none=None,
            agency=park.agency,
            code="x",
            name="x",
            definition=park.irrigation(),
            actor=stranger,
        )
    assert caught.value.code == "other_agency"
    version = save(park, park.irrigation())
    with pytest.raises(PermissionDenied):
        rules.rule_disable(rule=version.rule, actor=stranger)
    assert not Rule.objects.exclude(pk=version.rule_id).exists()


def test_a_definition_naming_what_does_not_exist_is_refused_with_the_field(park: Park) -> None:
    cases = [
        (park.irrigation(target={"device_type": "no-such-type"}), "target.device_type"),
        (
            park.irrigation(
                on_fire=[{"command": {"to": {"device_type": park.valve_type.code}, "name": "explode"}}]
            ),
            "on_fire[0].command.name",
        ),
    ]
    wrong_quantity = park.irrigation()
    wrong_quantity["when"]["all"][2]["group"]["quantity"] = "snow"
    cases.append((wrong_quantity, "when.all[2].group.quantity"))
    for definition, field in cases:
        with pytest.raises(RuleInvalid) as caught:
            save(park, definition)
        assert caught.value.code == "sensors.invalid_rule"
        assert field in caught.value.details
    assert not Rule.objects.exists()


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"threshold": {"quantity": "soil_moisture", "op": "below", "value": 1}}
    for _ in range(depth):
        node = {"not": node}
    return node


HOSTILE: list[tuple[str, Any, str]] = [
    ("deep nesting", {"when": _nested(50)}, "definition"),
    ("nesting just over the limit", {"when": _nested(6)}, "when"),
    (
        "wrong type for value",
        {"when": {"threshold": {"quantity": "soil_moisture", "op": "below", "value": "20"}}},
        "when.threshold.value",
    ),
    (
        "boolean as number",
        {"when": {"threshold": {"quantity": "soil_moisture", "op": "below", "value": True}}},
        "when.threshold.value",
    ),
    (
        "unknown op",
        {"when": {"threshold": {"quantity": "soil_moisture", "op": "eq", "value": 1}}},
        "when.threshold.op",
    ),
    (
        "huge number",
        {"when": {"threshold": {"quantity": "soil_moisture", "op": "below", "value": 1e300}}},
        "when.threshold.value",
    ),
    (
        "NaN",
        {"when": {"threshold": {"quantity": "soil_moisture", "op": "below", "value": float("nan")}}},
        "definition",
    ),
    (
        "huge duration",
        {"when": {"threshold": {"quantity": "soil_moisture", "op": "below", "value": 1, "for_s": 10**12}}},
        "when.threshold.for_s",
    ),
    ("unknown condition", {"when": {"eval": "import os"}}, "when.eval"),
    (
        "unknown field",
        {"when": {"threshold": {"quantity": "soil_moisture", "op": "below", "value": 1, "sql": "x"}}},
        "when.threshold.sql",
    ),
    ("two conditions in one", {"when": {"all": [], "any": []}}, "when"),
    ("list of nothing", {"when": {"all": []}}, "when.all"),
    ("not a list of actions", {"on_fire": {"alarm": {}}}, "on_fire"),
    ("unknown action", {"on_fire": [{"shell": "rm -rf /"}]}, "on_fire[0].shell"),
    (
        "clear hysteresis on the wrong side",
        {"when": {"threshold": {"quantity": "soil_moisture", "op": "below", "value": 20, "clear": 10}}},
        "when.threshold.clear",
    ),
    (
        "bad time",
        {
            "when": {
                "all": [
                    {"threshold": {"quantity": "soil_moisture", "op": "below", "value": 1}},
                    {"schedule": {"between": ["25:00", "16:00"]}},
                ]
            }
        },
        "when.all[1].schedule.between[0]",
    ),
    (
        "too many conditions",
        {
            "when": {
                "any": [
                    {"threshold": {"quantity": "soil_moisture", "op": "below", "value": i}} for i in range(40)
                ]
            }
        },
        "when.any",
    ),
    (
        "missing beside a threshold",
        {
            "when": {
                "all": [
                    {"missing": {}},
                    {"threshold": {"quantity": "soil_moisture", "op": "below", "value": 1}},
                ]
            }
        },
        "when.all[1].threshold",
    ),
    ("no reading tested", {"when": {"schedule": {"between": ["01:00", "02:00"]}}}, "when"),
    ("huge text", {"description": "x" * 20_000}, "definition"),
    ("not an object", ["target"], "definition"),
]


@pytest.mark.parametrize(("label", "change", "field"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_definitions_are_refused_with_the_field(
    park: Park, label: str, change: Any, field: str
) -> None:
    definition = {**park.irrigation(), **change} if isinstance(change, dict) else change
    with pytest.raises(RuleInvalid) as caught:
        save(park, definition)
    assert caught.value.code == "sensors.invalid_rule"
    assert any(key.startswith(field) for key in caught.value.details), caught.value.details
    assert not Rule.objects.exists()


@pytest.mark.parametrize(
    "text",
    ["", "{", "[" * 30_000, '{"target": NaN}', '{"a": 1e999999}', "nul"],
    ids=["empty", "truncated", "deep", "nan", "overflow", "garbage"],
)
def test_definition_text_that_is_not_json_is_refused(park: Park, text: str) -> None:
    with pytest.raises(RuleInvalid) as caught:
        save(park, text)  # type: ignore[arg-type]
    assert caught.value.code == "sensors.invalid_rule"
    assert "definition" in caught.value.details
