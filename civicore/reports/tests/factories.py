from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from civicore.agencies.models import Agency
from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.reports import services
from civicore.reports.models import Report, ReportCategory

HANOI = (21.0285, 105.8542)


@dataclass(frozen=True)
class Decision:
    """A routing decision shaped like civicore.routing.services.RoutingDecision."""

    model_id: int = 7
    model_version: str = "2026.1"
    label: str = "streetlight"
    confidence: float = 0.93
    threshold: float = 0.8
    top3: list[tuple[str, float]] = field(
        default_factory=lambda: [("streetlight", 0.93), ("traffic_signal", 0.05)]
    )
    auto: bool = True


def make_category(code: str = "streetlight", agency: Agency | None = None, **kwargs: Any) -> ReportCategory:
    defaults = {"name_vi": f"Loại {code}", "name_en": f"Category {code}", "sla_days": 3}
    defaults.update(kwargs)
    return ReportCategory.objects.create(code=code, agency=agency or AgencyFactory(), **defaults)


def make_handler(category: ReportCategory, roles: tuple[str, ...] = ("report_handler",)) -> Any:
    return make_officer(agency=category.agency, roles=roles)


def jpeg_bytes(size: tuple[int, int] = (40, 30), *, exif: Any = None, fmt: str = "JPEG") -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    kwargs = {"exif": exif} if exif is not None else {}
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def gps_exif(latitude: float, longitude: float) -> Any:
    """EXIF with a GPS block (and a camera make) as a phone writes it."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make

    def dms(value: float) -> tuple[float, float, float]:
        value = abs(value)
        degrees = int(value)
        minutes = int((value - degrees) * 60)
        seconds = round(((value - degrees) * 60 - minutes) * 60, 4)
        return (float(degrees), float(minutes), seconds)

    gps = exif.get_ifd(0x8825)
    gps[1] = "N" if latitude >= 0 else "S"
    gps[2] = dms(latitude)
    gps[3] = "E" if longitude >= 0 else "W"
    gps[4] = dms(longitude)
    return exif


def file_report(**kwargs: Any) -> Report:
    values: dict[str, Any] = {
        "reporter": None,
        "description": "Đèn đường trước nhà số 12 bị hỏng mấy hôm nay",
        "latitude": HANOI[0],
        "longitude": HANOI[1],
        "client_key": "",
    }
    values.update(kwargs)
    return services.report_file(**values)
