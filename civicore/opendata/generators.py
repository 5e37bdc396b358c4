"""The datasets Civicore publishes, each generated from live data by a function registered here.

A generator returns aggregates only. Counts from 1 to MIN_CELL - 1 are suppressed (published as
empty, with the figures derived from them such as medians), so that no cell can single out a
person; zero is published, as it identifies no one. Adding a dataset is adding a function here.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db.models import Avg, Count, Max, Min
from django.db.models.functions import TruncDate

from civicore.opendata.datastore import Field

MIN_CELL = int(getattr(settings, "OPENDATA_MIN_CELL", 5))


@dataclass
class Table:
    """One resource: its columns and its rows, in column order."""

    key: str
    name_vi: str
    name_en: str
    fields: list[Field]
    rows: Sequence[Sequence[Any]]
    description_vi: str = ""
    description_en: str = ""
    suppressed: int = 0


@dataclass(frozen=True)
class DatasetSpec:
    key: str
    name: str
    title_vi: str
    title_en: str
    notes_vi: str
    notes_en: str
    build: Callable[[], list[Table]]
    tags: tuple[str, ...] = ()
    theme: str = ""
    frequency: str = "daily"
    needs_app: str = ""


REGISTRY: dict[str, DatasetSpec] = {}
_THEME = "http://publications.europa.eu/resource/authority/data-theme/"


def dataset(**kwargs: Any) -> Callable[[Callable[[], list[Table]]], Callable[[], list[Table]]]:
    def register(build: Callable[[], list[Table]]) -> Callable[[], list[Table]]:
        spec = DatasetSpec(build=build, **kwargs)
        REGISTRY[spec.key] = spec
        return build

    return register


def available() -> list[DatasetSpec]:
    return [spec for spec in REGISTRY.values() if not spec.needs_app or apps.is_installed(spec.needs_app)]


@dataclass
class Suppressor:
    """Counts cells it hides, for the resource's metadata."""

    hidden: int = 0
    minimum: int = MIN_CELL

    def count(self, value: int) -> int | None:
        if 0 < value < self.minimum:
            self.hidden += 1
            return None
        return value

    def parts(self, first: int, second: int) -> tuple[int | None, int | None]:
        """Two counts that add up to a published total: when one is hidden, so is the other, or
        the total would give it away."""
        if 0 < first < self.minimum or 0 < second < self.minimum:
            self.hidden += (first > 0) + (second > 0)
            return (None if first else 0), (None if second else 0)
        return first, second

    def complements(self, rows: list[list[Any]], *, column: int, derived: int | None = None) -> None:
        """Secondary suppression over rows grouped by their first cell (a month): when a column
        hides exactly one cell of a group, it hides the group's smallest other non-zero cell too
        (and the figure in `derived` computed from it), or the hidden one would be the group's
        total, published elsewhere, less the rest."""
        groups: dict[Any, list[list[Any]]] = defaultdict(list)
        for row in rows:
            groups[row[0]].append(row)
        for group in groups.values():
            shown = [row for row in group if row[column]]
            if shown and sum(row[column] is None for row in group) == 1:
                smallest = min(shown, key=lambda row: row[column])
                smallest[column] = None
                self.hidden += 1
                if derived is not None:
                    smallest[derived] = None

    def derived(self, basis: int, value: Any) -> Any:
        """A figure computed from `basis` people (a median, an average): hidden with the count."""
        if 0 < basis < self.minimum:
            self.hidden += 1
            return None
        return value


def _month(moment: Any) -> dt.date:
    local = moment.astimezone(dt.UTC)
    return dt.date(local.year, local.month, 1)


def _days(start: Any, end: Any) -> float:
    return (end - start).total_seconds() / 86400


