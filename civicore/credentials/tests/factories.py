"""Approved applications built straight with the ORM, so credentials tests do not depend on
the filing and case workflows."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.utils import timezone

from civicore.agencies.models import Agency
from civicore.agencies.tests.factories import AgencyFactory
from civicore.applications.models import Application
from civicore.cases.models import Case
from civicore.catalogue.models import Service, ServiceVersion
from civicore.identity.models import Person
from civicore.identity.tests.factories import make_citizen

TITLE_VI = "Trích lục khai sinh"
TITLE_EN = "Birth registration extract"

DEFINITION: dict[str, Any] = {
    "sla_working_days": 5,
    "result": {
        "title": {"vi": TITLE_VI, "en": TITLE_EN},
        "fields": [
            {"label": {"vi": "Họ và tên", "en": "Full name"}, "value": "{answers.child_full_name}"},
            {"label": {"vi": "Người yêu cầu", "en": "Requested by"}, "value": "{applicant.full_name}"},
            {"label": {"vi": "Ngày quyết định", "en": "Decided on"}, "value": "{decided_at}"},
            {"label": {"vi": "Số hồ sơ", "en": "Reference"}, "value": "{reference}"},
        ],
    },
}

_counter = itertools.count(1)


def make_service(agency: Agency | None = None, definition: dict[str, Any] | None = None) -> ServiceVersion:
    agency = agency or AgencyFactory(
        name_vi="Ủy ban nhân dân xã An Bình", name_en="An Binh Commune People's Committee"
    )
    n = next(_counter)
    service = Service.objects.create(
        code=f"birth-extract-{n}", agency=agency, name_vi="Cấp trích lục khai sinh", name_en="Birth extract"
    )
    version = ServiceVersion.objects.create(
        service=service, number=1, definition=definition or DEFINITION, checksum=f"{n:064d}"
    )
    service.current_version = version
    service.save(update_fields=["current_version"])
    return version


def make_application(
    *,
    applicant: Person | None = None,
    version: ServiceVersion | None = None,
    state: str = Case.State.APPROVED,
    answers: dict[str, Any] | None = None,
) -> Application:
    """A submitted application whose case is in `state` (approved and closed by default)."""
    version = version or make_service()
    applicant = applicant or make_citizen()
    now = timezone.now()
    application = Application.objects.create(
        reference=f"AB-2026-{next(_counter):06d}",
        applicant=applicant,
        service=version.service,
        service_version=version,
        status=Application.Status.SUBMITTED,
        answers=answers if answers is not None else {"child_full_name": "Trần Thị Ngọc Ánh"},
        submitted_at=now - dt.timedelta(days=3),
    )
    Case.objects.create(
        application=application,
        agency=version.service.agency,
        state=state,
        opened_at=now - dt.timedelta(days=3),
        due_at=now + dt.timedelta(days=4),
        closed_at=now if state in Case.CLOSED_STATES else None,
    )
    return application
