"""Reads for city sensors: an agency's devices and their state, series of readings and rollups,
alarms, commands, rules and rejections, and the public aggregates of the environment page.

Officers see their own agency's devices only: every read takes the agency and filters by it.
Series are capped (MAX_POINTS) and their ranges bounded per period, so no query can ask for a
year of raw readings; a bad query raises SeriesQueryError (400) with a stable code.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Min, QuerySet, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from civicore.core.errors import ApplicationError, NotFound
from civicore.sensors.models import (
    Alarm,
    Command,
    Device,
    DeviceType,
    Reading,
    Rejection,
    Rollup,
    Rule,
    RuleFiring,
    RuleVersion,
)

MAX_POINTS = 5000
PERIODS = ("raw", "5m", "1h", "1d")
PERIOD_SECONDS = {"5m": 300, "1h": 3600, "1d": 86400}
# The longest range one query may cover, per period (about MAX_POINTS buckets, raw much less).
MAX_RANGE = {
    "raw": timedelta(days=7),
    "5m": timedelta(days=14),
    "1h": timedelta(days=200),
    "1d": timedelta(days=3650),
}
DEFAULT_RANGE = {
    "raw": timedelta(hours=1),
    "5m": timedelta(hours=24),
    "1h": timedelta(days=7),
    "1d": timedelta(days=30),
}
# The three windows of a device's charts: (key, period of the rollups, length).
CHART_WINDOWS = (
    ("24h", "5m", timedelta(hours=24)),
    ("7d", "1h", timedelta(days=7)),
    ("30d", "1d", timedelta(days=30)),
)
REJECTION_WINDOW_DAYS = 7
PUBLIC_WINDOW = timedelta(hours=24)


class SeriesQueryError(ApplicationError):
    """The series query is not valid."""

    code = "sensors.invalid_query"
    status = 400


# --- devices -----------------------------------------------------------------------------------


class Connectivity:
    ONLINE = "online"
    OFFLINE = "offline"
    REVOKED = "revoked"
    NEVER_SEEN = "never_seen"

    @staticmethod
    def label(value: str) -> str:
        return {
            "online": _("Online"),
            "offline": _("Offline"),
            "revoked": _("Revoked"),
            "never_seen": _("Never seen"),
        }.get(value, value)


def connectivity(device: Device, now: datetime | None = None) -> str:
    """online, offline, revoked or never_seen: what an operator needs to know first."""
    if device.status == Device.Status.REVOKED:
        return Connectivity.REVOKED
    if device.last_seen_at is None:
        return Connectivity.NEVER_SEEN
    return Connectivity.ONLINE if device.is_online(now) else Connectivity.OFFLINE


def devices_of_agency(
    *, agency_id: int, group: str = "", district: str = "", device_type: str = ""
) -> QuerySet[Device]:
    qs = Device.objects.filter(agency_id=agency_id).select_related("device_type")
    if group:
        qs = qs.filter(group=group)
    if district:
        qs = qs.filter(district=district)
    if device_type:
        qs = qs.filter(device_type__code=device_type)
    return qs.order_by("device_id")


def device_for_agency(*, agency_id: int, device_id: str) -> Device:
    """The agency's device; another agency's device is as unknown as a missing one (404)."""
    device = (
        Device.objects.select_related("device_type", "agency")
        .filter(device_id=device_id[:64], agency_id=agency_id)
        .first()
    )
    if device is None:
        raise NotFound(_("No device of your agency has this identifier."), code="sensors.unknown_device")
    return device


def groups_and_districts(*, agency_id: int) -> tuple[list[str], list[str]]:
    rows = Device.objects.filter(agency_id=agency_id).values_list("group", "district").distinct()
    groups = sorted({group for group, _district in rows if group})
    districts = sorted({district for _group, district in rows if district})
    return groups, districts


def device_types_of_agency(*, agency_id: int) -> QuerySet[DeviceType]:
    return DeviceType.objects.filter(agency_id=agency_id).order_by("code")


def quantity_label(definition: dict[str, Any] | None, name: str) -> str:
    if not definition:
        return name
    english = (get_language() or "vi").startswith("en")
    label = definition.get("label_en") if english else definition.get("label_vi")
    return str(label or definition.get("label_vi") or definition.get("label_en") or name)


@dataclass
class LastValue:
    quantity: str
    label: str
    unit: str
    value: float
    time: datetime | None


def last_values(device: Device) -> list[LastValue]:
    """The newest reading of each quantity, in the order the device type lists them."""
    stored = device.last_values if isinstance(device.last_values, dict) else {}
    kind = device.device_type
    order = [str(item.get("name")) for item in kind.quantities if isinstance(item, dict)]
    names = [name for name in order if name in stored] + sorted(set(stored) - set(order))
    found = []
    for name in names:
        entry = stored.get(name)
        if not isinstance(entry, list | tuple) or len(entry) != 2:
            continue
        value, when = entry
        if not isinstance(value, int | float):
            continue
        moment = parse_datetime(str(when)) if when else None
        definition = kind.quantity(name)
        found.append(
            LastValue(
                quantity=name,
                label=quantity_label(definition, name),
                unit=str((definition or {}).get("unit") or ""),
                value=float(value),
                time=moment,
            )
        )
    return found


@dataclass
class Overview:
    active_alarms: int
    rejected_messages: int
    by_connectivity: dict[str, int] = field(default_factory=dict)


def overview(*, agency_id: int, devices: list[Device], now: datetime | None = None) -> Overview:
    now = now or timezone.now()
    since = now - timedelta(hours=24)
    counts: dict[str, int] = defaultdict(int)
    for device in devices:
        counts[connectivity(device, now)] += 1
    rejected = Rejection.objects.filter(device__agency_id=agency_id, received_at__gte=since).aggregate(
        n=Sum("count")
    )["n"]
    return Overview(
        active_alarms=Alarm.objects.filter(agency_id=agency_id, status=Alarm.Status.ACTIVE).count(),
        rejected_messages=int(rejected or 0),
        by_connectivity=dict(counts),
    )


# --- series ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    time: datetime
    value: float
    minimum: float
    maximum: float
    count: int


@dataclass
class Series:
    quantity: str
    period: str
    start: datetime
    end: datetime
    points: list[Point]
    truncated: bool = False


def _parse_time(text: str | None, name: str) -> datetime | None:
    if text is None or not str(text).strip():
        return None
    raw = str(text).strip()
    try:
        moment = parse_datetime(raw)
    except ValueError:
        moment = None
    if moment is None:
        raise SeriesQueryError(
            _("%(name)s is not a date and time (ISO 8601, e.g. 2026-12-05T07:00:00+07:00).") % {"name": name},
            code="sensors.invalid_time",
            details={name: raw[:60]},
        )
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment


def series_window(
    *, period: str | None, start: str | None, end: str | None, now: datetime | None = None
) -> tuple[str, datetime, datetime]:
    """Check a query's period and range; a missing end is now, a missing start the period's
    default window before the end."""
    chosen = (period or "1h").strip()
    if chosen not in PERIODS:
        raise SeriesQueryError(
            _("The period must be one of raw, 5m, 1h or 1d."),
            code="sensors.invalid_period",
            details={"period": chosen[:20], "allowed": list(PERIODS)},
        )
    until = _parse_time(end, "end") or (now or timezone.now())
    since = _parse_time(start, "start") or until - DEFAULT_RANGE[chosen]
    if since >= until:
        raise SeriesQueryError(
            _("The start must be before the end."),
            code="sensors.invalid_range",
            details={"start": since.isoformat(), "end": until.isoformat()},
        )
    if until - since > MAX_RANGE[chosen]:
        raise SeriesQueryError(
            _("This range is too long for the period %(period)s: ask for at most %(days)s days.")
            % {"period": chosen, "days": MAX_RANGE[chosen].days},
            code="sensors.range_too_large",
            details={"period": chosen, "max_days": MAX_RANGE[chosen].days},
        )
    return chosen, since, until


def _check_quantity(quantity: str | None) -> str:
    name = (quantity or "").strip()
    if not name or len(name) > 40:
        raise SeriesQueryError(
            _("Name the quantity, e.g. quantity=soil_moisture."), code="sensors.invalid_quantity"
        )
    return name


def device_series(
    *,
    device: Device,
    quantity: str | None,
    period: str | None,
    start: str | None = None,
    end: str | None = None,
) -> Series:
    """One device's readings (period raw) or rollups of one quantity, oldest first."""
    name = _check_quantity(quantity)
    if device.device_type.quantity(name) is None:
        raise SeriesQueryError(
            _("This device does not measure %(quantity)s.") % {"quantity": name},
            code="sensors.unknown_quantity",
            details={"quantity": name, "known": [str(q.get("name")) for q in device.device_type.quantities]},
        )
    chosen, since, until = series_window(period=period, start=start, end=end)
    if chosen == "raw":
        rows = list(
            Reading.objects.filter(device_id=device.pk, quantity=name, time__gte=since, time__lt=until)
            .order_by("time")
            .values_list("time", "value")[: MAX_POINTS + 1]
        )
        points = [Point(time=t, value=v, minimum=v, maximum=v, count=1) for t, v in rows]
    else:
        rollups = list(
            Rollup.objects.filter(
                device_id=device.pk, quantity=name, period=chosen, bucket__gte=since, bucket__lt=until
            )
            .order_by("bucket")
            .values_list("bucket", "count", "total", "minimum", "maximum")[: MAX_POINTS + 1]
        )
        points = [_rollup_point(*row) for row in rollups]
    return Series(
        quantity=name,
        period=chosen,
        start=since,
        end=until,
        points=points[:MAX_POINTS],
        truncated=len(points) > MAX_POINTS,
    )


