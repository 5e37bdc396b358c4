"""Portal pages for businesses under /business/: choose whom you act for, register a business
you represent, answer invitations, see the business's applications your roles cover, and, as
an admin, manage its members and their roles. Every change goes through the services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from civicore.applications import selectors as application_selectors
from civicore.catalogue.models import Service
from civicore.catalogue.selectors import service_list
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from civicore.identity.models import Person
from civicore.identity.selectors import person_for_user
from civicore.organisations import acting, selectors, services
from civicore.organisations.models import Organisation, RoleGrant
from civicore.organisations.numbers import InvalidRegistrationNumber

DEFAULT_GRANT_DAYS = 90
APPLICATIONS_SHOWN = 100


def _person(request: HttpRequest) -> Person:
    person = person_for_user(request.user)  # type: ignore[arg-type]
    if person is None:
        raise DjangoPermissionDenied(_("Only citizens with a verified identity can act for a business."))
    return person


def _administered(request: HttpRequest, registration_number: str) -> tuple[Person, Organisation]:
    person = _person(request)
    try:
        return person, selectors.organisation_admin(person=person, registration_number=registration_number)
    except InvalidRegistrationNumber as exc:
        raise Http404(exc.message) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc


def _int(raw: str | None) -> int:
    if raw is None or not raw.isdigit() or len(raw) > 18:
        raise Http404(_("Not found."))
    return int(raw)


def _run(request: HttpRequest, action: Callable[[], object], success: str) -> bool:
    """One service call; a refusal is shown as a message on the page the person returns to."""
    try:
        action()
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return False
    messages.success(request, success)
    return True


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    person = _person(request)
    context = {
        "memberships": list(selectors.memberships_of(person=person)),
        "invitations": list(selectors.invitations_of(person=person)),
        "acting": acting.shown_in_header(request),
    }
    return render(request, "organisations/home.html", context)


@login_required
@require_POST
def act_for(request: HttpRequest) -> HttpResponse:
    person = _person(request)
    try:
        organisation = acting.act_for(
            request, person=person, registration_number=request.POST.get("organisation", "")[:40]
        )
    except (InvalidRegistrationNumber, PermissionDenied) as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    if organisation is None:
        messages.success(request, _("You now act for yourself."))
        return redirect("organisations:home")
    messages.success(request, _("You now act for %(name)s.") % {"name": organisation.name})
    return redirect("organisations:applications")


@login_required
@require_POST
def register(request: HttpRequest) -> HttpResponse:
    person = _person(request)
    number = request.POST.get("registration_number", "")[:40]
    try:
        organisation = services.organisation_register(person=person, registration_number=number)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("organisations:home")
    messages.success(
        request,
        _("%(name)s is registered and you are its administrator.") % {"name": organisation.name},
    )
    return redirect("organisations:members", registration_number=organisation.registration_number)


@login_required
@require_POST
def invitation(request: HttpRequest, membership_id: int) -> HttpResponse:
    person = _person(request)
    try:
        membership = selectors.invitation_of(person=person, membership_id=membership_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    if request.POST.get("action") == "decline":
        _run(
            request,
            lambda: services.member_decline(person=person, membership=membership),
            _("You declined the invitation."),
        )
    else:
        _run(
            request,
            lambda: services.member_accept(person=person, membership=membership),
            _("You are now a member of %(name)s.") % {"name": membership.organisation.name},
        )
    return redirect("organisations:home")


@login_required
@require_GET
def applications(request: HttpRequest) -> HttpResponse:
    """The acting business's applications, for the services the person's grants cover."""
    person = _person(request)
    organisation = acting.acting_organisation(request)
    if organisation is None:
        messages.info(request, _("Choose a business to act for first."))
        return redirect("organisations:home")
    visible = selectors.visible_services(person=person, organisation=organisation)
    rows = list(
        application_selectors.applications_of(person=person, organisation=organisation).order_by(
            "-created_at", "-id"
        )[:APPLICATIONS_SHOWN]
    )
    context = {
        "organisation": organisation,
        "applications": rows,
        "sees_nothing": visible is not None and not visible,
    }
    return render(request, "organisations/applications.html", context)


def _expiry(raw: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationFailed(_("Enter the last day of the role as a date."), code="invalid_date") from exc
    end_of_day = dt.datetime.combine(day, dt.time(23, 59, 59))
    return timezone.make_aware(end_of_day, timezone.get_current_timezone())


def _members_context(person: Person, organisation: Organisation) -> dict[str, Any]:
    today = timezone.localdate()
    return {
        "organisation": organisation,
        "me": person,
        "rows": selectors.members_page(organisation=organisation),
        "services": list(service_list().order_by("name_vi", "code")),
        "permissions": RoleGrant.Permission.choices,
        "default_expiry": (today + dt.timedelta(days=DEFAULT_GRANT_DAYS)).isoformat(),
        "min_expiry": today.isoformat(),
        "max_expiry": (today + dt.timedelta(days=365)).isoformat(),
        "now": timezone.now(),
    }


@login_required
@require_GET
def members(request: HttpRequest, registration_number: str) -> HttpResponse:
    person, organisation = _administered(request, registration_number)
    return render(request, "organisations/members.html", _members_context(person, organisation))


def _back(organisation: Organisation) -> HttpResponse:
    return redirect("organisations:members", registration_number=organisation.registration_number)


@login_required
@require_POST
def member_invite(request: HttpRequest, registration_number: str) -> HttpResponse:
    person, organisation = _administered(request, registration_number)
    national_id = request.POST.get("national_id", "")[:40]
    is_admin = request.POST.get("is_admin") == "1"
    _run(
        request,
        lambda: services.member_invite(
            admin=person, organisation=organisation, national_id=national_id, is_admin=is_admin
        ),
        _("The invitation was sent. The person becomes a member when they accept it."),
    )
    return _back(organisation)


@login_required
@require_POST
def member_change(request: HttpRequest, registration_number: str, membership_id: int) -> HttpResponse:
    person, organisation = _administered(request, registration_number)
    try:
        membership = selectors.membership_in(organisation=organisation, membership_id=membership_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    action = request.POST.get("action", "")
    changes: dict[str, tuple[Callable[[], object], str]] = {
        "remove": (
            lambda: services.member_remove(admin=person, organisation=organisation, membership=membership),
            _("The member was removed and their roles revoked."),
        ),
        "make_admin": (
            lambda: services.admin_grant(admin=person, organisation=organisation, membership=membership),
            _("The member is now an administrator."),
        ),
        "remove_admin": (
            lambda: services.admin_revoke(admin=person, organisation=organisation, membership=membership),
            _("The member is no longer an administrator."),
        ),
    }
    if action not in changes:
        raise Http404(_("Not found."))
    call, success = changes[action]
    _run(request, call, success)
    return _back(organisation)


@login_required
@require_POST
def grant_add(request: HttpRequest, registration_number: str) -> HttpResponse:
    person, organisation = _administered(request, registration_number)
    try:
        membership = selectors.membership_in(
            organisation=organisation, membership_id=_int(request.POST.get("membership"))
        )
    except NotFound as exc:
        raise Http404(exc.message) from exc
    code = request.POST.get("service", "")[:80]
    service = None
    if code:
        service = Service.objects.filter(code=code).first()
        if service is None:
            messages.error(request, _("Choose a service from the list."))
            return _back(organisation)
    permission = request.POST.get("permission", "")[:10]
    expires = request.POST.get("expires_on", "")[:10]
    _run(
        request,
        lambda: services.role_grant(
            admin=person,
            organisation=organisation,
            membership=membership,
            permission=permission,
            service=service,
            expires_at=_expiry(expires),
        ),
        _("The role was granted."),
    )
    return _back(organisation)


@login_required
@require_POST
def grant_revoke(request: HttpRequest, registration_number: str, grant_id: int) -> HttpResponse:
    person, organisation = _administered(request, registration_number)
    try:
        grant = selectors.grant_in(organisation=organisation, grant_id=grant_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    _run(
        request,
        lambda: services.role_revoke(admin=person, organisation=organisation, grant=grant),
        _("The role was revoked."),
    )
    return _back(organisation)
