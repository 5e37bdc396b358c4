"""Demo data for city sensors: the province's parks board with soil-moisture sensors, rain gauges
and irrigation valves in two parks of Ho Chi Minh City, air-quality stations in four districts,
the irrigation rule and the rule that opens a case for a silent device, and a sensor engineer.

Called by civicore.core.demo; loading again adds nothing and leaves what officers changed (a
rule's later versions, a revoked device) as it is. The devices get their credentials when the
park simulator (civicore.sensors.simulator) starts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from civicore.agencies.models import Agency, Officer
from civicore.agencies.services import officer_provision
from civicore.sensors import rules, services
from civicore.sensors.models import Device, DeviceType, Rule
from civicore.sensors.simulator import AIR, HISTORY_S, RAIN, SOIL, VALVE

AGENCY = "ban-quan-ly-cong-vien"
ENGINEER_EMAIL = f"sensors.{AGENCY}@demo.civicore.invalid"

DEVICE_TYPES: list[dict[str, Any]] = [
    {
        "code": SOIL,
        "name_vi": "Cảm biến độ ẩm đất",
        "name_en": "Soil moisture sensor",
        "role": DeviceType.Role.SENSOR,
        "quantities": [
            {
                "name": "soil_moisture",
                "unit": "%",
                "min": 0,
                "max": 100,
                "label_vi": "Độ ẩm đất",
                "label_en": "Soil moisture",
            }
        ],
        "expected_interval_s": 60,
    },
    {
        "code": RAIN,
        "name_vi": "Trạm đo mưa",
        "name_en": "Rain gauge",
        "role": DeviceType.Role.SENSOR,
        "quantities": [
            {
                "name": "rain",
                "unit": "mm",
                "min": 0,
                "max": 500,
                "label_vi": "Lượng mưa",
                "label_en": "Rainfall",
            }
        ],
        "expected_interval_s": 300,
    },
    {
        "code": VALVE,
        "name_vi": "Van tưới tự động",
        "name_en": "Irrigation valve",
        "role": DeviceType.Role.ACTUATOR,
        "quantities": [
            {
                "name": "valve_open",
                "unit": "",
                "min": 0,
                "max": 1,
                "label_vi": "Van mở",
                "label_en": "Valve open",
            }
        ],
        "commands": [
            {
                "name": "open",
                "label_vi": "Mở van",
                "label_en": "Open",
                "params": {
                    "duration_s": {
                        "type": "integer",
                        "min": 1,
                        "max": 900,
                        "unit": "s",
                        "label_vi": "Thời gian mở",
                        "label_en": "Duration",
                    }
                },
            },
            {"name": "close", "label_vi": "Đóng van", "label_en": "Close"},
        ],
        "expected_interval_s": 300,
        "max_run_s": 900,
    },
    {
        "code": AIR,
        "name_vi": "Trạm quan trắc không khí",
        "name_en": "Air-quality station",
        "role": DeviceType.Role.SENSOR,
        "quantities": [
            {
                "name": "pm25",
                "unit": "ug/m3",
                "min": 0,
                "max": 1000,
                "label_vi": "Bụi PM2.5",
                "label_en": "PM2.5",
            },
            {
                "name": "pm10",
                "unit": "ug/m3",
                "min": 0,
                "max": 2000,
                "label_vi": "Bụi PM10",
                "label_en": "PM10",
            },
            {
                "name": "temperature",
                "unit": "Cel",
                "min": -10,
                "max": 60,
                "label_vi": "Nhiệt độ",
                "label_en": "Temperature",
            },
            {
                "name": "humidity",
                "unit": "%RH",
                "min": 0,
                "max": 100,
                "label_vi": "Độ ẩm không khí",
                "label_en": "Humidity",
            },
        ],
        "expected_interval_s": 300,
    },
]

# The two parks (group, district) and their devices: (device id, type, name, latitude, longitude).
PARKS: list[tuple[str, str, list[tuple[str, str, str, float, float]]]] = [
    (
        "tao-dan",
        "Quận 1",
        [
            (
                "tao-dan-soil-01",
                SOIL,
                "Công viên Tao Đàn – độ ẩm đất, thảm cỏ cổng Trương Định",
                10.7751,
                106.6912,
            ),
            ("tao-dan-soil-02", SOIL, "Công viên Tao Đàn – độ ẩm đất, vườn hoa Đền Hùng", 10.7737, 106.6931),
            ("tao-dan-rain-01", RAIN, "Công viên Tao Đàn – trạm đo mưa", 10.7745, 106.6922),
            (
                "tao-dan-valve-01",
                VALVE,
                "Công viên Tao Đàn – van tưới khu A (cổng Trương Định)",
                10.7752,
                106.6915,
            ),
            ("tao-dan-valve-02", VALVE, "Công viên Tao Đàn – van tưới khu B (Đền Hùng)", 10.7736, 106.6933),
        ],
    ),
    (
        "gia-dinh",
        "Quận Gò Vấp",
        [
            (
                "gia-dinh-soil-01",
                SOIL,
                "Công viên Gia Định – độ ẩm đất, bãi cỏ cổng Hoàng Minh Giám",
                10.8112,
                106.6779,
            ),
            ("gia-dinh-soil-02", SOIL, "Công viên Gia Định – độ ẩm đất, vườn cây ven hồ", 10.8131, 106.6791),
            ("gia-dinh-rain-01", RAIN, "Công viên Gia Định – trạm đo mưa", 10.8124, 106.6786),
            ("gia-dinh-valve-01", VALVE, "Công viên Gia Định – van tưới khu A", 10.8113, 106.6781),
            ("gia-dinh-valve-02", VALVE, "Công viên Gia Định – van tưới khu B (ven hồ)", 10.8130, 106.6793),
        ],
    ),
]

# Air-quality stations: (device id, group, district, name, latitude, longitude).
STATIONS: list[tuple[str, str, str, str, float, float]] = [
    ("aq-quan-1", "quan-1", "Quận 1", "Trạm quan trắc không khí – Công viên Lê Văn Tám", 10.7879, 106.6947),
    ("aq-quan-3", "quan-3", "Quận 3", "Trạm quan trắc không khí – Hồ Con Rùa", 10.7826, 106.6958),
    (
        "aq-binh-thanh",
        "binh-thanh",
        "Quận Bình Thạnh",
        "Trạm quan trắc không khí – Công viên Văn Thánh",
        10.8016,
        106.7183,
    ),
    ("aq-quan-7", "quan-7", "Quận 7", "Trạm quan trắc không khí – Hồ Bán Nguyệt", 10.7286, 106.7187),
]

IRRIGATION_RULE = "tuoi-tu-dong-cong-vien"
# No watering in the midday heat, when most of it would evaporate.
IRRIGATION_PAUSE = ("10:00", "16:00")
DRY_FOR_S = 30 * 60
IRRIGATION_DEFINITION: dict[str, Any] = {
    "description": (
        "Đất khô dưới 20 % suốt 30 phút, ngoài khung 10:00–16:00, và trạm đo mưa của công viên không "
        "ghi nhận mưa trong một giờ qua: mở các van tưới của công viên 10 phút. Hết khi độ ẩm trên 35 %."
    ),
    "target": {"device_type": SOIL},
    "when": {
        "all": [
            {
                "threshold": {
                    "quantity": "soil_moisture",
                    "op": "below",
                    "value": 20,
                    "clear": 35,
                    "for_s": DRY_FOR_S,
                }
            },
            {"schedule": {"not_between": list(IRRIGATION_PAUSE)}},
            {
                # A silent gauge does not stop the watering: its own rule reports it.
                "group": {
                    "device_type": RAIN,
                    "quantity": "rain",
                    "aggregate": "sum",
                    "window_s": 3600,
                    "op": "at_most",
                    "value": 0,
                    "if_no_data": True,
                }
            },
        ]
    },
    "on_fire": [{"command": {"to": {"device_type": VALVE}, "name": "open", "params": {"duration_s": 600}}}],
}

OFFLINE_RULE = "thiet-bi-im-lang-mot-ngay"
OFFLINE_DEFINITION: dict[str, Any] = {
    "description": "Thiết bị không gửi dữ liệu hơn một ngày: báo động và mở hồ sơ kiểm tra tại hiện trường.",
    "target": {"device_type": [SOIL, RAIN, VALVE, AIR]},
    "when": {"missing": {"after_s": 86400}},
    "on_fire": [
        {
            "alarm": {
                "severity": "warning",
                "message": {
                    "vi": "Thiết bị không gửi dữ liệu hơn một ngày",
                    "en": "The device has sent nothing for more than a day",
                },
            }
        },
        {
            "case": {
                "description": {
                    "vi": "Thiết bị cảm biến không gửi dữ liệu hơn một ngày. Cần kiểm tra nguồn điện, "
                    "kết nối mạng và tình trạng thiết bị tại hiện trường.",
                    "en": "A sensor device has sent nothing for more than a day. Check its power, its "
                    "network connection and the device itself on site.",
                }
            }
        },
    ],
    "on_clear": [{"clear_alarm": {}}],
}

RULES = [
    (IRRIGATION_RULE, "Tưới tự động khi đất công viên khô", IRRIGATION_DEFINITION),
    (OFFLINE_RULE, "Thiết bị cảm biến im lặng quá một ngày", OFFLINE_DEFINITION),
]


def device_ids() -> list[str]:
    """The demo's devices, the ones the park simulator plays."""
    return [item[0] for _group, _district, devices in PARKS for item in devices] + [
        item[0] for item in STATIONS
    ]


