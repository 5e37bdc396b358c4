"""The park simulator: the demo's devices as real MQTT clients, each logged in with its own
credentials, driven by a small physical model of each park.

Soil dries with the sun (faster at noon, never below a floor), rain and open valves wet it, a
rain gauge reports what fell since its last report, a valve obeys `open`/`close` commands,
acknowledges them and closes itself when its duration is over, and air-quality stations follow
the day's traffic. The model runs `speed` times faster than the clock, but every reading is
stamped with the real time it is sent: the platform refuses readings from the future, and
commands and online checks run on the real clock, so it is the dynamics that are compressed,
not the clock. Sensors not heard from lately start `history_s` seconds in the past and
fast-forward to now at real speed, uploading those readings as a buffered device would, so the
charts and the rules have a past to look at.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import cbor2
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

logger = logging.getLogger(__name__)

# The device types the simulator knows how to play (their codes in the demo data).
SOIL = "soil-moisture"
RAIN = "rain-gauge"
VALVE = "irrigation-valve"
AIR = "air-quality"
KINDS = (SOIL, RAIN, VALVE, AIR)

TOPIC_ROOT = "civicore/v1/devices"
LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")

# Soil moisture (% by volume). Drying is proportional to the water above the floor, so a dry
# bed dries ever more slowly; wetting to the room left below saturation.
FLOOR = 8.0
SATURATION = 60.0
# Per second, at noon: 2 points an hour at 25 %; at night a quarter of that.
DRY_RATE = 2.0 / 3600 / (25.0 - FLOOR)
NIGHT_SHARE = 0.25
# Per second with every valve of the park open: 3.5 points a minute at 20 %, so ten minutes of
# watering lift a bed from 20 % to about 43 %.
WET_RATE = 3.5 / 60 / (SATURATION - 20.0)
# Points of moisture per millimetre of rain on dry soil.
RAIN_GAIN = 0.6
# What the logs call dry and wet again (the platform's rules decide for themselves).
DRY_BELOW = 20.0
WET_ABOVE = 35.0
# Where a new device's soil starts: under the dry mark by more than the sensor's noise.
DRY_START = 19.0
MAX_STEP_S = 10.0
HISTORY_S = 45 * 60
HISTORY_PACK_RECORDS = 200
# Commands remembered per valve, so a command delivered twice is carried out once.
REMEMBERED_COMMANDS = 100


# --- plain values --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimDevice:
    """A device to play: its id, type code, group (the park), and what the platform last heard."""

    device_id: str
    kind: str
    group: str
    interval_s: int
    max_run_s: int | None = None
    last_value: float | None = None
    last_seen: float | None = None


@dataclass(frozen=True)
class Message:
    """Something a device publishes."""

    device_id: str
    topic: str
    payload: bytes


@dataclass(frozen=True)
class Event:
    """Something worth telling the operator (and the tests): soil dry or wet, rain, valves."""

    at: float
    kind: str
    group: str
    device_id: str
    value: float | None = None
    detail: str = ""

    def describe(self) -> str:
        where = f"{self.group}: {self.device_id}"
        value = self.value if self.value is not None else float("nan")
        if self.kind == "dry":
            return f"{where} soil is dry ({value:.1f} %)"
        if self.kind == "wet":
            return f"{where} soil is wet again ({value:.1f} %)"
        if self.kind == "rising":
            return f"{where} soil moisture rising ({value:.1f} %)"
        if self.kind == "rain_start":
            return f"{self.group}: rain starts ({value:.0f} mm/h)"
        if self.kind == "rain_stop":
            return f"{self.group}: rain stops"
        if self.kind == "valve_open":
            return f"{where} valve opens for {value:.0f} s ({self.detail})"
        if self.kind == "valve_close":
            return f"{where} valve closes ({self.detail})"
        if self.kind == "refused":
            return f"{where} refused a command: {self.detail}"
        return f"{where} {self.kind} {self.detail}".strip()


def senml_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/{device_id}/senml"


def acks_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/{device_id}/acks"


def commands_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/{device_id}/commands"


def base_name(device_id: str) -> str:
    return f"urn:dev:civicore:{device_id}:"


def senml_json(device_id: str, records: Sequence[tuple[str, str, float, float]]) -> bytes:
    """A SenML JSON pack (RFC 8428) of (quantity, unit, value, epoch time) records: the base name
    and base time on the first record, each record's time relative to it."""
    if not records:
        raise ValueError("a pack needs at least one record")
    start = round(records[0][3], 3)
    pack: list[dict[str, Any]] = []
    for index, (name, unit, value, when) in enumerate(records):
        record: dict[str, Any] = {"bn": base_name(device_id), "bt": start} if index == 0 else {}
        record["n"] = name
        if unit:
            record["u"] = unit
        record["v"] = value
        offset = round(round(when, 3) - start, 3)
        if offset:
            record["t"] = offset
        pack.append(record)
    return orjson.dumps(pack)


