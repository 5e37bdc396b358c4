"""Writes for consultations: officers open, publish, close and answer a consultation, set ideas'
status and moderate; citizens post ideas, vote (once each), comment and follow ideas.

Every citizen write checks in its own transaction, on the locked consultation, that the
consultation still takes contributions, so nothing slips in after it is closed. One vote per person
and idea is a unique constraint: two simultaneous votes count once and the second is told
`already_voted`. Followers are told in their inbox (civicore.notify) in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.text import slugify
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.applications.services import _check_upload as check_upload
from civicore.audit import services as audit
from civicore.consultations import models as m
from civicore.consultations.models import (
    Comment,
    Consultation,
    ConsultationDocument,
    Follow,
    Idea,
    Moderation,
    Participant,
    Vote,
)
from civicore.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from civicore.identity.selectors import person_for_user
from civicore.notify.services import notification_send

PDF_ONLY = {"types": ["application/pdf"]}
# What a display name must not look like: an e-mail address or a long run of digits (an ID number).
_LOOKS_PRIVATE = re.compile(r"@|\d{6,}")


class ConsultationClosed(Conflict):
    """This consultation is not open for contributions."""

    code = "consultation_closed"


class AlreadyVoted(Conflict):
    """You have already voted for this idea."""

    code = "already_voted"


class WrongState(Conflict):
    """The consultation is not in a state that allows this."""

    code = "invalid_state"


class ItemHidden(Conflict):
    """This idea was hidden by the moderator."""

    code = "idea_hidden"


class InvalidText(ValidationFailed):
    """Some text is missing or too long."""

    code = "invalid_text"


class RateLimited(ApplicationError):
    """Too many ideas and comments in a short time."""

    code = "rate_limited"
    status = 429
    retry_after = 0


class NotACitizen(PermissionDenied):
    """Only signed-in citizens can take part."""

    code = "not_a_citizen"


class OtherAgency(PermissionDenied):
    """This consultation belongs to another agency."""

    code = "other_agency"


# --- checks ----------------------------------------------------------------------------------------


def _text(value: Any, *, field: str, maximum: int, required: bool = True) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise InvalidText(
            _("Please fill in this field."),
            code="text_required",
            details={field: _("This field is required.")},
        )
    if len(text) > maximum:
        message = _("At most %(max)s characters, please (now %(n)s).") % {"max": maximum, "n": len(text)}
        raise InvalidText(message, code="text_too_long", details={field: message})
    return text


def _date(value: Any, *, field: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value or "").strip())
    except ValueError:
        message = _("Enter a date as YYYY-MM-DD.")
        raise ValidationFailed(message, code="invalid_date", details={field: message}) from None


def _officer(officer: Officer, permission: str, consultation: Consultation | None = None) -> Officer:
    permissions.require(officer, permission)
    if consultation is not None and consultation.agency_id != officer.agency_id:
        raise OtherAgency(_("This consultation belongs to another agency."))
    return officer


def _citizen(user: Any) -> Any:
    if user is None or not getattr(user, "is_authenticated", False) or person_for_user(user) is None:
        raise NotACitizen(_("Sign in as a citizen to take part in consultations."))
    return user


def _check_rate(user: Any) -> None:
    """At most CONSULTATION_POSTS_PER_HOUR ideas and comments together from one citizen in an
    hour, so one account cannot flood a consultation. Counted in the database, so every web
    process sees the same count."""
    limit = int(settings.CONSULTATION_POSTS_PER_HOUR)
    now = timezone.now()
    since = now - dt.timedelta(hours=1)
    ideas = Idea.objects.filter(author=user, created_at__gte=since)
    comments = Comment.objects.filter(author=user, created_at__gte=since)
    if ideas.count() + comments.count() < limit:
        return
    times = [*ideas.values_list("created_at", flat=True), *comments.values_list("created_at", flat=True)]
    # The wait ends when enough of the hour's posts have left the window to make room for one.
    frees_at = sorted(times)[len(times) - limit] + dt.timedelta(hours=1)
    error = RateLimited(
        _("You have posted %(limit)d ideas and comments in the last hour. Please wait before posting again.")
        % {"limit": limit},
        details={"limit": limit, "per": "hour"},
    )
    error.retry_after = max(1, int((frees_at - now).total_seconds()) + 1)
    raise error


def _locked(consultation: Consultation) -> Consultation:
    return Consultation.objects.select_for_update().get(pk=consultation.pk)


def _open_for_contributions(consultation: Consultation) -> Consultation:
    locked = _locked(consultation)
    if not locked.accepts_contributions:
        raise ConsultationClosed(_("This consultation is not open: ideas, votes and comments are closed."))
    return locked


def _visible_idea(idea: Idea) -> Idea:
    """The idea as it is now (a moderator may have hidden it since the caller read it)."""
    idea = Idea.objects.get(pk=idea.pk)
    if idea.hidden_by_id is not None:
        raise ItemHidden(_("This idea was hidden by the moderator."))
    return idea


def _display_name(value: Any) -> str:
    name = " ".join(str(value or "").split())
    if not name:
        message = _("Choose the name other people will see next to what you post.")
        raise ValidationFailed(message, code="display_name_required", details={"display_name": message})
    if len(name) < 2 or len(name) > m.DISPLAY_NAME_MAX or _LOOKS_PRIVATE.search(name):
        message = _("A display name has 2 to %(max)s characters and no e-mail address or ID number.") % {
            "max": m.DISPLAY_NAME_MAX
        }
        raise ValidationFailed(message, code="invalid_display_name", details={"display_name": message})
    return name


def participant_for(*, user: Any, display_name: str = "") -> Participant:
    """The citizen's participant, created with the display name they choose on first posting."""
    existing = Participant.objects.filter(user=user).first()
    if existing is not None:
        return existing
    return Participant.objects.create(user=user, display_name=_display_name(display_name))


