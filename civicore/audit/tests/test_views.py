from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client

from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.audit.services import record
from civicore.identity.models import Person
from civicore.identity.tests.factories import UserFactory, make_citizen

pytestmark = pytest.mark.django_db
CSV_HEADER = [
    "Date and time",
    "Officer or system",
    "Agency",
    "What they did",
    "Data items",
    "Purpose",
    "Consent",
]


@pytest.fixture
def client() -> Client:
    """These tests read the English wording."""
    return Client(HTTP_ACCEPT_LANGUAGE="en")


def _view(officer: Any, person: Person, action: str = "case.view") -> None:
    record(
        actor=officer.user,
        action=action,
        subject_type="cases.case",
        subject_id="1",
        person=person,
        agency=officer.agency,
    )


@pytest.fixture
def citizen(client: Client) -> Person:
    person = make_citizen()
    client.force_login(person.user)
    return person


def test_needs_login(client: Client) -> None:
    assert client.get("/my-data/").status_code == 302
    assert client.get("/my-data/export.csv").status_code == 302


def test_officer_views_are_listed_in_plain_words(client: Client, citizen: Person) -> None:
    officer = make_officer(agency=AgencyFactory(name_vi="Sở Tư pháp", name_en="Department of Justice"))
    officer.user.full_name = "Trần Thị Bình"
    officer.user.save()
    _view(officer, citizen, "case.view")
    _view(officer, citizen, "document.view")
    _view(officer, citizen, "profile.view")

    html = client.get("/my-data/").content.decode()
    assert "Trần Thị Bình" in html
    assert "Department of Justice" in html
    assert "viewed your application" in html
    assert "opened a document from your application" in html
    assert "viewed your personal details" in html
    assert "case.view" not in html
    assert "3 records" in html


def test_own_reads_and_other_citizens_entries_never_appear(client: Client, citizen: Person) -> None:
    record(actor=citizen.user, action="case.view", subject_id="1", person=citizen)
    neighbour = make_citizen()
    snoop = make_officer()
    snoop.user.full_name = "Officer Who Read The Neighbour"
    snoop.user.save()
    _view(snoop, neighbour)
    # Non-access actions about the citizen (e.g. their own submission) are not "views".
    record(actor=citizen.user, action="application.submit", subject_id="1", person=citizen)

    html = client.get("/my-data/").content.decode()
    assert "Officer Who Read The Neighbour" not in html
    assert "No official has viewed your data yet." in html
    rows = list(csv.reader(io.StringIO(client.get("/my-data/export.csv").content.decode("utf-8-sig"))))
    assert len(rows) == 1  # header only


