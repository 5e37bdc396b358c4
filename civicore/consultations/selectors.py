"""Reads for consultations: the public list and page (drafts never shown), a citizen's own votes
and follows, and the back office's lists for one agency."""

from __future__ import annotations

from typing import Any

from django.db.models import Case, Count, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.utils.translation import gettext as _

from civicore.agencies.models import Officer
from civicore.consultations.models import (
    Comment,
    Consultation,
    Follow,
    Idea,
    Moderation,
    Participant,
    Vote,
)
from civicore.consultations.services import OtherAgency
from civicore.core.errors import NotFound


def public_consultations() -> QuerySet[Consultation]:
    """Published consultations: open ones first, then closed and responded, newest first."""
    return (
        Consultation.objects.exclude(status=Consultation.Status.DRAFT)
        .select_related("agency")
        .annotate(
            rank=Case(
                When(status=Consultation.Status.OPEN, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
            idea_count=Count("ideas", distinct=True),
        )
        .order_by("rank", "-opens_on", "-id")
    )


def public_consultation(key: str | int) -> Consultation:
    """A published consultation by its id or its slug."""
    qs = Consultation.objects.exclude(status=Consultation.Status.DRAFT).select_related("agency")
    text = str(key)
    found = qs.filter(pk=int(text)).first() if text.isdigit() else qs.filter(slug=text).first()
    if found is None:
        raise NotFound(_("No published consultation has this address."), code="consultation_not_found")
    return found


# How a consultation's ideas can be listed: each ordering ends in a unique field, so pages and
# cursors are stable. The first is the default.
IDEA_ORDERS: dict[str, tuple[str, ...]] = {
    "oldest": ("created_at", "id"),
    "newest": ("-created_at", "-id"),
    "votes": ("-vote_count", "created_at", "id"),
}
IDEAS_PER_PAGE = 20


def idea_order(sort: str | None) -> str:
    """A known ordering's name; anything else (a stale or edited link) is the default."""
    return sort if sort in IDEA_ORDERS else "oldest"


def ideas_of(consultation: Consultation, sort: str | None = None) -> QuerySet[Idea]:
    """The ideas with their vote counts, authors' display names, moderation and comments."""
    comments = Comment.objects.select_related("participant", "hidden_by").order_by("created_at", "id")
    return (
        consultation.ideas.select_related("participant", "hidden_by")
        .annotate(vote_count=Count("votes", distinct=True))
        .prefetch_related(Prefetch("comments", queryset=comments))
        .order_by(*IDEA_ORDERS[idea_order(sort)])
    )


def idea_page_number(idea: Idea) -> int:
    """The page that shows the idea in the default (oldest first) order."""
    before = Idea.objects.filter(consultation_id=idea.consultation_id).filter(
        Q(created_at__lt=idea.created_at) | Q(created_at=idea.created_at, id__lt=idea.pk)
    )
    return before.count() // IDEAS_PER_PAGE + 1


def public_idea(idea_id: int) -> Idea:
    idea = (
        Idea.objects.select_related("consultation", "hidden_by")
        .exclude(consultation__status=Consultation.Status.DRAFT)
        .filter(pk=idea_id)
        .first()
    )
    if idea is None:
        raise NotFound(_("No idea has this number."), code="idea_not_found")
    return idea


def vote_count(idea: Idea) -> int:
    return Vote.objects.filter(idea=idea).count()


def choices_of(user: Any, consultation: Consultation) -> dict[str, Any]:
    """Which of the consultation's ideas the user voted for and follows, and their display name."""
    if user is None or not user.is_authenticated:
        return {"voted": set(), "followed": set(), "display_name": ""}
    participant = Participant.objects.filter(user=user).first()
    return {
        "voted": set(
            Vote.objects.filter(idea__consultation=consultation, user=user).values_list("idea_id", flat=True)
        ),
        "followed": set(
            Follow.objects.filter(idea__consultation=consultation, user=user).values_list(
                "idea_id", flat=True
            )
        ),
        "display_name": participant.display_name if participant else "",
    }


# --- back office -----------------------------------------------------------------------------------


def office_consultations(officer: Officer) -> QuerySet[Consultation]:
    return (
        Consultation.objects.filter(agency_id=officer.agency_id)
        .annotate(idea_count=Count("ideas", distinct=True))
        .order_by("-created_at", "-id")
    )


def office_consultation(officer: Officer, consultation_id: int) -> Consultation:
    """The consultation if it exists and belongs to the officer's agency (PermissionDenied if it
    belongs to another)."""
    consultation = Consultation.objects.select_related("agency").filter(pk=consultation_id).first()
    if consultation is None:
        raise NotFound(_("No consultation has this number."), code="consultation_not_found")
    if consultation.agency_id != officer.agency_id:
        raise OtherAgency(_("This consultation belongs to another agency."))
    return consultation


def moderation_log(officer: Officer, consultation: Consultation | None = None) -> QuerySet[Moderation]:
    qs = Moderation.objects.filter(consultation__agency_id=officer.agency_id).select_related(
        "officer__user", "consultation", "idea", "comment"
    )
    if consultation is not None:
        qs = qs.filter(consultation=consultation)
    return qs.order_by("-at", "-id")