# RFC 8428 section 6: the CBOR labels.
_CBOR = {"bn": -2, "bt": -3, "n": 0, "u": 1, "v": 2, "t": 6}


def senml_cbor(device_id: str, records: Sequence[tuple[str, str, float, float]]) -> bytes:
    """The same pack in SenML CBOR, with the integer labels."""
    pack = orjson.loads(senml_json(device_id, records))
    return cbor2.dumps([{_CBOR[key]: value for key, value in record.items()} for record in pack])


def daylight(moment: float) -> float:
    """0 at night, rising to 1 at local noon: the sun's share of the drying."""
    local = datetime.fromtimestamp(moment, LOCAL_ZONE)
    hour = local.hour + local.minute / 60
    if not 6.0 < hour < 18.0:
        return 0.0
    return math.sin(math.pi * (hour - 6.0) / 12.0)


# --- the model -----------------------------------------------------------------------------------


@dataclass
class _Soil:
    spec: SimDevice
    moisture: float
    # This bed's own pace (shade, soil, distance to the sprinklers).
    drying: float
    wetting: float
    next_at: float
    dry: bool = False
    logged: float = 0.0


@dataclass
class _Gauge:
    spec: SimDevice
    next_at: float
    collected_mm: float = 0.0


@dataclass
class _Valve:
    spec: SimDevice
    next_at: float
    open_until: float | None = None
    # Closed by its own timer since the last report (reported with the next readings).
    closed: bool = False
    # The time of its last report: two reports in one moment get distinct times (a reading's
    # key is its device, quantity and time, so the second would be dropped as a duplicate).
    reported_at: float = 0.0
    handled: OrderedDict[str, bytes] = field(default_factory=OrderedDict)

    @property
    def is_open(self) -> bool:
        return self.open_until is not None


@dataclass
class _Station:
    spec: SimDevice
    next_at: float
    # How polluted this place is compared with the others.
    level: float


@dataclass
class _Park:
    group: str
    soils: list[_Soil] = field(default_factory=list)
    gauges: list[_Gauge] = field(default_factory=list)
    valves: list[_Valve] = field(default_factory=list)
    stations: list[_Station] = field(default_factory=list)
    rain_mm_h: float = 0.0
    rain_until: float = 0.0
    next_weather: float = 0.0

    def open_share(self) -> float:
        if not self.valves:
            return 0.0
        return sum(1 for valve in self.valves if valve.is_open) / len(self.valves)


