"""Scorecards API: the platform's and each service's scorecards are public; an agency's is for its
officers holding performance.view, who also report the offline volumes of its services."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from civicore.agencies import permissions
from civicore.agencies.selectors import officer_for_user
from civicore.core.api_auth import AnonymousAllowed, ApiTokenAuth, SessionAuth
from civicore.core.errors import PermissionDenied
from civicore.core.schemas import errors
from civicore.insights import selectors, services
from civicore.insights.selectors import Scope

router = Router(tags=["insights"])
MONTH_PATTERN = r"^$|^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])$"


class FigureOut(Schema):
    key: str
    label: str
    definition: str
    numerator: int
    denominator: int
    percent: float | None
    target: str


class StepOut(Schema):
    step: str
    applications: int


class BandOut(Schema):
    label: str
    open_cases: int


class ScorecardOut(Schema):
    scope: str
    code: str
    month: str = Field(description="YYYY-MM")
    figures: list[FigureOut] = Field(description="For the month")
    figures_12_months: list[FigureOut] = Field(description="For the twelve months up to the month")
    catalogue: list[FigureOut] = Field(description="From the catalogue as it is today")
    median_working_days: int | None
    median_working_days_12_months: int | None
    steps: list[StepOut]
    open_cases_by_age: list[BandOut]


def _figure(figure: selectors.Figure) -> FigureOut:
    return FigureOut(
        key=figure.key, label=figure.label, definition=figure.definition, numerator=figure.numerator,
        denominator=figure.denominator, percent=figure.percent, target=figure.target,
    )  # fmt: skip


@router.get(
    "/scorecard",
    response={200: ScorecardOut, **errors(401, 403, 404, 422)},
    auth=[ApiTokenAuth(), SessionAuth(), AnonymousAllowed()],
)
def scorecard(
    request: HttpRequest,
    scope: Literal["platform", "agency", "service"] = "platform",
    code: str = Query("", max_length=80, description="The agency's or service's code"),
    month: str = Query("", pattern=MONTH_PATTERN, description="YYYY-MM; the current month when left out"),
) -> ScorecardOut:
    chosen = selectors.parse_month(month, future=True)
    if scope == selectors.PLATFORM:
        where = Scope(selectors.PLATFORM)
    elif scope == selectors.SERVICE:
        where = selectors.service_scope(code)
    else:
        where = selectors.agency_scope(code)
        officer = officer_for_user(request.user)
        if not permissions.has_perm(officer, permissions.PERFORMANCE_VIEW) or (
            officer is not None and officer.agency_id != where.agency.pk  # type: ignore[union-attr]
        ):
            raise PermissionDenied(
                _("Only the agency's officers who may see its performance can read its scorecard."),
                code="performance_not_allowed",
            )
    card = selectors.scorecard(where, chosen)
    catalogue = list(vars(card.catalogue).values()) if card.catalogue else []
    return ScorecardOut(
        scope=where.kind,
        code=where.code,
        month=f"{card.month:%Y-%m}",
        figures=[_figure(f) for f in card.figures],
        figures_12_months=[_figure(f) for f in card.year_figures],
        catalogue=[_figure(f) for f in catalogue],
        median_working_days=card.median_days,
        median_working_days_12_months=card.year_median_days,
        steps=[StepOut(step=step, applications=count) for step, _label, count in card.funnel],
        open_cases_by_age=[BandOut(label=band.label, open_cases=band.count) for band in card.backlog],
    )


class OfflineVolumeIn(Schema):
    service: str = Field(max_length=80, description="The service's code")
    month: str = Field(max_length=20, description="YYYY-MM, not in the future")
    count: int = Field(ge=0, le=services.OFFLINE_MAX, description="Transactions made at counters or by post")


class OfflineVolumeOut(Schema):
    service: str
    month: str
    count: int


@router.put("/offline-volumes", response={200: OfflineVolumeOut, **errors(403, 404)})
def offline_volume_put(request: HttpRequest, payload: OfflineVolumeIn) -> OfflineVolumeOut:
    """Report a service's offline transactions in a month (replacing the figure reported before)."""
    officer = permissions.officer_with_perm(request.user, permissions.PERFORMANCE_VIEW)
    where = selectors.service_scope(payload.service, agency=officer.agency)
    month: dt.date = selectors.parse_month(payload.month)
    assert where.service is not None  # noqa: S101 - a service scope names its service
    tally = services.offline_volume_set(
        officer=officer, service=where.service, month=month, count=payload.count
    )
    return OfflineVolumeOut(service=where.service.code, month=f"{month:%Y-%m}", count=tally.value)
