"""Consultations API: anyone reads published consultations and their ideas; signed-in citizens post
ideas, vote (once each), withdraw their vote and comment while a consultation is open. A hidden
idea or comment keeps its place with the moderator's reason instead of its text."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status

from civicore.consultations import models as m
from civicore.consultations import selectors, services
from civicore.consultations.models import Comment, Consultation, Idea
from civicore.core.errors import ValidationFailed
from civicore.core.pagination import paginate
from civicore.core.schemas import errors

router = Router(tags=["consultations"])
DETAIL_IDEAS = 100


class ConsultationHiddenOut(Schema):
    reason: str = Field(description="`personal_data`, `offensive`, `off_topic`, `spam` or `duplicate`.")
    reason_label: str = Field(description="In the language of the request.")


class ConsultationCommentOut(Schema):
    id: int
    author: str | None = Field(description="The display name the author chose; null when hidden.")
    body: str | None = Field(description="Null when hidden by the moderator.")
    created_at: dt.datetime
    hidden: ConsultationHiddenOut | None


class ConsultationIdeaOut(Schema):
    id: int
    title: str | None = Field(description="Null when hidden by the moderator.")
    body: str | None
    author: str | None
    status: str = Field(description="`under_consideration`, `accepted`, `rejected` or `implemented`.")
    status_note: str
    votes: int
    created_at: dt.datetime
    hidden: ConsultationHiddenOut | None
    comments: list[ConsultationCommentOut]


class ConsultationSummaryOut(Schema):
    id: int
    slug: str
    title: str
    question: str
    agency: str
    status: str = Field(description="`open`, `closed` or `responded`.")
    opens_on: dt.date
    closes_on: dt.date
    ideas: int


class ConsultationDocumentOut(Schema):
    title: str
    url: str
    size: int


class ConsultationResponseOut(Schema):
    text: str
    actions: str = Field(description="What the agency will do.")
    published_at: dt.datetime


class ConsultationOut(Schema):
    id: int
    slug: str
    title: str
    question: str
    description: str
    agency: str
    status: str
    opens_on: dt.date
    closes_on: dt.date
    accepts_contributions: bool
    documents: list[ConsultationDocumentOut]
    response: ConsultationResponseOut | None
    ideas: list[ConsultationIdeaOut] = Field(
        description=f"The first {DETAIL_IDEAS} ideas, oldest first; `ideas_next_cursor` leads on."
    )
    ideas_next_cursor: str | None = Field(
        description="For `GET /consultations/{id}/ideas?cursor=...`; null when every idea is here."
    )


class IdeaPage(Schema):
    items: list[ConsultationIdeaOut]
    next_cursor: str | None


class ConsultationPage(Schema):
    items: list[ConsultationSummaryOut]
    next_cursor: str | None


class IdeaIn(Schema):
    title: str = Field(min_length=1, max_length=m.IDEA_TITLE_MAX)
    body: str = Field(min_length=1, max_length=m.IDEA_BODY_MAX)
    display_name: str = Field(
        "",
        max_length=m.DISPLAY_NAME_MAX,
        description="Needed the first time: the name shown next to what you post (not your legal name, "
        "ID number or e-mail address).",
    )


class CommentIn(Schema):
    body: str = Field(min_length=1, max_length=m.COMMENT_MAX)
    display_name: str = Field(
        "", max_length=m.DISPLAY_NAME_MAX, description="Needed the first time, as for ideas."
    )


class VoteOut(Schema):
    idea_id: int
    voted: bool
    votes: int


def _hidden(moderation: Any) -> dict[str, str] | None:
    if moderation is None:
        return None
    return {"reason": moderation.reason, "reason_label": moderation.get_reason_display()}


def _comment_out(comment: Comment) -> dict[str, Any]:
    hidden = comment.hidden_by is not None
    return {
        "id": comment.pk,
        "author": None if hidden else comment.participant.display_name,
        "body": None if hidden else comment.body,
        "created_at": comment.created_at,
        "hidden": _hidden(comment.hidden_by),
    }


def _idea_out(idea: Idea, *, votes: int | None = None) -> dict[str, Any]:
    hidden = idea.hidden_by is not None
    return {
        "id": idea.pk,
        "title": None if hidden else idea.title,
        "body": None if hidden else idea.body,
        "author": None if hidden else idea.participant.display_name,
        "status": idea.status,
        "status_note": idea.status_note,
        "votes": votes if votes is not None else getattr(idea, "vote_count", 0),
        "created_at": idea.created_at,
        "hidden": _hidden(idea.hidden_by),
        "comments": [_comment_out(comment) for comment in idea.comments.all()],
    }


def _summary(consultation: Consultation) -> dict[str, Any]:
    return {
        "id": consultation.pk,
        "slug": consultation.slug,
        "title": consultation.title,
        "question": consultation.question,
        "agency": str(consultation.agency.name),
        "status": consultation.status,
        "opens_on": consultation.opens_on,
        "closes_on": consultation.closes_on,
        "ideas": getattr(consultation, "idea_count", 0),
    }


@router.get("", response={200: ConsultationPage, **errors(422)}, auth=None, summary="List consultations")
def list_consultations(request: HttpRequest, cursor: str | None = None, limit: int = 20) -> dict[str, Any]:
    """Published consultations: open ones first, then closed and responded. Drafts are never listed.
    422 `invalid_cursor` for a cursor this API did not give."""
    rows, next_cursor = paginate(
        selectors.public_consultations(), cursor=cursor, limit=limit, order=("rank", "-id")
    )
    return {"items": [_summary(row) for row in rows], "next_cursor": next_cursor}


@router.get(
    "/{consultation_id}",
    response={200: ConsultationOut, **errors(404)},
    auth=None,
    summary="A consultation with its ideas",
)
def get_consultation(request: HttpRequest, consultation_id: int) -> dict[str, Any]:
    """The question, documents, official response (once published) and every idea with its vote
    count and comments. 404 `consultation_not_found`."""
    consultation = selectors.public_consultation(consultation_id)
    documents = [
        {"title": d.title, "url": f"/consultations/{consultation.slug}/documents/{d.pk}/", "size": d.size}
        for d in consultation.documents.all()
    ]
    response = (
        {
            "text": consultation.response_text,
            "actions": consultation.response_actions,
            "published_at": consultation.responded_at,
        }
        if consultation.status == Consultation.Status.RESPONDED and consultation.responded_at
        else None
    )
    return {
        **_summary(consultation),
        "description": consultation.description,
        "accepts_contributions": consultation.accepts_contributions,
        "documents": documents,
        "response": response,
        **_idea_page(consultation, sort="oldest", cursor=None, limit=DETAIL_IDEAS, prefix="ideas_"),
    }


def _idea_page(
    consultation: Consultation, *, sort: str, cursor: str | None, limit: int, prefix: str = ""
) -> dict[str, Any]:
    """One page of ideas. The cursor names the order it was made for, so a cursor of one order is
    refused (422 `invalid_cursor`) by another rather than leading to a wrong page."""
    token = None
    if cursor:
        made_for, _dot, token = cursor.partition(".")
        if made_for != sort or not token:
            raise ValidationFailed(_("The cursor is not valid."), code="invalid_cursor")
    rows, next_token = paginate(
        selectors.ideas_of(consultation, sort),
        cursor=token,
        limit=limit,
        order=selectors.IDEA_ORDERS[sort],
    )
    return {
        "ideas" if prefix else "items": [_idea_out(idea) for idea in rows],
        f"{prefix}next_cursor": f"{sort}.{next_token}" if next_token else None,
    }


@router.get(
    "/{consultation_id}/ideas",
    response={200: IdeaPage, **errors(404, 422)},
    auth=None,
    summary="A consultation's ideas, page by page",
)
def list_ideas(
    request: HttpRequest,
    consultation_id: int,
    sort: str = "oldest",
    cursor: str | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    """Ideas with their vote counts and comments, `sort` = `oldest` (the default), `newest` or
    `votes` (most first); at most 100 a page. Errors: 404 `consultation_not_found`; 422
    `invalid_sort`, `invalid_cursor`."""
    consultation = selectors.public_consultation(consultation_id)
    if sort not in selectors.IDEA_ORDERS:
        message = _("Sort by one of: %(choices)s.") % {"choices": ", ".join(selectors.IDEA_ORDERS)}
        raise ValidationFailed(message, code="invalid_sort", details={"sort": message})
    return _idea_page(consultation, sort=sort, cursor=cursor, limit=limit)


@router.post(
    "/{consultation_id}/ideas",
    response={201: ConsultationIdeaOut, **errors(403, 404, 409, 422, 429)},
    summary="Post an idea",
)
def post_idea(request: HttpRequest, consultation_id: int, payload: IdeaIn) -> Status[dict[str, Any]]:
    """Post an idea on an open consultation; you follow it from then on. The first time, send
    `display_name`. Errors: 403 `not_a_citizen`; 404 `consultation_not_found`; 409
    `consultation_closed`; 422 `text_required`, `text_too_long`, `display_name_required`,
    `invalid_display_name`; 429 `rate_limited` (with Retry-After) past CONSULTATION_POSTS_PER_HOUR
    ideas and comments an hour."""
    consultation = selectors.public_consultation(consultation_id)
    idea = services.idea_post(
        user=request.user,
        consultation=consultation,
        title=payload.title,
        body=payload.body,
        display_name=payload.display_name,
    )
    return Status(201, _idea_out(idea, votes=0))


@router.post(
    "/ideas/{idea_id}/votes",
    response={201: VoteOut, **errors(403, 404, 409)},
    summary="Vote for an idea",
)
def vote(request: HttpRequest, idea_id: int) -> Status[dict[str, Any]]:
    """One vote per person and idea. Errors: 403 `not_a_citizen`; 404 `idea_not_found`; 409
    `already_voted`, `consultation_closed`, `idea_hidden`."""
    idea = selectors.public_idea(idea_id)
    services.vote_cast(user=request.user, idea=idea)
    return Status(201, {"idea_id": idea.pk, "voted": True, "votes": selectors.vote_count(idea)})


@router.delete(
    "/ideas/{idea_id}/votes",
    response={200: VoteOut, **errors(403, 404, 409)},
    summary="Withdraw one's vote",
)
def withdraw_vote(request: HttpRequest, idea_id: int) -> dict[str, Any]:
    """Withdrawing a vote you do not have changes nothing and answers the same. Errors: 403
    `not_a_citizen`; 404 `idea_not_found`; 409 `consultation_closed`."""
    idea = selectors.public_idea(idea_id)
    services.vote_withdraw(user=request.user, idea=idea)
    return {"idea_id": idea.pk, "voted": False, "votes": selectors.vote_count(idea)}


@router.post(
    "/ideas/{idea_id}/comments",
    response={201: ConsultationCommentOut, **errors(403, 404, 409, 422, 429)},
    summary="Comment on an idea",
)
def post_comment(request: HttpRequest, idea_id: int, payload: CommentIn) -> Status[dict[str, Any]]:
    """Errors: 403 `not_a_citizen`; 404 `idea_not_found`; 409 `consultation_closed`, `idea_hidden`;
    422 `text_required`, `text_too_long`, `display_name_required`, `invalid_display_name`; 429
    `rate_limited`, as for ideas."""
    idea = selectors.public_idea(idea_id)
    comment = services.comment_post(
        user=request.user, idea=idea, body=payload.body, display_name=payload.display_name
    )
    return Status(201, _comment_out(comment))
