"""Reads for the scorecards. Every figure is a sum of tallies over a scope (the platform, an
agency, a service) and a range of months: one query on `Tally`, however many applications there
are. The catalogue figures count the services table (small) and the backlog reads open cases only.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from civicore.agencies.models import Agency
from civicore.catalogue.models import Service
from civicore.core.errors import NotFound, ValidationFailed
from civicore.insights import events
from civicore.insights.events import month_of
from civicore.insights.models import Tally

MONTHS_SHOWN = 12
PLATFORM, AGENCY, SERVICE = "platform", "agency", "service"
_MONTH = re.compile(r"(\d{4})-(\d{2})")
# Age bands of open cases, in days since the case was opened: (label, from, to inclusive).
AGE_BANDS: tuple[tuple[Promise, int, int | None], ...] = (
    (gettext_lazy("0 to 5 days"), 0, 5),
    (gettext_lazy("6 to 10 days"), 6, 10),
    (gettext_lazy("11 to 20 days"), 11, 20),
    (gettext_lazy("Over 20 days"), 21, None),
)


class InvalidMonth(ValidationFailed):
    """The month is not a month such as 2026-01, or is in the future."""

    code = "invalid_month"


@dataclass(frozen=True)
class Scope:
    kind: str
    agency: Agency | None = None
    service: Service | None = None

    @property
    def code(self) -> str:
        if self.service is not None:
            return self.service.code
        return self.agency.code if self.agency is not None else ""

    @property
    def name(self) -> str:
        if self.service is not None:
            return str(self.service.name)
        return str(self.agency.name) if self.agency is not None else _("All services")


def parse_month(text: str | None, *, future: bool = False) -> dt.date:
    """`YYYY-MM` (the current month when empty) as the month's first day; no later than now
    unless `future` (a month to come simply has no figures yet)."""
    current = month_of()
    if not text:
        return current
    found = _MONTH.fullmatch(text.strip())
    if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1900:
        raise InvalidMonth(_("Enter a month such as 2026-01."), details={"month": text[:20]})
    month = dt.date(int(found.group(1)), int(found.group(2)), 1)
    if month > current and not future:
        raise InvalidMonth(_("The month is in the future."), details={"month": text[:20]})
    return month


def months_ending(last: dt.date, count: int = MONTHS_SHOWN) -> list[dt.date]:
    months = [last]
    while len(months) < count:
        first = months[-1]
        months.append((first - dt.timedelta(days=1)).replace(day=1))
    return list(reversed(months))


def service_scope(code: str, *, agency: Agency | None = None) -> Scope:
    service = Service.objects.select_related("agency").filter(code=code[:80]).first()
    if service is None or (agency is not None and service.agency_id != agency.pk):
        raise NotFound(_("There is no service with this code."), code="service_not_found")
    return Scope(SERVICE, agency=service.agency, service=service)


def agency_scope(code: str) -> Scope:
    agency = Agency.objects.filter(code=code[:60]).first()
    if agency is None:
        raise NotFound(_("There is no agency with this code."), code="agency_not_found")
    return Scope(AGENCY, agency=agency)


def _tallies(scope: Scope, first: dt.date, last: dt.date) -> dict[dt.date, dict[str, int]]:
    rows = Tally.objects.filter(month__gte=first, month__lte=last)
    if scope.service is not None:
        rows = rows.filter(agency_id=scope.service.agency_id, service_key=scope.service.pk)
    elif scope.agency is not None:
        rows = rows.filter(agency_id=scope.agency.pk)
    found: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for month, metric, value in rows.values_list("month", "metric").annotate(total=Sum("value")):
        found[month][metric] += int(value or 0)
    return found


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    definition: str
    numerator: int
    denominator: int
    target: str = ""
    target_low: float | None = None

    @property
    def percent(self) -> float | None:
        return round(100 * self.numerator / self.denominator, 1) if self.denominator else None

    @property
    def meets_target(self) -> bool | None:
        if self.target_low is None or self.percent is None:
            return None
        return self.percent >= self.target_low


def median_from_histogram(values: dict[str, int]) -> int | None:
    """The median processing time, in working days, from merged `processing_days_<n>` buckets."""
    buckets: dict[int, int] = defaultdict(int)
    for metric, count in values.items():
        if metric.startswith(events.PROCESSING_DAYS) and count > 0:
            buckets[int(metric[len(events.PROCESSING_DAYS) :])] += count
    total = sum(buckets.values())
    if not total:
        return None
    seen = 0
    for days in sorted(buckets):
        seen += buckets[days]
        if 2 * seen >= total:
            return days
    return None  # pragma: no cover - the loop always reaches the total


def tally_figures(values: dict[str, int]) -> list[Figure]:
    """The figures tallies give, for one period."""
    v = defaultdict(int, values)
    submitted = v[events.SUBMITTED]
    return [
        Figure(
            "end_to_end",
            _("Transactions completed end to end digitally"),
            _(
                "Decided applications whose whole journey was online (submitted online, any fee paid "
                "online, and, when approved, the result issued as a digitally signed document), out of "
                "all decided applications."
            ),
            v[events.DECIDED_DIGITAL],
            v[events.DECIDED],
            _("90 to 95%"),
            90.0,
        ),
        Figure(
            "prefilled",
            _("Submitted applications that used verified pre-fill"),
            _(
                "Submitted applications whose applicant agreed to fill answers from their verified "
                "profile, out of all submitted applications."
            ),
            v[events.SUBMITTED_PREFILLED],
            submitted,
            _("100%"),
            100.0,
        ),
        Figure(
            "satisfied",
            _("Citizens very satisfied"),
            _("Ratings of 5 out of 5, out of all ratings given."),
            v[f"{events.RATINGS_SCORE}5"],
            v[events.RATINGS],
            _("75 to 80%"),
            75.0,
        ),
        Figure(
            "completion",
            _("Completion rate"),
            _("Applications submitted, out of applications started, in the same period."),
            submitted,
            v[events.STARTED],
        ),
        Figure(
            "take_up",
            _("Digital take-up"),
            _(
                "Transactions made online (applications submitted), out of all transactions: online "
                "ones plus those made at counters or by post, as the agency reports them."
            ),
            submitted,
            submitted + v[events.OFFLINE_TRANSACTIONS],
        ),
        Figure(
            "sla",
            _("Decided within the service standard"),
            _("Cases closed on or before their due date, out of all cases closed."),
            v[events.CLOSED_ON_TIME],
            v[events.DECIDED],
        ),
    ]


@dataclass(frozen=True)
class CatalogueFigures:
    fee_services: Figure
    prefill_services: Figure
    signed_services: Figure


def catalogue_figures(scope: Scope) -> CatalogueFigures:
    """The catalogue's current state: one query on the services table, one on collection accounts."""
    from civicore.payments.models import CollectionAccount

    services = Service.objects.filter(online=True, current_version__isnull=False)
    if scope.service is not None:
        services = services.filter(pk=scope.service.pk)
    elif scope.agency is not None:
        services = services.filter(agency_id=scope.agency.pk)
    rows = list(services.values_list("agency_id", "current_version__definition"))
    gateways = bool(getattr(settings, "PAYMENT_GATEWAYS", {}))
    taking_transfers = (
        set()
        if gateways
        else set(CollectionAccount.objects.filter(active=True).values_list("agency_id", flat=True))
    )
    charging = [agency for agency, definition in rows if _charges(definition)]
    online = [agency for agency in charging if gateways or agency in taking_transfers]
    prefill = [1 for _agency, definition in rows if (definition or {}).get("prefill")]
    return CatalogueFigures(
        Figure(
            "e_payment",
            _("Services with an e-payment option"),
            _(
                "Online services that charge a fee and accept payment online (card, e-wallet or bank "
                "transfer by VietQR), out of all online services that charge a fee. Counted from the "
                "catalogue as it is today."
            ),
            len(online),
            len(charging),
            _("100%"),
            100.0,
        ),
        Figure(
            "prefill_services",
            _("Services whose form offers pre-fill"),
            _(
                "Online services whose form can be filled from the citizen's verified profile, out of "
                "all online services. Counted from the catalogue as it is today."
            ),
            len(prefill),
            len(rows),
            _("100%"),
            100.0,
        ),
        Figure(
            "signed_results",
            _("Services with a digital signature option"),
            _(
                "Online services whose approved results are issued as digitally signed documents that "
                "anyone can verify, out of all online services. Counted from the catalogue as it is today."
            ),
            # Every approval queues the signed result (civicore.credentials): each online service.
            len(rows),
            len(rows),
            _("100%"),
            100.0,
        ),
    )


