"""Consultations that grow and change: ideas paged and ordered on the pages and in the API, a
limit on how fast one citizen posts, consultations closed on their closing date, and officers
changing a consultation or taking a document off it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from civicore.agencies.tests.factories import AgencyFactory, back_office_client
from civicore.applications.tests.factories import pdf_upload
from civicore.audit.models import AuditEntry
from civicore.consultations import api, selectors, services
from civicore.consultations.models import Comment, Consultation, Idea
from civicore.consultations.tests.factories import citizen_user, make_consultation, make_idea, make_manager
from civicore.core.errors import NotFound, ValidationFailed

pytestmark = pytest.mark.django_db

API = "/api/v1/consultations"


def _ideas_with_votes(consultation: Consultation, votes: list[int]) -> list[Idea]:
    """One idea per entry, a minute apart (oldest first), each with that many votes."""
    start = timezone.now() - dt.timedelta(hours=2)
    ideas = []
    for n, count in enumerate(votes):
        idea = make_idea(consultation, title=f"Idea {n}", display_name=f"Person {n}")
        Idea.objects.filter(pk=idea.pk).update(created_at=start + dt.timedelta(minutes=n))
        for _ in range(count):
            services.vote_cast(user=citizen_user(), idea=idea)
        ideas.append(idea)
    return ideas


def _titles(html: str, count: int) -> list[str]:
    found = [f"Idea {n}" for n in range(count) if f">Idea {n}<" in html]
    return sorted(found, key=html.index)


# --- pages -------------------------------------------------------------------------------------


def test_the_public_page_shows_ideas_a_page_at_a_time_in_the_chosen_order(monkeypatch: Any) -> None:
    monkeypatch.setattr(selectors, "IDEAS_PER_PAGE", 2)
    consultation = make_consultation()
    _ideas_with_votes(consultation, [0, 3, 1, 0, 2])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    url = f"/consultations/{consultation.slug}/"

    first = client.get(url).content.decode()
    assert _titles(first, 5) == ["Idea 0", "Idea 1"]
    assert "5 ideas, ordered:" in first and "Page 1 of 3" in first and 'rel="next"' in first
    assert _titles(client.get(url, {"page": 3}).content.decode(), 5) == ["Idea 4"]
    by_votes = client.get(url, {"sort": "votes"}).content.decode()
    assert _titles(by_votes, 5) == ["Idea 1", "Idea 4"]
    assert '<strong class="margin-left-1" aria-current="true">Most votes</strong>' in by_votes
    assert "sort=votes" in by_votes.split('rel="next"')[0].rsplit("href=", 1)[1]  # the next link keeps it
    assert _titles(client.get(url, {"sort": "newest"}).content.decode(), 5) == ["Idea 4", "Idea 3"]
    # Edited or stale links fall back instead of failing.
    assert _titles(client.get(url, {"page": "x", "sort": "<b>"}).content.decode(), 5) == ["Idea 0", "Idea 1"]
    assert _titles(client.get(url, {"page": 99}).content.decode(), 5) == ["Idea 4"]


def test_after_voting_the_citizen_is_back_on_the_page_that_shows_the_idea(monkeypatch: Any) -> None:
    monkeypatch.setattr(selectors, "IDEAS_PER_PAGE", 2)
    consultation = make_consultation()
    ideas = _ideas_with_votes(consultation, [0, 0, 0, 0, 0])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(citizen_user())
    answer = client.post(f"/consultations/ideas/{ideas[4].pk}/vote/")
    assert answer["Location"] == f"/consultations/{consultation.slug}/?page=3#idea-{ideas[4].pk}"
    answer = client.post(f"/consultations/ideas/{ideas[0].pk}/vote/")
    assert answer["Location"] == f"/consultations/{consultation.slug}/#idea-{ideas[0].pk}"


def test_the_office_page_pages_ideas_and_returns_to_the_idea_acted_on(monkeypatch: Any) -> None:
    monkeypatch.setattr(selectors, "IDEAS_PER_PAGE", 2)
    manager = make_manager()
    consultation = make_consultation(manager)
    ideas = _ideas_with_votes(consultation, [0, 0, 0])
    client = back_office_client(manager.user)
    page = client.get(f"/office/consultations/{consultation.pk}/").content.decode()
    assert _titles(page, 3) == ["Idea 0", "Idea 1"]
    answer = client.post(
        f"/office/consultations/{consultation.pk}/idea-status/",
        {"idea": ideas[2].pk, "status": Idea.Status.ACCEPTED, "note": ""},
    )
    assert answer["Location"] == f"/office/consultations/{consultation.pk}/?page=2#idea-{ideas[2].pk}"


# --- the API -----------------------------------------------------------------------------------


def _all_pages(client: Client, consultation: Consultation, sort: str) -> list[str]:
    titles, cursor = [], None
    for _ in range(10):
        query: dict[str, Any] = {"sort": sort, "limit": 2}
        if cursor:
            query["cursor"] = cursor
        body = client.get(f"{API}/{consultation.pk}/ideas", query).json()
        titles += [item["title"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return titles
    raise AssertionError("the cursor never ended")


def test_the_api_pages_through_ideas_in_each_order() -> None:
    consultation = make_consultation()
    _ideas_with_votes(consultation, [0, 3, 1, 0, 2])
    client = Client()
    assert _all_pages(client, consultation, "oldest") == [f"Idea {n}" for n in range(5)]
    assert _all_pages(client, consultation, "newest") == [f"Idea {n}" for n in (4, 3, 2, 1, 0)]
    assert _all_pages(client, consultation, "votes") == [f"Idea {n}" for n in (1, 4, 2, 0, 3)]


def test_the_ideas_api_refuses_bad_orders_and_cursors() -> None:
    consultation = make_consultation()
    _ideas_with_votes(consultation, [0, 0, 0])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    url = f"{API}/{consultation.pk}/ideas"
    bad_sort = client.get(url, {"sort": "id; DROP TABLE consultations_idea"})
    assert bad_sort.status_code == 422 and bad_sort.json()["code"] == "invalid_sort"
    votes_cursor = client.get(url, {"sort": "votes", "limit": 1}).json()["next_cursor"]
    for cursor in (
        votes_cursor,
        "oldest.forged",
        "oldest.",
        "no-dot",
        votes_cursor.replace("votes.", "newest."),
    ):
        answer = client.get(url, {"sort": "oldest" if "newest" not in cursor else "newest", "cursor": cursor})
        assert answer.status_code == 422 and answer.json()["code"] == "invalid_cursor", cursor
    assert client.get(f"{API}/999999/ideas").json()["code"] == "consultation_not_found"
    assert Idea.objects.count() == 3


def test_the_consultation_detail_gives_the_first_ideas_and_a_cursor_for_the_rest(monkeypatch: Any) -> None:
    monkeypatch.setattr(api, "DETAIL_IDEAS", 2)
    consultation = make_consultation()
    _ideas_with_votes(consultation, [0, 0, 0])
    body = Client().get(f"{API}/{consultation.pk}").json()
    assert [idea["title"] for idea in body["ideas"]] == ["Idea 0", "Idea 1"]
    rest = Client().get(f"{API}/{consultation.pk}/ideas", {"cursor": body["ideas_next_cursor"]}).json()
    assert [idea["title"] for idea in rest["items"]] == ["Idea 2"] and rest["next_cursor"] is None


# --- how fast one citizen posts ---------------------------------------------------------------------


def test_one_citizen_posts_at_most_the_hourly_limit(settings: Any) -> None:
    settings.CONSULTATION_POSTS_PER_HOUR = 3
    consultation = make_consultation()
    user = citizen_user()
    idea = make_idea(consultation, user)
    services.comment_post(user=user, idea=idea, body="One")
    services.comment_post(user=user, idea=idea, body="Two")
    with pytest.raises(services.RateLimited) as refused:
        make_idea(consultation, user, title="Fourth")
    assert refused.value.status == 429 and refused.value.code == "rate_limited"
    assert 3500 < refused.value.retry_after <= 3601
    with pytest.raises(services.RateLimited):
        services.comment_post(user=user, idea=idea, body="Three")
    assert Idea.objects.count() == 1 and Comment.objects.count() == 2  # nothing saved, nothing lost
    make_idea(consultation)  # someone else is not held back

    hour_ago = timezone.now() - dt.timedelta(minutes=61)
    Comment.objects.filter(author=user).update(created_at=hour_ago)
    services.comment_post(user=user, idea=idea, body="An hour later")


def test_the_api_answers_429_with_retry_after_and_the_page_keeps_the_text(settings: Any) -> None:
    settings.CONSULTATION_POSTS_PER_HOUR = 1
    consultation = make_consultation()
    user = citizen_user()
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    first = client.post(
        f"{API}/{consultation.pk}/ideas",
        {"title": "A", "body": "B", "display_name": "Ly"},
        content_type="application/json",
    )
    assert first.status_code == 201
    second = client.post(
        f"{API}/{consultation.pk}/ideas", {"title": "C", "body": "D"}, content_type="application/json"
    )
    assert second.status_code == 429 and second.json()["code"] == "rate_limited"
    assert 3500 < int(second["Retry-After"]) <= 3601
    page = client.post(
        f"/consultations/{consultation.slug}/ideas/", {"title": "Kept title", "body": "Kept body"}
    )
    html = page.content.decode()
    assert page.status_code == 429 and "in the last hour" in html
    assert 'value="Kept title"' in html and "Kept body</textarea>" in html


# --- closing on the closing date -----------------------------------------------------------------


def test_consultations_past_their_closing_date_are_closed_by_the_platform() -> None:
    manager = make_manager()
    today = timezone.localdate()
    past = make_consultation(
        manager, title="Past", opens_on=today - dt.timedelta(days=10), closes_on=today - dt.timedelta(days=1)
    )
    today_last = make_consultation(manager, title="Last day", closes_on=today)
    draft = make_consultation(manager, title="Draft", state="draft", closes_on=today - dt.timedelta(days=1))
    assert services.close_past_consultations() == 1
    past.refresh_from_db()
    assert past.status == Consultation.Status.CLOSED and past.closed_at is not None
    entry = AuditEntry.objects.get(action="consultation.close", subject_id=str(past.pk))
    assert entry.actor_id is None and entry.agency_id == manager.agency_id
    assert services.close_past_consultations() == 0  # once only
    for other in (today_last, draft):
        status = other.status
        other.refresh_from_db()
        assert other.status == status
    assert services.close_past_consultations(today=today + dt.timedelta(days=1)) == 1


# --- officers change a consultation ---------------------------------------------------------------


def _fields(consultation: Consultation, **changes: Any) -> dict[str, Any]:
    values = {name: getattr(consultation, name) for name in ("title", "question", "description")}
    values.update(opens_on=consultation.opens_on, closes_on=consultation.closes_on)
    values.update(changes)
    return values


def test_a_draft_changes_freely_and_keeps_its_address() -> None:
    manager = make_manager()
    draft = make_consultation(manager, state="draft")
    slug = draft.slug
    changed = services.consultation_update(
        officer=manager,
        consultation=draft,
        **_fields(draft, title="Cây xanh phố Lê Lợi", question="Cây nào?"),
    )
    assert changed.title == "Cây xanh phố Lê Lợi" and changed.slug == slug
    entry = AuditEntry.objects.get(action="consultation.update")
    assert entry.details == {"fields": ["title", "question"]}
    services.consultation_update(officer=manager, consultation=draft, **_fields(changed))
    assert AuditEntry.objects.filter(action="consultation.update").count() == 1  # no change, no entry


def test_an_open_consultation_changes_only_its_description_and_closing_date() -> None:
    manager = make_manager()
    consultation = make_consultation(manager)
    later = consultation.closes_on + dt.timedelta(days=14)
    services.consultation_update(
        officer=manager,
        consultation=consultation,
        **_fields(consultation, description="Thêm", closes_on=later),
    )
    consultation.refresh_from_db()
    assert consultation.description == "Thêm" and consultation.closes_on == later
    with pytest.raises(ValidationFailed) as fixed:
        services.consultation_update(
            officer=manager, consultation=consultation, **_fields(consultation, title="New", question="New?")
        )
    assert fixed.value.code == "fixed_after_publication" and set(fixed.value.details) == {"title", "question"}
    with pytest.raises(ValidationFailed) as past:
        services.consultation_update(
            officer=manager,
            consultation=consultation,
            **_fields(consultation, closes_on=timezone.localdate() - dt.timedelta(days=1)),
        )
    assert past.value.code == "closing_date_past"
    with pytest.raises(ValidationFailed) as garbage:
        services.consultation_update(
            officer=manager, consultation=consultation, **_fields(consultation, closes_on="31/12/2026")
        )
    assert garbage.value.code == "invalid_date"
    consultation.refresh_from_db()
    assert consultation.title != "New" and consultation.closes_on == later


def test_a_closed_consultation_or_another_agencys_cannot_be_changed() -> None:
    manager = make_manager()
    closed = make_consultation(manager, state="closed")
    with pytest.raises(services.WrongState):
        services.consultation_update(officer=manager, consultation=closed, **_fields(closed, description="x"))
    stranger = make_manager(AgencyFactory())
    opened = make_consultation(manager)
    with pytest.raises(services.OtherAgency):
        services.consultation_update(
            officer=stranger, consultation=opened, **_fields(opened, description="x")
        )


def test_the_edit_page_saves_and_shows_errors_in_the_officers_language() -> None:
    manager = make_manager()
    consultation = make_consultation(manager)
    client = back_office_client(manager.user)
    url = f"/office/consultations/{consultation.pk}/edit/"
    form = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "only its description and closing date can change" in form and "readonly" in form
    assert f'value="{consultation.title}"' in form
    saved = client.post(url, {"description": "Bản đồ mới"}, HTTP_ACCEPT_LANGUAGE="en")
    assert saved.status_code == 302
    consultation.refresh_from_db()
    assert consultation.description == "Bản đồ mới"
    refused = client.post(url, {"title": "<b>Other</b>", "description": "Lost?"}, HTTP_ACCEPT_LANGUAGE="vi")
    html = refused.content.decode()
    assert refused.status_code == 422 and "usa-error-message" in html
    assert "&lt;b&gt;Other&lt;/b&gt;" in html and "Lost?" in html  # what was typed is shown again
    consultation.refresh_from_db()
    assert consultation.description == "Bản đồ mới"
    closed = make_consultation(manager, state="closed")
    answer = client.get(f"/office/consultations/{closed.pk}/edit/")
    assert answer.status_code == 302


def test_a_document_comes_off_a_draft_or_open_consultation_but_not_a_closed_one(
    django_capture_on_commit_callbacks: Any,
) -> None:
    manager = make_manager()
    consultation = make_consultation(manager)
    document = services.consultation_document_add(
        officer=manager, consultation=consultation, title="Old map", upload=pdf_upload()
    )
    storage, name = document.file.storage, document.file.name
    assert storage.exists(name)
    client = back_office_client(manager.user)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            f"/office/consultations/{consultation.pk}/remove-document/", {"document": document.pk}
        )
    assert answer.status_code == 302 and not consultation.documents.exists() and not storage.exists(name)
    entry = AuditEntry.objects.get(action="consultation.document_remove")
    assert entry.details == {"title": "Old map", "sha256": document.sha256}
    with pytest.raises(NotFound):
        services.consultation_document_remove(
            officer=manager, consultation=consultation, document_id=document.pk
        )
    closed = make_consultation(manager, state="closed")
    kept = services.consultation_document_add(
        officer=manager, consultation=closed, title="Record", upload=pdf_upload()
    )
    with pytest.raises(services.WrongState):
        services.consultation_document_remove(officer=manager, consultation=closed, document_id=kept.pk)
    assert closed.documents.count() == 1