def _agency() -> Agency:
    agency, _created = Agency.objects.get_or_create(
        code=AGENCY,
        defaults={
            "name_vi": "Ban Quản lý Công viên tỉnh Bình An",
            "name_en": "Binh An Parks Management Board",
            "level": Agency.Level.PROVINCE,
        },
    )
    return agency


def _device_types(agency: Agency) -> dict[str, DeviceType]:
    kinds = {
        kind.code: kind for kind in DeviceType.objects.filter(code__in=[t["code"] for t in DEVICE_TYPES])
    }
    for definition in DEVICE_TYPES:
        if definition["code"] not in kinds:
            kinds[definition["code"]] = services.device_type_create(agency=agency, **definition)
    return kinds


def _devices(agency: Agency, kinds: dict[str, DeviceType]) -> None:
    wanted: list[dict[str, Any]] = []
    for group, district, devices in PARKS:
        for device_id, kind, name, latitude, longitude in devices:
            wanted.append(
                {
                    "device_id": device_id,
                    "device_type": kinds[kind],
                    "name": name,
                    "group": group,
                    "district": district,
                    "latitude": latitude,
                    "longitude": longitude,
                }
            )
    for device_id, group, district, name, latitude, longitude in STATIONS:
        wanted.append(
            {
                "device_id": device_id,
                "device_type": kinds[AIR],
                "name": name,
                "group": group,
                "district": district,
                "latitude": latitude,
                "longitude": longitude,
            }
        )
    existing = set(
        Device.objects.filter(device_id__in=[item["device_id"] for item in wanted]).values_list(
            "device_id", flat=True
        )
    )
    for item in wanted:
        if item["device_id"] not in existing:
            services.device_register(agency=agency, **item)


