"""Reads of ratings: what a citizen may rate and has rated, and an agency's figures and comments.

A transaction that is not the caller's is not found, whether or not it exists. The agency's pages
name nobody: they show scores, services, months and comments, never who rated.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.applications.models import Application
from civicore.catalogue.models import Service
from civicore.core.errors import NotFound
from civicore.feedback.models import Rating
from civicore.payments.models import Payment
from civicore.reports.models import Report

KINDS = tuple(Rating.Kind.values)


class SubjectNotFound(NotFound):
    """No such application, report or payment of yours."""

    code = "not_found"


@dataclass(frozen=True)
class Subject:
    """A transaction as far as rating it goes."""

    kind: str
    public_id: uuid.UUID
    reference: str
    agency_id: int | None
    service_id: int | None
    # Decided (application), resolved (report) or paid (payment): only then can it be rated.
    finished: bool


def _user_id(user: Any) -> int | None:
    return user.pk if getattr(user, "is_authenticated", False) else None


def subject_of(*, user: Any, kind: str, public_id: uuid.UUID | str) -> Subject:
    """The caller's own application, report or payment with this public id; SubjectNotFound for
    anything else, so that nobody learns whether another person's exists."""
    user_id = _user_id(user)
    try:
        public_id = uuid.UUID(str(public_id))
    except ValueError:
        raise SubjectNotFound(_("Not found.")) from None
    if user_id is None or kind not in KINDS:
        raise SubjectNotFound(_("Not found."))
    if kind == Rating.Kind.APPLICATION:
        application = (
            Application.objects.select_related("case")
            .filter(public_id=public_id, applicant__user_id=user_id, status=Application.Status.SUBMITTED)
            .first()
        )
        case = getattr(application, "case", None) if application is not None else None
        if application is None or case is None:
            raise SubjectNotFound(_("Not found."))
        return Subject(
            kind=kind,
            public_id=public_id,
            reference=application.reference or "",
            agency_id=case.agency_id,
            service_id=application.service_id,
            finished=case.is_closed,
        )
    if kind == Rating.Kind.REPORT:
        report = Report.objects.filter(public_id=public_id, reporter_id=user_id).first()
        if report is None:
            raise SubjectNotFound(_("Not found."))
        return Subject(
            kind=kind,
            public_id=public_id,
            reference=report.reference,
            agency_id=report.agency_id,
            service_id=None,
            # The report's own verdict form ("is it fixed?", civicore.reports) rates it too: once
            # given, the report is rated.
            finished=report.status == Report.Status.RESOLVED
            and report.agency_id is not None
            and report.rated_at is None,
        )
    payment = Payment.objects.filter(public_id=public_id, payer__user_id=user_id).first()
    if payment is None:
        raise SubjectNotFound(_("Not found."))
    return Subject(
        kind=kind,
        public_id=public_id,
        reference=payment.reference,
        agency_id=payment.agency_id,
        service_id=payment.service_id,
        finished=payment.paid_at is not None,
    )


def rating_of(*, kind: str, public_id: uuid.UUID) -> Rating | None:
    return Rating.objects.filter(kind=kind, subject=public_id).first()


def own_rating(*, user: Any, kind: str, public_id: uuid.UUID | str) -> Rating:
    """The caller's rating of their own transaction, or NotFound."""
    subject = subject_of(user=user, kind=kind, public_id=public_id)
    rating = rating_of(kind=kind, public_id=subject.public_id)
    if rating is None:
        raise NotFound(_("You have not rated this yet."), code="rating_not_found")
    return rating


# --- the agency's figures ----------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    service_id: int | None = None  # 0: problem reports (no service)
    month: dt.date | None = None  # the first day of the month


def services_rated(*, agency_id: int) -> QuerySet[Service]:
    """The agency's services, for the filter (including ones not rated yet)."""
    return Service.objects.filter(agency_id=agency_id).order_by("code")


def month_range(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The month's first instant and the next month's, in the platform's time zone."""
    zone = timezone.get_current_timezone()
    year, number = (month.year + 1, 1) if month.month == 12 else (month.year, month.month + 1)
    return (
        dt.datetime(month.year, month.month, 1, tzinfo=zone),
        dt.datetime(year, number, 1, tzinfo=zone),
    )


def _filtered(agency_id: int, filters: Filters) -> QuerySet[Rating]:
    qs = Rating.objects.filter(agency_id=agency_id)
    if filters.service_id == 0:
        qs = qs.filter(service__isnull=True)
    elif filters.service_id is not None:
        qs = qs.filter(service_id=filters.service_id)
    if filters.month is not None:
        start, end = month_range(filters.month)
        qs = qs.filter(created_at__gte=start, created_at__lt=end)
    return qs


def months_rated(*, agency_id: int, limit: int = 36) -> list[dt.date]:
    """The months in which the agency received ratings, newest first."""
    months = (
        Rating.objects.filter(agency_id=agency_id)
        .annotate(month=TruncMonth("created_at"))
        .values_list("month", flat=True)
        .distinct()
        .order_by("-month")[:limit]
    )
    return [month.date() if isinstance(month, dt.datetime) else month for month in months]


def figures(*, agency_id: int, filters: Filters) -> list[dict[str, Any]]:
    """Per service and month: how many ratings, how many very satisfied (5) and the average score.
    Newest month first, then by service (reports, which have none, first)."""
    rows = (
        _filtered(agency_id, filters)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "service_id", "service__code")
        .annotate(
            count=Count("id"),
            very_satisfied=Count("id", filter=Q(score=Rating.Score.VERY_SATISFIED)),
            average=Avg("score"),
        )
        .order_by("-month", "service__code")
    )
    return [dict(row) for row in rows]


def comments(*, agency_id: int, filters: Filters) -> QuerySet[Rating]:
    """The agency's ratings with a comment, newest first (the comment as written: they are the
    agency's). Nothing here says who wrote them."""
    return _filtered(agency_id, filters).exclude(comment_screened="").select_related("service")
