from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from civicore.identity.tests.factories import UserFactory
from civicore.notify.models import Notification
from civicore.notify.services import notification_send

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    """These tests read the English wording."""
    return Client(HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def user_client(client: Client) -> tuple[Any, Client]:
    user = UserFactory()
    client.force_login(user)
    return user, client


def test_inbox_needs_login(client: Client) -> None:
    response = client.get("/inbox/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_inbox_lists_only_my_messages_and_marks_unread_ones(user_client: tuple[Any, Client]) -> None:
    user, client = user_client
    notification_send(
        user=user, subject="Hồ sơ HS-1 đã được tiếp nhận", body="Chi tiết", link="/applications/1/"
    )
    read = notification_send(user=user, subject="Old news", body="x")
    Notification.objects.filter(pk=read.pk).update(read_at=read.created_at)
    notification_send(user=UserFactory(), subject="Someone else's secret", body="x")

    response = client.get("/inbox/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Hồ sơ HS-1 đã được tiếp nhận" in html
    assert "Someone else&#x27;s secret" not in html and "Someone else's secret" not in html
    assert html.count("civicore-notification--unread") == 1
    assert html.count("civicore-notification--read") == 1
    assert 'href="/applications/1/"' in html
    assert "<title>Inbox · Civicore</title>" in html


def test_hostile_subject_is_shown_as_text(user_client: tuple[Any, Client]) -> None:
    user, client = user_client
    notification_send(user=user, subject='<script>alert("x")</script>', body="<img src=x onerror=alert(1)>")
    html = client.get("/inbox/").content.decode()
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;" in html
    assert "<img src=x" not in html


def test_inbox_pages_past_twenty(user_client: tuple[Any, Client]) -> None:
    user, client = user_client
    for i in range(25):
        notification_send(user=user, subject=f"Message {i:02d}", body="x")
    first = client.get("/inbox/").content.decode()
    assert "Message 24" in first and "Message 04" not in first
    assert 'href="?page=2"' in first
    second = client.get("/inbox/?page=2").content.decode()
    assert "Message 04" in second and "Message 24" not in second
    # A mangled page number shows the first page rather than an error.
    assert client.get("/inbox/?page=%27%3B--").status_code == 200


def test_inbox_query_count_does_not_grow_with_messages(
    user_client: tuple[Any, Client], django_assert_max_num_queries: Any
) -> None:
    user, client = user_client
    for i in range(15):
        notification_send(user=user, subject=f"M{i}", body="x")
    with django_assert_max_num_queries(8):
        assert client.get("/inbox/").status_code == 200


def test_mark_read_redirects_back_to_the_inbox(user_client: tuple[Any, Client]) -> None:
    user, client = user_client
    notification = notification_send(user=user, subject="Hi", body="x")
    response = client.post(f"/inbox/{notification.pk}/read")
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_mark_read_with_htmx_returns_the_updated_row(user_client: tuple[Any, Client]) -> None:
    user, client = user_client
    notification = notification_send(user=user, subject="Kết quả", body="x")
    notification_send(user=user, subject="Another", body="x")
    response = client.post(f"/inbox/{notification.pk}/read", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="notification-{notification.pk}"' in html
    assert "civicore-notification--read" in html
    assert "Mark as read" not in html
    assert "<html" not in html  # a fragment, not a page
    # The header's unread count and the live region are refreshed out of band.
    assert 'id="nav-inbox-label" hx-swap-oob="true"' in html and ">1<" in html
    assert "Marked as read: Kết quả" in html


def test_cannot_mark_someone_elses_notification(user_client: tuple[Any, Client]) -> None:
    _, client = user_client
    theirs = notification_send(user=UserFactory(), subject="Private", body="x")
    assert client.post(f"/inbox/{theirs.pk}/read").status_code == 404
    assert client.post(f"/inbox/{theirs.pk}/read", headers={"HX-Request": "true"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_read_needs_post_and_login(client: Client) -> None:
    user = UserFactory()
    notification = notification_send(user=user, subject="Hi", body="x")
    assert client.post(f"/inbox/{notification.pk}/read").status_code == 302
    client.force_login(user)
    assert client.get(f"/inbox/{notification.pk}/read").status_code == 405
    notification.refresh_from_db()
    assert notification.read_at is None