def _rules(agency: Agency) -> None:
    existing = set(
        Rule.objects.filter(code__in=[code for code, _name, _definition in RULES]).values_list(
            "code", flat=True
        )
    )
    for code, name, definition in RULES:
        if code not in existing:
            rules.rule_save(
                rule_or_none=None,
                agency=agency,
                code=code,
                name=name,
                definition=definition,
                note="Quy tắc mẫu của dữ liệu trình diễn",
            )


def _officers(agency: Agency, make_user: Callable[[str, str], Any]) -> list[tuple[str, str, str]]:
    user = make_user(ENGINEER_EMAIL, f"Kỹ sư cảm biến {agency.name_vi}")
    officer_provision(actor=None, user=user, agency=agency, roles=["sensor_engineer"])
    logins = [(f"sensor engineer ({agency.code})", user.email, user.full_name)]
    # The board's case officer also watches the sensors and works their alarms.
    for officer in Officer.objects.filter(agency=agency, user__email__startswith="officer.").select_related(
        "user"
    ):
        roles = sorted({*officer.roles, "sensor_operator"})
        officer_provision(actor=None, user=officer.user, agency=agency, roles=roles)
        logins.append(
            (f"officer ({agency.code}): {', '.join(roles)}", officer.user.email, officer.user.full_name)
        )
    return logins


def load(*, make_user: Callable[[str, str], Any]) -> list[tuple[str, str, str]]:
    """Device types, devices, rules and officers; returns (role, e-mail, name) of the logins."""
    agency = _agency()
    kinds = _device_types(agency)
    _devices(agency, kinds)
    _rules(agency)
    return _officers(agency, make_user)


def simulator_history_s(now: float) -> float:
    """How far back the simulated sensors start on their first run: long enough for the
    irrigation rule's 30 dry minutes, and, when started during the rule's midday pause, reaching
    back to before it, so the parks get their first watering within a minute at any hour."""
    zone = ZoneInfo(settings.TIME_ZONE)
    local = datetime.fromtimestamp(now, zone)
    start_h, start_m = (int(part) for part in IRRIGATION_PAUSE[0].split(":"))
    end_h, end_m = (int(part) for part in IRRIGATION_PAUSE[1].split(":"))
    pause_start = local.replace(hour=start_h, minute=start_m, second=0, microsecond=0)
    pause_end = local.replace(hour=end_h, minute=end_m, second=0, microsecond=0)
    if not pause_start <= local < pause_end:
        return float(HISTORY_S)
    # The dry spell must be over (with five minutes to spare) before the pause begins.
    begin = pause_start - timedelta(seconds=DRY_FOR_S + 5 * 60)
    return max(float(HISTORY_S), (local - begin).total_seconds())
