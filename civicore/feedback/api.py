"""Ratings API: the signed-in citizen rates their own decided application, resolved problem report
or paid fee once, and reads back their rating. The router parses and shapes; services decide."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status
from pydantic import BeforeValidator

from civicore.core.errors import PermissionDenied
from civicore.core.schemas import errors
from civicore.feedback import selectors, services
from civicore.feedback.models import Rating
from civicore.identity.selectors import person_for_user

router = Router(tags=["feedback"])

Kind = Literal["application", "report", "payment"]


def _whole_number(value: Any) -> Any:
    # true and "5" are not scores, though pydantic would read them as 1 and 5.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number from 1 to 5")
    return value


Score = Annotated[int, BeforeValidator(_whole_number)]


class RatingIn(Schema):
    kind: Kind = Field(description="What is rated: an `application`, a problem `report` or a fee `payment`.")
    id: uuid.UUID = Field(description="The application's, report's or payment's public id.")
    score: Score = Field(
        ge=1,
        le=5,
        description="5 very satisfied, 4 satisfied, 3 neither satisfied nor dissatisfied, "
        "2 dissatisfied, 1 very dissatisfied.",
    )
    comment: str = Field("", max_length=services.COMMENT_MAX, description="Optional.")


class RatingOut(Schema):
    kind: str
    id: uuid.UUID
    score: int
    score_label: str = Field(description="The answer in words, in the language of the request.")
    comment: str
    created_at: dt.datetime


def _citizen(request: HttpRequest) -> Any:
    if person_for_user(request.user) is None:  # type: ignore[arg-type]
        raise PermissionDenied(_("Only citizens can rate services."), code="not_a_citizen")
    return request.user


def _out(rating: Rating) -> dict[str, Any]:
    return {
        "kind": rating.kind,
        "id": rating.subject,
        "score": rating.score,
        "score_label": str(Rating.Score(rating.score).label),
        "comment": rating.comment,
        "created_at": rating.created_at,
    }


@router.post(
    "/ratings",
    response={201: RatingOut, **errors(403, 404, 409)},
    summary="Rate one of your decided applications, resolved reports or paid fees",
)
def rate(request: HttpRequest, payload: RatingIn) -> Status[dict[str, Any]]:
    """Once per application (after its decision), problem report (once resolved) or fee payment
    (once paid), by the citizen it belongs to.

    Errors: 403 `not_a_citizen`; 404 `not_found` (no such transaction of yours); 409
    `not_rateable` (not decided, resolved or paid yet), `already_rated`; 422 `invalid_request`
    (score not a whole number from 1 to 5, comment over 1,000 characters)."""
    rating = services.rating_submit(
        user=_citizen(request),
        kind=payload.kind,
        public_id=payload.id,
        score=payload.score,
        comment=payload.comment,
    )
    return Status(201, _out(rating))


@router.get(
    "/ratings/{kind}/{id}",
    response={200: RatingOut, **errors(403, 404)},
    summary="Your rating of one of your transactions",
)
def own_rating(request: HttpRequest, kind: Kind, id: uuid.UUID) -> dict[str, Any]:  # noqa: A002
    """404 `rating_not_found` when you have not rated it, `not_found` when it is not yours."""
    return _out(selectors.own_rating(user=_citizen(request), kind=kind, public_id=id))
