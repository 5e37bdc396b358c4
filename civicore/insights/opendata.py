"""The `kpi-scorecards` open dataset: one row per service and month with its scorecard's counts
and rates, read from the tallies. Counts of 1 to 4 are left empty, with the rates drawn from
them, as the other datasets do."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from civicore.opendata.datastore import Field
from civicore.opendata.generators import (
    Suppressor,
    Table,
    _int,
    _num,
    _text,
    dataset,
)

_THEME = "http://publications.europa.eu/resource/authority/data-theme/GOVE"


def _rate(hide: Suppressor, numerator: int, denominator: int) -> float | None:
    if not denominator:
        return None
    return hide.derived(denominator, round(100 * numerator / denominator, 1))


@dataset(
    key="kpi-scorecards",
    name="kpi-scorecards",
    title_vi="Chỉ số hiệu quả dịch vụ công theo tháng",
    title_en="Service performance scorecards by month",
    notes_vi="Mỗi dịch vụ, mỗi tháng: số hồ sơ bắt đầu, đã nộp, đã giải quyết, giải quyết đúng hạn, "
    "hoàn toàn trực tuyến, dùng dữ liệu điền sẵn, số đánh giá và các tỷ lệ tương ứng. Ô có từ 1 đến "
    "4 được để trống.",
    notes_en="Per service and month: applications started, submitted, decided, decided on time, "
    "decided end to end digitally, submitted with verified pre-fill, ratings, and the rates they "
    "give. Cells of 1 to 4 are left empty.",
    tags=("performance", "kpi", "hieu-qua"),
    theme=_THEME,
    needs_app="civicore.insights",
)
def kpi_scorecards() -> list[Table]:
    from civicore.catalogue.models import Service
    from civicore.insights import events
    from civicore.insights.models import Tally

    codes = dict(Service.objects.values_list("pk", "code"))
    agencies = dict(Service.objects.values_list("pk", "agency__code"))
    wanted = [
        events.STARTED, events.SUBMITTED, events.DECIDED, events.CLOSED_ON_TIME, events.DECIDED_DIGITAL,
        events.SUBMITTED_PREFILLED, events.RATINGS, f"{events.RATINGS_SCORE}5",
    ]  # fmt: skip
    counts: dict[tuple[Any, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows_read = Tally.objects.filter(metric__in=wanted, service_key__gt=0).values_list(
        "month", "service_key", "metric", "value"
    )
    for month, service_key, metric, value in rows_read.iterator(chunk_size=5000):
        counts[(month, service_key)][metric] += value
    hide = Suppressor()
    rows = []
    for (month, service_key), c in sorted(
        counts.items(), key=lambda item: (item[0][0], codes.get(item[0][1], ""))
    ):
        if service_key not in codes:
            continue
        rows.append(
            (
                month.isoformat()[:7],
                codes[service_key],
                agencies[service_key],
                hide.count(c[events.STARTED]),
                hide.count(c[events.SUBMITTED]),
                hide.count(c[events.DECIDED]),
                hide.count(c[events.RATINGS]),
                _rate(hide, c[events.SUBMITTED], c[events.STARTED]),
                _rate(hide, c[events.CLOSED_ON_TIME], c[events.DECIDED]),
                _rate(hide, c[events.DECIDED_DIGITAL], c[events.DECIDED]),
                _rate(hide, c[events.SUBMITTED_PREFILLED], c[events.SUBMITTED]),
                _rate(hide, c[f"{events.RATINGS_SCORE}5"], c[events.RATINGS]),
            )
        )
    fields: list[Field] = [
        _text("month", "Tháng", "Month"),
        _text("service_code", "Mã dịch vụ", "Service code"),
        _text("agency_code", "Mã cơ quan", "Agency code"),
        _int("started", "Hồ sơ bắt đầu", "Applications started"),
        _int("submitted", "Hồ sơ đã nộp", "Applications submitted"),
        _int("decided", "Hồ sơ đã giải quyết", "Applications decided"),
        _int("ratings", "Số đánh giá", "Ratings"),
        _num("completion_rate", "Tỷ lệ hoàn thành (%)", "Completion rate (%)"),
        _num("on_time_rate", "Tỷ lệ giải quyết đúng hạn (%)", "Decided on time (%)"),
        _num("end_to_end_digital_rate", "Tỷ lệ hoàn toàn trực tuyến (%)", "End to end digital (%)"),
        _num("prefilled_rate", "Tỷ lệ dùng dữ liệu điền sẵn (%)", "Submitted with verified pre-fill (%)"),
        _num("very_satisfied_rate", "Tỷ lệ rất hài lòng (%)", "Very satisfied (%)"),
    ]
    return [
        Table(
            "monthly",
            "Chỉ số theo dịch vụ và tháng",
            "Scorecards per service and month",
            fields,
            rows,
            suppressed=hide.hidden,
        )
    ]