def _median(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(statistics.median(values), 2) if values else None


def _text(name: str, vi: str, en: str) -> Field:
    return Field(name, "text", vi, en)


def _int(name: str, vi: str, en: str) -> Field:
    return Field(name, "int", vi, en)


def _num(name: str, vi: str, en: str) -> Field:
    return Field(name, "numeric", vi, en)


@dataclass
class _Monthly:
    """Per (month, key) counters and durations."""

    counts: dict[tuple[Any, ...], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    durations: dict[tuple[Any, ...], list[float]] = field(default_factory=lambda: defaultdict(list))


@dataset(
    key="service-catalogue",
    name="service-catalogue",
    title_vi="Danh mục dịch vụ công trực tuyến",
    title_en="Catalogue of online public services",
    notes_vi="Mọi dịch vụ công trên Civicore: mã, tên, cơ quan giải quyết, thủ tục hành chính và "
    "việc có thể nộp trực tuyến hay không.",
    notes_en="Every public service on Civicore: its code, name, the agency that decides it, the "
    "administrative procedure it implements and whether it can be applied for online.",
    tags=("services", "dich-vu-cong"),
    theme=_THEME + "GOVE",
)
def service_catalogue() -> list[Table]:
    from civicore.catalogue.models import Service

    services = Service.objects.select_related("agency", "procedure").order_by("code")
    rows = [
        (
            s.code,
            s.name_vi,
            s.name_en,
            s.agency.code,
            s.agency.name_vi,
            s.procedure.code if s.procedure else None,
            "yes" if s.online else "no",
        )
        for s in services
    ]
    return [
        Table(
            "services",
            "Dịch vụ công",
            "Public services",
            [
                _text("service_code", "Mã dịch vụ", "Service code"),
                _text("name_vi", "Tên (tiếng Việt)", "Name (Vietnamese)"),
                _text("name_en", "Tên (tiếng Anh)", "Name (English)"),
                _text("agency_code", "Mã cơ quan", "Agency code"),
                _text("agency_name", "Cơ quan", "Agency"),
                _text("procedure_code", "Mã thủ tục hành chính", "Administrative procedure code"),
                _text("online", "Nộp trực tuyến", "Apply online"),
            ],
            rows,
        )
    ]


@dataset(
    key="applications-monthly",
    name="applications-monthly",
    title_vi="Hồ sơ theo dịch vụ và tháng",
    title_en="Applications by service and month",
    notes_vi="Số hồ sơ nộp, đã giải quyết, chấp thuận và từ chối mỗi tháng cho từng dịch vụ, cùng "
    "thời gian giải quyết trung vị (ngày). Ô có từ 1 đến 4 hồ sơ được để trống.",
    notes_en="Applications submitted, decided, approved and rejected per service and month, with the "
    "median days to a decision. Cells of 1 to 4 applications are left empty.",
    tags=("applications", "performance", "ho-so"),
    theme=_THEME + "GOVE",
)
def applications_monthly() -> list[Table]:
    from civicore.applications.models import Application
    from civicore.cases.models import Case

    tally = _Monthly()
    submitted = Application.objects.filter(submitted_at__isnull=False).values_list(
        "service__code", "service__agency__code", "submitted_at"
    )
    for service, agency, moment in submitted.iterator(chunk_size=5000):
        tally.counts[(_month(moment), service, agency)]["submitted"] += 1
    closed = Case.objects.filter(closed_at__isnull=False).values_list(
        "application__service__code", "application__service__agency__code", "state", "opened_at", "closed_at"
    )
    for service, agency, state, opened, closed_at in closed.iterator(chunk_size=5000):
        key = (_month(closed_at), service, agency)
        tally.counts[key]["decided"] += 1
        tally.counts[key][state] += 1
        tally.durations[key].append(_days(opened, closed_at))
    hide = Suppressor()
    rows = []
    for key in sorted(tally.counts):
        month, service, agency = key
        counts = tally.counts[key]
        approved, rejected = hide.parts(counts[Case.State.APPROVED], counts[Case.State.REJECTED])
        rows.append(
            (
                month.isoformat()[:7],
                service,
                agency,
                hide.count(counts["submitted"]),
                hide.count(counts["decided"]),
                approved,
                rejected,
                hide.derived(counts["decided"], _median(tally.durations[key])),
            )
        )
    return [
        Table(
            "monthly",
            "Hồ sơ theo tháng",
            "Applications per month",
            [
                _text("month", "Tháng", "Month"),
                _text("service_code", "Mã dịch vụ", "Service code"),
                _text("agency_code", "Mã cơ quan", "Agency code"),
                _int("submitted", "Đã nộp", "Submitted"),
                _int("decided", "Đã giải quyết", "Decided"),
                _int("approved", "Chấp thuận", "Approved"),
                _int("rejected", "Từ chối", "Rejected"),
                _num("median_days_to_decision", "Số ngày giải quyết (trung vị)", "Median days to decision"),
            ],
            rows,
            suppressed=hide.hidden,
        )
    ]


@dataset(
    key="reports-monthly",
    name="reports-monthly",
    title_vi="Phản ánh hiện trường theo loại, quận và tháng",
    title_en="Problem reports by category, district and month",
    notes_vi="Số phản ánh nhận được và đã xử lý mỗi tháng theo loại và cơ quan, và theo quận, cùng "
    "thời gian xử lý trung vị (ngày). Ô có từ 1 đến 4 phản ánh được để trống, cùng một ô khác của "
    "tháng đó khi cần, để không ô nào suy ra được từ tổng.",
    notes_en="Problem reports received and resolved per category, agency and month, and per district "
    "and month, with the median days to resolve. Cells of 1 to 4 reports are left empty, with one "
    "more cell of the month where needed so that none can be worked out from the totals.",
    tags=("reports", "311", "phan-anh"),
    theme=_THEME + "REGI",
    needs_app="civicore.reports",
)
def reports_monthly() -> list[Table]:
    from civicore.areas.services import names
    from civicore.reports.models import Report

    by_category, by_district = _Monthly(), _Monthly()
    reports = Report.objects.exclude(status=Report.Status.MERGED).values_list(
        "category__code", "agency__code", "district", "created_at", "resolved_at"
    )
    for category, agency, district, created, resolved in reports.iterator(chunk_size=5000):
        for tally, key in ((by_category, (category or "", agency or "")), (by_district, (district or "",))):
            tally.counts[(_month(created), *key)]["received"] += 1
            if resolved is not None:
                done = (_month(resolved), *key)
                tally.counts[done]["resolved"] += 1
                tally.durations[done].append(_days(created, resolved))
    district_names = names()
    hide_categories, hide_districts = Suppressor(), Suppressor()
    category_rows = _report_rows(by_category, hide_categories)
    district_rows = _report_rows(by_district, hide_districts)
    figures = [
        _int("received", "Đã nhận", "Received"),
        _int("resolved", "Đã xử lý", "Resolved"),
        _num("median_days_to_resolve", "Số ngày xử lý (trung vị)", "Median days to resolve"),
    ]
    return [
        Table(
            "monthly",
            "Phản ánh theo tháng",
            "Reports per month",
            [
                _text("month", "Tháng", "Month"),
                _text("category_code", "Mã loại phản ánh", "Category code"),
                _text("agency_code", "Mã cơ quan", "Agency code"),
                *figures,
            ],
            category_rows,
            suppressed=hide_categories.hidden,
        ),
        Table(
            "districts",
            "Phản ánh theo quận và tháng",
            "Reports per district and month",
            [
                _text("month", "Tháng", "Month"),
                _text("district_code", "Mã quận", "District code"),
                _text("district_name", "Tên quận", "District name"),
                *figures,
            ],
            [(row[0], row[1], district_names.get(row[1] or "", None), *row[2:]) for row in district_rows],
            description_vi="Quận theo ranh giới cơ quan vận hành đã nạp; để trống khi địa điểm không "
            "thuộc quận nào đã nạp.",
            description_en="Districts as in the boundaries the operator loaded; empty where the "
            "place lies in none of them.",
            suppressed=hide_districts.hidden,
        ),
    ]


def _report_rows(tally: _Monthly, hide: Suppressor) -> list[list[Any]]:
    """One row per (month, key...) with received, resolved and median days, small cells hidden and
    each month's complements hidden with them (Suppressor.complements)."""
    rows: list[list[Any]] = []
    for key in sorted(tally.counts):
        counts = tally.counts[key]
        rows.append(
            [
                key[0].isoformat()[:7],
                *(part or None for part in key[1:]),
                hide.count(counts["received"]),
                hide.count(counts["resolved"]),
                hide.derived(counts["resolved"], _median(tally.durations[key])),
            ]
        )
    width = len(rows[0]) if rows else 0
    hide.complements(rows, column=width - 3)  # received
    hide.complements(rows, column=width - 2, derived=width - 1)  # resolved, and its median
    return rows


@dataset(
    key="sensor-daily",
    name="environment-daily",
    title_vi="Số liệu cảm biến môi trường theo ngày",
    title_en="Daily environment sensor readings",
    notes_vi="Giá trị trung bình, nhỏ nhất và lớn nhất mỗi ngày của từng đại lượng đo theo quận, từ "
    "các cảm biến của thành phố.",
    notes_en="Daily mean, minimum and maximum of each measured quantity per district, from the city's "
    "sensors.",
    tags=("environment", "sensors", "moi-truong"),
    theme=_THEME + "ENVI",
    needs_app="civicore.sensors",
)
def sensor_daily() -> list[Table]:
    from civicore.sensors.models import Reading

    groups = (
        Reading.objects.annotate(day=TruncDate("time"))
        .values("day", "device__district", "quantity")
        .annotate(n=Count("value"), mean=Avg("value"), low=Min("value"), high=Max("value"))
        .order_by("day", "device__district", "quantity")
    )
    rows = [
        (
            g["day"].isoformat() if hasattr(g["day"], "isoformat") else str(g["day"]),
            g["device__district"] or None,
            g["quantity"],
            g["n"],
            round(g["mean"], 3),
            g["low"],
            g["high"],
        )
        for g in groups.iterator(chunk_size=5000)
    ]
    return [
        Table(
            "daily",
            "Theo ngày",
            "Per day",
            [
                _text("day", "Ngày", "Day"),
                _text("district", "Quận", "District"),
                _text("quantity", "Đại lượng", "Quantity"),
                _int("readings", "Số lần đo", "Readings"),
                _num("mean", "Trung bình", "Mean"),
                _num("minimum", "Nhỏ nhất", "Minimum"),
                _num("maximum", "Lớn nhất", "Maximum"),
            ],
            rows,
        )
    ]
