"""The page frame every page shares: language, landmarks, skip link, navigation, CSP-safe markup."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from civicore.agencies.tests.factories import make_officer
from civicore.identity.tests.factories import make_citizen
from civicore.notify.services import notification_send

pytestmark = pytest.mark.django_db

PAGES = ["/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]


def assert_csp_safe(html: str) -> None:
    """The Content-Security-Policy blocks inline script and style: none may be relied on."""
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert " style=" not in html
    assert "<style" not in html
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"


@pytest.mark.parametrize("url", PAGES)
def test_every_page_has_the_accessible_frame(client: Client, url: str) -> None:
    response = client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'<html lang="vi">', html)
    assert '<a class="usa-skipnav" href="#main-content">' in html
    assert '<main id="main-content"' in html
    assert html.count("<h1") == 1
    assert re.search(r"<title>\S[^<\n]* · Civicore</title>", html)
    assert "<header" in html and "<footer" in html and '<nav aria-label="' in html
    assert 'class="usa-menu-btn"' in html  # the menu collapses behind a button on small screens
    assert "Content-Security-Policy" in response.headers
    assert_csp_safe(html)


def test_no_government_banner_or_foreign_branding(client: Client) -> None:
    html = client.get("/").content.decode()
    assert "usa-banner" not in html
    assert "official website of the United States" not in html
    assert "GOV.UK" not in html
    assert "Civicore" in html


def test_language_switcher_posts_to_set_language_and_changes_lang(client: Client) -> None:
    html = client.get("/").content.decode()
    form = re.search(r'<form action="/i18n/setlang/" method="post".*?</form>', html, re.S)
    assert form, "language switcher missing"
    assert 'name="language" value="en" lang="en"' in form.group(0)
    assert 'name="csrfmiddlewaretoken"' in form.group(0)

    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    html = client.get("/").content.decode()
    assert '<html lang="en">' in html
    assert 'value="vi" lang="vi"' in html and "Tiếng Việt" in html


def test_language_switch_refuses_an_offsite_next(client: Client) -> None:
    response = client.post("/i18n/setlang/", {"language": "en", "next": "https://evil.example/"})
    assert "evil.example" not in response.get("Location", "")


def test_citizen_navigation_marks_current_page_and_counts_unread(client: Client) -> None:
    person = make_citizen()
    notification_send(user=person.user, subject="a", body="x")
    notification_send(user=person.user, subject="b", body="x")
    client.force_login(person.user)
    html = client.get("/inbox/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'href="/inbox/" aria-current="page"' in html
    assert '2<span class="usa-sr-only"> unread</span>' in html
    assert 'href="/my-data/"' in html and 'href="/applications/"' in html
    assert 'action="/accounts/logout/"' in html


def test_officer_navigation(client: Client) -> None:
    officer = make_officer()
    client.force_login(officer.user)
    html = client.get("/").content.decode()
    assert 'href="/office/"' in html
    assert 'href="/my-data/"' not in html


def test_anonymous_pages_do_not_query_notifications(
    client: Client, django_assert_num_queries: object
) -> None:
    with django_assert_num_queries(0):  # type: ignore[operator]
        assert client.get("/accounts/login/").status_code == 200


def test_pagination_include_renders_links_only_when_needed(rf: object) -> None:
    from django.template.loader import render_to_string

    assert render_to_string("includes/pagination.html", {"prev_url": "", "next_url": ""}).strip() == ""
    html = render_to_string(
        "includes/pagination.html",
        {"prev_url": "?page=1", "next_url": "?page=3", "page_number": 2, "num_pages": 3},
    )
    assert 'href="?page=1"' in html and 'rel="prev"' in html
    assert 'href="?page=3"' in html and 'rel="next"' in html
    assert "Page 2 of 3" in html
    assert '<nav aria-label="Pagination"' in html