# --- notifications ---------------------------------------------------------------------------------


def _link(consultation: Consultation, idea: Idea | None = None) -> str:
    anchor = f"#idea-{idea.pk}" if idea is not None else ""
    return f"/consultations/{consultation.slug}/{anchor}"


def _tell(users: Any, consultation: Consultation, idea: Idea | None, subject: Any, body: Any) -> None:
    """Each user once, in their own language; `subject` and `body` are called under it."""
    seen: set[int] = set()
    for user in users:
        if user.pk in seen:
            continue
        seen.add(user.pk)
        with translation.override(user.preferred_language or "vi"):
            notification_send(user=user, subject=subject(), body=body(), link=_link(consultation, idea))


def _followers(ideas: Any) -> list[Any]:
    return [
        follow.user for follow in Follow.objects.filter(idea__in=ideas).select_related("user").order_by("id")
    ]


# --- officers --------------------------------------------------------------------------------------


def _unique_slug(title: str) -> str:
    base = slugify(title)[:60].strip("-") or "consultation"
    slug, n = base, 1
    while Consultation.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _checked_fields(
    title: Any, question: Any, description: Any, opens_on: Any, closes_on: Any
) -> dict[str, Any]:
    """A consultation's own fields, checked, for creating or changing it."""
    values: dict[str, Any] = {
        "title": _text(title, field="title", maximum=m.TITLE_MAX),
        "question": _text(question, field="question", maximum=m.QUESTION_MAX),
        "description": _text(description, field="description", maximum=m.DESCRIPTION_MAX, required=False),
        "opens_on": _date(opens_on, field="opens_on"),
        "closes_on": _date(closes_on, field="closes_on"),
    }
    if values["closes_on"] < values["opens_on"]:
        message = _("The closing date must not be before the opening date.")
        raise ValidationFailed(message, code="invalid_dates", details={"closes_on": message})
    return values


@transaction.atomic
def consultation_create(
    *,
    officer: Officer,
    title: str,
    question: str,
    description: str = "",
    opens_on: Any,
    closes_on: Any,
) -> Consultation:
    """A draft consultation of the officer's agency; nobody else sees it until it is published."""
    _officer(officer, permissions.CONSULTATION_MANAGE)
    values = _checked_fields(title, question, description, opens_on, closes_on)
    consultation = Consultation.objects.create(
        agency_id=officer.agency_id, slug=_unique_slug(values["title"]), created_by=officer, **values
    )
    audit.record(
        actor=officer.user, action="consultation.create", subject=consultation, agency=officer.agency
    )
    return consultation


# What an officer may still change once the consultation is public: people have read the title,
# the question and the opening date, and ideas answer them.
EDITABLE_WHEN_OPEN = ("description", "closes_on")


