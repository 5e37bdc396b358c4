"""Consultations API: public reads, the citizen's writes, and each bad input's status and code."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from civicore.agencies.tests.factories import back_office_client, make_officer
from civicore.consultations import services
from civicore.consultations.models import Moderation, Vote
from civicore.consultations.tests.factories import citizen_user, make_consultation, make_idea, make_manager

pytestmark = pytest.mark.django_db

API = "/api/v1/consultations"


def citizen() -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(citizen_user())
    return client


def post(client: Client, url: str, body: Any) -> Any:
    return client.post(url, body, content_type="application/json")


def test_anyone_lists_published_consultations_open_first(django_assert_max_num_queries: Any) -> None:
    manager = make_manager()
    make_consultation(manager, title="Answered", state="responded")
    opened = make_consultation(manager, title="Open")
    make_consultation(manager, title="Draft", state="draft")
    make_idea(opened)
    with django_assert_max_num_queries(3):
        answer = Client().get(API)
    items = answer.json()["items"]
    assert [item["title"] for item in items] == ["Open", "Answered"]
    assert items[0]["ideas"] == 1 and answer.json()["next_cursor"] is None
    assert Client().get(f"{API}?cursor=nonsense").json()["code"] == "invalid_cursor"


def test_a_consultation_with_its_ideas_and_a_hidden_comment() -> None:
    manager = make_manager()
    consultation = make_consultation(manager)
    idea = make_idea(consultation, display_name="Ly")
    services.vote_cast(user=citizen_user(), idea=idea)
    comment = services.comment_post(user=citizen_user(), idea=idea, body="spam", display_name="Sam")
    services.moderate(officer=manager, comment=comment, reason=Moderation.Reason.SPAM)
    body = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"{API}/{consultation.pk}").json()
    assert body["accepts_contributions"] is True and body["response"] is None
    shown = body["ideas"][0]
    assert shown["votes"] == 1 and shown["author"] == "Ly"
    assert shown["comments"][0]["body"] is None and shown["comments"][0]["author"] is None
    assert shown["comments"][0]["hidden"] == {"reason": "spam", "reason_label": "Spam"}
    draft = make_consultation(manager, state="draft")
    missing = Client().get(f"{API}/{draft.pk}")
    assert missing.status_code == 404 and missing.json()["code"] == "consultation_not_found"


def test_a_citizen_posts_votes_withdraws_and_comments() -> None:
    consultation = make_consultation()
    client = citizen()
    created = post(
        client, f"{API}/{consultation.pk}/ideas", {"title": "Shade", "body": "Trees", "display_name": "Ly"}
    )
    assert created.status_code == 201 and created.json()["author"] == "Ly"
    idea_id = created.json()["id"]
    voted = client.post(f"{API}/ideas/{idea_id}/votes")
    assert voted.status_code == 201 and voted.json() == {"idea_id": idea_id, "voted": True, "votes": 1}
    again = client.post(f"{API}/ideas/{idea_id}/votes")
    assert again.status_code == 409 and again.json()["code"] == "already_voted"
    withdrawn = client.delete(f"{API}/ideas/{idea_id}/votes")
    assert withdrawn.status_code == 200 and withdrawn.json()["votes"] == 0
    assert client.delete(f"{API}/ideas/{idea_id}/votes").json()["voted"] is False
    commented = post(client, f"{API}/ideas/{idea_id}/comments", {"body": "Yes"})
    assert commented.status_code == 201 and commented.json()["author"] == "Ly"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"title": "", "body": "b", "display_name": "Ly"}, "invalid_request"),
        ({"title": "t" * 141, "body": "b", "display_name": "Ly"}, "invalid_request"),
        ({"title": "t", "body": "b" * 4001, "display_name": "Ly"}, "invalid_request"),
        ({"title": "   ", "body": "b", "display_name": "Ly"}, "text_required"),
        ({"title": "t", "body": "b"}, "display_name_required"),
        ({"title": "t", "body": "b", "display_name": "079012345678"}, "invalid_display_name"),
        ({"body": "b", "display_name": "Ly"}, "invalid_request"),
    ],
)
def test_bad_ideas_are_refused_with_422(body: dict[str, Any], code: str) -> None:
    consultation = make_consultation()
    answer = post(citizen(), f"{API}/{consultation.pk}/ideas", body)
    assert answer.status_code == 422 and answer.json()["code"] == code
    assert not consultation.ideas.exists()


@pytest.mark.parametrize(
    ("text", "code"), [("", "invalid_request"), ("c" * 2001, "invalid_request"), (" ", "text_required")]
)
def test_bad_comments_are_refused_with_422(text: str, code: str) -> None:
    idea = make_idea(make_consultation())
    answer = post(citizen(), f"{API}/ideas/{idea.pk}/comments", {"body": text, "display_name": "Ly"})
    assert answer.status_code == 422 and answer.json()["code"] == code
    assert not idea.comments.exists()


def test_a_closed_consultation_answers_409() -> None:
    manager = make_manager()
    consultation = make_consultation(manager)
    idea = make_idea(consultation)
    services.consultation_close(officer=manager, consultation=consultation)
    client = citizen()
    for answer in (
        post(client, f"{API}/{consultation.pk}/ideas", {"title": "t", "body": "b", "display_name": "Ly"}),
        client.post(f"{API}/ideas/{idea.pk}/votes"),
        client.delete(f"{API}/ideas/{idea.pk}/votes"),
        post(client, f"{API}/ideas/{idea.pk}/comments", {"body": "c", "display_name": "Ly"}),
    ):
        assert answer.status_code == 409 and answer.json()["code"] == "consultation_closed"
    assert not Vote.objects.exists() and consultation.ideas.count() == 1


def test_who_may_write() -> None:
    idea = make_idea(make_consultation())
    anonymous = Client().post(f"{API}/ideas/{idea.pk}/votes")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthenticated"
    officer = back_office_client(make_officer().user)
    refused = officer.post(f"{API}/ideas/{idea.pk}/votes")
    assert refused.status_code == 403 and refused.json()["code"] == "not_a_citizen"
    missing = citizen().post(f"{API}/ideas/999999/votes")
    assert missing.status_code == 404 and missing.json()["code"] == "idea_not_found"
    assert not idea.votes.exists()


def test_hidden_ideas_take_no_votes() -> None:
    manager = make_manager()
    idea = make_idea(make_consultation(manager))
    services.moderate(officer=manager, idea=idea, reason=Moderation.Reason.DUPLICATE)
    answer = citizen().post(f"{API}/ideas/{idea.pk}/votes")
    assert answer.status_code == 409 and answer.json()["code"] == "idea_hidden"
