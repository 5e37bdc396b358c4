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
    assert rows == [["Date and time", "Officer", "Agency", "What they did"]]


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
    assert rows[0] == ["Date and time", "Officer", "Agency", "What they did"]
    assert len(rows) == 2
    assert rows[1][1:] == ["Lê Văn C", "UBND xã An Bình", "opened a document from your application"]
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
