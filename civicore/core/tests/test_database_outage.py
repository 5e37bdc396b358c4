"""Requests after the database ended a session: /healthz and the next request reconnect, and a
request cut short by the database answers 503 with Retry-After instead of a 500."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.signals import request_started
from django.db import OperationalError, connection
from django.test import Client, RequestFactory

from civicore.core import crypto
from civicore.core.tests.database_sessions import postgresql_only, terminate_session
from civicore.core.views import server_error
from civicore.identity.services import api_token_create
from civicore.identity.tests.factories import make_citizen


@pytest.fixture(autouse=True)
def _forget_data_keys():
    yield
    # Transactional tests end by emptying the tables, data keys included: the next test must not
    # seal values under a key this process still remembers but the database no longer has.
    crypto.reset_keyring()


@pytest.fixture
def reconnect_afterwards():
    yield
    connection.close()  # whatever a test left broken, the next one starts afresh


def _token_client() -> Client:
    _token, secret = api_token_create(user=make_citizen().user, name="outage")
    # The test client re-raises a view's exception unless told to answer like a server.
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}", raise_request_exception=False)


def test_kept_connections_are_checked_before_a_request_reuses_them():
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_healthz_is_healthy_right_after_the_database_ended_its_session(reconnect_afterwards):
    connection.ensure_connection()
    terminate_session(connection)
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_next_request_reconnects_after_the_database_ended_an_idle_session(reconnect_afterwards):
    client = _token_client()
    terminate_session(connection)
    # What the WSGI handler does when a request starts (the test client leaves it out).
    request_started.send(sender=None)
    response = client.get("/api/v1/applications")
    assert response.status_code == 200
    assert response.json()["items"] == []


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_an_api_request_that_loses_the_database_answers_503_and_may_be_sent_again(reconnect_afterwards):
    client = _token_client()
    terminate_session(connection)  # mid-request: no health check between this and the query
    response = client.get("/api/v1/applications")
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["code"] == "database_unavailable"
    assert response.json()["message"]
    request_started.send(sender=None)
    assert client.get("/api/v1/applications").status_code == 200


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_page_that_loses_the_database_answers_503_with_a_static_page(reconnect_afterwards):
    client = Client(raise_request_exception=False)
    client.force_login(make_citizen().user)
    terminate_session(connection)
    response = client.get("/applications/")
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert "Briefly unavailable" in response.content.decode()


def test_a_deadlock_or_lost_connection_is_503_and_any_other_failure_the_500_page():
    request = RequestFactory().get("/api/v1/applications")
    try:
        raise OperationalError("deadlock detected")
    except OperationalError:
        response = server_error(request)
    assert response.status_code == 503 and response["Retry-After"] == "1"
    try:
        raise ValueError("a bug")
    except ValueError:
        response = server_error(RequestFactory().get("/services/"))
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
