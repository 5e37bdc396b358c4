"""The citizen's consent dashboard at /my-data/consents/."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from civicore.audit.models import AuditEntry
from civicore.consent.models import Consent
from civicore.consent.services import consent_grant
from civicore.identity.models import Person
from civicore.identity.tests.factories import UserFactory, make_citizen
from civicore.registry.tests.factories import make_application

pytestmark = pytest.mark.django_db


@pytest.fixture
def citizen() -> Person:
    return make_citizen()


@pytest.fixture
def browser(citizen: Person) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(citizen.user)
    return client


def _consent(person: Person, **app_fields: Any) -> Consent:
    app, _key = make_application(**app_fields)
    return consent_grant(
        person=person, application=app, items=["full_name", "address"], purpose="benefit", days=30
    )


def test_dashboard_needs_login() -> None:
    assert Client().get("/my-data/consents/").status_code == 302


def test_active_and_past_consents_are_listed_with_their_status(browser: Client, citizen: Person) -> None:
    active = _consent(citizen, name_en="Housing benefit system")
    expired = _consent(citizen, name_en="Old school system")
    Consent.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    withdrawn = _consent(citizen, name_en="Withdrawn system")
    browser.post(f"/my-data/consents/{withdrawn.public_id}/revoke")
    _consent(make_citizen(), name_en="Someone else's system")

    html = browser.get("/my-data/consents/").content.decode()
    active_part, past_part = html.split("Past consents")
    assert "Housing benefit system" in active_part
    assert active.application.agency.name_en in active_part
    assert "Benefit eligibility" in active_part
    assert "Full name, Permanent address" in active_part
    assert f"/my-data/consents/{active.public_id}/revoke" in active_part
    assert "Old school system" in past_part and "Expired" in past_part
    assert "Withdrawn system" in past_part and "Withdrawn" in past_part
    assert "/revoke" not in past_part
    assert "Someone else" not in html


def test_withdrawing_is_a_post_that_takes_effect_and_is_audited(browser: Client, citizen: Person) -> None:
    consent = _consent(citizen, name_en="Housing benefit system")
    assert browser.get(f"/my-data/consents/{consent.public_id}/revoke").status_code == 405
    response = browser.post(f"/my-data/consents/{consent.public_id}/revoke", follow=True)
    assert response.status_code == 200
    assert "Housing benefit system can no longer receive your data" in response.content.decode()
    consent.refresh_from_db()
    assert consent.revoked_at is not None
    assert AuditEntry.objects.filter(action="consent.revoke", person=citizen).exists()


def test_a_citizen_cannot_withdraw_someone_elses_consent(browser: Client) -> None:
    other = _consent(make_citizen())
    assert browser.post(f"/my-data/consents/{other.public_id}/revoke").status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None


def test_withdrawing_needs_the_csrf_token(citizen: Person) -> None:
    consent = _consent(citizen)
    client = Client(enforce_csrf_checks=True)
    client.force_login(citizen.user)
    assert client.post(f"/my-data/consents/{consent.public_id}/revoke").status_code == 403
    consent.refresh_from_db()
    assert consent.revoked_at is None


def test_user_without_citizen_profile_sees_an_explanation() -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(UserFactory())
    assert "not linked to a citizen profile" in client.get("/my-data/consents/").content.decode()
    assert client.post(f"/my-data/consents/{'0' * 8}-0000-0000-0000-{'0' * 12}/revoke").status_code == 404


def test_dashboard_query_count_is_flat(
    browser: Client, citizen: Person, django_assert_max_num_queries: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Consent.objects.filter(pk=_consent(citizen).pk).update(revoked_at=timezone.now())
    _consent(citizen)
    with CaptureQueriesContext(connection) as few:
        assert browser.get("/my-data/consents/").status_code == 200
    for _ in range(8):
        Consent.objects.filter(pk=_consent(citizen).pk).update(revoked_at=timezone.now())
        _consent(citizen)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert browser.get("/my-data/consents/").status_code == 200
    # session, user, person, ended count, ended page, active, header (officer, unread)
    assert len(few.captured_queries) <= 8
