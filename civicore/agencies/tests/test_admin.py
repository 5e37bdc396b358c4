from __future__ import annotations

import pytest

from civicore.agencies.models import Officer
from civicore.agencies.tests.factories import AgencyFactory, back_office_client
from civicore.audit.models import AuditEntry
from civicore.identity.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_platform_staff_appoint_an_agencys_first_admin_through_the_audited_service() -> None:
    staff = UserFactory(is_staff=True, is_superuser=True)
    user = UserFactory()
    agency = AgencyFactory()
    response = back_office_client(staff).post(
        "/admin/agencies/officer/add/",
        {"user": user.pk, "agency": agency.pk, "team": "", "roles": ["agency_admin"], "active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    officer = Officer.objects.get(user=user)
    assert officer.agency == agency and officer.roles == ["agency_admin"]
    entry = AuditEntry.objects.get(action="agency.officer.provision")
    assert entry.actor == staff and entry.details["after"]["roles"] == ["agency_admin"]
