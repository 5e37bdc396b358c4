"""Consultations in each state, officers who run and moderate them, citizens who take part."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from civicore.agencies.models import Agency, Officer
from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.consultations import services
from civicore.consultations.models import Consultation, Idea
from civicore.identity.tests.factories import make_citizen


def make_manager(agency: Agency | None = None) -> Officer:
    return make_officer(agency=agency or AgencyFactory(), roles=("consultation_manager",))


def make_moderator(agency: Agency) -> Officer:
    return make_officer(agency=agency, roles=("moderator",))


def citizen_user(**kwargs: Any) -> Any:
    return make_citizen(**kwargs).user


def make_consultation(
    manager: Officer | None = None,
    *,
    state: str = "open",
    title: str = "Cây xanh trên phố Huế",
    **kwargs: Any,
) -> Consultation:
    """A consultation of the manager's agency, open from yesterday for a month, then moved to `state`."""
    manager = manager or make_manager()
    today = timezone.localdate()
    values: dict[str, Any] = {
        "title": title,
        "question": "Nên trồng loại cây nào trên phố Huế?",
        "description": "Sở muốn nghe ý kiến của người dân.",
        "opens_on": today - dt.timedelta(days=1),
        "closes_on": today + dt.timedelta(days=30),
    }
    values.update(kwargs)
    consultation = services.consultation_create(officer=manager, **values)
    if state in ("open", "closed", "responded"):
        consultation = services.consultation_publish(officer=manager, consultation=consultation)
    if state in ("closed", "responded"):
        consultation = services.consultation_close(officer=manager, consultation=consultation)
    if state == "responded":
        consultation = services.consultation_respond(
            officer=manager, consultation=consultation, text="Cảm ơn.", actions="Trồng cây sao đen."
        )
    return consultation


def make_idea(consultation: Consultation, user: Any = None, **kwargs: Any) -> Idea:
    values: dict[str, Any] = {
        "title": "Trồng cây sao đen",
        "body": "Cây sao đen cho bóng mát và ít gãy cành.",
        "display_name": "Hoa phượng",
    }
    values.update(kwargs)
    return services.idea_post(user=user or citizen_user(), consultation=consultation, **values)


def matrix_objects(w: Any) -> dict[str, Any]:
    """For the authorization matrix: an open consultation of the agency of the officer who holds
    consultation_manager there (`other_agency`), with a document and an idea by another citizen."""
    from civicore.applications.tests.factories import pdf_upload

    manager = w.officers["other_agency"]
    consultation = make_consultation(manager, title="Matrix consultation")
    document = services.consultation_document_add(
        officer=manager, consultation=consultation, title="Map", upload=pdf_upload()
    )
    return {
        "consultation": consultation,
        "consultation_document": document,
        "consultation_idea": make_idea(consultation),
    }
