"""Consultation services: states, one vote each (also under a race), a closed consultation refuses
contributions, moderation keeps its reason and hides, followers are told."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.applications.tests.factories import pdf_upload
from civicore.consultations import services
from civicore.consultations.models import Consultation, Idea, Moderation, Vote
from civicore.consultations.tests.factories import (
    citizen_user,
    make_consultation,
    make_idea,
    make_manager,
    make_moderator,
)
from civicore.core.errors import ValidationFailed
from civicore.notify.models import Notification

pytestmark = pytest.mark.django_db


def test_a_consultation_goes_from_draft_to_open_to_closed_to_responded() -> None:
    manager = make_manager()
    consultation = make_consultation(manager, state="draft")
    assert consultation.status == Consultation.Status.DRAFT and consultation.slug
    with pytest.raises(services.WrongState):
        services.consultation_close(officer=manager, consultation=consultation)
    consultation = services.consultation_publish(officer=manager, consultation=consultation)
    with pytest.raises(services.WrongState):
        services.consultation_respond(officer=manager, consultation=consultation, text="x", actions="y")
    consultation = services.consultation_close(officer=manager, consultation=consultation)
    consultation = services.consultation_respond(
        officer=manager, consultation=consultation, text="Cảm ơn", actions="Trồng cây"
    )
    consultation.refresh_from_db()
    assert consultation.status == Consultation.Status.RESPONDED
    assert consultation.response_actions == "Trồng cây" and consultation.responded_at is not None


def test_creating_checks_text_and_dates_and_permission() -> None:
    manager = make_manager()
    with pytest.raises(ValidationFailed) as empty:
        services.consultation_create(
            officer=manager, title=" ", question="Q?", opens_on="2026-01-01", closes_on="2026-02-01"
        )
    assert empty.value.code == "text_required"
    with pytest.raises(ValidationFailed) as backwards:
        services.consultation_create(
            officer=manager, title="T", question="Q?", opens_on="2026-02-01", closes_on="2026-01-01"
        )
    assert backwards.value.code == "invalid_dates"
    with pytest.raises(ValidationFailed) as bad_date:
        services.consultation_create(
            officer=manager, title="T", question="Q?", opens_on="tomorrow", closes_on="2026-01-01"
        )
    assert bad_date.value.code == "invalid_date"
    moderator = make_moderator(manager.agency)
    with pytest.raises(services.PermissionDenied):
        services.consultation_create(
            officer=moderator, title="T", question="Q?", opens_on="2026-01-01", closes_on="2026-02-01"
        )
    assert not Consultation.objects.exists()


def test_an_officer_of_another_agency_cannot_change_the_consultation() -> None:
    consultation = make_consultation(state="draft")
    stranger = make_manager(AgencyFactory())
    with pytest.raises(services.OtherAgency):
        services.consultation_publish(officer=stranger, consultation=consultation)
    consultation.refresh_from_db()
    assert consultation.status == Consultation.Status.DRAFT


def test_documents_must_be_clean_pdfs() -> None:
    manager = make_manager()
    consultation = make_consultation(manager)
    document = services.consultation_document_add(
        officer=manager, consultation=consultation, title="Bản đồ", upload=pdf_upload()
    )
    assert document.size > 0 and document.file.read().startswith(b"%PDF")
    from django.core.files.uploadedfile import SimpleUploadedFile

    png = SimpleUploadedFile("x.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, content_type="application/pdf")
    with pytest.raises(ValidationFailed) as wrong_type:
        services.consultation_document_add(officer=manager, consultation=consultation, title="", upload=png)
    assert wrong_type.value.code == "file_type_not_allowed"
    harmful = SimpleUploadedFile("x.pdf", b"MZ\x90\x00" + b"\0" * 64, content_type="application/pdf")
    with pytest.raises(ValidationFailed) as scanned:
        services.consultation_document_add(
            officer=manager, consultation=consultation, title="", upload=harmful
        )
    assert scanned.value.code == "file_harmful"
    assert consultation.documents.count() == 1


def test_a_citizen_posts_an_idea_follows_it_and_keeps_the_display_name() -> None:
    consultation = make_consultation()
    user = citizen_user()
    with pytest.raises(ValidationFailed) as nameless:
        services.idea_post(user=user, consultation=consultation, title="T", body="B")
    assert nameless.value.code == "display_name_required"
    with pytest.raises(ValidationFailed) as email:
        services.idea_post(user=user, consultation=consultation, title="T", body="B", display_name="a@b.vn")
    assert email.value.code == "invalid_display_name"
    idea = make_idea(consultation, user, display_name="Hoa phượng")
    assert idea.follows.filter(user=user).exists()
    second = services.idea_post(user=user, consultation=consultation, title="Hai", body="B")
    assert second.participant.display_name == "Hoa phượng"


def test_text_limits() -> None:
    consultation = make_consultation()
    user = citizen_user()
    with pytest.raises(ValidationFailed) as long_title:
        make_idea(consultation, user, title="x" * 141)
    assert long_title.value.code == "text_too_long" and "title" in long_title.value.details
    with pytest.raises(ValidationFailed) as long_body:
        make_idea(consultation, user, body="x" * 4001)
    assert long_body.value.code == "text_too_long"
    idea = make_idea(consultation, user, title="x" * 140, body="y" * 4000)
    with pytest.raises(ValidationFailed) as long_comment:
        services.comment_post(user=user, idea=idea, body="z" * 2001)
    assert long_comment.value.code == "text_too_long"
    assert services.comment_post(user=user, idea=idea, body="z" * 2000).pk


def test_only_citizens_take_part() -> None:
    consultation = make_consultation()
    officer = make_officer()
    with pytest.raises(services.NotACitizen):
        make_idea(consultation, officer.user)


def test_one_vote_each_and_it_can_be_withdrawn() -> None:
    idea = make_idea(make_consultation())
    voter = citizen_user()
    services.vote_cast(user=voter, idea=idea)
    with pytest.raises(services.AlreadyVoted) as again:
        services.vote_cast(user=voter, idea=idea)
    assert again.value.code == "already_voted" and again.value.status == 409
    assert Vote.objects.filter(idea=idea).count() == 1
    assert services.vote_withdraw(user=voter, idea=idea) is True
    assert services.vote_withdraw(user=voter, idea=idea) is False
    services.vote_cast(user=voter, idea=idea)
    assert Vote.objects.filter(idea=idea).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_votes_by_one_person_count_once() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("two connections at once need PostgreSQL (SQLite in memory has one)")
    idea = make_idea(make_consultation())
    voter = citizen_user()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def vote() -> None:
        try:
            barrier.wait(timeout=10)
            services.vote_cast(user=voter, idea=idea)
            outcomes.append("voted")
        except services.AlreadyVoted:
            outcomes.append("already_voted")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=vote) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["already_voted", "voted"]
    assert Vote.objects.filter(idea=idea).count() == 1


def test_the_unique_constraint_answers_a_vote_that_slipped_past_any_check() -> None:
    """What the loser of a race meets: the row is already there when its insert runs."""
    idea = make_idea(make_consultation())
    voter = citizen_user()
    Vote.objects.create(idea=idea, user=voter)
    with pytest.raises(services.AlreadyVoted):
        services.vote_cast(user=voter, idea=idea)
    assert Vote.objects.filter(idea=idea).count() == 1


def test_a_closed_consultation_refuses_ideas_votes_and_comments() -> None:
    manager = make_manager()
    consultation = make_consultation(manager)
    idea = make_idea(consultation)
    voter = citizen_user()
    services.vote_cast(user=voter, idea=idea)
    services.consultation_close(officer=manager, consultation=consultation)
    for attempt in (
        lambda: make_idea(consultation, voter),
        lambda: services.vote_cast(user=citizen_user(), idea=idea),
        lambda: services.vote_withdraw(user=voter, idea=idea),
        lambda: services.comment_post(user=voter, idea=idea, body="Muộn rồi", display_name="Mai"),
    ):
        with pytest.raises(services.ConsultationClosed) as closed:
            attempt()
        assert closed.value.code == "consultation_closed" and closed.value.status == 409
    assert idea.votes.count() == 1 and consultation.ideas.count() == 1 and not idea.comments.exists()


def test_past_its_closing_date_a_consultation_takes_nothing_even_if_still_open() -> None:
    today = timezone.localdate()
    consultation = make_consultation(
        opens_on=today - dt.timedelta(days=10), closes_on=today - dt.timedelta(days=1)
    )
    assert consultation.status == Consultation.Status.OPEN
    with pytest.raises(services.ConsultationClosed):
        make_idea(consultation)


def test_moderation_hides_keeps_the_reason_and_tells_the_author() -> None:
    manager = make_manager()
    consultation = make_consultation(manager)
    author = citizen_user()
    idea = make_idea(consultation, author)
    commenter = citizen_user()
    comment = services.comment_post(
        user=commenter, idea=idea, body="Số CCCD của tôi là ...", display_name="Lan"
    )
    moderator = make_moderator(manager.agency)
    with pytest.raises(ValidationFailed):
        services.moderate(officer=moderator, comment=comment, reason="because")
    moderation = services.moderate(
        officer=moderator, comment=comment, reason=Moderation.Reason.PERSONAL_DATA, note="Có số CCCD"
    )
    comment.refresh_from_db()
    assert comment.hidden_by == moderation and comment.body.startswith("Số CCCD")  # kept, not deleted
    assert moderation.officer == moderator and moderation.at and moderation.note == "Có số CCCD"
    told = Notification.objects.get(user=commenter)
    assert "Personal data" in told.subject or "Dữ liệu cá nhân" in told.subject
    with pytest.raises(services.Conflict):
        services.moderate(officer=moderator, comment=comment, reason=Moderation.Reason.SPAM)
    services.moderate(officer=moderator, idea=idea, reason=Moderation.Reason.OFF_TOPIC)
    with pytest.raises(services.ItemHidden):
        services.vote_cast(user=citizen_user(), idea=idea)
    stranger = make_officer(AgencyFactory(), roles=("moderator",))
    other = make_idea(consultation)
    with pytest.raises(services.OtherAgency):
        services.moderate(officer=stranger, idea=other, reason=Moderation.Reason.SPAM)
    assert Moderation.objects.count() == 2


def test_followers_are_told_when_the_status_changes_and_when_the_agency_responds() -> None:
    manager = make_manager()
    consultation = make_consultation(manager)
    author = citizen_user()
    idea = make_idea(consultation, author)
    follower = citizen_user()
    services.idea_follow(user=follower, idea=idea, follow=True)
    bystander = citizen_user()
    services.idea_set_status(officer=manager, idea=idea, status=Idea.Status.ACCEPTED, note="Sẽ trồng")
    assert Notification.objects.filter(user__in=[author, follower]).count() == 2
    assert not Notification.objects.filter(user=bystander).exists()
    services.idea_follow(user=follower, idea=idea, follow=False)
    services.consultation_close(officer=manager, consultation=consultation)
    services.consultation_respond(officer=manager, consultation=consultation, text="Cảm ơn", actions="Trồng")
    assert Notification.objects.filter(user=author).count() == 2
    assert Notification.objects.filter(user=follower).count() == 1
    assert (
        Notification.objects.filter(user=author).latest("id").link == f"/consultations/{consultation.slug}/"
    )
