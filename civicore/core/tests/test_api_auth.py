"""How the API tells callers why it refuses them: no credentials is 401, a signed-in browser
without the CSRF token is 403 `csrf_failed`, a body that is not JSON is 400 `malformed_body`;
each in the API's error shape (found by the schema-driven fuzzing in tests/test_api_fuzz.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db

URL = "/api/v1/applications"


def error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    return body


def test_an_unsafe_request_without_credentials_is_401_not_a_csrf_refusal() -> None:
    client = Client(enforce_csrf_checks=True)
    body = error(client.post(URL, {"service": "x"}, content_type="application/json"), 401)
    assert body["code"] == "unauthenticated"


def test_a_signed_in_browser_without_the_csrf_token_gets_a_stable_code() -> None:
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_citizen().user)
    body = error(client.post(URL, {"service": "x"}, content_type="application/json"), 403)
    assert body["code"] == "csrf_failed"
    assert "X-CSRFToken" in body["message"]


def test_the_csrf_token_in_the_header_lets_the_request_through() -> None:
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_citizen().user)
    token = "k" * 32
    client.cookies["csrftoken"] = token
    response = client.post(URL, {"service": "x"}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert error(response, 404)["code"] == "service_not_found"


def test_a_body_that_is_not_json_is_400_malformed_body() -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_citizen().user)
    body = error(client.post(URL, "{not json", content_type="application/json"), 400)
    assert body["code"] == "malformed_body"