def _charges(definition: Any) -> bool:
    fee = (definition or {}).get("fee") or {}
    return bool(int(fee.get("amount") or 0) > 0 or fee.get("lines"))


@dataclass(frozen=True)
class Band:
    label: str
    count: int


def backlog(scope: Scope, *, now: dt.datetime | None = None) -> list[Band]:
    """Open cases now by days since they were opened: one aggregate over open cases only."""
    from civicore.cases.models import Case

    now = now or timezone.now()
    cases = Case.objects.exclude(state__in=Case.CLOSED_STATES)
    if scope.service is not None:
        cases = cases.filter(agency_id=scope.service.agency_id, application__service_id=scope.service.pk)
    elif scope.agency is not None:
        cases = cases.filter(agency_id=scope.agency.pk)
    counts: dict[str, Any] = {}
    for index, (_label, low, high) in enumerate(AGE_BANDS):
        condition = Q(opened_at__lte=now - dt.timedelta(days=low))
        if high is not None:
            condition &= Q(opened_at__gt=now - dt.timedelta(days=high + 1))
        counts[f"band{index}"] = Count("pk", filter=condition)
    totals = cases.aggregate(**counts)
    return [
        Band(str(label), int(totals[f"band{index}"] or 0))
        for index, (label, _low, _high) in enumerate(AGE_BANDS)
    ]


