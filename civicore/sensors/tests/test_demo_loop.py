"""The demo data, and the demo's whole loop on a real Mosquitto: the park simulator's devices
logged in with their own credentials, the ingest process storing their readings and running the
rules, the irrigation rule firing on dry soil, the park's valves opening on the platform's command
and acknowledging it, the soil getting wetter and the valves closing themselves."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from civicore.agencies.models import Officer
from civicore.core import envfile
from civicore.identity.models import User
from civicore.identity.tests.factories import UserFactory
from civicore.sensors import demo, ingest, ruledef, rules, services, simulator, storage
from civicore.sensors.models import (
    Command,
    Device,
    DeviceType,
    Reading,
    Rejection,
    Rule,
    RuleFiring,
)
from civicore.sensors.tests.conftest import Mosquitto

PARK = "tao-dan"
SPEED = 60.0
# The loop takes about fifteen seconds: connect, the sensors' past, the firing, ten simulated
# minutes of watering (ten seconds), the valves closing. Anything past this is a failure.
LIMIT_S = 50.0


def _make_user(email: str, name: str) -> Any:
    return User.objects.filter(email=email).first() or UserFactory(email=email, full_name=name)


def _values(device_id: str, quantity: str) -> list[tuple[float, float]]:
    rows = Reading.objects.filter(device__device_id=device_id, quantity=quantity).order_by("time")
    return [(row.time.timestamp(), row.value) for row in rows]


@pytest.mark.django_db(transaction=True)
def test_dry_soil_opens_the_park_valves_and_watering_clears_the_rule(
    mosquitto: Mosquitto, dynsec: Any
) -> None:
    storage.forget_partitions()
    rules.forget_cache()
    demo.load(make_user=_make_user)
    specs, passwords = simulator.prepare(groups=[PARK])
    assert {spec.device_id for spec in specs} == {item[0] for item in demo.PARKS[0][2]}
    started = time.time()
    simulation = simulator.Simulation(
        specs, speed=SPEED, rain=False, seed=5, history_s=demo.simulator_history_s(started)
    )
    runner = simulator.Runner(simulation, passwords, host=mosquitto.host, port=mosquitto.port)
    group = f"demo-loop-{uuid.uuid4().hex[:8]}"
    platform = f"mqtt://{mosquitto.platform_username}:{mosquitto.platform_password}@{mosquitto.host}:{mosquitto.port}"
    process = ingest.IngestProcess(ingest.broker_address(platform), client_id=f"{group}-ingest", group=group)
    failures: list[BaseException] = []

    def play() -> None:
        # The devices start once ingestion listens: their past is what the rule looks at first.
        if not process.connected.wait(15):
            failures.append(TimeoutError("ingestion did not connect"))
            return
        try:
            runner.run(duration=LIMIT_S)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
            process.stop_event.set()

    def watch() -> None:
        # Ingestion stops two seconds after a valve closed by itself, once it had opened.
        while not process.stop_event.is_set() and not runner.stop_event.is_set():
            opened = simulation.events_of("valve_open")
            closed = [e for e in simulation.events_of("valve_close") if e.detail == "its duration is over"]
            if opened and closed:
                time.sleep(2.0)
                process.stop_event.set()
                return
            time.sleep(0.1)

    devices = threading.Thread(target=play, name="park-simulator")
    watcher = threading.Thread(target=watch, name="loop-watcher")
    devices.start()
    watcher.start()
    try:
        process.run(seconds=LIMIT_S)
    finally:
        runner.stop_event.set()
        devices.join(15)
        watcher.join(5)
    assert not failures, failures
    assert not Rejection.objects.exists(), list(
        Rejection.objects.values_list("device_ref", "reason", "detail")
    )

    # The sensors' past reached the platform, dry all along.
    soils = [spec.device_id for spec in specs if spec.kind == simulator.SOIL]
    for device_id in soils:
        past = [value for when, value in _values(device_id, "soil_moisture") if when < started]
        assert len(past) >= demo.DRY_FOR_S // 60
        assert max(past) < 20

    # The irrigation rule fired on that dry spell, in its current version.
    rule = Rule.objects.get(code=demo.IRRIGATION_RULE)
    fired = list(
        RuleFiring.objects.filter(rule_version__rule=rule, kind=RuleFiring.Kind.FIRED).order_by("at")
    )
    assert fired and {firing.device.device_id for firing in fired} <= set(soils)
    assert all(firing.rule_version_id == rule.current_version_id for firing in fired)
    evidence = [item for item in fired[0].readings if item.get("quantity") == "soil_moisture"]
    assert evidence and all(item["value"] < 20 for item in evidence)

    # Each firing told both of the park's valves to open for ten minutes; each acknowledged.
    opens = list(Command.objects.filter(firing__in=fired, name="open").select_related("device"))
    valves = sorted(spec.device_id for spec in specs if spec.kind == simulator.VALVE)
    assert sorted({command.device.device_id for command in opens}) == valves
    assert len(opens) == 2 * len(fired)
    for command in opens:
        assert command.params == {"duration_s": 600}
        assert command.status == Command.Status.ACKNOWLEDGED, (command.status, command.reason)
        assert command.result["detail"] == "open for 600 s"
        assert command.sent_at is not None and command.acknowledged_at is not None
        assert (command.acknowledged_at - command.sent_at).total_seconds() < 5
        # The platform's interlock stands by to close it at the latest after its run time.
        interlock = Command.objects.get(interlock=True, result__interlock_for=str(command.public_id))
        assert interlock.name == "close" and interlock.status == Command.Status.PENDING
        assert interlock.deadline is not None
        assert (interlock.deadline - command.sent_at).total_seconds() == pytest.approx(600, abs=1)
    first_ack = min(command.acknowledged_at.timestamp() for command in opens if command.acknowledged_at)

    # Each valve reported itself closed, then open after the command, then closed again.
    for valve in valves:
        states = [value for _when, value in _values(valve, "valve_open")]
        assert states[0] == 0.0 and 1.0 in states and states[-1] == 0.0, states
        opened_at = next(when for when, value in _values(valve, "valve_open") if value == 1.0)
        assert opened_at >= first_ack - 1.0

    # While they were open, the soil got wetter, past the rule's clear value.
    for device_id in soils:
        series = _values(device_id, "soil_moisture")
        before = [value for when, value in series if when <= first_ack]
        after = [value for when, value in series if when > first_ack]
        assert len(after) >= 8
        assert max(after) > 35 > before[-1] + 10
    # Each firing cleared: on a reading over 35 %, or on the first reading in the midday pause
    # (when started in the pause, the rule fired on the morning's readings).
    cleared = list(RuleFiring.objects.filter(rule_version__rule=rule, kind=RuleFiring.Kind.CLEARED))
    assert len(cleared) == len(fired)
    for firing in cleared:
        reading = firing.readings[0]
        local = datetime.fromisoformat(reading["time"]).astimezone(ZoneInfo(settings.TIME_ZONE))
        assert reading["value"] > 35 or (local.hour, local.minute) == (10, 0), reading
    assert simulation.events_of("rising") and simulation.events_of("wet")


# --- the demo data -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_demo_data_loads_once_and_keeps_what_officers_changed() -> None:
    logins = demo.load(make_user=_make_user)
    engineer = Officer.objects.get(user__email=demo.ENGINEER_EMAIL)
    assert engineer.agency.code == demo.AGENCY and engineer.roles == ["sensor_engineer"]
    assert logins[0] == (f"sensor engineer ({demo.AGENCY})", demo.ENGINEER_EMAIL, engineer.user.full_name)

    kinds = {kind.code: kind for kind in DeviceType.objects.all()}
    assert set(kinds) == {simulator.SOIL, simulator.RAIN, simulator.VALVE, simulator.AIR}
    valve = kinds[simulator.VALVE]
    assert valve.role == DeviceType.Role.ACTUATOR and valve.max_run_s == 900
    assert valve.command_names() == ["open", "close"]
    assert kinds[simulator.SOIL].quantity("soil_moisture") is not None
    assert kinds[simulator.SOIL].expected_interval_s == 60
    devices = list(Device.objects.all())
    assert len(devices) == 14 and {device.agency.code for device in devices} == {demo.AGENCY}
    assert {device.group for device in devices} >= {"tao-dan", "gia-dinh"}
    # All in Ho Chi Minh City.
    assert all(10.6 < device.latitude < 10.9 and 106.6 < device.longitude < 106.8 for device in devices)
    assert all(device.status == Device.Status.REGISTERED for device in devices)
    irrigation = ruledef.parse(Rule.objects.get(code=demo.IRRIGATION_RULE).current_version.definition)
    assert irrigation.quantities == {"soil_moisture"} and irrigation.device_types >= {
        "rain-gauge",
        "irrigation-valve",
    }
    offline = ruledef.parse(Rule.objects.get(code=demo.OFFLINE_RULE).current_version.definition)
    assert offline.offline and offline.missing is not None and offline.missing.after_s == 86400
    assert [action.kind for action in offline.on_fire] == ["alarm", "case"]

    # An engineer's new version of a rule and a revoked device survive loading again.
    rule = Rule.objects.get(code=demo.IRRIGATION_RULE)
    edited = {**demo.IRRIGATION_DEFINITION, "description": "Ten minutes were too short."}
    version = rules.rule_save(
        rule_or_none=rule,
        agency=rule.agency,
        code=rule.code,
        name=rule.name,
        definition=edited,
        actor=engineer,
    )
    services.device_revoke(device=Device.objects.get(device_id="aq-quan-7"), actor=engineer)
    demo.load(make_user=_make_user)
    assert DeviceType.objects.count() == 4 and Device.objects.count() == 14 and Rule.objects.count() == 2
    assert Rule.objects.get(code=demo.IRRIGATION_RULE).current_version_id == version.pk
    assert Device.objects.get(device_id="aq-quan-7").status == Device.Status.REVOKED

    # The simulator plays the demo's devices only: a real sensor of the same type keeps its
    # credentials, and a revoked demo device stays off the air.
    real = services.device_register(
        agency=engineer.agency,
        device_id="tao-dan-soil-real",
        name="Cảm biến thật",
        device_type=kinds[simulator.SOIL],
        group="tao-dan",
        latitude=10.775,
        longitude=106.692,
        actor=engineer,
    )
    services.device_provision(device=real, actor=engineer)
    specs, passwords = simulator.prepare()
    assert sorted(passwords) == sorted(set(demo.device_ids()) - {"aq-quan-7"})
    assert {spec.device_id for spec in specs} == set(passwords)
    real.refresh_from_db()
    assert real.credential_version == 1
    assert all(device.credential_version == 1 for device in Device.objects.filter(device_id__in=passwords))


def test_the_secrets_file_names_the_demo_broker_and_an_older_one_gets_it_added(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.env"
    envfile.main(str(fresh))
    values = dict(line.split("=", 1) for line in fresh.read_text().splitlines() if "=" in line)
    # Not 1883: Debian's own Mosquitto service listens there once the package is installed.
    assert values["MQTT_URL"] == "mqtt://127.0.0.1:1884"
    assert len(values["MQTT_ADMIN_PASSWORD"]) >= 40
    other = tmp_path / "other.env"
    envfile.main(str(other))
    assert (
        dict(line.split("=", 1) for line in other.read_text().splitlines() if "=" in line)[
            "MQTT_ADMIN_PASSWORD"
        ]
        != values["MQTT_ADMIN_PASSWORD"]
    )

    older = tmp_path / "older.env"
    older.write_text("SECRET_KEY=kept\nMQTT_URL=")  # an operator who turned the broker off
    envfile.main(str(older))
    envfile.main(str(older))
    lines = older.read_text().splitlines()
    assert lines[:2] == ["SECRET_KEY=kept", "MQTT_URL="]
    # (The payment sandbox's settings are appended too: civicore/core/tests/test_demo.py.)
    assert [line.split("=")[0] for line in lines if "=" in line and not line.startswith("VNPAY_")] == [
        "SECRET_KEY",
        "MQTT_URL",
        "MQTT_ADMIN_PASSWORD",
    ]