@transaction.atomic
def consultation_update(
    *,
    officer: Officer,
    consultation: Consultation,
    title: str,
    question: str,
    description: str = "",
    opens_on: Any,
    closes_on: Any,
) -> Consultation:
    """Change a draft freely; an open consultation only its description and closing date (not to a
    day already past: close it instead); nothing after it closes. Its address stays the same. The
    audit entry names the fields that changed."""
    _officer(officer, permissions.CONSULTATION_MANAGE, consultation)
    values = _checked_fields(title, question, description, opens_on, closes_on)
    consultation = _locked(consultation)
    changed = [name for name, value in values.items() if getattr(consultation, name) != value]
    if consultation.status == Consultation.Status.OPEN:
        fixed = [name for name in changed if name not in EDITABLE_WHEN_OPEN]
        if fixed:
            message = _("This cannot change once the consultation is published.")
            raise ValidationFailed(
                message, code="fixed_after_publication", details={name: message for name in fixed}
            )
        if "closes_on" in changed and values["closes_on"] < timezone.localdate():
            message = _("Choose today or a later day, or close the consultation now.")
            raise ValidationFailed(message, code="closing_date_past", details={"closes_on": message})
    elif consultation.status != Consultation.Status.DRAFT:
        raise WrongState(_("A closed consultation cannot be changed."))
    if not changed:
        return consultation
    for name in changed:
        setattr(consultation, name, values[name])
    consultation.save(update_fields=changed)
    audit.record(
        actor=officer.user,
        action="consultation.update",
        subject=consultation,
        agency=officer.agency,
        details={"fields": changed},
    )
    return consultation


@transaction.atomic
def consultation_document_remove(*, officer: Officer, consultation: Consultation, document_id: int) -> None:
    """Take a document off a draft or open consultation (a wrong file, a newer version); after it
    closes, the documents are part of the record. The audit entry keeps its title and checksum."""
    _officer(officer, permissions.CONSULTATION_MANAGE, consultation)
    consultation = _locked(consultation)
    if consultation.status not in (Consultation.Status.DRAFT, Consultation.Status.OPEN):
        raise WrongState(_("Documents cannot be removed after the consultation closes."))
    document = consultation.documents.filter(pk=document_id).first()
    if document is None:
        raise NotFound(_("No document has this number."), code="document_not_found")
    audit.record(
        actor=officer.user,
        action="consultation.document_remove",
        subject=consultation,
        agency=officer.agency,
        details={"title": document.title, "sha256": document.sha256},
    )
    stored = document.file
    document.delete()
    transaction.on_commit(lambda: stored.delete(save=False))


