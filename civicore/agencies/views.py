"""Back-office pages where an agency admin manages their own agency's officers: who they are,
their roles and teams. Every change goes through civicore.agencies.services, which audits it."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from civicore.agencies import permissions, selectors, services
from civicore.agencies.models import Officer
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied


def _admin(request: HttpRequest) -> Officer:
    try:
        return permissions.officer_with_perm(request.user, permissions.AGENCY_ADMIN)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(_("Only the agency's administrators manage its officers.")) from exc


def _target(admin: Officer, officer_id: int) -> Officer:
    try:
        return selectors.officer_of_agency(admin=admin, officer_id=officer_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(str(exc)) from exc


def _done(request: HttpRequest, action: Callable[[], object], success: str) -> HttpResponse:
    """Run one service call; a refusal about the target is a 403, anything else a message."""
    try:
        action()
    except PermissionDenied as exc:
        if exc.code == "other_agency":
            raise DjangoPermissionDenied(exc.message) from exc
        messages.error(request, exc.message)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success)
    return redirect("agencies:officers")


@login_required
@require_GET
def officer_list(request: HttpRequest) -> HttpResponse:
    admin = _admin(request)
    officers = list(selectors.officers_of_agency(agency_id=admin.agency_id))
    rows = [
        {
            "officer": officer,
            "roles": [permissions.ROLES[name] for name in officer.roles if name in permissions.ROLES],
            "grantable": [role for name, role in permissions.ROLES.items() if name not in officer.roles],
            "is_me": officer.pk == admin.pk,
        }
        for officer in officers
    ]
    context = {
        "admin": admin,
        "rows": rows,
        "teams": list(selectors.teams_of_agency(agency_id=admin.agency_id)),
        "role_rows": [
            (
                role.label,
                [
                    (code, label)
                    for code, label in permissions.PERMISSIONS.items()
                    if code in role.permissions
                ],
            )
            for role in permissions.ROLES.values()
        ],
    }
    return render(request, "agencies/officers.html", context)


@login_required
@require_POST
def officer_add(request: HttpRequest) -> HttpResponse:
    admin = _admin(request)
    email = request.POST.get("email", "")[:254]
    return _done(
        request,
        lambda: services.officer_add(admin=admin, email=email),
        _("The officer was added. They have no roles until you grant one."),
    )


@login_required
@require_POST
def officer_role(request: HttpRequest, officer_id: int) -> HttpResponse:
    admin = _admin(request)
    officer = _target(admin, officer_id)
    role = request.POST.get("role", "")[:40]
    if request.POST.get("action") == "revoke":
        return _done(
            request,
            lambda: services.officer_role_revoke(admin=admin, officer=officer, role=role),
            _("The role was revoked."),
        )
    return _done(
        request,
        lambda: services.officer_role_grant(admin=admin, officer=officer, role=role),
        _("The role was granted."),
    )


@login_required
@require_POST
def officer_team(request: HttpRequest, officer_id: int) -> HttpResponse:
    admin = _admin(request)
    officer = _target(admin, officer_id)
    raw = request.POST.get("team", "")
    team = None
    if raw:
        if not raw.isdigit():
            raise Http404(_("Team not found."))
        try:
            team = selectors.team_of_agency(admin=admin, team_id=int(raw))
        except NotFound as exc:
            raise Http404(str(exc)) from exc
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(str(exc)) from exc
    return _done(
        request,
        lambda: services.officer_team_set(admin=admin, officer=officer, team=team),
        _("The team was changed."),
    )


@login_required
@require_POST
def officer_deactivate(request: HttpRequest, officer_id: int) -> HttpResponse:
    admin = _admin(request)
    officer = _target(admin, officer_id)
    return _done(
        request,
        lambda: services.officer_deactivate(admin=admin, officer=officer),
        _("The officer was deactivated."),
    )


@login_required
@require_POST
def team_add(request: HttpRequest) -> HttpResponse:
    admin = _admin(request)
    name = request.POST.get("name", "")[:200]
    return _done(request, lambda: services.team_create(admin=admin, name=name), _("The team was created."))