def _rollup_point(bucket: datetime, count: int, total: float, minimum: float, maximum: float) -> Point:
    count = int(count or 0)
    return Point(
        time=bucket,
        value=(total / count) if count else 0.0,
        minimum=float(minimum),
        maximum=float(maximum),
        count=count,
    )


def _aggregate_series(
    devices: QuerySet[Device], *, name: str, chosen: str, since: datetime, until: datetime
) -> list[Point]:
    rows = (
        Rollup.objects.filter(
            device_id__in=devices.values("pk"),
            quantity=name,
            period=chosen,
            bucket__gte=since,
            bucket__lt=until,
        )
        .values("bucket")
        .annotate(n=Sum("count"), total=Sum("total"), low=Min("minimum"), high=Max("maximum"))
        .order_by("bucket")[: MAX_POINTS + 1]
    )
    return [_rollup_point(r["bucket"], r["n"], r["total"], r["low"], r["high"]) for r in rows]


def _aggregate(
    devices: QuerySet[Device], *, quantity: str | None, period: str | None, start: str | None, end: str | None
) -> Series:
    name = _check_quantity(quantity)
    chosen, since, until = series_window(period=period, start=start, end=end)
    if chosen == "raw":
        raise SeriesQueryError(
            _("Readings of several devices are aggregated: ask for period 5m, 1h or 1d."),
            code="sensors.invalid_period",
            details={"period": chosen, "allowed": ["5m", "1h", "1d"]},
        )
    points = _aggregate_series(devices, name=name, chosen=chosen, since=since, until=until)
    return Series(
        quantity=name,
        period=chosen,
        start=since,
        end=until,
        points=points[:MAX_POINTS],
        truncated=len(points) > MAX_POINTS,
    )