class Simulation:
    """The parks' physics and the devices' behaviour, without any network: `advance` moves the
    model on to a real moment and returns what the devices publish; `command` is a valve
    receiving a command. Model time runs `speed` times faster than the real clock."""

    def __init__(
        self,
        devices: Sequence[SimDevice],
        *,
        speed: float = 1.0,
        now: float | None = None,
        seed: int = 0,
        rain: bool = True,
        history_s: float = HISTORY_S,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self.rain = rain
        self.history_s = float(history_s)
        self.random = random.Random(seed)  # noqa: S311 - weather and sensor noise, not secrets
        self.real = time.time() if now is None else float(now)
        self.model = self.real
        self.events: list[Event] = []
        self._events_lock = threading.Lock()
        self.parks: dict[str, _Park] = {}
        self.valves: dict[str, _Valve] = {}
        self.devices = {spec.device_id: spec for spec in devices}
        for spec in sorted(devices, key=lambda item: item.device_id):
            park = self.parks.setdefault(spec.group, _Park(spec.group, next_weather=self.model + 3600))
            if spec.kind == SOIL:
                moisture = spec.last_value if spec.last_value is not None else DRY_START
                park.soils.append(
                    _Soil(
                        spec,
                        moisture=max(FLOOR, min(SATURATION, moisture)),
                        drying=self.random.uniform(0.85, 1.15),
                        wetting=self.random.uniform(0.9, 1.1),
                        next_at=self.model,
                        dry=moisture < DRY_BELOW,
                    )
                )
            elif spec.kind == RAIN:
                park.gauges.append(_Gauge(spec, next_at=self.model))
            elif spec.kind == VALVE:
                valve = _Valve(spec, next_at=self.model + spec.interval_s)
                park.valves.append(valve)
                self.valves[spec.device_id] = valve
            elif spec.kind == AIR:
                park.stations.append(_Station(spec, next_at=self.model, level=self.random.uniform(0.8, 1.3)))

    # -- events ---------------------------------------------------------------------------------

    def _event(
        self, kind: str, group: str, device_id: str, value: float | None = None, detail: str = ""
    ) -> None:
        event = Event(self.real, kind, group, device_id, value, detail)
        with self._events_lock:
            self.events.append(event)
        logger.info("%s", event.describe())

    def events_of(self, kind: str) -> list[Event]:
        with self._events_lock:
            return [event for event in self.events if event.kind == kind]

    # -- physics --------------------------------------------------------------------------------

    def _weather(self, park: _Park, moment: float) -> None:
        if park.rain_mm_h and moment >= park.rain_until:
            park.rain_mm_h = 0.0
            self._event("rain_stop", park.group, "")
        if moment < park.next_weather:
            return
        park.next_weather = moment + 3600
        if not self.rain or park.rain_mm_h:
            return
        hour = datetime.fromtimestamp(moment, LOCAL_ZONE).hour
        # Afternoon showers, as in Sài Gòn's rainy season; now and then at other hours.
        chance = 0.2 if 13 <= hour < 18 else 0.03
        if self.random.random() < chance:
            park.rain_mm_h = round(self.random.uniform(4.0, 30.0), 1)
            park.rain_until = moment + self.random.uniform(20, 75) * 60
            self._event("rain_start", park.group, "", park.rain_mm_h)

    def _physics(self, park: _Park, moment: float, seconds: float) -> None:
        """Move one park on by `seconds` of model time ending at `moment`."""
        for valve in park.valves:
            if valve.open_until is not None and moment >= valve.open_until:
                valve.open_until = None
                valve.closed = True
        self._weather(park, moment)
        rain_mm = park.rain_mm_h * seconds / 3600.0
        for gauge in park.gauges:
            gauge.collected_mm += rain_mm
        sun = daylight(moment)
        open_share = park.open_share()
        for soil in park.soils:
            dry = DRY_RATE * (NIGHT_SHARE + (1.0 - NIGHT_SHARE) * sun) * soil.drying
            moisture = soil.moisture
            moisture -= dry * (moisture - FLOOR) * seconds
            moisture += WET_RATE * open_share * soil.wetting * (SATURATION - moisture) * seconds
            moisture += RAIN_GAIN * rain_mm * (SATURATION - moisture) / (SATURATION - FLOOR)
            soil.moisture = max(FLOOR, min(SATURATION, moisture))

    def _step(self, until: float) -> None:
        while self.model < until:
            seconds = min(MAX_STEP_S, until - self.model)
            self.model += seconds
            for park in self.parks.values():
                self._physics(park, self.model, seconds)

    # -- what devices say -----------------------------------------------------------------------

    def _soil_value(self, soil: _Soil) -> float:
        return round(max(0.0, min(100.0, soil.moisture + self.random.gauss(0.0, 0.15))), 1)

    def _soil_reading(self, park: _Park, soil: _Soil, stamp: float) -> Message:
        value = self._soil_value(soil)
        device_id = soil.spec.device_id
        watered = park.open_share() > 0
        if value < DRY_BELOW and not soil.dry:
            soil.dry = True
            self._event("dry", park.group, device_id, value)
        elif value > WET_ABOVE and soil.dry:
            soil.dry = False
            self._event("wet", park.group, device_id, value)
        elif watered and value >= soil.logged + 1.5:
            self._event("rising", park.group, device_id, value)
        if not watered or value >= soil.logged + 1.5:
            soil.logged = value
        return Message(
            device_id, senml_topic(device_id), senml_json(device_id, [("soil_moisture", "%", value, stamp)])
        )

    def _gauge_reading(self, gauge: _Gauge, stamp: float) -> Message:
        # A tipping bucket counts 0.2 mm tips; what is short of a tip waits for the next report.
        tips = math.floor(gauge.collected_mm / 0.2 + 1e-9)
        gauge.collected_mm -= tips * 0.2
        device_id = gauge.spec.device_id
        return Message(
            device_id,
            senml_topic(device_id),
            senml_json(device_id, [("rain", "mm", round(tips * 0.2, 1), stamp)]),
        )

    def _valve_state(self, valve: _Valve, stamp: float) -> Message:
        device_id = valve.spec.device_id
        valve.next_at = self.model + valve.spec.interval_s
        stamp = valve.reported_at = max(round(stamp, 3), round(valve.reported_at + 0.001, 3))
        state = 1.0 if valve.is_open else 0.0
        return Message(
            device_id, senml_topic(device_id), senml_json(device_id, [("valve_open", "", state, stamp)])
        )

    def _station_reading(self, station: _Station, stamp: float) -> Message:
        local = datetime.fromtimestamp(self.model, LOCAL_ZONE)
        hour = local.hour + local.minute / 60
        # Traffic peaks in the morning and the evening; the afternoon is hot and dry.
        traffic = math.exp(-(((hour - 7.5) / 1.5) ** 2)) + math.exp(-(((hour - 18.0) / 1.8) ** 2))
        pm25 = max(1.0, station.level * (18.0 + 30.0 * traffic) + self.random.gauss(0.0, 2.0))
        pm10 = pm25 * self.random.uniform(1.5, 1.8)
        warmth = math.sin(math.pi * (hour - 8.0) / 12.0)
        temperature = 28.0 + 5.0 * warmth + self.random.gauss(0.0, 0.3)
        humidity = max(30.0, min(100.0, 74.0 - 18.0 * warmth + self.random.gauss(0.0, 1.0)))
        records = [
            ("pm25", "ug/m3", round(pm25, 1), stamp),
            ("pm10", "ug/m3", round(pm10, 1), stamp),
            ("temperature", "Cel", round(temperature, 1), stamp),
            ("humidity", "%RH", round(humidity, 1), stamp),
        ]
        device_id = station.spec.device_id
        # The stations speak CBOR, the compact SenML encoding for constrained links.
        return Message(device_id, senml_topic(device_id), senml_cbor(device_id, records))

    def _due(self, stamp: float) -> list[Message]:
        messages = []
        for park in self.parks.values():
            for soil in park.soils:
                if soil.next_at <= self.model:
                    soil.next_at = _next(soil.next_at, soil.spec.interval_s, self.model)
                    messages.append(self._soil_reading(park, soil, stamp))
            for gauge in park.gauges:
                if gauge.next_at <= self.model:
                    gauge.next_at = _next(gauge.next_at, gauge.spec.interval_s, self.model)
                    messages.append(self._gauge_reading(gauge, stamp))
            for valve in park.valves:
                if valve.closed:
                    valve.closed = False
                    self._event(
                        "valve_close", park.group, valve.spec.device_id, detail="its duration is over"
                    )
                    messages.append(self._valve_state(valve, stamp))
                elif valve.next_at <= self.model:
                    messages.append(self._valve_state(valve, stamp))
            for station in park.stations:
                if station.next_at <= self.model:
                    station.next_at = _next(station.next_at, station.spec.interval_s, self.model)
                    messages.append(self._station_reading(station, stamp))
        return messages

    def advance(self, now: float) -> list[Message]:
        """Move the model on by `speed` times the real time since the last call; return what the
        devices publish, stamped `now`."""
        elapsed = max(0.0, now - self.real)
        self.real = max(self.real, now)
        self._step(self.model + elapsed * self.speed)
        return self._due(self.real)

    def start(self, now: float) -> tuple[list[Message], list[Message]]:
        """What the devices send on start: the valves' state, then the history of the sensors
        never heard from (or not for longer than `history_s`), played at real speed up to now."""
        self.real = self.model = now
        for park in self.parks.values():
            park.next_weather = now + 3600
            for soil in park.soils:
                soil.next_at = now
            for gauge in park.gauges:
                gauge.next_at = now
            for station in park.stations:
                station.next_at = now
        states = [self._valve_state(valve, now) for valve in self.valves.values()]
        history: list[Message] = []
        for park in self.parks.values():
            history.extend(self._history(park, now))
        return states, history

    def _history(self, park: _Park, now: float) -> list[Message]:
        def fresh(spec: SimDevice) -> bool:
            return self.history_s > 0 and (spec.last_seen is None or spec.last_seen < now - self.history_s)

        gauges = [gauge.spec for gauge in park.gauges if fresh(gauge.spec)]
        soils = [soil for soil in park.soils if fresh(soil.spec)]
        if not gauges and not soils:
            return []
        # The park from `history_s` ago to now, at real speed, dry and with its valves shut.
        start = now - self.history_s
        records: dict[str, list[tuple[str, str, float, float]]] = {}
        for spec in gauges:
            count = math.ceil(self.history_s / spec.interval_s)
            records[spec.device_id] = [("rain", "mm", 0.0, start + i * spec.interval_s) for i in range(count)]
        for soil in soils:
            rows = records[soil.spec.device_id] = []
            moment = start
            while moment < now:
                rows.append(("soil_moisture", "%", self._soil_value(soil), moment))
                passed = 0.0
                while passed < soil.spec.interval_s:
                    step = min(MAX_STEP_S, soil.spec.interval_s - passed)
                    sun = daylight(moment + passed)
                    dry = DRY_RATE * (NIGHT_SHARE + (1.0 - NIGHT_SHARE) * sun) * soil.drying
                    soil.moisture = max(FLOOR, soil.moisture - dry * (soil.moisture - FLOOR) * step)
                    passed += step
                moment += soil.spec.interval_s
            soil.dry = soil.moisture < DRY_BELOW
            soil.logged = soil.moisture
        messages = []
        # The gauges first: the rules look at the rain when they look at the soil.
        for device_id in [spec.device_id for spec in gauges] + [soil.spec.device_id for soil in soils]:
            rows = [row for row in records[device_id] if row[3] < now]
            for index in range(0, len(rows), HISTORY_PACK_RECORDS):
                chunk = rows[index : index + HISTORY_PACK_RECORDS]
                messages.append(Message(device_id, senml_topic(device_id), senml_json(device_id, chunk)))
        for soil in soils:
            if soil.dry:
                self._event("dry", park.group, soil.spec.device_id, round(soil.moisture, 1))
        return messages

    # -- valves ---------------------------------------------------------------------------------

    def command(self, device_id: str, payload: bytes, now: float) -> list[Message]:
        """A valve receives a command: it acknowledges it on its acks topic and reports its state.
        A command seen before is acknowledged again and not carried out twice."""
        valve = self.valves.get(device_id)
        if valve is None:
            return []
        try:
            body = json.loads(payload)
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
            self._event("refused", valve.spec.group, device_id, detail="a command without an id")
            return []
        command_id = body["id"]
        if command_id in valve.handled:
            return [Message(device_id, acks_topic(device_id), valve.handled[command_id])]
        status, detail, changed = self._carry_out(valve, body, now)
        ack = json.dumps({"id": command_id, "status": status, "detail": detail}).encode()
        valve.handled[command_id] = ack
        while len(valve.handled) > REMEMBERED_COMMANDS:
            valve.handled.popitem(last=False)
        messages = [Message(device_id, acks_topic(device_id), ack)]
        if status == "error":
            self._event("refused", valve.spec.group, device_id, detail=detail)
        if changed or status == "ok":
            messages.append(self._valve_state(valve, now))
        return messages

    def _carry_out(self, valve: _Valve, body: dict[str, Any], now: float) -> tuple[str, str, bool]:
        name = body.get("name")
        params = body.get("params") or {}
        expires = body.get("expires")
        group, device_id = valve.spec.group, valve.spec.device_id
        short = str(body["id"])[:8]
        if isinstance(expires, int | float) and not isinstance(expires, bool) and expires < now:
            return "error", "the command expired before it arrived", False
        if not isinstance(params, dict):
            return "error", "params must be an object", False
        if name == "open":
            limit = valve.spec.max_run_s or 3600
            duration = params.get("duration_s", limit)
            if isinstance(duration, bool) or not isinstance(duration, int) or duration < 1:
                return "error", "duration_s must be a whole number of seconds", False
            # The valve's own interlock: never longer than its maximum run time.
            duration = min(duration, limit)
            until = self.model + duration
            was_open = valve.is_open
            valve.open_until = max(valve.open_until or until, until)
            self._event("valve_open", group, device_id, float(duration), f"command {short}")
            for soil in self.parks[group].soils:
                soil.logged = soil.moisture
            return "ok", f"open for {duration} s", not was_open
        if name == "close":
            if not valve.is_open:
                return "ok", "already closed", False
            valve.open_until = None
            self._event("valve_close", group, device_id, detail=f"command {short}")
            return "ok", "closed", True
        return "error", f"unknown command {str(name)[:40]!r}", False


def _next(previous: float, interval: float, now: float) -> float:
    """The next time a reading is due; missed ones are skipped, not sent in a burst."""
    upcoming = previous + interval
    return upcoming if upcoming > now else now + interval


# --- over MQTT -----------------------------------------------------------------------------------


class Runner:
    """Plays a Simulation over MQTT: one client per device, logged in as the device (client id
    and user name its device id), valves subscribed to their own command topic."""

    def __init__(
        self,
        simulation: Simulation,
        passwords: dict[str, str],
        *,
        host: str,
        port: int,
        tls: bool = False,
        tick_s: float = 0.1,
        settle_s: float = 1.5,
    ) -> None:
        self.simulation = simulation
        self.passwords = passwords
        self.host = host
        self.port = port
        self.tls = tls
        self.tick_s = tick_s
        self.settle_s = settle_s
        self.stop_event = threading.Event()
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.clients: dict[str, mqtt.Client] = {}
        self.connected: set[str] = set()
        self.refused: dict[str, str] = {}
        self._lock = threading.Lock()
        self.published = 0

    def _client(self, device_id: str) -> mqtt.Client:
        is_valve = device_id in self.simulation.valves
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=device_id,
            protocol=mqtt.MQTTv5,
        )
        client.username_pw_set(device_id, self.passwords[device_id])
        if self.tls:
            client.tls_set()

        def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            if reason.is_failure:
                with self._lock:
                    self.refused[device_id] = str(reason)
                logger.error("the broker refused %s: %s", device_id, reason)
                return
            with self._lock:
                self.connected.add(device_id)
                self.refused.pop(device_id, None)
            if is_valve:
                client.subscribe(commands_topic(device_id), qos=1)

        def on_disconnect(
            client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
        ) -> None:
            with self._lock:
                self.connected.discard(device_id)
            if not self.stop_event.is_set():
                logger.warning("%s lost the broker (%s); reconnecting", device_id, reason)

        def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
            if message.topic == commands_topic(device_id):
                self.inbox.put((device_id, bytes(message.payload)))

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        return client

    def connect(self, *, timeout: float = 15.0) -> None:
        """Connect every device; returns when all are connected, or raises after `timeout`."""
        for device_id in sorted(self.simulation.devices):
            client = self._client(device_id)
            properties = None
            clean_start = True
            if device_id in self.simulation.valves:
                # A valve keeps its session: a command sent while it reconnects still reaches it.
                properties = Properties(PacketTypes.CONNECT)
                properties.SessionExpiryInterval = 3600
                clean_start = False
            client.connect_async(
                self.host, self.port, keepalive=30, clean_start=clean_start, properties=properties
            )
            client.loop_start()
            self.clients[device_id] = client
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop_event.is_set():
            with self._lock:
                # Every device has its answer: connected, or refused (a wrong password stays wrong).
                if len(self.connected | set(self.refused)) == len(self.clients):
                    break
            time.sleep(0.05)
        with self._lock:
            missing = sorted(set(self.clients) - self.connected)
            refused = dict(self.refused)
        if missing:
            reasons = ", ".join(f"{name} ({refused.get(name, 'no answer')})" for name in missing[:5])
            raise ConnectionError(
                f"{len(missing)} of {len(self.clients)} devices could not connect: {reasons}"
            )
        logger.info("%d simulated devices connected to %s:%d", len(self.clients), self.host, self.port)

    def publish(self, messages: Sequence[Message], *, wait: bool = False) -> None:
        infos = []
        for message in messages:
            client = self.clients.get(message.device_id)
            if client is None:
                continue
            infos.append(client.publish(message.topic, message.payload, qos=1))
            self.published += 1
        if wait:
            for info in infos:
                try:
                    info.wait_for_publish(timeout=10.0)
                except (ValueError, RuntimeError):
                    logger.warning("a message was not handed to the broker")

    def run(self, *, duration: float | None = None, on_tick: Callable[[], None] | None = None) -> None:
        """Connect, send the start messages, then play the model until stopped or `duration`."""
        try:
            self.connect()
            started = time.time()
            states, history = self.simulation.start(started)
            # The valves are heard from before the sensors' history, so a rule that fires on
            # that history finds them online.
            self.publish(states, wait=True)
            if history:
                self.stop_event.wait(self.settle_s)
                self.publish(history, wait=True)
            while not self.stop_event.is_set():
                now = time.time()
                if duration is not None and now - started >= duration:
                    break
                messages: list[Message] = []
                while True:
                    try:
                        device_id, payload = self.inbox.get_nowait()
                    except queue.Empty:
                        break
                    messages.extend(self.simulation.command(device_id, payload, now))
                messages.extend(self.simulation.advance(now))
                self.publish(messages)
                if on_tick is not None:
                    on_tick()
                self.stop_event.wait(self.tick_s)
        finally:
            self.close()

    def close(self) -> None:
        self.stop_event.set()
        for client in self.clients.values():
            try:
                client.disconnect()
            except Exception:  # noqa: S110 - a client that never connected
                pass
            client.loop_stop()


