"""Officers' named permissions and the roles that bundle them: the one place back-office access
is decided.

A permission is held only through a role from the fixed registry below, so a new officer holds
none until an agency admin grants a role (least privilege). Views, API routers and services ask
`has_perm` / `require` here instead of comparing role names themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from civicore.core.errors import PermissionDenied

if TYPE_CHECKING:
    from civicore.agencies.models import Officer

CASE_VIEW = "case.view"
CASE_DECIDE = "case.decide"
RESULT_ISSUE = "result.issue"
AGENCY_ADMIN = "agency.admin"
SYSTEMS_MANAGE = "systems.manage"
IDENTITY_VERIFY = "identity.verify"
REPORT_HANDLE = "report.handle"
REPORT_TRIAGE = "report.triage"
AI_MANAGE = "ai.manage"
SENSOR_OPERATE = "sensor.operate"
SENSOR_MANAGE = "sensor.manage"
PAYMENT_VIEW = "payment.view"
PAYMENT_REFUND = "payment.refund"
FEEDBACK_VIEW = "feedback.view"
PERFORMANCE_VIEW = "performance.view"
CONSULTATION_MANAGE = "consultation.manage"
CONSULTATION_MODERATE = "consultation.moderate"

PERMISSIONS: dict[str, Promise] = {
    CASE_VIEW: gettext_lazy("View and work on the agency's cases"),
    CASE_DECIDE: gettext_lazy("Take decision steps on cases"),
    RESULT_ISSUE: gettext_lazy("Issue result documents"),
    AGENCY_ADMIN: gettext_lazy("Manage the agency's officers"),
    SYSTEMS_MANAGE: gettext_lazy("Manage the agency's systems"),
    IDENTITY_VERIFY: gettext_lazy("Verify citizens' identity in person (assurance level 2)"),
    REPORT_HANDLE: gettext_lazy("Work on the problem reports routed to the agency"),
    REPORT_TRIAGE: gettext_lazy("Route problem reports that the AI model is unsure of, to any agency"),
    AI_MANAGE: gettext_lazy("Review and activate AI routing models"),
    SENSOR_OPERATE: gettext_lazy("Watch the agency's sensors, work alarms and command its devices"),
    SENSOR_MANAGE: gettext_lazy("Register and provision the agency's devices and edit its sensor rules"),
    PAYMENT_VIEW: gettext_lazy("See the agency's payments and reconcile bank statements"),
    PAYMENT_REFUND: gettext_lazy("Refund the agency's payments"),
    FEEDBACK_VIEW: gettext_lazy("Read citizens' ratings and comments on the agency's services"),
    PERFORMANCE_VIEW: gettext_lazy("See the agency's performance scorecards and dashboards"),
    CONSULTATION_MANAGE: gettext_lazy("Open the agency's consultations and publish official responses"),
    CONSULTATION_MODERATE: gettext_lazy("Moderate ideas and comments in the agency's consultations"),
}


@dataclass(frozen=True)
class Role:
    name: str
    label: Promise
    permissions: frozenset[str]


def _role(name: str, label: Promise, *permissions: str) -> Role:
    unknown = set(permissions) - set(PERMISSIONS)
    if unknown:
        raise ValueError(f"role {name!r} names unknown permissions {sorted(unknown)}")
    return Role(name=name, label=label, permissions=frozenset(permissions))


ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        _role("caseworker", gettext_lazy("Caseworker"), CASE_VIEW),
        _role("decider", gettext_lazy("Decider"), CASE_VIEW, CASE_DECIDE),
        _role("issuer", gettext_lazy("Issuer"), RESULT_ISSUE),
        _role("agency_admin", gettext_lazy("Agency administrator"), AGENCY_ADMIN, SYSTEMS_MANAGE),
        _role("identity_verifier", gettext_lazy("Identity verifier"), IDENTITY_VERIFY),
        _role("report_handler", gettext_lazy("Report handler"), REPORT_HANDLE),
        _role("report_triager", gettext_lazy("Report triage officer"), REPORT_HANDLE, REPORT_TRIAGE),
        _role("ai_steward", gettext_lazy("AI model steward"), AI_MANAGE),
        _role("sensor_operator", gettext_lazy("Sensor operator"), SENSOR_OPERATE),
        _role("sensor_engineer", gettext_lazy("Sensor engineer"), SENSOR_OPERATE, SENSOR_MANAGE),
        _role("cashier", gettext_lazy("Cashier"), PAYMENT_VIEW),
        _role("payments_officer", gettext_lazy("Payments officer"), PAYMENT_VIEW, PAYMENT_REFUND),
        _role("service_quality", gettext_lazy("Service quality officer"), FEEDBACK_VIEW),
        _role("agency_head", gettext_lazy("Agency head"), PERFORMANCE_VIEW, FEEDBACK_VIEW),
        _role(
            "consultation_manager",
            gettext_lazy("Consultation manager"),
            CONSULTATION_MANAGE,
            CONSULTATION_MODERATE,
        ),
        _role("moderator", gettext_lazy("Moderator"), CONSULTATION_MODERATE),
    )
}

# What the `role` of a workflow transition in a service definition requires of an officer.
# "caseworker" steps are the ordinary work on a case; "supervisor" steps are decisions.
# ("applicant" steps are the citizen's and need no officer permission.)
TRANSITION_PERMISSIONS: dict[str, str] = {"caseworker": CASE_VIEW, "supervisor": CASE_DECIDE}


class MissingPermission(PermissionDenied):
    """You do not hold the permission this needs."""

    code = "missing_permission"


def permissions_for(roles: Iterable[str]) -> frozenset[str]:
    """The union of the roles' permissions; names no longer in the registry grant nothing."""
    held: set[str] = set()
    for name in roles:
        role = ROLES.get(name)
        if role is not None:
            held |= role.permissions
    return frozenset(held)


def has_perm(officer: Officer | None, permission: str) -> bool:
    """Fails closed: an inactive officer, or a permission not in the registry, is never held."""
    return (
        officer is not None
        and officer.active
        and permission in PERMISSIONS
        and permission in officer.permissions
    )


def require(
    officer: Officer | None, permission: str, *, message: str = "", code: str | None = None
) -> Officer:
    """The officer, when active and holding `permission`; otherwise a 403 with a stable code."""
    if officer is None or not has_perm(officer, permission):
        raise MissingPermission(
            message or _("Your roles do not allow this."), code=code, details={"permission": permission}
        )
    return officer


def officer_with_perm(user: Any, permission: str, *, message: str = "", code: str | None = None) -> Officer:
    """The logged-in user's active officer membership holding `permission`, or a 403."""
    from civicore.agencies.selectors import officer_for_user

    return require(officer_for_user(user), permission, message=message, code=code)


def transition_permission(role: str) -> str | None:
    """The permission an officer needs for a workflow step with this `role`; None for the
    applicant's own steps. An unknown role requires a permission nobody holds."""
    if role == "applicant":
        return None
    return TRANSITION_PERMISSIONS.get(role, f"unknown:{role}")


def role_choices() -> list[tuple[str, str]]:
    return [(role.name, str(role.label)) for role in ROLES.values()]
