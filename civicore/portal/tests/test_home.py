from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.catalogue.models import Service, ServiceVersion
from civicore.identity.tests.factories import UserFactory, make_citizen
from civicore.notify.services import notification_send

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    """These tests read the English wording."""
    return Client(HTTP_ACCEPT_LANGUAGE="en")


def make_service(code: str, name: str, *, published: bool = True) -> Service:
    service = Service.objects.create(code=code, name_vi=name, name_en=f"{name} (en)", agency=AgencyFactory())
    if published:
        version = ServiceVersion.objects.create(
            service=service, number=1, definition={"sla_working_days": 3}, checksum="0" * 64
        )
        service.current_version = version
        service.save(update_fields=["current_version"])
    return service


def test_search_box_sends_the_query_to_the_catalogue(client: Client) -> None:
    html = client.get("/").content.decode()
    form = re.search(r'<form[^>]*role="search"[^>]*>', html)
    assert form and 'action="/services/"' in form.group(0) and 'method="get"' in form.group(0)
    assert '<label class="usa-sr-only" for="home-search">' in html
    assert 'id="home-search" type="search" name="q"' in html


def test_lists_published_services_with_links(client: Client) -> None:
    make_service("khai-sinh", "Đăng ký khai sinh")
    make_service("draft-only", "Bản nháp", published=False)
    html = client.get("/").content.decode()
    assert 'href="/services/khai-sinh/"' in html
    assert "Đăng ký khai sinh" in html
    assert "draft-only" not in html and "Bản nháp" not in html


def test_anonymous_visitor_is_invited_to_log_in(client: Client) -> None:
    html = client.get("/").content.decode()
    assert 'href="/accounts/login/"' in html
    assert "My applications" not in html
    assert 'href="/office/"' not in html


def test_citizen_sees_applications_and_own_latest_messages(client: Client) -> None:
    person = make_citizen()
    for i in range(4):
        notification_send(user=person.user, subject=f"Tin nhắn {i}", body="x", link=f"/applications/{i}/")
    notification_send(user=UserFactory(), subject="Not for you", body="x")
    client.force_login(person.user)
    html = client.get("/").content.decode()
    assert 'href="/applications/"' in html
    assert "Tin nhắn 3" in html and "Tin nhắn 1" in html
    assert "Tin nhắn 0" not in html  # only the latest three
    assert "Not for you" not in html
    assert 'href="/office/"' not in html


def test_officer_gets_the_case_inbox(client: Client) -> None:
    officer = make_officer()
    client.force_login(officer.user)
    html = client.get("/").content.decode()
    assert 'href="/office/"' in html
    assert "Open the case inbox" in html


def test_inactive_officer_is_not_shown_the_case_inbox(client: Client) -> None:
    officer = make_officer(active=False)
    client.force_login(officer.user)
    assert 'href="/office/"' not in client.get("/").content.decode()


def test_home_page_query_count(client: Client, django_assert_max_num_queries: Any) -> None:
    for i in range(8):
        make_service(f"svc-{i}", f"Dịch vụ {i}")
    person = make_citizen()
    client.force_login(person.user)
    with django_assert_max_num_queries(8):
        assert client.get("/").status_code == 200
