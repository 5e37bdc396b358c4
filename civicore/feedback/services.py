"""Writes of ratings: a citizen rates their own finished transaction, once.

The rating, its screened comment and the scorecard counts (civicore.insights.events) are saved in
one transaction; the unique constraint on (kind, subject) settles two requests that race.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.translation import gettext as _

from civicore.core.errors import Conflict, ValidationFailed
from civicore.feedback import screening, selectors
from civicore.feedback.models import Rating
from civicore.insights import events

COMMENT_MAX = 1000
# Line breaks and tabs are kept; other control characters (NUL among them) are dropped.
_KEPT_CONTROLS = {"\n", "\t"}


class InvalidRating(ValidationFailed):
    """The rating is not valid."""

    code = "invalid_request"


class NotRateable(Conflict):
    """This cannot be rated yet."""

    code = "not_rateable"


class AlreadyRated(Conflict):
    """You have already rated this."""

    code = "already_rated"


def clean_score(value: Any) -> int:
    """A whole number from 1 to 5 (a form's text too); InvalidRating otherwise."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, str):
        value = value.strip()
        value = int(value) if value.isascii() and value.isdigit() and len(value) < 3 else None
    if not isinstance(value, int) or value not in Rating.Score.values:
        raise InvalidRating(
            _("Choose how satisfied you are, from 1 (very dissatisfied) to 5 (very satisfied)."),
            details={"score": _("Choose one of the five answers.")},
        )
    return value


def clean_comment(value: Any) -> str:
    """The comment without control characters and surrounding spaces; at most COMMENT_MAX."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRating(
            _("The comment must be text."), details={"comment": _("Write your comment as text.")}
        )
    text = "".join(
        char
        for char in value.replace("\r\n", "\n").replace("\r", "\n")
        if char in _KEPT_CONTROLS or unicodedata.category(char) not in ("Cc", "Cs")
    ).strip()
    if len(text) > COMMENT_MAX:
        message = _("Your comment is %(length)s characters long: shorten it to %(max)s or fewer.") % {
            "length": len(text),
            "max": COMMENT_MAX,
        }
        raise InvalidRating(message, details={"comment": message})
    return text


def not_rateable_message(kind: str) -> str:
    return {
        Rating.Kind.APPLICATION: _("You can rate this application once it has been decided."),
        Rating.Kind.REPORT: _("You can rate this report once it has been resolved."),
        Rating.Kind.PAYMENT: _("You can rate this payment once it has been paid."),
    }[Rating.Kind(kind)]


def _already_rated_error() -> AlreadyRated:
    return AlreadyRated(_("You have already rated this. Each one is rated once."))


def _already_rated(kind: str, public_id: uuid.UUID) -> bool:
    return Rating.objects.filter(kind=kind, subject=public_id).exists()


@transaction.atomic
def rating_submit(
    *, user: Any, kind: str, public_id: uuid.UUID | str, score: Any, comment: Any = ""
) -> Rating:
    """Rate the caller's own decided application, resolved report or paid fee, once.

    Raises SubjectNotFound (not theirs, or no such thing), InvalidRating, NotRateable (not
    decided, resolved or paid yet) or AlreadyRated."""
    subject = selectors.subject_of(user=user, kind=kind, public_id=public_id)
    value = clean_score(score)
    text = clean_comment(comment)
    if not subject.finished or subject.agency_id is None:
        raise NotRateable(not_rateable_message(kind))
    if _already_rated(kind, subject.public_id):
        raise _already_rated_error()
    # The screened copy is for pages beyond the agency, so it is written in the platform's language.
    with translation.override(settings.LANGUAGE_CODE):
        screened = screening.screen(text)
    try:
        with transaction.atomic():
            rating = Rating.objects.create(
                kind=kind,
                subject=subject.public_id,
                user=user,
                agency_id=subject.agency_id,
                service_id=subject.service_id,
                score=value,
                comment=text,
                comment_screened=screened,
            )
    except IntegrityError:
        # Another request rated the same transaction between the check above and this insert.
        raise _already_rated_error() from None
    events.rating_given(
        agency_id=subject.agency_id, service_id=subject.service_id, score=value, at=rating.created_at
    )
    return rating
