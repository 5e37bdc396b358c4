"""Consultation pages: the citizen's flow (idea, vote, comment, follow) without JavaScript, the
office's flow (create, document, publish, moderate, close, respond), who may use the office pages,
hostile text shown escaped, and the pages in Chromium checked with axe-core in both languages."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from civicore.agencies.tests.factories import AgencyFactory, back_office_client, make_officer
from civicore.applications.tests.factories import pdf_upload
from civicore.consultations import selectors, services
from civicore.consultations.models import Consultation, Moderation, Vote
from civicore.consultations.tests.factories import (
    citizen_user,
    make_consultation,
    make_idea,
    make_manager,
    make_moderator,
)
from civicore.core.tests.accessibility import axe_in_chromium

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def citizen_client(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_the_list_shows_open_consultations_first_and_never_drafts() -> None:
    manager = make_manager()
    make_consultation(manager, title="Answered one", state="responded")
    make_consultation(manager, title="Open one")
    make_consultation(manager, title="Secret draft", state="draft")
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get("/consultations/").content.decode()
    assert page.index("Open one") < page.index("Answered one")
    assert "Secret draft" not in page and "Open consultations" in page


def test_a_draft_has_no_public_page() -> None:
    draft = make_consultation(state="draft")
    assert Client().get(f"/consultations/{draft.slug}/").status_code == 404
    assert Client().get(f"/consultations/{draft.pk}/").status_code == 404


def test_a_citizen_posts_votes_comments_and_withdraws() -> None:
    consultation = make_consultation()
    user = citizen_user()
    client = citizen_client(user)
    page = client.get(f"/consultations/{consultation.slug}/").content.decode()
    assert "Your display name" in page and "Share an idea" in page

    answer = client.post(
        f"/consultations/{consultation.slug}/ideas/",
        {"title": "More shade", "body": "Plant trees.", "display_name": "Ly"},
        follow=True,
    )
    assert "Your idea is published" in answer.content.decode()
    idea = consultation.ideas.get()
    page = client.get(f"/consultations/{consultation.pk}/").content.decode()
    assert "By Ly on" in page and "You post as Ly." in page
    public = Client().get(f"/consultations/{consultation.slug}/").content.decode()
    assert "Ly" in public and user.full_name not in public and user.email not in public

    client.post(f"/consultations/ideas/{idea.pk}/vote/")
    page = client.get(f"/consultations/{consultation.slug}/").content.decode()
    assert "1 vote" in page and "Withdraw my vote" in page
    again = client.post(f"/consultations/ideas/{idea.pk}/vote/", follow=True).content.decode()
    assert "You have already voted for this idea." in again
    assert Vote.objects.filter(idea=idea).count() == 1
    client.post(f"/consultations/ideas/{idea.pk}/vote/", {"withdraw": "1"})
    assert not Vote.objects.filter(idea=idea).exists()

    client.post(f"/consultations/ideas/{idea.pk}/comments/", {"body": "Agreed."})
    assert "Agreed." in client.get(f"/consultations/{consultation.slug}/").content.decode()
    client.post(f"/consultations/ideas/{idea.pk}/follow/", {"follow": "0"})
    assert not idea.follows.filter(user=user).exists()


def test_form_errors_keep_what_was_typed() -> None:
    consultation = make_consultation()
    client = citizen_client(citizen_user())
    answer = client.post(
        f"/consultations/{consultation.slug}/ideas/",
        {"title": "x" * 141, "body": "My long thoughts", "display_name": "Ly"},
    )
    page = answer.content.decode()
    assert answer.status_code == 422 and "At most 140 characters" in page and "My long thoughts" in page
    assert not consultation.ideas.exists()


def test_anonymous_visitors_are_asked_to_sign_in_and_officers_cannot_post() -> None:
    consultation = make_consultation()
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/consultations/{consultation.slug}/").content.decode()
    assert "Sign in to share an idea" in page
    answer = Client().post(f"/consultations/{consultation.slug}/ideas/", {"title": "t", "body": "b"})
    assert answer.status_code == 302 and "/login/" in answer["Location"]
    officer = make_officer()
    refused = back_office_client(officer.user).post(
        f"/consultations/{consultation.slug}/ideas/", {"title": "t", "body": "b", "display_name": "Off"}
    )
    assert refused.status_code == 403 and not consultation.ideas.exists()


def test_a_closed_consultation_shows_a_message_instead_of_forms() -> None:
    manager = make_manager()
    consultation = make_consultation(manager)
    idea = make_idea(consultation)
    services.consultation_close(officer=manager, consultation=consultation)
    client = citizen_client(citizen_user())
    page = client.get(f"/consultations/{consultation.slug}/").content.decode()
    assert "This consultation is closed" in page and "Share an idea" not in page
    answer = client.post(f"/consultations/ideas/{idea.pk}/vote/", follow=True).content.decode()
    assert "This consultation is not open" in answer and not idea.votes.exists()


def test_hostile_text_is_shown_escaped() -> None:
    consultation = make_consultation()
    idea = make_idea(consultation, title=HOSTILE, body=HOSTILE, display_name="<b>Bold</b>")
    services.comment_post(user=citizen_user(), idea=idea, body=HOSTILE, display_name="<i>x</i>")
    page = Client().get(f"/consultations/{consultation.slug}/").content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>Bold</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page and "&lt;b&gt;Bold&lt;/b&gt;" in page


def test_a_hidden_comment_stays_in_place_with_the_reason() -> None:
    manager = make_manager()
    consultation = make_consultation(manager)
    idea = make_idea(consultation)
    comment = services.comment_post(
        user=citizen_user(), idea=idea, body="Buy cheap pills", display_name="Zed"
    )
    services.moderate(officer=manager, comment=comment, reason=Moderation.Reason.SPAM)
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/consultations/{consultation.slug}/").content.decode()
    assert "Hidden by the moderator: Spam" in page and "Buy cheap pills" not in page
    assert f'id="comment-{comment.pk}"' in page


def test_the_office_flow() -> None:
    manager = make_manager()
    client = back_office_client(manager.user)
    assert "New consultation" in client.get("/office/consultations/").content.decode()
    bad = client.post("/office/consultations/new/", {"title": "", "question": "Q?", "opens_on": "2026-01-01"})
    assert bad.status_code == 422 and "This field is required." in bad.content.decode()
    answer = client.post(
        "/office/consultations/new/",
        {
            "title": "Bus routes",
            "question": "Which new bus routes do you need?",
            "description": "",
            "opens_on": "2026-01-01",
            "closes_on": "2099-12-31",
        },
    )
    consultation = Consultation.objects.get()
    assert answer.status_code == 302 and consultation.status == "draft"
    base = f"/office/consultations/{consultation.pk}"
    upload = client.post(f"{base}/document/", {"title": "Map", "file": pdf_upload("map.pdf")}, follow=True)
    assert "The document was added." in upload.content.decode()
    client.post(f"{base}/publish/")
    idea = make_idea(consultation)
    comment = services.comment_post(
        user=citizen_user(), idea=idea, body="Call me 0901234567", display_name="Kim"
    )
    client.post(f"{base}/hide/", {"comment": comment.pk, "reason": "personal_data", "note": "phone number"})
    client.post(f"{base}/idea-status/", {"idea": idea.pk, "status": "accepted", "note": "Yes"})
    page = client.get(f"{base}/").content.decode()
    assert "Moderation log" in page and "phone number" in page and "Personal data" in page
    assert "Personal data" in client.get("/office/consultations/").content.decode()
    client.post(f"{base}/close/")
    client.post(f"{base}/respond/", {"response_text": "Thanks", "response_actions": "Route 42"})
    consultation.refresh_from_db()
    idea.refresh_from_db()
    assert consultation.status == "responded" and idea.status == "accepted"
    public = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/consultations/{consultation.slug}/").content.decode()
    assert "Route 42" in public and "official response" in public
    document = consultation.documents.get()
    pdf = Client().get(f"/consultations/{consultation.slug}/documents/{document.pk}/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"


def test_a_moderator_may_hide_but_not_manage() -> None:
    manager = make_manager()
    consultation = make_consultation(manager)
    client = back_office_client(make_moderator(manager.agency).user)
    page = client.get(f"/office/consultations/{consultation.pk}/").content.decode()
    assert "Close the consultation" not in page
    assert client.post(f"/office/consultations/{consultation.pk}/close/").status_code == 403
    assert client.get("/office/consultations/new/").status_code == 403
    consultation.refresh_from_db()
    assert consultation.status == "open"


def test_an_officer_of_another_agency_is_refused() -> None:
    consultation = make_consultation(state="draft")
    stranger = back_office_client(make_manager(AgencyFactory()).user)
    assert stranger.get(f"/office/consultations/{consultation.pk}/").status_code == 403
    assert stranger.post(f"/office/consultations/{consultation.pk}/publish/").status_code == 403
    assert "Bus" not in stranger.get("/office/consultations/").content.decode()
    consultation.refresh_from_db()
    assert consultation.status == "draft"
    caseworker = back_office_client(make_officer(consultation.agency).user)
    assert caseworker.get("/office/consultations/").status_code == 403


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_consultation_pages_pass_axe(live_server: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(selectors, "IDEAS_PER_PAGE", 1)  # so the order links and page links show
    manager = make_manager()
    consultation = make_consultation(manager)
    idea = make_idea(consultation)
    make_idea(consultation, title="Second idea", display_name="Mai")
    comment = services.comment_post(user=citizen_user(), idea=idea, body="Spam spam", display_name="Sam")
    services.comment_post(user=citizen_user(), idea=idea, body="A good idea", display_name="Tam")
    services.moderate(officer=manager, comment=comment, reason=Moderation.Reason.SPAM, note="advert")
    make_consultation(manager, title="Answered", state="responded")
    base = live_server.url
    axe_in_chromium(base_url=base, pages={"list": f"{base}/consultations/"})
    found = axe_in_chromium(
        base_url=base,
        session=back_office_client(manager.user).cookies[settings.SESSION_COOKIE_NAME].value,
        pages={
            "consultation": f"{base}/consultations/{consultation.slug}/",
            "office": f"{base}/office/consultations/",
            "office-consultation": f"{base}/office/consultations/{consultation.pk}/",
            "office-edit": f"{base}/office/consultations/{consultation.pk}/edit/",
        },
    )
    assert len(found) == 8
