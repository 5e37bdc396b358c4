"""Back-office API: an officer's case inbox and the steps of a case."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Router, Schema

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.agencies.selectors import officer_for_user
from civicore.cases import selectors, services
from civicore.core.errors import PermissionDenied
from civicore.core.pagination import paginate
from civicore.core.schemas import errors

router = Router(tags=["cases"])


class CaseSummary(Schema):
    id: int
    reference: str | None
    service: str
    state: str
    assignee: str | None
    opened_at: dt.datetime
    due_at: dt.datetime


class CasePage(Schema):
    items: list[CaseSummary]
    next_cursor: str | None


class EventOut(Schema):
    kind: str
    actor: str | None
    message: str
    at: dt.datetime


class CaseOut(CaseSummary):
    applicant_name: str
    answers: dict[str, Any]
    prefilled: dict[str, Any]
    decision_reason: str
    events: list[EventOut]


class ActionIn(Schema):
    message: str = ""


def _officer(request: HttpRequest) -> Officer:
    officer = officer_for_user(request.user)
    if officer is None:
        raise PermissionDenied(_("Only officers can use the case inbox."), code="not_an_officer")
    return permissions.require(
        officer, permissions.CASE_VIEW, message=_("Your roles do not include working on cases.")
    )


def _summary(case: Any) -> dict[str, Any]:
    return {
        "id": case.pk,
        "reference": case.application.reference,
        "service": case.application.service.code,
        "state": case.state,
        "assignee": str(case.assignee.user) if case.assignee else None,
        "opened_at": case.opened_at,
        "due_at": case.due_at,
    }


def _detail(case: Any) -> dict[str, Any]:
    application = case.application
    return {
        **_summary(case),
        "applicant_name": str(application.applicant.user),
        "answers": application.answers,
        "prefilled": application.prefill,
        "decision_reason": case.decision_reason,
        "events": [
            {"kind": e.kind, "actor": str(e.actor) if e.actor else None, "message": e.message, "at": e.at}
            for e in selectors.events(case)
        ],
    }


@router.get("", response={200: CasePage, **errors(403, 422)}, summary="The officer's agency's cases")
def list_cases(
    request: HttpRequest,
    state: str = "open",
    assigned: Literal["", "me", "none"] = "",
    overdue: bool = False,
    q: str = "",
    sort: Literal["due", "-due", "opened", "-opened"] = "due",
    cursor: str | None = None,
    limit: int = 25,
) -> dict[str, Any]:
    officer = _officer(request)
    qs = selectors.inbox(officer=officer, state=state, assigned=assigned, overdue=overdue, q=q)
    rows, next_cursor = paginate(qs, cursor=cursor, limit=limit, order=selectors.SORTS[sort])
    return {"items": [_summary(c) for c in rows], "next_cursor": next_cursor}


@router.get("/{case_id}", response={200: CaseOut, **errors(403, 404)})
def get_case(request: HttpRequest, case_id: int) -> dict[str, Any]:
    return _detail(selectors.case_for_officer(officer=_officer(request), case_id=case_id))


@router.post(
    "/{case_id}/{action}",
    response={200: CaseOut, **errors(403, 404, 409, 422)},
    summary="claim, request_info, approve or reject",
)
def act(
    request: HttpRequest,
    case_id: int,
    action: Literal["claim", "request_info", "approve", "reject"],
    payload: ActionIn,
) -> dict[str, Any]:
    officer = _officer(request)
    case = selectors.case_for_officer(officer=officer, case_id=case_id, audit_read=False)
    case = services.OFFICER_ACTIONS[action](case, officer, payload.message)
    return _detail(selectors.case_for_officer(officer=officer, case_id=case.pk, audit_read=False))
