from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from civicore.identity.services import api_token_create
from civicore.identity.tests.factories import UserFactory
from civicore.notify.services import notification_send

pytestmark = pytest.mark.django_db


@pytest.fixture
def caller() -> tuple[Any, dict[str, str]]:
    user = UserFactory()
    _, secret = api_token_create(user=user, name="test")
    return user, {"Authorization": f"Bearer {secret}"}


def test_lists_my_notifications_newest_first(client: Client, caller: tuple[Any, dict[str, str]]) -> None:
    user, headers = caller
    for i in range(3):
        notification_send(user=user, subject=f"N{i}", body="b", link=f"/applications/{i}/")
    notification_send(user=UserFactory(), subject="not mine", body="b")
    response = client.get("/api/v1/notifications", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert [n["subject"] for n in body["items"]] == ["N2", "N1", "N0"]
    assert set(body["items"][0]) == {"id", "subject", "body", "link", "created_at", "read_at"}
    assert body["next_cursor"] is None


def test_limit_and_cursor_walk_every_notification_once(
    client: Client, caller: tuple[Any, dict[str, str]]
) -> None:
    user, headers = caller
    for i in range(5):
        notification_send(user=user, subject=f"N{i}", body="b")
    seen: list[str] = []
    url = "/api/v1/notifications?limit=2"
    while True:
        body = client.get(url, headers=headers).json()
        seen += [n["subject"] for n in body["items"]]
        if not body["next_cursor"]:
            break
        url = f"/api/v1/notifications?limit=2&cursor={body['next_cursor']}"
    assert seen == ["N4", "N3", "N2", "N1", "N0"]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "cursor=forged"])
def test_bad_paging_input_is_a_client_error(
    client: Client, caller: tuple[Any, dict[str, str]], query: str
) -> None:
    _, headers = caller
    response = client.get(f"/api/v1/notifications?{query}", headers=headers)
    assert 400 <= response.status_code < 500
    assert "code" in response.json()


def test_needs_authentication(client: Client) -> None:
    response = client.get("/api/v1/notifications")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_mark_read(client: Client, caller: tuple[Any, dict[str, str]]) -> None:
    user, headers = caller
    notification = notification_send(user=user, subject="Hi", body="b")
    response = client.post(f"/api/v1/notifications/{notification.pk}/read", headers=headers)
    assert response.status_code == 200
    assert response.json()["read_at"] is not None


def test_someone_elses_notification_is_404(client: Client, caller: tuple[Any, dict[str, str]]) -> None:
    _, headers = caller
    theirs = notification_send(user=UserFactory(), subject="Private", body="b")
    response = client.post(f"/api/v1/notifications/{theirs.pk}/read", headers=headers)
    assert response.status_code == 404
    assert response.json()["code"] == "notification_not_found"
    assert "Private" not in response.content.decode()


def test_openapi_describes_the_notification_endpoints(client: Client) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/notifications" in schema["paths"]
    assert "/api/v1/notifications/{notification_id}/read" in schema["paths"]
    assert "NotificationOut" in schema["components"]["schemas"]