def test_hostile_officer_name_is_escaped_on_the_page(client: Client, citizen: Person) -> None:
    officer = make_officer()
    officer.user.full_name = "<script>alert(1)</script>"
    officer.user.save()
    _view(officer, citizen)
    html = client.get("/my-data/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_list_is_paginated(client: Client, citizen: Person) -> None:
    officer = make_officer()
    for _ in range(30):
        _view(officer, citizen)
    first = client.get("/my-data/").content.decode()
    assert first.count("viewed your application") == 25
    assert 'href="?page=2"' in first
    assert "Page 1 of 2" in first
    second = client.get("/my-data/?page=2").content.decode()
    assert second.count("viewed your application") == 5
    for hostile in ("abc", "-1", "99999", "1%27%20OR%201=1"):
        assert client.get(f"/my-data/?page={hostile}").status_code == 200


def test_page_query_count_is_flat(
    client: Client, citizen: Person, django_assert_max_num_queries: Any
) -> None:
    for _ in range(20):
        _view(make_officer(), citizen)
    with django_assert_max_num_queries(8):
        assert client.get("/my-data/").status_code == 200


def test_user_without_citizen_profile_sees_an_explanation(client: Client) -> None:
    client.force_login(UserFactory())
    response = client.get("/my-data/")
    assert response.status_code == 200
    assert "not linked to a citizen profile" in response.content.decode()
    rows = list(csv.reader(io.StringIO(client.get("/my-data/export.csv").content.decode("utf-8-sig"))))
    assert rows == [CSV_HEADER]


def test_csv_has_header_and_same_rows(client: Client, citizen: Person) -> None:
    officer = make_officer(agency=AgencyFactory(name_en="", name_vi="UBND xã An Bình"))
    officer.user.full_name = "Lê Văn C"
    officer.user.save()
    _view(officer, citizen, "document.view")
    _view(make_officer(), make_citizen())

    response = client.get("/my-data/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == CSV_HEADER
    assert len(rows) == 2
    assert rows[1][1:] == [
        "Lê Văn C",
        "UBND xã An Bình",
        "opened a document from your application",
        "",
        "",
        "",
    ]
    assert rows[1][0][:4].isdigit() and "T" in rows[1][0]


@pytest.mark.parametrize(
    "hostile",
    ['=HYPERLINK("http://evil.example","Click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1+1"],
)
def test_csv_never_starts_a_cell_with_a_formula(client: Client, citizen: Person, hostile: str) -> None:
    officer = make_officer(agency=AgencyFactory(name_en="", name_vi=hostile))
    officer.user.full_name = hostile
    officer.user.save()
    _view(officer, citizen)
    rows = list(csv.reader(io.StringIO(client.get("/my-data/export.csv").content.decode("utf-8-sig"))))
    officer_cell, agency_cell = rows[1][1], rows[1][2]
    assert officer_cell == "'" + hostile
    assert agency_cell == "'" + hostile


# --- Agency systems: consented reads and change notices ------------------------------------


def _application(**fields: Any) -> Any:
    """An agency application; its agency gets a code no other factory hands out."""
    import secrets

    from civicore.registry.tests.factories import make_application

    agency = AgencyFactory(code=f"system-{secrets.token_hex(4)}")
    return make_application(agency=agency, **fields)[0]


def _consented_read(person: Person, **app_fields: Any) -> Any:
    from civicore.consent.services import consent_grant
    from civicore.registry.services import message_log_record

    app = _application(name_vi="Cổng trợ cấp", name_en="Benefits portal", **app_fields)
    consent = consent_grant(
        person=person, application=app, items=["full_name", "address"], purpose="benefit", days=30
    )
    message_log_record(
        application=app,
        direction="out",
        operation="person.read",
        message_id=f"jti-{consent.pk}",
        status=200,
        person=person,
        items=["full_name", "address"],
        purpose="benefit",
        consent_id=str(consent.public_id),
    )
    return app, consent


def test_agency_system_reads_show_items_purpose_and_consent(client: Client, citizen: Person) -> None:
    app, consent = _consented_read(citizen)

    html = client.get("/my-data/").content.decode()
    assert "Benefits portal" in html
    assert app.agency.name_en in html
    assert "received your data with your consent" in html
    assert "Full name, Permanent address" in html
    assert "Benefit eligibility" in html
    assert f"/my-data/consents/#consent-{consent.public_id}" in html
    # The citizen's own consent is not a use of their data by someone else.
    assert "1 record" in html

    rows = list(csv.reader(io.StringIO(client.get("/my-data/export.csv").content.decode("utf-8-sig"))))
    assert rows[1][1:] == [
        "Benefits portal",
        app.agency.name_en,
        "received your data with your consent",
        "Full name, Permanent address",
        "Benefit eligibility",
        str(consent.public_id),
    ]


def test_change_deliveries_and_refusals_are_told_in_words(client: Client, citizen: Person) -> None:
    app = _application(name_en="Tax office system")
    record(
        actor=None,
        action="exchange.change.delivered",
        subject=app,
        person=citizen,
        agency=app.agency,
        details={"client_id": app.client_id, "items": ["address"], "event": "profile.changed"},
    )
    record(
        actor=None,
        action="exchange.person.query",
        subject=app,
        person=citizen,
        agency=app.agency,
        details={"client_id": app.client_id, "items": ["full_name"], "purpose": "benefit", "status": 403},
    )

    html = client.get("/my-data/").content.decode()
    assert "was told of a change to: Permanent address" in html
    assert "asked for your data and was refused" in html
    assert "Tax office system" in html
    assert "Benefit eligibility" in html  # from the application's registered purposes


def test_unknown_client_and_odd_details_do_not_break_the_page(client: Client, citizen: Person) -> None:
    record(actor=None, action="exchange.person.read", subject_id="1", person=citizen, details={"items": "x"})
    record(
        actor=None,
        action="exchange.person.read",
        subject_id="1",
        person=citizen,
        details={"client_id": "gone-app", "consent": "not-a-uuid", "items": ["favourite_colour", 3]},
    )
    response = client.get("/my-data/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "gone-app" in html
    assert "favourite_colour" in html
    assert client.get("/my-data/export.csv").status_code == 200


def test_hostile_application_name_never_starts_a_csv_formula(client: Client, citizen: Person) -> None:
    hostile = '=HYPERLINK("http://evil.example","Click")'
    _consented_read(citizen, purposes=[{"code": "benefit", "name_vi": hostile, "name_en": hostile}])
    from civicore.registry.models import AgencyApplication

    AgencyApplication.objects.update(name_vi=hostile, name_en=hostile)
    rows = list(csv.reader(io.StringIO(client.get("/my-data/export.csv").content.decode("utf-8-sig"))))
    assert rows[1][1] == "'" + hostile
    assert rows[1][5] == "'" + hostile


def test_page_with_exchange_entries_has_a_fixed_query_count(
    client: Client, citizen: Person, django_assert_max_num_queries: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _consented_read(citizen)
    _view(make_officer(), citizen)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/my-data/").status_code == 200
    # session, user, person, count, page, applications, consents, header (officer, unread)
    assert len(few.captured_queries) <= 9
    for _ in range(12):
        _consented_read(citizen)
        _view(make_officer(), citizen)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/my-data/").status_code == 200
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/my-data/export.csv").status_code == 200
