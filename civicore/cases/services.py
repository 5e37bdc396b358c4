"""Writes for cases: open on submission, then move through the service's workflow.

Each move checks three things: the workflow allows it from the current state, the actor holds
the permission the transition's role maps to (civicore.agencies.permissions), and an officer
belongs to the case's agency. The SLA clock stops while the citizen is asked for more information.
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.applications.models import Application
from civicore.audit import services as audit
from civicore.cases.models import Case, CaseEvent
from civicore.core import jobs
from civicore.core.errors import Conflict, PermissionDenied, ValidationFailed
from civicore.core.workdays import add_working_days, working_days_between
from civicore.insights import events as insights
from civicore.payments import selectors as payment_selectors

MAX_MESSAGE = 4000


class TransitionNotAllowed(Conflict):
    """This action is not possible in the case's current state."""

    code = "transition_not_allowed"


def case_open(*, application: Application) -> Case:
    case, opened = case_build(application=application)
    case.save(force_insert=True)
    opened.save(force_insert=True)
    return case


def case_build(*, application: Application) -> tuple[Case, CaseEvent]:
    """The case a submitted application opens, with its SLA due date, and its first event: not
    yet saved, for `case_open` or a filing that writes all its rows in one statement."""
    version = application.service_version
    opened = application.submitted_at or timezone.now()
    case = Case(
        application=application,
        agency=application.service.agency,
        opened_at=opened,
        due_at=add_working_days(opened, version.sla_working_days),
    )
    filer = (
        application.applicant if application.filed_by_id == application.applicant_id else application.filed_by
    )
    return case, CaseEvent(case=case, kind=CaseEvent.Kind.OPENED, actor=filer.user)


def _transition(case: Case, name: str) -> dict[str, Any]:
    workflow = case.application.service_version.definition["workflow"]
    for transition in workflow["transitions"]:
        if transition["name"] == name:
            return dict(transition)
    raise TransitionNotAllowed(_("This service's workflow has no such step."))


def _check(case: Case, name: str, *, officer: Officer | None) -> dict[str, Any]:
    transition = _transition(case, name)
    if officer is not None:
        if officer.agency_id != case.agency_id:
            raise PermissionDenied(_("This case belongs to another agency."))
        needed = permissions.transition_permission(transition["role"])
        if needed is None or not permissions.has_perm(officer, needed):
            raise PermissionDenied(
                _("Your roles do not allow this step."),
                code="role_not_allowed",
                details={"permission": needed},
            )
    elif transition["role"] != "applicant":
        raise PermissionDenied(_("Only an officer may take this step."))
    if case.state not in transition["from"]:
        raise TransitionNotAllowed(
            _("This action is not possible while the case is '%(state)s'.")
            % {"state": case.get_state_display()}
        )
    return transition


def officer_steps(case: Case, officer: Officer) -> set[str]:
    """The names of the workflow steps the officer's roles allow on this case (whatever its
    state), so pages offer only what the officer may do."""
    workflow = case.application.service_version.definition["workflow"]
    allowed = set()
    for transition in workflow["transitions"]:
        needed = permissions.transition_permission(transition["role"])
        if (
            needed is not None
            and officer.agency_id == case.agency_id
            and permissions.has_perm(officer, needed)
        ):
            allowed.add(transition["name"])
    return allowed


def _locked(case: Case) -> Case:
    return (
        Case.objects.select_for_update()
        .select_related("application__service_version", "agency")
        .get(pk=case.pk)
    )


def _message(text: str, *, required: bool) -> str:
    text = (text or "").strip()
    if required and not text:
        raise ValidationFailed(
            _("Write a message."), code="message_required", details={"message": _("Required.")}
        )
    if len(text) > MAX_MESSAGE:
        raise ValidationFailed(
            _("The message is too long."), code="message_too_long", details={"message": _("Too long.")}
        )
    return text


def _notify_applicant(case: Case, subject: str, body: str) -> None:
    from civicore.notify.services import notification_send

    application = case.application
    notification_send(
        user=application.applicant.user,
        subject=subject,
        body=body,
        link=f"/applications/{application.public_id}/",
    )


def _move(
    case: Case, transition: dict[str, Any], *, actor: Any, kind: str, message: str = "", acting: Any = None
) -> None:
    from civicore.organisations.services import acted_for

    case.state = transition["to"]
    CaseEvent.objects.create(case=case, kind=kind, actor=actor, message=message)
    audit.record(
        actor=actor,
        action=f"case.{transition['name']}",
        subject=case,
        person=case.application.applicant,
        agency=case.agency,
        details={"state": case.state, **acted_for(acting)},
    )


@transaction.atomic
def case_claim(*, case: Case, officer: Officer) -> Case:
    case = _locked(case)
    transition = _check(case, "claim", officer=officer)
    case.assignee = officer
    _move(case, transition, actor=officer.user, kind=CaseEvent.Kind.CLAIMED)
    case.save(update_fields=["state", "assignee"])
    return case


