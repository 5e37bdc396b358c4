"""Back-office pages where an agency's supervisors manage their agency's systems: what the
system is called, where it is reached, its public keys and the changes it is told about. Access
rights are shown but granted only by platform administrators."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied
from civicore.registry import selectors, services
from civicore.registry.forms import AgencyApplicationForm
from civicore.registry.models import AgencyApplication


def _supervisor(request: HttpRequest) -> Officer:
    try:
        return permissions.officer_with_perm(request.user, permissions.SYSTEMS_MANAGE)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(
            _("Only officers allowed to manage the agency's systems may do this.")
        ) from exc


def _item_labels() -> dict[str, str]:
    from civicore.identity.models import ProfileItem

    return {str(value): str(label) for value, label in ProfileItem.Key.choices}


@login_required
@require_http_methods(["GET"])
def application_list(request: HttpRequest) -> HttpResponse:
    officer = _supervisor(request)
    return render(
        request,
        "registry/list.html",
        {"officer": officer, "applications": selectors.applications_for_agency(agency=officer.agency)},
    )


def _initial(app: AgencyApplication) -> dict[str, Any]:
    return {
        "name_vi": app.name_vi,
        "name_en": app.name_en,
        "description_vi": app.description_vi,
        "description_en": app.description_en,
        "redirect_uris": "\n".join(app.redirect_uris),
        "post_logout_redirect_uris": "\n".join(app.post_logout_redirect_uris),
        "require_par": app.require_par,
        "jwks": json.dumps(app.jwks, indent=2) if app.jwks else "",
        "jwks_url": app.jwks_url,
        "webhook_url": app.webhook_url,
        "payment_events": app.payment_events,
        "active": app.active,
    }


def _save(
    request: HttpRequest, officer: Officer, app: AgencyApplication | None
) -> tuple[AgencyApplicationForm, list[str], AgencyApplication | None]:
    form = AgencyApplicationForm(request.POST, creating=app is None)
    subscribed = request.POST.getlist("subscribed_items")
    if not form.is_valid():
        return form, subscribed, None
    fields = {k: v for k, v in form.cleaned_data.items() if k != "slug"}
    try:
        if app is None:
            saved = services.agency_application_create_by_officer(
                officer=officer, slug=form.cleaned_data["slug"], **fields
            )
        else:
            saved = services.agency_application_update_by_officer(
                officer=officer, application=app, subscribed_items=subscribed, **fields
            )
    except ApplicationError as exc:
        for field, message in (exc.details or {}).items():
            form.add_error(field if field in form.fields else None, message)
        if not exc.details:
            form.add_error(None, exc.message)
        return form, subscribed, None
    return form, subscribed, saved


@login_required
@require_http_methods(["GET", "POST"])
def application_create(request: HttpRequest) -> HttpResponse:
    officer = _supervisor(request)
    form = AgencyApplicationForm(creating=True)
    if request.method == "POST":
        form, _subscribed, saved = _save(request, officer, None)
        if saved is not None:
            messages.success(
                request, _("The system was registered. Platform administrators grant its access.")
            )
            return redirect("registry:detail", client_id=saved.client_id)
    return render(request, "registry/form.html", {"officer": officer, "form": form, "application": None})


@login_required
@require_http_methods(["GET", "POST"])
def application_detail(request: HttpRequest, client_id: str) -> HttpResponse:
    officer = _supervisor(request)
    try:
        app = selectors.application_for_officer(officer=officer, client_id=client_id)
    except NotFound as exc:
        raise Http404 from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(str(exc)) from exc
    form = AgencyApplicationForm(initial=_initial(app), creating=False)
    subscribed = list(app.subscribed_items)
    if request.method == "POST":
        form, subscribed, saved = _save(request, officer, app)
        if saved is not None:
            messages.success(request, _("Your changes were saved."))
            return redirect("registry:detail", client_id=saved.client_id)
    labels = _item_labels()
    context = {
        "officer": officer,
        "form": form,
        "application": app,
        "allowed": [(key, labels.get(key, key), key in subscribed) for key in app.allowed_items],
        "purposes": app.purposes,
        "messages_log": selectors.recent_messages(application=app),
    }
    return render(request, "registry/form.html", context)
