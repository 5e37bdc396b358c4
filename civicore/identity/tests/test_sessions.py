"""The citizen's active sessions: each login's browser and device, IP address and when it was last
seen; ending one or all others logs those browsers out."""

from __future__ import annotations

import re
import time

import pytest
from allauth.usersessions.models import UserSession
from django.test import Client
from django.utils import timezone

from civicore.audit.models import AuditEntry
from civicore.identity.middleware import ACTIVITY_INTERVAL, ACTIVITY_SESSION_KEY
from civicore.identity.selectors import describe_user_agent
from civicore.identity.tests.factories import log_in, make_citizen

pytestmark = pytest.mark.django_db

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


def _browser(user_agent: str, address: str) -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en", HTTP_USER_AGENT=user_agent, REMOTE_ADDR=address)


@pytest.fixture
def two_logins():  # type: ignore[no-untyped-def]
    person = make_citizen()
    laptop = _browser(CHROME_WINDOWS, "198.51.100.7")
    phone = _browser(SAFARI_IPHONE, "203.0.113.20")
    log_in(laptop, person.user)
    log_in(phone, person.user)
    return person.user, laptop, phone


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (CHROME_WINDOWS, ("Chrome", "Windows")),
        (SAFARI_IPHONE, ("Safari", "iPhone")),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", ("Firefox", "Linux")),
        (
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0 Mobile Safari/537.36 Edg/131.0",
            ("Edge", "Android"),
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "coc_coc_browser/130.0 Chrome/124.0 Safari/537.36",
            ("Cốc Cốc", "Windows"),
        ),
        ("curl/8.5.0", ("", "")),
    ],
)
def test_browsers_and_devices_are_named_as_people_know_them(
    user_agent: str, expected: tuple[str, str]
) -> None:
    assert describe_user_agent(user_agent) == expected


def test_the_page_lists_every_login_with_browser_address_and_last_seen(two_logins) -> None:  # type: ignore[no-untyped-def]
    user, laptop, _phone = two_logins
    response = laptop.get("/my-profile/sessions/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<h1") == 1 and "Active sessions" in html
    rows = re.findall(r'<tr id="session-\d+".*?</tr>', html, re.S)
    assert len(rows) == 2
    assert "Chrome on Windows" in rows[0] and "This device" in rows[0] and "198.51.100.7" in rows[0]
    assert "Safari on iPhone" in rows[1] and "203.0.113.20" in rows[1] and "This device" not in rows[1]
    assert "<time datetime=" in rows[1]
    assert 'action="/my-profile/sessions/end-others/"' in html
    assert 'aria-current="page"' in html and 'href="/my-profile/sessions/"' in html  # the side menu
    assert UserSession.objects.filter(user=user).count() == 2


def test_ending_one_session_logs_that_browser_out(two_logins) -> None:  # type: ignore[no-untyped-def]
    user, laptop, phone = two_logins
    other = UserSession.objects.get(user=user, user_agent=SAFARI_IPHONE)
    response = laptop.post(f"/my-profile/sessions/{other.pk}/end/")
    assert response.status_code == 302 and response["Location"] == "/my-profile/sessions/"
    assert not UserSession.objects.filter(pk=other.pk).exists()
    assert phone.get("/applications/")["Location"].startswith("/accounts/login/")
    assert laptop.get("/applications/").status_code == 200
    entry = AuditEntry.objects.get(action="account.sessions_end")
    assert entry.actor == user and entry.details == {"scope": "one", "count": 1}


def test_ending_all_other_sessions_keeps_this_one(two_logins) -> None:  # type: ignore[no-untyped-def]
    user, laptop, phone = two_logins
    third = _browser(CHROME_WINDOWS, "192.0.2.1")
    log_in(third, user)
    response = laptop.post("/my-profile/sessions/end-others/", follow=True)
    assert "2 other sessions were ended." in response.content.decode()
    assert list(UserSession.objects.filter(user=user).values_list("ip", flat=True)) == ["198.51.100.7"]
    assert phone.get("/applications/").status_code == 302
    assert third.get("/applications/").status_code == 302
    assert laptop.get("/applications/").status_code == 200


def test_nobody_ends_another_users_session_or_their_own_current_one_here(two_logins) -> None:  # type: ignore[no-untyped-def]
    user, laptop, _phone = two_logins
    stranger = make_citizen()
    theirs = _browser(CHROME_WINDOWS, "192.0.2.50")
    log_in(theirs, stranger.user)
    foreign = UserSession.objects.get(user=stranger.user)
    assert laptop.post(f"/my-profile/sessions/{foreign.pk}/end/").status_code == 404
    assert UserSession.objects.filter(pk=foreign.pk).exists()
    current = UserSession.objects.get(user=user, session_key=laptop.session.session_key)
    assert laptop.post(f"/my-profile/sessions/{current.pk}/end/").status_code == 404
    assert laptop.get(f"/my-profile/sessions/{foreign.pk}/end/").status_code == 405


def test_the_page_needs_a_login() -> None:
    response = Client().get("/my-profile/sessions/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_last_seen_is_written_at_most_every_few_minutes(two_logins) -> None:  # type: ignore[no-untyped-def]
    user, laptop, _phone = two_logins
    mine = UserSession.objects.get(user=user, session_key=laptop.session.session_key)
    seen = mine.last_seen_at
    laptop.get("/my-profile/sessions/")
    mine.refresh_from_db()
    assert mine.last_seen_at == seen  # within the interval: no write

    session = laptop.session
    session[ACTIVITY_SESSION_KEY] = time.time() - ACTIVITY_INTERVAL - 1
    session.save()
    laptop.get("/my-profile/sessions/")
    mine.refresh_from_db()
    assert mine.last_seen_at > seen
    assert timezone.now() - mine.last_seen_at < timezone.timedelta(minutes=1)


def test_a_page_costs_no_tracking_queries_between_writes(two_logins) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _user, laptop, _phone = two_logins
    with CaptureQueriesContext(connection) as queries:
        laptop.get("/applications/")
    assert not [q for q in queries.captured_queries if "usersessions_usersession" in q["sql"]]


def test_the_page_is_drawn_in_vietnamese_by_default(two_logins) -> None:  # type: ignore[no-untyped-def]
    user, _laptop, _phone = two_logins
    browser = Client()
    log_in(browser, user)
    html = browser.get("/my-profile/sessions/").content.decode()
    assert '<html lang="vi">' in html