def group_series(
    *,
    agency_id: int,
    group: str,
    quantity: str | None,
    period: str | None,
    start: str | None = None,
    end: str | None = None,
) -> tuple[Series, int]:
    """A quantity across the agency's devices of one group, per bucket; and how many devices."""
    devices = Device.objects.filter(agency_id=agency_id, group=group[:80])
    count = devices.count()
    if not count:
        raise NotFound(_("Your agency has no device in this group."), code="sensors.unknown_group")
    return _aggregate(devices, quantity=quantity, period=period, start=start, end=end), count


def parse_bbox(text: str | None) -> tuple[float, float, float, float]:
    """south,west,north,east in degrees, south below north and west left of east."""
    parts = str(text or "").split(",")
    try:
        south, west, north, east = (float(part) for part in parts)
    except ValueError:
        south = west = north = east = math.nan
    valid = (
        all(math.isfinite(v) for v in (south, west, north, east))
        and -90 <= south < north <= 90
        and -180 <= west < east <= 180
    )
    if not valid:
        raise SeriesQueryError(
            _("bbox must be south,west,north,east in degrees, south below north and west left of east."),
            code="sensors.invalid_bbox",
            details={"bbox": str(text or "")[:100]},
        )
    return south, west, north, east


def area_series(
    *,
    agency_id: int,
    bbox: str | None,
    quantity: str | None,
    period: str | None,
    start: str | None = None,
    end: str | None = None,
) -> tuple[Series, int]:
    """A quantity across the agency's devices inside a box, per bucket; and how many devices."""
    south, west, north, east = parse_bbox(bbox)
    devices = Device.objects.filter(
        agency_id=agency_id,
        latitude__gte=south,
        latitude__lte=north,
        longitude__gte=west,
        longitude__lte=east,
    )
    series = _aggregate(devices, quantity=quantity, period=period, start=start, end=end)
    return series, devices.count()


