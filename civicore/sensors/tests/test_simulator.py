"""The park simulator: its packs are SenML the platform accepts from the demo's device types, the
soil dries and is watered as a park's would be, valves obey, acknowledge and close themselves,
and the model runs fast while every reading carries a real, never future, time."""

from __future__ import annotations

import json
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from civicore.identity.tests.factories import UserFactory
from civicore.sensors import demo, pipeline, senml, simulator, storage
from civicore.sensors.models import Device, Reading, Rejection
from civicore.sensors.simulator import (
    AIR,
    FLOOR,
    RAIN,
    SOIL,
    VALVE,
    Message,
    SimDevice,
    Simulation,
)

HCMC = ZoneInfo("Asia/Ho_Chi_Minh")


def _at(hour: int, minute: int = 0) -> float:
    return datetime(2026, 12, 4, hour, minute, tzinfo=HCMC).timestamp()


def _park(*, soils: int = 2, valves: int = 1, gauge: bool = True, **soil: object) -> list[SimDevice]:
    devices = [SimDevice(f"park-soil-{n}", SOIL, "park", 60, **soil) for n in range(1, soils + 1)]  # type: ignore[arg-type]
    devices += [SimDevice(f"park-valve-{n}", VALVE, "park", 300, max_run_s=900) for n in range(1, valves + 1)]
    if gauge:
        devices.append(SimDevice("park-rain", RAIN, "park", 300))
    return devices


def _decode(message: Message) -> list[senml.Record]:
    return senml.resolve(senml.decode(message.payload), now=time.time())


def _values(messages: list[Message], device_id: str, quantity: str) -> list[tuple[float, float]]:
    found = []
    for message in messages:
        if message.device_id != device_id or not message.topic.endswith("/senml"):
            continue
        for record in _decode(message):
            if senml.split_name(record.name, device_id) == (quantity, True):
                assert record.value is not None
                found.append((record.time, record.value))
    return found


def _command(
    command_id: str, name: str, params: dict[str, object] | None = None, expires: float = 0
) -> bytes:
    body = {
        "id": command_id,
        "name": name,
        "params": params or {},
        "expires": int(expires or time.time() + 30),
    }
    return json.dumps(body).encode()


def _run(sim: Simulation, start: float, seconds: float, tick: float = 1.0) -> list[Message]:
    messages = []
    for step in range(1, round(seconds / tick) + 1):
        messages += sim.advance(start + step * tick)
    return messages


# --- payloads ------------------------------------------------------------------------------------


def test_packs_are_senml_json_and_cbor_naming_the_device() -> None:
    now = time.time()
    records = [("soil_moisture", "%", 21.5, now - 120.0), ("soil_moisture", "%", 21.2, now - 60.0)]
    for payload in (
        simulator.senml_json("tao-dan-soil-01", records),
        simulator.senml_cbor("tao-dan-soil-01", records),
    ):
        resolved = senml.resolve(senml.decode(payload), now=now)
        assert [senml.split_name(record.name, "tao-dan-soil-01") for record in resolved] == [
            ("soil_moisture", True),
            ("soil_moisture", True),
        ]
        assert [(record.unit, record.value) for record in resolved] == [("%", 21.5), ("%", 21.2)]
        assert [record.time for record in resolved] == pytest.approx([now - 120.0, now - 60.0], abs=0.002)
        assert not any(record.problem for record in resolved)
    first = orjson.loads(simulator.senml_json("tao-dan-soil-01", records))[0]
    assert first["bn"] == "urn:dev:civicore:tao-dan-soil-01:"
    # Another device's name is not this device's.
    other = senml.resolve(senml.decode(simulator.senml_json("tao-dan-soil-02", records)), now=now)
    assert senml.split_name(other[0].name, "tao-dan-soil-01")[1] is False


@pytest.mark.django_db
def test_every_demo_device_speaks_what_its_device_type_accepts() -> None:
    """The whole demo, played for a simulated day with rain and a watering, through ingestion:
    not one record refused."""
    storage.forget_partitions()
    demo.load(make_user=lambda email, name: UserFactory(email=email, full_name=name))
    specs, passwords = simulator.prepare()
    assert {spec.kind for spec in specs} == {SOIL, RAIN, VALVE, AIR}
    assert set(passwords) == {spec.device_id for spec in specs} and all(passwords.values())
    now = time.time()
    sim = Simulation(specs, speed=720.0, seed=3, history_s=demo.HISTORY_S)
    states, history = sim.start(now - 130)
    messages = states + history
    messages += sim.command("tao-dan-valve-01", _command("c-1", "open", {"duration_s": 600}), now - 129)
    messages += _run(sim, now - 129, 120.0)  # a simulated day
    devices = {device.device_id: device for device in Device.objects.select_related("device_type")}
    accepted = 0
    for message in messages:
        if message.topic.endswith("/acks"):
            continue
        result = pipeline.ingest_payload(devices[message.device_id], message.payload)
        assert result.rejected == [], (message.device_id, result.rejected)
        accepted += result.accepted
    assert not Rejection.objects.exists()
    assert accepted == Reading.objects.count()
    assert set(Reading.objects.values_list("quantity", flat=True)) == {
        "soil_moisture",
        "rain",
        "valve_open",
        "pm25",
        "pm10",
        "temperature",
        "humidity",
    }
    assert sim.events_of("rain_start"), "a simulated day in the rainy season has a shower"


