from __future__ import annotations

import pytest
from django.test import Client

from civicore.agencies.tests.factories import back_office_client, make_agency_admin, make_officer
from civicore.audit.models import AuditEntry
from civicore.exchange.models import Delivery
from civicore.exchange.tests.factories import change, make_subscriber
from civicore.identity.tests.factories import UserFactory, make_citizen

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/hook"


def _login(user) -> Client:
    """The back office needs the second factor; the officer confirmed it at login."""
    return back_office_client(user)


@pytest.fixture
def setup():
    officer = make_agency_admin()  # manages the agency's systems
    other_officer = make_agency_admin()
    ours = make_subscriber(URL, agency=officer.agency)
    theirs = make_subscriber(URL, agency=other_officer.agency)
    event = change(make_citizen(), ["address"])
    Delivery.objects.update(
        status=Delivery.Status.DEAD, attempts=8, last_status=500, last_error="HTTP 500 from receiver"
    )
    mine = Delivery.objects.get(event=event, application=ours)
    other = Delivery.objects.get(event=event, application=theirs)
    return officer, mine, other


def test_an_officer_sees_their_agencys_failed_deliveries_only(setup):
    officer, mine, other = setup
    page = _login(officer.user).get("/office/deliveries/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"#{mine.pk}<" in html and f"#{other.pk}<" not in html
    assert "HTTP 500 from receiver" in html and mine.application.client_id in html
    partial = _login(officer.user).get("/office/deliveries/?state=delivered", HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode() and "No deliveries match" in partial.content.decode()

    assert _login(officer.user).get(f"/office/deliveries/{mine.pk}/").status_code == 200
    assert _login(officer.user).get(f"/office/deliveries/{other.pk}/").status_code == 403
    assert _login(officer.user).get("/office/deliveries/999999/").status_code == 404


def test_citizens_and_caseworkers_are_refused_and_staff_see_every_agency(setup):
    officer, mine, other = setup
    citizen = make_citizen()
    assert _login(citizen.user).get("/office/deliveries/").status_code == 403
    caseworker = make_officer(agency=officer.agency)  # works cases, does not manage systems
    assert _login(caseworker.user).get("/office/deliveries/").status_code == 403
    assert _login(caseworker.user).post(f"/office/deliveries/{mine.pk}/replay/").status_code == 403
    staff = UserFactory(is_staff=True)
    html = _login(staff).get("/office/deliveries/").content.decode()
    assert f"#{mine.pk}<" in html and f"#{other.pk}<" in html


def test_replaying_one_delivery_schedules_it_now_and_is_audited(setup):
    officer, mine, other = setup
    client = _login(officer.user)
    response = client.post(f"/office/deliveries/{mine.pk}/replay/")
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.status == Delivery.Status.PENDING and mine.attempts == 0
    entry = AuditEntry.objects.get(action="exchange.delivery.replay")
    assert entry.actor_id == officer.user_id and entry.subject_id == str(mine.pk)
    assert entry.agency_id == officer.agency_id and entry.details["previous_attempts"] == 8

    assert client.post(f"/office/deliveries/{other.pk}/replay/").status_code == 403
    other.refresh_from_db()
    assert other.status == Delivery.Status.DEAD
    assert client.get(f"/office/deliveries/{mine.pk}/replay/").status_code == 405


def test_replay_all_only_touches_the_officers_agency(setup):
    officer, mine, other = setup
    response = _login(officer.user).post("/office/deliveries/replay-dead/", follow=True)
    assert "1 failed delivery will be sent again now" in response.content.decode()
    mine.refresh_from_db()
    other.refresh_from_db()
    assert mine.status == Delivery.Status.PENDING and other.status == Delivery.Status.DEAD


def test_replay_needs_the_csrf_token(setup):
    officer, mine, _other = setup
    strict = _login(officer.user)
    strict.handler.enforce_csrf_checks = True
    assert strict.post(f"/office/deliveries/{mine.pk}/replay/").status_code == 403
    mine.refresh_from_db()
    assert mine.status == Delivery.Status.DEAD


def test_the_list_takes_a_fixed_number_of_queries(setup, django_assert_max_num_queries):
    officer, _mine, _other = setup
    for _ in range(5):
        change(make_citizen(), ["address"])
    Delivery.objects.update(status=Delivery.Status.DEAD, attempts=8)
    client = _login(officer.user)
    client.get("/office/deliveries/")
    with django_assert_max_num_queries(12):
        assert client.get("/office/deliveries/").status_code == 200
