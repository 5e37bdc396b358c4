from __future__ import annotations

from typing import Any

from civicore.agencies.tests.factories import AgencyFactory
from civicore.open311.models import Open311Client
from civicore.open311.services import open311_client_create
from civicore.reports.models import ReportCategory
from civicore.reports.tests.factories import HANOI, make_category

API = "/open311/v2"


def make_client(name: str = "City 311 app", **kwargs: Any) -> tuple[Open311Client, str]:
    return open311_client_create(name=name, **kwargs)


def make_categories() -> dict[str, ReportCategory]:
    lighting = AgencyFactory(code="chieu-sang-do-thi", name_vi="Công ty Chiếu sáng", name_en="Urban Lighting")
    transport = AgencyFactory(code="so-giao-thong-van-tai", name_vi="Sở Giao thông", name_en="Transport")
    return {
        "streetlight": make_category(
            "streetlight",
            agency=lighting,
            name_vi="Đèn đường hỏng",
            name_en="Broken streetlight",
            description_vi="Đèn đường không sáng",
            description_en="A streetlight is out",
            keywords="lamp, light,  đèn ",
        ),
        "road_damage": make_category(
            "road_damage",
            agency=transport,
            name_vi="Ổ gà, hư hỏng mặt đường",
            name_en="Potholes and road damage",
            sla_days=5,
        ),
        "retired": make_category("retired", agency=transport, active=False),
    }


def request_body(api_key: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "api_key": api_key,
        "service_code": "streetlight",
        "lat": str(HANOI[0]),
        "long": str(HANOI[1]),
        "address_string": "12 Phố Huế",
        "description": "The streetlight in front of number 12 has been out for three nights.",
        "email": "lan@example.test",
        "first_name": "Lan",
        "last_name": "Trần",
        "phone": "0901234567",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}
