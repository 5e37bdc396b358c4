"""Charts drawn on the server as SVG: no script, no inline style (the site's CSP), readable by
screen readers (role="img" named by its <title> and summarised by its <desc>); every chart is
shown with a table of the same numbers beside it.

Colours and strokes come from classes in sensors/sensors.css. The line is the mean of each
bucket; the shaded band spans its minimum and maximum; a gap in the data is a gap in the line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import formats, timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from civicore.sensors.selectors import Point

WIDTH = 640
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40


def number(value: float, digits: int = 2) -> str:
    """A value for people: at most `digits` decimals, in the language's notation."""
    if not math.isfinite(value):
        return "—"
    rounded = round(value, digits)
    if rounded == int(rounded):
        return formats.number_format(int(rounded), use_l10n=True)
    text = f"{rounded:.{digits}f}".rstrip("0").rstrip(".")
    return formats.number_format(
        text, decimal_pos=len(text.split(".")[1]) if "." in text else 0, use_l10n=True
    )


def with_unit(value: float, unit: str) -> str:
    shown = number(value)
    return f"{shown} {unit}".strip() if unit else shown


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round numbers covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks: list[float] = []
    value = first
    while value <= high + step * 0.5 and len(ticks) < 20:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _time_label(moment: datetime, span: timedelta) -> str:
    local = timezone.localtime(moment)
    if span <= timedelta(days=2):
        return local.strftime("%H:%M")
    return local.strftime("%d/%m")


def _time_ticks(start: datetime, end: datetime) -> list[datetime]:
    span = end - start
    if span <= timedelta(days=2):
        step = timedelta(hours=6 if span > timedelta(hours=12) else 2)
    elif span <= timedelta(days=10):
        step = timedelta(days=1)
    else:
        step = timedelta(days=5)
    local_start = timezone.localtime(start)
    if step >= timedelta(days=1):
        first = local_start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    else:
        hours = int(step.total_seconds() // 3600)
        first = local_start.replace(minute=0, second=0, microsecond=0)
        first += timedelta(hours=(hours - first.hour % hours) % hours or hours)
    ticks: list[datetime] = []
    moment = first
    while moment <= end and len(ticks) < 12:
        ticks.append(moment)
        moment += step
    return ticks


@dataclass(frozen=True)
class _Frame:
    start: float
    end: float
    low: float
    high: float

    def x(self, moment: datetime) -> float:
        share = (moment.timestamp() - self.start) / (self.end - self.start or 1)
        return LEFT + share * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low or 1)
        return HEIGHT - BOTTOM - share * (HEIGHT - TOP - BOTTOM)


def summary(points: Sequence[Point], unit: str) -> str:
    """What the chart shows, in a sentence (its <desc>)."""
    if not points:
        return _("No readings in this period.")
    low = min(point.minimum for point in points)
    high = max(point.maximum for point in points)
    latest = points[-1]
    return _("%(count)s values. Lowest %(low)s, highest %(high)s; latest average %(latest)s at %(time)s.") % {
        "count": len(points),
        "low": with_unit(low, unit),
        "high": with_unit(high, unit),
        "latest": with_unit(latest.value, unit),
        "time": formats.date_format(timezone.localtime(latest.time), "SHORT_DATETIME_FORMAT"),
    }