# --- physics -------------------------------------------------------------------------------------


def test_the_soil_dries_faster_at_noon_than_at_night_and_never_below_its_floor() -> None:
    def loss(hour: int) -> float:
        sim = Simulation(_park(soils=1, gauge=False, last_value=30.0), speed=3600.0, rain=False)
        sim.start(_at(hour))
        soil = sim.parks["park"].soils[0]
        before = soil.moisture
        sim.advance(_at(hour) + 1.0)  # one simulated hour
        return before - soil.moisture

    noon, night = loss(12), loss(0)
    assert 1.5 < noon < 4.0  # points an hour in the midday sun
    assert 0.1 < night < noon / 3
    sim = Simulation(_park(soils=1, gauge=False, last_value=30.0), speed=86400.0, rain=False)
    sim.start(_at(0))
    sim.advance(_at(0) + 20.0)  # twenty dry days
    assert FLOOR <= sim.parks["park"].soils[0].moisture < FLOOR + 1.0


def test_the_model_runs_faster_than_the_clock_but_readings_carry_the_real_time() -> None:
    sim = Simulation(
        _park(soils=1, valves=0, gauge=False, last_value=30.0, last_seen=time.time()), speed=60.0
    )
    start = time.time()
    assert sim.start(start) == ([], [])
    messages = _run(sim, start, 10.0, tick=0.1)
    readings = _values(messages, "park-soil-1", "soil_moisture")
    # A reading every simulated minute: one a real second at 60 times the speed.
    assert 10 <= len(readings) <= 11
    assert sim.model - start == pytest.approx(600.0, abs=1.0)
    times = [when for when, _value in readings]
    assert times == sorted(times) and max(times) <= start + 10.0 + 0.001
    assert [round(when - start, 1) for when in times][:3] == [0.1, 1.0, 2.0]


def test_a_valve_opens_on_command_waters_the_park_and_closes_itself() -> None:
    sim = Simulation(_park(valves=2), speed=60.0, rain=False, seed=1)
    start = _at(20)
    sim.start(start)
    before = [soil.moisture for soil in sim.parks["park"].soils]
    assert all(value < 20 for value in before)
    messages = []
    for valve in ("park-valve-1", "park-valve-2"):
        messages += sim.command(
            valve, _command(f"open-{valve}", "open", {"duration_s": 600}, start + 60), start
        )
    acks = [json.loads(message.payload) for message in messages if message.topic.endswith("/acks")]
    assert acks == [
        {"id": "open-park-valve-1", "status": "ok", "detail": "open for 600 s"},
        {"id": "open-park-valve-2", "status": "ok", "detail": "open for 600 s"},
    ]
    assert [value for _when, value in _values(messages, "park-valve-1", "valve_open")] == [1.0]
    messages = _run(sim, start, 9.5, tick=0.5)  # 570 simulated seconds
    assert all(valve.is_open for valve in sim.valves.values())
    moisture = [value for _when, value in _values(messages, "park-soil-1", "soil_moisture")]
    assert moisture[-1] > before[0] + 15
    assert sum(b > a for a, b in zip(moisture, moisture[1:], strict=False)) >= len(moisture) - 3
    messages = _run(sim, start + 9.5, 1.5, tick=0.5)
    assert [value for _when, value in _values(messages, "park-valve-1", "valve_open")] == [0.0]
    assert not any(valve.is_open for valve in sim.valves.values())
    closed = sim.events_of("valve_close")
    assert {event.device_id for event in closed} == {"park-valve-1", "park-valve-2"}
    assert all(event.detail == "its duration is over" for event in closed)
    assert all(soil.moisture > 35 for soil in sim.parks["park"].soils)
    assert {event.device_id for event in sim.events_of("wet")} == {"park-soil-1", "park-soil-2"}
    # Closed, the park dries again.
    wet = sim.parks["park"].soils[0].moisture
    _run(sim, start + 11, 60.0)
    assert sim.parks["park"].soils[0].moisture < wet