@transaction.atomic
def consultation_document_add(
    *, officer: Officer, consultation: Consultation, title: str, upload: UploadedFile | None
) -> ConsultationDocument:
    """A PDF for the consultation, checked by size, content and the malware scanner."""
    _officer(officer, permissions.CONSULTATION_MANAGE, consultation)
    consultation = _locked(consultation)
    if consultation.status == Consultation.Status.RESPONDED:
        raise WrongState(_("Documents cannot be added after the official response."))
    if upload is None:
        message = _("Choose a PDF file.")
        raise ValidationFailed(message, code="file_required", details={"file": message})
    data, _mime = check_upload(PDF_ONLY, upload)
    name = (upload.name or "document.pdf").replace("/", "_").replace("\\", "_")[-200:]
    title = _text(title, field="document_title", maximum=200, required=False) or name
    document = ConsultationDocument(
        consultation=consultation,
        title=title,
        original_name=name,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    document.file.save(f"{consultation.slug}.pdf", ContentFile(data), save=False)
    document.save()
    return document


def _move(
    officer: Officer, consultation: Consultation, *, source: str, target: str, action: str
) -> Consultation:
    _officer(officer, permissions.CONSULTATION_MANAGE, consultation)
    consultation = _locked(consultation)
    if consultation.status != source:
        raise WrongState(
            _("This consultation is %(status)s: it cannot be changed this way.")
            % {"status": consultation.get_status_display()}
        )
    consultation.status = target
    audit.record(
        actor=officer.user,
        action=f"consultation.{action}",
        subject=consultation,
        agency=officer.agency,
        details={"status": target},
    )
    return consultation


@transaction.atomic
def consultation_publish(*, officer: Officer, consultation: Consultation) -> Consultation:
    """Draft -> open: the consultation is public and takes ideas between its dates."""
    consultation = _move(
        officer,
        consultation,
        source=Consultation.Status.DRAFT,
        target=Consultation.Status.OPEN,
        action="publish",
    )
    consultation.published_at = timezone.now()
    consultation.save(update_fields=["status", "published_at"])
    return consultation


@transaction.atomic
def consultation_close(*, officer: Officer, consultation: Consultation) -> Consultation:
    """Open -> closed: no more ideas, votes or comments."""
    consultation = _move(
        officer,
        consultation,
        source=Consultation.Status.OPEN,
        target=Consultation.Status.CLOSED,
        action="close",
    )
    consultation.closed_at = timezone.now()
    consultation.save(update_fields=["status", "closed_at"])
    return consultation


def close_past_consultations(*, today: dt.date | None = None, batch: int = 500) -> int:
    """Close every open consultation whose closing date has passed, each in its own transaction
    with an audit entry by the platform, so the lists show it as closed without an officer
    having to. Returns how many were closed. Safe to run in several workers at once: each
    consultation is locked and checked again before it moves."""
    today = today or timezone.localdate()
    due = Consultation.objects.filter(status=Consultation.Status.OPEN, closes_on__lt=today)
    closed = 0
    for pk in list(due.order_by("closes_on", "id").values_list("pk", flat=True)[:batch]):
        with transaction.atomic():
            consultation = due.select_for_update(of=("self",)).select_related("agency").filter(pk=pk).first()
            if consultation is None:
                continue
            consultation.status = Consultation.Status.CLOSED
            consultation.closed_at = timezone.now()
            consultation.save(update_fields=["status", "closed_at"])
            audit.record(
                actor=None,
                action="consultation.close",
                subject=consultation,
                agency=consultation.agency,
                details={"status": Consultation.Status.CLOSED, "on": "closing date"},
            )
        closed += 1
    return closed


@transaction.atomic
def consultation_respond(
    *, officer: Officer, consultation: Consultation, text: str, actions: str
) -> Consultation:
    """Closed -> responded: publish the agency's official response and tell every follower."""
    text = _text(text, field="response_text", maximum=m.RESPONSE_MAX)
    actions = _text(actions, field="response_actions", maximum=m.RESPONSE_MAX)
    consultation = _move(
        officer,
        consultation,
        source=Consultation.Status.CLOSED,
        target=Consultation.Status.RESPONDED,
        action="respond",
    )
    consultation.response_text = text
    consultation.response_actions = actions
    consultation.responded_at = timezone.now()
    consultation.save(update_fields=["status", "response_text", "response_actions", "responded_at"])
    title = consultation.title
    _tell(
        _followers(consultation.ideas.all()),
        consultation,
        None,
        lambda: _("The agency responded to the consultation: %(title)s") % {"title": title},
        lambda: _("Read the official response and what the agency will do."),
    )
    return consultation


@transaction.atomic
def idea_set_status(*, officer: Officer, idea: Idea, status: str, note: str = "") -> Idea:
    """The agency's decision on an idea, with a note; followers are told."""
    consultation = idea.consultation
    _officer(officer, permissions.CONSULTATION_MANAGE, consultation)
    if status not in Idea.Status.values:
        message = _("Choose one of the statuses.")
        raise ValidationFailed(message, code="invalid_status", details={"status": message})
    note = _text(note, field="note", maximum=m.NOTE_MAX, required=False)
    idea = Idea.objects.select_for_update().get(pk=idea.pk)
    if idea.status == status and idea.status_note == note:
        return idea
    idea.status, idea.status_note, idea.status_changed_at = status, note, timezone.now()
    idea.save(update_fields=["status", "status_note", "status_changed_at"])
    audit.record(
        actor=officer.user,
        action="consultation.idea_status",
        subject=idea,
        agency=officer.agency,
        details={"status": status},
    )
    title = idea.title
    _tell(
        _followers([idea]),
        consultation,
        idea,
        lambda: _("An idea you follow is now: %(status)s") % {"status": Idea.Status(status).label},
        lambda: f"{title}\n\n{note}".strip(),
    )
    return idea


@transaction.atomic
def moderate(
    *,
    officer: Officer,
    reason: str,
    note: str = "",
    idea: Idea | None = None,
    comment: Comment | None = None,
) -> Moderation:
    """Hide an idea or a comment for a stated reason; it stays in place showing the reason, the
    decision is kept, and the author is told."""
    target: Idea | Comment | None = idea if idea is not None else comment
    if target is None or (idea is not None and comment is not None):
        raise ValidationFailed(_("Name one idea or one comment."), code="invalid_subject")
    consultation = idea.consultation if idea is not None else comment.idea.consultation  # type: ignore[union-attr]
    _officer(officer, permissions.CONSULTATION_MODERATE, consultation)
    if reason not in Moderation.Reason.values:
        message = _("Choose a reason.")
        raise ValidationFailed(message, code="invalid_reason", details={"reason": message})
    note = _text(note, field="note", maximum=m.NOTE_MAX, required=False)
    target = type(target).objects.select_for_update().get(pk=target.pk)
    if target.hidden_by_id is not None:
        raise Conflict(_("This is already hidden."), code="already_hidden")
    moderation = Moderation.objects.create(
        consultation=consultation,
        officer=officer,
        reason=reason,
        note=note,
        idea=target if isinstance(target, Idea) else None,
        comment=target if isinstance(target, Comment) else None,
    )
    target.hidden_by = moderation
    target.save(update_fields=["hidden_by"])
    audit.record(
        actor=officer.user,
        action="consultation.moderate",
        subject=moderation,
        agency=officer.agency,
        details={"reason": reason, "kind": "idea" if isinstance(target, Idea) else "comment"},
    )
    label_of = Moderation.Reason(reason)
    shown_idea = target if isinstance(target, Idea) else target.idea
    _tell(
        [target.author],
        consultation,
        shown_idea,
        lambda: _("The moderator hid what you posted: %(reason)s") % {"reason": label_of.label},
        lambda: f"{_('Reason')}: {label_of.label}\n{note}".strip(),
    )
    return moderation


# --- citizens --------------------------------------------------------------------------------------


@transaction.atomic
def idea_post(
    *, user: Any, consultation: Consultation, title: str, body: str, display_name: str = ""
) -> Idea:
    """A citizen's idea on an open consultation; its author follows it from then on."""
    _citizen(user)
    title = _text(title, field="title", maximum=m.IDEA_TITLE_MAX)
    body = _text(body, field="body", maximum=m.IDEA_BODY_MAX)
    _check_rate(user)
    consultation = _open_for_contributions(consultation)
    participant = participant_for(user=user, display_name=display_name)
    idea = Idea.objects.create(
        consultation=consultation, author=user, participant=participant, title=title, body=body
    )
    Follow.objects.create(idea=idea, user=user)
    return idea


@transaction.atomic
def vote_cast(*, user: Any, idea: Idea) -> Vote:
    """One vote per person and idea, held by the database's unique constraint."""
    _citizen(user)
    _open_for_contributions(idea.consultation)
    idea = _visible_idea(idea)
    try:
        with transaction.atomic():
            return Vote.objects.create(idea=idea, user=user)
    except IntegrityError:
        raise AlreadyVoted(_("You have already voted for this idea.")) from None


@transaction.atomic
def vote_withdraw(*, user: Any, idea: Idea) -> bool:
    """Take back one's vote while the consultation is open; True when there was one."""
    _citizen(user)
    _open_for_contributions(idea.consultation)
    deleted, _rows = Vote.objects.filter(idea=idea, user=user).delete()
    return deleted > 0


@transaction.atomic
def comment_post(*, user: Any, idea: Idea, body: str, display_name: str = "") -> Comment:
    _citizen(user)
    body = _text(body, field="body", maximum=m.COMMENT_MAX)
    _check_rate(user)
    _open_for_contributions(idea.consultation)
    idea = _visible_idea(idea)
    participant = participant_for(user=user, display_name=display_name)
    return Comment.objects.create(idea=idea, author=user, participant=participant, body=body)


@transaction.atomic
def idea_follow(*, user: Any, idea: Idea, follow: bool) -> bool:
    """Follow or stop following an idea (at any time); returns whether the user now follows it."""
    _citizen(user)
    if follow:
        Follow.objects.get_or_create(idea=idea, user=user)
    else:
        Follow.objects.filter(idea=idea, user=user).delete()
    return follow