def _segments(points: Sequence[Point], gap: timedelta) -> list[list[Point]]:
    """Runs of points with no gap longer than `gap` between neighbours."""
    runs: list[list[Point]] = []
    for point in points:
        if runs and point.time - runs[-1][-1].time <= gap:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def line_chart(
    *,
    chart_id: str,
    title: str,
    points: Sequence[Point],
    start: datetime,
    end: datetime,
    unit: str,
    bucket: timedelta,
) -> SafeString:
    """An SVG line chart of `points` between `start` and `end` (buckets `bucket` wide)."""
    ident = escape(chart_id)
    description = summary(points, unit)
    parts = [
        f'<svg class="sensor-chart" id="{ident}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(description)}</desc>',
    ]
    if points:
        low = min(point.minimum for point in points)
        high = max(point.maximum for point in points)
    else:
        low, high = 0.0, 1.0
    ticks = nice_ticks(low, high)
    frame = _Frame(start=start.timestamp(), end=end.timestamp(), low=ticks[0], high=ticks[-1])
    parts.append('<g class="sensor-chart__grid" aria-hidden="true">')
    for tick in ticks:
        y = frame.y(tick)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
    parts.append("</g>")
    parts.append('<g class="sensor-chart__axis" aria-hidden="true">')
    for tick in ticks:
        y = frame.y(tick)
        parts.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(number(tick))}</text>')
    for moment in _time_ticks(start, end):
        x = frame.x(moment)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM + 5}"/>'
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 20}" text-anchor="middle">'
            f"{escape(_time_label(moment, end - start))}</text>"
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}"/>'
        f'<text x="{LEFT - 8}" y="{TOP - 4}" text-anchor="end">{escape(unit)}</text>'
    )
    parts.append("</g>")
    if not points:
        parts.append(
            f'<text class="sensor-chart__empty" x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" '
            f'y="{(TOP + HEIGHT - BOTTOM) / 2:.0f}" text-anchor="middle" aria-hidden="true">'
            f"{escape(_('No readings in this period.'))}</text>"
        )
    parts.append('<g aria-hidden="true">')
    for run in _segments(points, bucket * 1.5):
        upper = " ".join(f"{frame.x(p.time):.1f},{frame.y(p.maximum):.1f}" for p in run)
        lower = " ".join(f"{frame.x(p.time):.1f},{frame.y(p.minimum):.1f}" for p in reversed(run))
        parts.append(f'<polygon class="sensor-chart__band" points="{upper} {lower}"/>')
        line = " ".join(f"{frame.x(p.time):.1f},{frame.y(p.value):.1f}" for p in run)
        if len(run) == 1:
            point = run[0]
            parts.append(
                f'<circle class="sensor-chart__dot" cx="{frame.x(point.time):.1f}" '
                f'cy="{frame.y(point.value):.1f}" r="3"/>'
            )
        else:
            parts.append(f'<polyline class="sensor-chart__line" points="{line}"/>')
    if points:
        latest = points[-1]
        parts.append(
            f'<circle class="sensor-chart__latest" cx="{frame.x(latest.time):.1f}" '
            f'cy="{frame.y(latest.value):.1f}" r="4"/>'
        )
    parts.append("</g></svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


BAR_ROW = 28
BAR_LABEL = 200


def bar_chart(*, chart_id: str, title: str, bars: Sequence[tuple[str, float]], unit: str) -> SafeString:
    """A horizontal SVG bar chart: one labelled bar per (label, value)."""
    ident = escape(chart_id)
    height = TOP + BAR_ROW * max(len(bars), 1) + 8
    if bars:
        description = "; ".join(f"{label}: {with_unit(value, unit)}" for label, value in bars)
    else:
        description = _("No readings in this period.")
    parts = [
        f'<svg class="sensor-chart sensor-chart--bars" id="{ident}" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-labelledby="{ident}-title {ident}-desc" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(description)}</desc>',
        '<g aria-hidden="true">',
    ]
    values = [value for _label, value in bars if math.isfinite(value)]
    low = min([0.0, *values])
    high = max([0.0, *values]) or 1.0
    span = high - low or 1.0
    room = WIDTH - RIGHT - BAR_LABEL - 90
    zero = BAR_LABEL + (0 - low) / span * room
    for index, (label, value) in enumerate(bars):
        y = TOP + index * BAR_ROW
        end = BAR_LABEL + (value - low) / span * room
        x, width = (zero, end - zero) if end >= zero else (end, zero - end)
        short = label if len(label) <= 28 else label[:27] + "…"
        parts.append(
            f'<text class="sensor-chart__label" x="{BAR_LABEL - 8}" y="{y + 17}" text-anchor="end">'
            f"{escape(short)}</text>"
            f'<rect class="sensor-chart__bar" x="{x:.1f}" y="{y + 4}" '
            f'width="{max(width, 1):.1f}" height="{BAR_ROW - 8}"/>'
            f'<text class="sensor-chart__value" x="{max(end, zero) + 6:.1f}" y="{y + 17}">'
            f"{escape(with_unit(value, unit))}</text>"
        )
    if not bars:
        parts.append(
            f'<text class="sensor-chart__empty" x="{WIDTH / 2:.0f}" y="{TOP + 14}" text-anchor="middle">'
            f"{escape(_('No readings in this period.'))}</text>"
        )
    parts.append("</g></svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped
