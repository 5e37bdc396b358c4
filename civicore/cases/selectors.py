"""Reads of cases for officers. An officer holding case.view sees their own agency's cases;
reading one that holds personal data writes an audit entry."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.applications.models import ApplicationDocument
from civicore.audit import services as audit
from civicore.cases.models import Case
from civicore.core.errors import NotFound, PermissionDenied

SORTS = {
    "due": ("due_at", "id"),
    "-due": ("-due_at", "-id"),
    "opened": ("opened_at", "id"),
    "-opened": ("-opened_at", "-id"),
}


def _may_view(officer: Officer) -> Officer:
    return permissions.require(
        officer, permissions.CASE_VIEW, message=_("Your roles do not include working on cases.")
    )


def inbox(
    *, officer: Officer, state: str = "", assigned: str = "", overdue: bool = False, q: str = ""
) -> QuerySet[Case]:
    _may_view(officer)
    qs = Case.objects.filter(agency_id=officer.agency_id).select_related(
        "application", "application__service", "assignee__user"
    )
    if state == "open":
        qs = qs.exclude(state__in=Case.CLOSED_STATES)
    elif state in Case.State.values:
        qs = qs.filter(state=state)
    if assigned == "me":
        qs = qs.filter(assignee=officer)
    elif assigned == "none":
        qs = qs.filter(assignee__isnull=True)
    if overdue:
        qs = qs.filter(due_at__lt=timezone.now()).exclude(state__in=Case.CLOSED_STATES)
    q = q.strip()[:100]
    if q:
        qs = qs.filter(Q(application__reference__icontains=q) | Q(application__service__name_vi__icontains=q))
    return qs


def case_for_officer(*, officer: Officer, case_id: int, audit_read: bool = True) -> Case:
    """The case, if the officer's agency handles it. Another agency's case is 403, a case that
    does not exist 404; an officer without case.view is 403. Reading it is audited as an access
    to the applicant's data."""
    _may_view(officer)
    case = (
        Case.objects.select_related(
            "application__applicant__user",
            "application__service",
            "application__service_version",
            "application__organisation",
            "agency",
        )
        .filter(pk=case_id)
        .first()
    )
    if case is None:
        raise NotFound(_("Case not found."))
    if case.agency_id != officer.agency_id:
        raise PermissionDenied(_("This case belongs to another agency."))
    if audit_read:
        audit.record(
            actor=officer.user,
            action="case.view",
            subject=case,
            person=case.application.applicant,
            agency=officer.agency,
        )
    return case


def document_for_officer(*, officer: Officer, case: Case, document_id: Any) -> ApplicationDocument:
    """A supporting document of a case the officer may see; opening it is audited."""
    document = ApplicationDocument.objects.filter(public_id=document_id, application=case.application).first()
    if document is None:
        raise NotFound(_("Document not found."))
    audit.record(
        actor=officer.user,
        action="document.view",
        subject=document,
        person=case.application.applicant,
        agency=officer.agency,
        details={"case": case.pk, "requirement": document.requirement},
    )
    return document


def events(case: Case) -> Any:
    return case.events.select_related("actor").all()