def test_a_valve_carries_out_a_command_once_and_refuses_what_it_cannot_do() -> None:
    sim = Simulation(_park(soils=0, gauge=False), speed=1.0)
    now = time.time()
    sim.start(now)
    valve = sim.valves["park-valve-1"]

    def ack(payload: bytes) -> dict[str, str] | None:
        found = [m for m in sim.command("park-valve-1", payload, now) if m.topic.endswith("/acks")]
        return json.loads(found[0].payload) if found else None

    assert ack(_command("a", "open", {"duration_s": 5000})) == {
        "id": "a",
        "status": "ok",
        "detail": "open for 900 s",  # its own interlock: never past max_run_s
    }
    until = valve.open_until
    assert until == pytest.approx(sim.model + 900)
    sim.advance(now + 100)
    # Delivered again (QoS 1): the same answer, and the valve's timer is not restarted.
    assert ack(_command("a", "open", {"duration_s": 5000})) == {
        "id": "a",
        "status": "ok",
        "detail": "open for 900 s",
    }
    assert valve.open_until == until
    assert ack(_command("b", "close")) == {"id": "b", "status": "ok", "detail": "closed"}
    assert not valve.is_open
    assert ack(_command("c", "close"))["detail"] == "already closed"  # type: ignore[index]
    assert ack(_command("d", "open", expires=now - 1)) == {
        "id": "d",
        "status": "error",
        "detail": "the command expired before it arrived",
    }
    assert ack(_command("e", "open", {"duration_s": "ten"}))["status"] == "error"  # type: ignore[index]
    assert ack(_command("f", "explode"))["detail"] == "unknown command 'explode'"  # type: ignore[index]
    assert not valve.is_open
    assert ack(b"\x00 not json") is None
    assert ack(b'{"name": "open"}') is None
    assert not valve.is_open
    assert len(sim.events_of("refused")) == 5
    assert sim.command("no-such-valve", _command("g", "open"), now) == []


def test_rain_is_reported_in_tips_of_the_gauge_and_wets_the_soil() -> None:
    sim = Simulation(_park(soils=1, valves=0), speed=3600.0, seed=7)
    start = _at(0)
    sim.start(start)
    messages = _run(sim, start, 72.0, tick=1 / 12)  # three simulated days, a report every 5 minutes
    showers = sim.events_of("rain_start")
    assert showers
    rain = [value for _when, value in _values(messages, "park-rain", "rain")]
    assert sum(rain) > 1.0
    assert all(abs(value / 0.2 - round(value / 0.2)) < 1e-6 for value in rain)
    moisture = _values(messages, "park-soil-1", "soil_moisture")
    wettest = max(range(1, len(moisture)), key=lambda i: moisture[i][1] - moisture[i - 1][1])
    assert moisture[wettest][1] - moisture[wettest - 1][1] > 0.5  # a shower, not the noise


# --- starting ------------------------------------------------------------------------------------


def test_new_sensors_start_with_their_recent_past_and_known_ones_carry_on() -> None:
    now = time.time()
    devices = _park(soils=1, valves=1) + [
        SimDevice("park-soil-9", SOIL, "park", 60, last_value=27.5, last_seen=now - 120),
    ]
    sim = Simulation(devices, speed=60.0, history_s=1800)
    states, history = sim.start(now)
    assert [message.device_id for message in states] == ["park-valve-1"]
    assert _values(states, "park-valve-1", "valve_open") == [(pytest.approx(now, abs=0.001), 0.0)]
    # The gauge's past first, then the soil's; nothing from the sensor heard two minutes ago.
    assert [message.device_id for message in history] == ["park-rain", "park-soil-1"]
    rain = _values(history, "park-rain", "rain")
    soil = _values(history, "park-soil-1", "soil_moisture")
    assert len(rain) == 6 and len(soil) == 30
    assert all(now - 1800 - 0.001 <= when < now for when, _value in rain + soil)
    assert [round(b[0] - a[0]) for a, b in zip(soil, soil[1:], strict=False)] == [60] * 29
    assert all(value < 20 for _when, value in soil)  # dry for the whole half hour
    assert sim.parks["park"].soils[1].moisture == 27.5
    live = sim.advance(now + 0.1)
    assert _values(live, "park-soil-9", "soil_moisture")[0][1] == pytest.approx(27.5, abs=1.0)


@pytest.mark.parametrize(
    ("hour", "minute", "expected_minutes"),
    [(0, 0, 45), (9, 40, 45), (10, 0, 45), (12, 0, 155), (15, 59, 394), (16, 0, 45), (20, 30, 45)],
)
def test_first_start_reaches_back_far_enough_for_a_watering_outside_the_midday_pause(
    hour: int, minute: int, expected_minutes: int
) -> None:
    now = _at(hour, minute)
    history = demo.simulator_history_s(now)
    assert history / 60 == pytest.approx(expected_minutes)
    # The irrigation rule may act on the first reading thirty dry minutes after the start that
    # lies outside its midday pause: that moment has come by now.
    acts = now - history + demo.DRY_FOR_S
    local = datetime.fromtimestamp(acts, HCMC)
    if 10 <= local.hour < 16:
        acts = local.replace(hour=16, minute=0, second=0, microsecond=0).timestamp()
    assert acts <= now


def test_runner_names_the_devices_the_broker_refuses(mosquitto: object, dynsec: object) -> None:
    from civicore.sensors.tests.conftest import Mosquitto

    assert isinstance(mosquitto, Mosquitto)
    devices = _park(soils=1, valves=0, gauge=False)
    runner = simulator.Runner(
        Simulation(devices), {"park-soil-1": "not-the-password"}, host=mosquitto.host, port=mosquitto.port
    )
    with pytest.raises(ConnectionError, match="park-soil-1"):
        runner.connect(timeout=3.0)
    runner.close()
