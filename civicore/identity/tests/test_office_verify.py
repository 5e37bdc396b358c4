from __future__ import annotations

import pytest

from civicore.agencies.tests.factories import back_office_client, make_officer
from civicore.audit.models import AuditEntry
from civicore.identity.models import Person
from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db
URL = "/office/verify-identity/"


def _unverified(**kwargs):  # type: ignore[no-untyped-def]
    person = make_citizen(**kwargs)
    Person.objects.filter(pk=person.pk).update(
        assurance_level=1, assurance_verified_at=None, assurance_verified_by=None
    )
    person.refresh_from_db()
    return person


def test_an_identity_verifier_raises_a_citizen_to_level_2_after_checking_the_card() -> None:
    officer = make_officer(roles=("identity_verifier",))
    person = _unverified(full_name="Trần Thị Bích")
    client = back_office_client(officer.user)
    assert client.get(URL).status_code == 200
    response = client.post(
        URL, {"national_id": person.national_id, "full_name": "  trần thị  BÍCH ", "checked_in_person": "on"}
    )
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.assurance_level == 2 and person.assurance_verified_by == officer.agency
    entry = AuditEntry.objects.get(action="person.assurance_raise", person=person)
    assert entry.actor == officer.user and entry.details["method"] == "in_person"


@pytest.mark.parametrize(
    ("national_id", "name", "checked", "message"),
    [
        ("000000000000", "Trần Thị Bích", "on", "No account matches"),
        (None, "Someone Else", "on", "No account matches"),
        (None, "Trần Thị Bích", "", "Confirm that you checked the card"),
        ("12<script>", "Trần Thị Bích", "on", "12 digits"),
    ],
)
def test_a_wrong_number_name_or_missing_check_changes_nothing(national_id, name, checked, message) -> None:  # type: ignore[no-untyped-def]
    officer = make_officer(roles=("identity_verifier",))
    person = _unverified(full_name="Trần Thị Bích")
    client = back_office_client(officer.user)
    data = {"national_id": national_id or person.national_id, "full_name": name, "checked_in_person": checked}
    response = client.post(URL, data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert "<script>" not in response.content.decode()
    person.refresh_from_db()
    assert person.assurance_level == 1


@pytest.mark.parametrize("roles", [("caseworker",), ("decider", "agency_admin"), ()])
def test_officers_without_identity_verify_are_refused(roles) -> None:  # type: ignore[no-untyped-def]
    officer = make_officer(roles=roles)
    person = _unverified()
    client = back_office_client(officer.user)
    assert client.get(URL).status_code == 403
    name = str(person.user.full_name)
    data = {"national_id": person.national_id, "full_name": name, "checked_in_person": "on"}
    assert client.post(URL, data).status_code == 403
    person.refresh_from_db()
    assert person.assurance_level == 1