# --- with the platform's devices -------------------------------------------------------------------


def prepare(*, groups: Sequence[str] = (), actor: Any = None) -> tuple[list[SimDevice], dict[str, str]]:
    """Give the demo's devices fresh credentials (provisioning those never provisioned, rotating
    the others') and describe them for a Simulation. Only the demo's own devices are played (never
    a real one an officer registered), and revoked ones are left alone."""
    from civicore.sensors import demo, services
    from civicore.sensors.models import Device

    devices = (
        Device.objects.filter(device_id__in=demo.device_ids(), device_type__code__in=KINDS)
        .exclude(status=Device.Status.REVOKED)
        .select_related("device_type")
        .order_by("device_id")
    )
    if groups:
        devices = devices.filter(group__in=list(groups))
    specs: list[SimDevice] = []
    passwords: dict[str, str] = {}
    for device in devices:
        if device.status == Device.Status.ACTIVE:
            credentials = services.device_rotate_credentials(device=device, actor=actor)
        else:
            credentials = services.device_provision(device=device, actor=actor)
        passwords[device.device_id] = credentials.mqtt_password
        kind = device.device_type
        last = None
        if kind.code == SOIL:
            pair = (device.last_values or {}).get("soil_moisture")
            if isinstance(pair, list | tuple) and pair and isinstance(pair[0], int | float):
                last = float(pair[0])
        specs.append(
            SimDevice(
                device_id=device.device_id,
                kind=kind.code,
                group=device.group,
                interval_s=kind.expected_interval_s,
                max_run_s=kind.max_run_s,
                last_value=last,
                last_seen=device.last_seen_at.timestamp() if device.last_seen_at else None,
            )
        )
    return specs, passwords


def simulate(
    *,
    speed: float = 60.0,
    groups: Sequence[str] = (),
    duration: float | None = None,
    url: str | None = None,
    seed: int = 0,
    rain: bool = True,
    history_s: float | None = None,
    stop_event: threading.Event | None = None,
) -> Runner:
    """`civicore sensors simulate`: provision the demo's devices and play them until stopped."""
    from civicore.sensors.broker import broker_address

    address = broker_address(url)
    specs, passwords = prepare(groups=groups)
    if not specs:
        raise LookupError("no devices to simulate: load the demo data first (civicore demo load)")
    if history_s is None:
        from civicore.sensors import demo

        history_s = demo.simulator_history_s(time.time())
    simulation = Simulation(specs, speed=speed, seed=seed, rain=rain, history_s=history_s)
    runner = Runner(simulation, passwords, host=address.host, port=address.port, tls=address.tls)
    if stop_event is not None:
        runner.stop_event = stop_event
    logger.info(
        "simulating %d devices in %s at %gx speed",
        len(specs),
        ", ".join(sorted(simulation.parks)),
        speed,
    )
    runner.run(duration=duration)
    return runner
