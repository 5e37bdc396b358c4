"""Device types and devices for tests, with presets for the kinds a city runs: soil-moisture
sensors and rain gauges in parks, irrigation valves.

    kind = soil_moisture_type(agency=agency)
    device = make_device(device_type=kind)                 # registered, no credentials
    device, credentials = make_provisioned_device(device_type=valve_type())
"""

from __future__ import annotations

import itertools
from typing import Any

import factory

from civicore.agencies.models import Agency
from civicore.agencies.tests.factories import AgencyFactory
from civicore.sensors import services
from civicore.sensors.models import Device, DeviceType

HANOI_PARK = (21.0368, 105.8342)  # Thống Nhất park area

SOIL_MOISTURE_QUANTITIES = [
    {
        "name": "soil_moisture",
        "unit": "%",
        "min": 0,
        "max": 100,
        "label_vi": "Độ ẩm đất",
        "label_en": "Soil moisture",
    },
    {
        "name": "soil_temperature",
        "unit": "Cel",
        "min": -10,
        "max": 70,
        "label_vi": "Nhiệt độ đất",
        "label_en": "Soil temperature",
    },
    {"name": "battery", "unit": "%EL", "min": 0, "max": 100, "label_vi": "Pin", "label_en": "Battery"},
]
RAIN_GAUGE_QUANTITIES = [
    {"name": "rainfall", "unit": "mm", "min": 0, "max": 500, "label_vi": "Lượng mưa", "label_en": "Rainfall"},
    {
        "name": "rain_rate",
        "unit": "mm/h",
        "min": 0,
        "max": 300,
        "label_vi": "Cường độ mưa",
        "label_en": "Rain rate",
    },
    {"name": "battery", "unit": "%EL", "min": 0, "max": 100, "label_vi": "Pin", "label_en": "Battery"},
]
VALVE_QUANTITIES = [
    {"name": "valve_open", "unit": "", "min": 0, "max": 1, "label_vi": "Van mở", "label_en": "Valve open"},
    {"name": "flow", "unit": "l/s", "min": 0, "max": 50, "label_vi": "Lưu lượng", "label_en": "Flow"},
]
VALVE_COMMANDS = [
    {
        "name": "open",
        "params": {"duration_s": {"type": "integer", "min": 1, "max": 3600, "unit": "s"}},
        "label_vi": "Mở van",
        "label_en": "Open",
    },
    {"name": "close", "params": {}, "label_vi": "Đóng van", "label_en": "Close"},
]

_numbers = itertools.count(1)


class DeviceTypeFactory(factory.django.DjangoModelFactory):
    """A soil-moisture sensor type unless told otherwise (straight to the database, no audit)."""

    class Meta:
        model = DeviceType

    code = factory.Sequence(lambda n: f"soil-moisture-{n}")
    agency = factory.SubFactory(AgencyFactory)
    name_vi = "Cảm biến độ ẩm đất"
    name_en = "Soil moisture sensor"
    role = DeviceType.Role.SENSOR
    quantities = factory.LazyFunction(lambda: [dict(item) for item in SOIL_MOISTURE_QUANTITIES])
    commands = factory.LazyFunction(list)
    expected_interval_s = 300


class DeviceFactory(factory.django.DjangoModelFactory):
    """A registered device (no credentials) of its type's agency."""

    class Meta:
        model = Device

    device_id = factory.Sequence(lambda n: f"park-1-dev-{n:04d}")
    name = factory.Sequence(lambda n: f"Device {n}")
    device_type = factory.SubFactory(DeviceTypeFactory)
    agency = factory.LazyAttribute(lambda device: device.device_type.agency)
    group = "park-1"
    district = "Hai Bà Trưng"
    latitude = HANOI_PARK[0]
    longitude = HANOI_PARK[1]


def _type(preset: dict[str, Any], agency: Agency | None, **overrides: Any) -> DeviceType:
    number = next(_numbers)
    values = {**preset, **overrides}
    values.setdefault("code", f"{preset['code_prefix']}-{number}")
    values.pop("code_prefix", None)
    return services.device_type_create(agency=agency or AgencyFactory(), **values)


def soil_moisture_type(agency: Agency | None = None, **overrides: Any) -> DeviceType:
    """Soil moisture (%), soil temperature (Cel) and battery (%EL), every 5 minutes."""
    preset = {
        "code_prefix": "soil-moisture",
        "name_vi": "Cảm biến độ ẩm đất",
        "name_en": "Soil moisture sensor",
        "role": DeviceType.Role.SENSOR,
        "quantities": [dict(item) for item in SOIL_MOISTURE_QUANTITIES],
        "expected_interval_s": 300,
    }
    return _type(preset, agency, **overrides)


def rain_gauge_type(agency: Agency | None = None, **overrides: Any) -> DeviceType:
    """Rainfall (mm per interval), rain rate (mm/h) and battery (%EL), every minute."""
    preset = {
        "code_prefix": "rain-gauge",
        "name_vi": "Trạm đo mưa",
        "name_en": "Rain gauge",
        "role": DeviceType.Role.SENSOR,
        "quantities": [dict(item) for item in RAIN_GAUGE_QUANTITIES],
        "expected_interval_s": 60,
    }
    return _type(preset, agency, **overrides)


def valve_type(agency: Agency | None = None, **overrides: Any) -> DeviceType:
    """An irrigation valve: `open` (duration_s) and `close`, reports valve_open (0/1) and flow
    (l/s); told to close after 30 minutes whatever happens."""
    preset = {
        "code_prefix": "valve",
        "name_vi": "Van tưới",
        "name_en": "Irrigation valve",
        "role": DeviceType.Role.ACTUATOR,
        "quantities": [dict(item) for item in VALVE_QUANTITIES],
        "commands": [dict(item) for item in VALVE_COMMANDS],
        "expected_interval_s": 60,
        "max_run_s": 1800,
        "command_timeout_s": 10,
        "command_retries": 2,
    }
    return _type(preset, agency, **overrides)


def make_device(
    device_type: DeviceType | None = None, *, device_id: str | None = None, **overrides: Any
) -> Device:
    """A registered device, through the service (validated and audited); the type's agency."""
    kind = device_type or soil_moisture_type()
    number = next(_numbers)
    values: dict[str, Any] = {
        "agency": kind.agency,
        "device_id": device_id or f"{kind.code}-dev-{number:04d}",
        "name": f"{kind.name_en or kind.name_vi} {number}",
        "device_type": kind,
        "group": "park-1",
        "district": "Hai Bà Trưng",
        "latitude": HANOI_PARK[0],
        "longitude": HANOI_PARK[1],
    }
    values.update(overrides)
    return services.device_register(**values)


def make_provisioned_device(
    device_type: DeviceType | None = None, **overrides: Any
) -> tuple[Device, services.DeviceCredentials]:
    """An active device and the credentials it was given (in whichever broker is configured)."""
    device = make_device(device_type, **overrides)
    credentials = services.device_provision(device=device)
    device.refresh_from_db()
    return device, credentials


def sensor_engineer(agency: Agency) -> Any:
    from civicore.agencies.tests.factories import make_officer

    return make_officer(agency=agency, roles=("sensor_engineer",))


def sensor_operator(agency: Agency) -> Any:
    from civicore.agencies.tests.factories import make_officer

    return make_officer(agency=agency, roles=("sensor_operator",))