@transaction.atomic
def case_request_info(*, case: Case, officer: Officer, message: str) -> Case:
    case = _locked(case)
    transition = _check(case, "request_info", officer=officer)
    message = _message(message, required=True)
    case.paused_at = timezone.now()
    _move(case, transition, actor=officer.user, kind=CaseEvent.Kind.INFO_REQUESTED, message=message)
    case.save(update_fields=["state", "paused_at"])
    reference = case.application.reference
    _notify_applicant(
        case,
        _("More information needed for %(ref)s") % {"ref": reference},
        _("The agency asks: %(message)s") % {"message": message},
    )
    return case


def _answering_for(case: Case, user: Any) -> Any:
    """The business on whose behalf `user` answers (None: the applicant answering for
    themselves), or 403."""
    from civicore.organisations import selectors as organisation_selectors

    application = case.application
    if application.organisation_id is None:
        if application.applicant.user_id != user.pk:
            raise PermissionDenied(_("Only the applicant may answer."))
        return None
    person = getattr(user, "person", None)
    organisation = application.organisation
    if person is None or organisation is None:
        raise PermissionDenied(_("Only the applicant may answer."))
    organisation_selectors.require_grant(
        person=person,
        organisation=organisation,
        service=application.service,
        ability=organisation_selectors.FILE,
    )
    return organisation


@transaction.atomic
def case_provide_info(
    *, case: Case, applicant_user: Any, message: str, uploads: list[tuple[str, UploadedFile]] | None = None
) -> Case:
    """The citizen answers an information request; the case resumes and its due date moves
    by the working days it waited. For a business's application, anyone holding a current
    `file` grant for its service may answer on the business's behalf."""
    from civicore.applications.services import document_attach

    case = _locked(case)
    organisation = _answering_for(case, applicant_user)
    transition = _check(case, "provide_info", officer=None)
    message = _message(message, required=not uploads)
    for requirement, upload in uploads or []:
        document_attach(
            application=case.application, requirement=requirement, upload=upload, during="info_request"
        )
    if case.paused_at is not None:
        waited = working_days_between(case.paused_at, timezone.now())
        if waited > 0:
            case.due_at = add_working_days(case.due_at, waited)
        case.paused_at = None
    _move(
        case,
        transition,
        actor=applicant_user,
        kind=CaseEvent.Kind.INFO_PROVIDED,
        message=message,
        acting=organisation,
    )
    case.save(update_fields=["state", "paused_at", "due_at"])
    return case


@transaction.atomic
def case_approve(*, case: Case, officer: Officer, reason: str = "") -> Case:
    case = _locked(case)
    transition = _check(case, "approve", officer=officer)
    fee = payment_selectors.fee_status(application=case.application)
    if fee is not None and fee.blocks_decision:
        raise TransitionNotAllowed(
            _("The fee due at submission has not been paid: the application can be approved once it is."),
            code="fee_unpaid",
        )
    case.decision_reason = _message(reason, required=False)
    case.closed_at = timezone.now()
    _move(case, transition, actor=officer.user, kind=CaseEvent.Kind.APPROVED, message=case.decision_reason)
    case.save(update_fields=["state", "decision_reason", "closed_at"])
    insights.case_decided(case)
    jobs.enqueue("credentials.issue", application_id=case.application_id)
    _notify_applicant(
        case,
        _("Application %(ref)s approved") % {"ref": case.application.reference},
        _("Your application was approved. Your signed document will be ready to download shortly."),
    )
    return case


@transaction.atomic
def case_reject(*, case: Case, officer: Officer, reason: str) -> Case:
    case = _locked(case)
    transition = _check(case, "reject", officer=officer)
    case.decision_reason = _message(reason, required=True)
    case.closed_at = timezone.now()
    _move(case, transition, actor=officer.user, kind=CaseEvent.Kind.REJECTED, message=case.decision_reason)
    case.save(update_fields=["state", "decision_reason", "closed_at"])
    insights.case_decided(case)
    # A fee already paid for a rejected application is proposed for refund to the agency's cashiers.
    jobs.enqueue("payments.propose_refund", application_id=case.application_id, reason=case.decision_reason)
    _notify_applicant(
        case,
        _("Application %(ref)s rejected") % {"ref": case.application.reference},
        _("Your application was rejected. Reason: %(reason)s") % {"reason": case.decision_reason},
    )
    return case


OFFICER_ACTIONS = {
    "claim": lambda case, officer, message: case_claim(case=case, officer=officer),
    "request_info": lambda case, officer, message: case_request_info(
        case=case, officer=officer, message=message
    ),
    "approve": lambda case, officer, message: case_approve(case=case, officer=officer, reason=message),
    "reject": lambda case, officer, message: case_reject(case=case, officer=officer, reason=message),
}
