"""The demo loader's consultations: one open with ideas, one answered, and loading twice adds none."""

from __future__ import annotations

import pytest

from civicore.agencies.tests.factories import AgencyFactory
from civicore.consultations import demo
from civicore.consultations.models import Consultation
from civicore.identity.tests.factories import UserFactory, make_citizen

pytestmark = pytest.mark.django_db


def test_the_demo_has_an_open_and_an_answered_consultation() -> None:
    agency = AgencyFactory()
    citizens = [make_citizen().user for _ in range(3)]

    def make_user(email: str, name: str) -> object:
        return UserFactory(email=email, full_name=name)

    logins = demo.load(agency=agency, make_user=make_user, citizens=citizens)
    open_one = Consultation.objects.get(status="open")
    answered = Consultation.objects.get(status="responded")
    assert open_one.accepts_contributions and open_one.ideas.count() == 2
    assert answered.response_actions and answered.ideas.filter(status="accepted").count() == 1
    assert demo.load(agency=agency, make_user=lambda e, n: logins[0], citizens=citizens) == logins
    assert Consultation.objects.count() == 2