@dataclass
class Scorecard:
    scope: Scope
    month: dt.date
    months: list[dt.date]
    by_month: dict[dt.date, dict[str, int]]
    figures: list[Figure] = field(default_factory=list)
    year_figures: list[Figure] = field(default_factory=list)
    catalogue: CatalogueFigures | None = None
    median_days: int | None = None
    year_median_days: int | None = None
    funnel: list[tuple[str, str, int]] = field(default_factory=list)
    backlog: list[Band] = field(default_factory=list)

    def series(self, metric: str) -> list[tuple[dt.date, int]]:
        return [(month, self.by_month.get(month, {}).get(metric, 0)) for month in self.months]

    def percent_series(self, numerator: str, denominator: str) -> list[tuple[dt.date, float | None]]:
        out: list[tuple[dt.date, float | None]] = []
        for month in self.months:
            values = self.by_month.get(month, {})
            total = values.get(denominator, 0)
            out.append((month, round(100 * values.get(numerator, 0) / total, 1) if total else None))
        return out


FUNNEL_LABELS: dict[str, Promise] = {
    events.STARTED: gettext_lazy("Started"),
    events.ANSWERS_SAVED: gettext_lazy("Answers saved"),
    events.DOCUMENTS_ATTACHED: gettext_lazy("Documents attached"),
    events.SUBMITTED: gettext_lazy("Submitted"),
    events.PAID: gettext_lazy("Fee paid (services with a fee)"),
}


def _merge(parts: list[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = defaultdict(int)
    for part in parts:
        for metric, value in part.items():
            merged[metric] += value
    return merged


def scorecard(scope: Scope, month: dt.date | None = None) -> Scorecard:
    """The scope's scorecard for `month` (the current one) and the 12 months up to it: four
    queries whatever the number of applications (tallies, services, accounts, open cases)."""
    month = month or month_of()
    months = months_ending(month)
    by_month = _tallies(scope, months[0], months[-1])
    current = dict(by_month.get(month, {}))
    year = _merge([by_month.get(m, {}) for m in months])
    return Scorecard(
        scope=scope,
        month=month,
        months=months,
        by_month=by_month,
        figures=tally_figures(current),
        year_figures=tally_figures(year),
        catalogue=catalogue_figures(scope),
        median_days=median_from_histogram(current),
        year_median_days=median_from_histogram(year),
        funnel=[(step, str(FUNNEL_LABELS[step]), int(current.get(step, 0))) for step in events.FUNNEL],
        backlog=backlog(scope),
    )


def agency_services(agency: Agency) -> list[Service]:
    return list(Service.objects.filter(agency=agency).order_by("code"))