@dataclass
class Chart:
    """One quantity of one device over one window, ready for civicore.sensors.charts."""

    quantity: str
    label: str
    unit: str
    window: str
    period: str
    start: datetime
    end: datetime
    points: list[Point]


def device_charts(device: Device, *, now: datetime | None = None) -> list[tuple[str, str, str, list[Chart]]]:
    """For each quantity of the device type: (name, label, unit, [24 h, 7 days, 30 days charts]).
    One query per window, whatever the number of quantities."""
    now = now or timezone.now()
    kind = device.device_type
    names = [str(item.get("name")) for item in kind.quantities if isinstance(item, dict) and item.get("name")]
    per_window: dict[str, dict[str, list[Point]]] = {}
    bounds: dict[str, tuple[str, datetime, datetime]] = {}
    for key, period, length in CHART_WINDOWS:
        width = PERIOD_SECONDS[period]
        # Whole buckets: the window starts on a bucket boundary so its first bar is complete.
        start = datetime.fromtimestamp(((now - length).timestamp() // width + 1) * width, UTC)
        bounds[key] = (period, start, now)
        grouped: dict[str, list[Point]] = defaultdict(list)
        rows = (
            Rollup.objects.filter(device_id=device.pk, period=period, bucket__gte=start, quantity__in=names)
            .order_by("quantity", "bucket")
            .values_list("quantity", "bucket", "count", "total", "minimum", "maximum")
        )
        for quantity, bucket, count, total, low, high in rows:
            grouped[quantity].append(_rollup_point(bucket, count, total, low, high))
        per_window[key] = grouped
    result = []
    for name in names:
        definition = kind.quantity(name) or {}
        label = quantity_label(definition, name)
        unit = str(definition.get("unit") or "")
        charts = []
        for key, _period, _length in CHART_WINDOWS:
            period, start, end = bounds[key]
            charts.append(
                Chart(
                    quantity=name,
                    label=label,
                    unit=unit,
                    window=key,
                    period=period,
                    start=start,
                    end=end,
                    points=per_window[key].get(name, []),
                )
            )
        result.append((name, label, unit, charts))
    return result


# --- rejections, commands, alarms --------------------------------------------------------------


def recent_rejections(*, device: Device, limit: int = 20) -> list[Rejection]:
    return list(Rejection.objects.filter(device_id=device.pk).order_by("-received_at", "-pk")[:limit])


def rejection_summary(
    *, agency_id: int, days: int = REJECTION_WINDOW_DAYS, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Rejected messages of the agency's devices per device and reason, most first."""
    since = (now or timezone.now()) - timedelta(days=days)
    rows = (
        Rejection.objects.filter(device__agency_id=agency_id, received_at__gte=since)
        .values("device__device_id", "device__name", "reason")
        .annotate(total=Sum("count"), rows=Count("pk"), last=Max("received_at"))
        .order_by("-total", "device__device_id", "reason")
    )
    labels = dict(Rejection.Reason.choices)
    return [
        {
            "device_id": row["device__device_id"],
            "device_name": row["device__name"],
            "reason": row["reason"],
            "reason_label": str(labels.get(row["reason"], row["reason"])),
            "count": int(row["total"] or 0),
            "last": row["last"],
        }
        for row in rows
    ]


def commands_of_agency(*, agency_id: int, status: str = "", device_id: str = "") -> QuerySet[Command]:
    qs = Command.objects.filter(device__agency_id=agency_id).select_related("device", "issued_by")
    if status:
        qs = qs.filter(status=status)
    if device_id:
        qs = qs.filter(device__device_id=device_id)
    return qs.order_by("-created_at", "-id")


def commands_of_device(*, device: Device, limit: int = 20) -> list[Command]:
    return list(
        Command.objects.filter(device_id=device.pk)
        .select_related("issued_by")
        .order_by("-created_at", "-id")[:limit]
    )


def alarms_of_agency(*, agency_id: int, statuses: tuple[str, ...]) -> QuerySet[Alarm]:
    return (
        Alarm.objects.filter(agency_id=agency_id, status__in=statuses)
        .select_related("device", "rule", "firing", "acknowledged_by", "cleared_by")
        .order_by("-raised_at", "-id")
    )


def alarm_for_agency(*, agency_id: int, alarm_id: int) -> Alarm:
    alarm = Alarm.objects.select_related("device", "rule").filter(pk=alarm_id, agency_id=agency_id).first()
    if alarm is None:
        raise NotFound(_("No alarm of your agency has this number."), code="sensors.unknown_alarm")
    return alarm


def active_alarms_of_device(*, device: Device) -> list[Alarm]:
    return list(
        Alarm.objects.filter(device_id=device.pk, status__in=(Alarm.Status.ACTIVE, Alarm.Status.ACKNOWLEDGED))
        .select_related("rule", "firing")
        .order_by("-raised_at")[:20]
    )


# --- rules -------------------------------------------------------------------------------------


def rules_of_agency(*, agency_id: int) -> QuerySet[Rule]:
    return (
        Rule.objects.filter(agency_id=agency_id)
        .select_related("current_version", "current_version__created_by")
        .annotate(version_count=Count("versions"))
        .order_by("code")
    )


def rule_for_agency(*, agency_id: int, code: str) -> Rule:
    rule = (
        Rule.objects.select_related("current_version", "current_version__created_by", "agency")
        .filter(code=code[:80], agency_id=agency_id)
        .first()
    )
    if rule is None:
        raise NotFound(_("No rule of your agency has this code."), code="sensors.unknown_rule")
    return rule


def rule_versions(*, rule: Rule) -> list[RuleVersion]:
    return list(RuleVersion.objects.filter(rule_id=rule.pk).select_related("created_by").order_by("-number"))


def rule_firings(*, rule: Rule, limit: int = 50) -> list[RuleFiring]:
    return list(
        RuleFiring.objects.filter(rule_version__rule_id=rule.pk)
        .select_related("rule_version", "device")
        .order_by("-at", "-id")[:limit]
    )


# --- the public environment page ---------------------------------------------------------------


def _public_definitions() -> dict[str, dict[str, Any]]:
    """Quantity name -> its definition, from the sensor types (the first type that names it)."""
    found: dict[str, dict[str, Any]] = {}
    for quantities in DeviceType.objects.filter(role=DeviceType.Role.SENSOR).values_list(
        "quantities", flat=True
    ):
        for item in quantities or []:
            if isinstance(item, dict) and item.get("name") and str(item["name"]) not in found:
                found[str(item["name"])] = item
    return found


def aggregation_of(definition: dict[str, Any]) -> str:
    """How a quantity adds up over a day: rain is a total ("sum"), temperature an average ("mean").
    A quantity definition may say so with "aggregate"; millimetres (rain) add up by default."""
    chosen = str(definition.get("aggregate") or "")
    if chosen in ("sum", "mean"):
        return chosen
    return "sum" if str(definition.get("unit") or "") == "mm" else "mean"


@dataclass
class AreaValue:
    area: str
    devices: int
    value: float
    minimum: float
    maximum: float


@dataclass
class PublicQuantity:
    quantity: str
    label: str
    unit: str
    aggregate: str
    areas: list[AreaValue]
    hourly: list[Point]


def _public_devices() -> QuerySet[Device]:
    return Device.objects.filter(status=Device.Status.ACTIVE, device_type__role=DeviceType.Role.SENSOR)


def public_areas() -> list[str]:
    rows = _public_devices().values_list("district", "group").distinct()
    return sorted({district or group for district, group in rows if district or group})


def public_environment(*, area: str = "", now: datetime | None = None) -> list[PublicQuantity]:
    """The last 24 hours per quantity: the value of each area (district, or group where a device
    has no district) and, for the chosen area or the whole city, hour by hour. From the hourly
    rollups of active sensors; nothing about single devices."""
    now = now or timezone.now()
    since = datetime.fromtimestamp(((now - PUBLIC_WINDOW).timestamp() // 3600 + 1) * 3600, UTC)
    definitions = _public_definitions()
    devices = _public_devices()
    rows = (
        Rollup.objects.filter(
            device_id__in=devices.values("pk"), period="1h", bucket__gte=since, quantity__in=list(definitions)
        )
        .values("quantity", "device__district", "device__group", "device_id", "bucket")
        .annotate(n=Sum("count"), total=Sum("total"), low=Min("minimum"), high=Max("maximum"))
    )
    # quantity -> area -> device -> [count, total, low, high]; quantity -> bucket -> same
    per_device: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(dict))
    per_bucket: dict[str, dict[datetime, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        place = row["device__district"] or row["device__group"] or ""
        if not place:
            continue
        values = [float(row["n"] or 0), float(row["total"] or 0), float(row["low"]), float(row["high"])]
        _merge(per_device[row["quantity"]][place], row["device_id"], values)
        if not area or place == area:
            _merge(per_bucket[row["quantity"]][row["bucket"]], row["device_id"], values)
    result = []
    for name in sorted(per_device):
        definition = definitions.get(name, {})
        how = aggregation_of(definition)
        areas = [
            _area_value(place, device_values, how)
            for place, device_values in sorted(per_device[name].items())
            if not area or place == area
        ]
        hourly = [
            _bucket_point(bucket, device_values, how)
            for bucket, device_values in sorted(per_bucket[name].items())
        ]
        if not areas:
            continue
        result.append(
            PublicQuantity(
                quantity=name,
                label=quantity_label(definition, name),
                unit=str(definition.get("unit") or ""),
                aggregate=how,
                areas=areas,
                hourly=hourly,
            )
        )
    return result


def _merge(target: dict[int, list[float]], key: int, values: list[float]) -> None:
    found = target.get(key)
    if found is None:
        target[key] = list(values)
        return
    found[0] += values[0]
    found[1] += values[1]
    found[2] = min(found[2], values[2])
    found[3] = max(found[3], values[3])


def _combine(device_values: dict[int, list[float]], how: str) -> tuple[float, float, float]:
    """A sum quantity (rain) is each device's total, averaged over devices; a mean quantity is
    the mean of all readings. Minimum and maximum are over all readings."""
    rows = list(device_values.values())
    low = min(r[2] for r in rows)
    high = max(r[3] for r in rows)
    if how == "sum":
        value = sum(r[1] for r in rows) / len(rows)
    else:
        count = sum(r[0] for r in rows)
        value = sum(r[1] for r in rows) / count if count else 0.0
    return value, low, high


def _area_value(place: str, device_values: dict[int, list[float]], how: str) -> AreaValue:
    value, low, high = _combine(device_values, how)
    return AreaValue(area=place, devices=len(device_values), value=value, minimum=low, maximum=high)


def _bucket_point(bucket: datetime, device_values: dict[int, list[float]], how: str) -> Point:
    value, low, high = _combine(device_values, how)
    count = int(sum(r[0] for r in device_values.values()))
    return Point(time=bucket, value=value, minimum=low, maximum=high, count=count)
