from __future__ import annotations

from typing import Any

import factory

from civicore.agencies.models import Agency, Officer
from civicore.identity.tests.factories import UserFactory


class AgencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agency

    code = factory.Sequence(lambda n: f"agency-{n}")
    name_vi = factory.Sequence(lambda n: f"Cơ quan {n}")
    name_en = factory.Sequence(lambda n: f"Agency {n}")


def make_officer(agency: Agency | None = None, **kwargs: Any) -> Officer:
    return Officer.objects.create(user=UserFactory(), agency=agency or AgencyFactory(), **kwargs)
