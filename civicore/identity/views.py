"""The citizen's own pages: the profile (every item with its value, source, verification date
and history, and forms to declare the items no agency holds and to correct contact details),
their active sessions, and the step-up pages a service that needs more assurance shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from allauth.account.internal.flows.reauthentication import suspend_request
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from civicore.core.errors import NotFound
from civicore.identity import items as item_registry
from civicore.identity.middleware import second_factor_reauthentication_url
from civicore.identity.models import Person
from civicore.identity.selectors import (
    ProfileRow,
    person_for_user,
    profile_page,
    second_factor_types,
    service_assurance,
    user_sessions,
)
from civicore.identity.services import (
    AssuranceLevelTooLow,
    FreshSecondFactorRequired,
    InvalidItemValues,
    ItemNotDeclarable,
    assurance_require,
    profile_item_declare,
    user_session_end,
    user_sessions_end_others,
)

if TYPE_CHECKING:
    from civicore.catalogue.models import ServiceVersion

FORM_PREFIX = "value"


def _form(
    row: ProfileRow, *, posted: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    if not row.can_edit:
        return []
    fields = row.definition.type.form_fields(
        prefix=FORM_PREFIX,
        label=row.definition.label,
        value=row.item.value if row.item else None,
        errors=errors or {},
    )
    for index, f in enumerate(fields):
        f["id"] = f"{row.key}-{f['name'].replace('.', '-')}"
        if index == 0 and row.definition.help:
            f["help"] = str(row.definition.help)
        if posted is not None:
            f["value"] = posted.get(f["name"], "")
    return fields


def _item_context(row: ProfileRow, **form: Any) -> dict[str, Any]:
    errors = form.get("errors") or {}
    return {"row": row, "fields": _form(row, **form), "errors": dict(errors)}


def _person(request: HttpRequest) -> Person | None:
    return person_for_user(request.user)  # type: ignore[arg-type]


@login_required
@require_GET
def profile(request: HttpRequest) -> HttpResponse:
    person = _person(request)
    if person is None:
        return render(request, "identity/profile.html", {"person": None, "entries": []})
    entries = [_item_context(row) for row in profile_page(person=person)]
    return render(request, "identity/profile.html", {"person": person, "entries": entries})


@login_required
@require_POST
def profile_item_update(request: HttpRequest, key: str) -> HttpResponse:
    person = _person(request)
    if person is None:
        raise DjangoPermissionDenied(_("Your account is not linked to a citizen profile."))
    try:
        definition = item_registry.get(key)
    except item_registry.UnknownItem as exc:
        raise Http404(_("There is no profile item with this name.")) from exc
    htmx = request.headers.get("HX-Request") == "true"
    errors: dict[str, str] = {}
    try:
        profile_item_declare(
            person=person, key=key, value=definition.type.from_form(request.POST, prefix=FORM_PREFIX)
        )
    except InvalidItemValues as exc:
        errors = exc.field_errors.get(key) or {"": exc.message}
    except ItemNotDeclarable as exc:
        if not htmx:
            raise DjangoPermissionDenied(exc.message) from exc
        # An agency took the item over since the page was drawn: show why the form is gone.
        row = next(row for row in profile_page(person=person) if row.key == key)
        return render(
            request, "identity/_item.html", {**_item_context(row), "refused": exc.message, "focus": True}
        )
    if not errors and not htmx:
        messages.success(request, _("Saved: %(item)s.") % {"item": definition.label})
        return redirect(reverse("identity:profile") + f"#item-{key}")
    rows = profile_page(person=person)
    entries = [
        _item_context(row, posted=request.POST, errors=errors)
        if row.key == key and errors
        else _item_context(row)
        for row in rows
    ]
    if htmx:
        entry = next(e for e in entries if e["row"].key == key)
        # htmx swaps only 2xx answers, so a refused value still comes back as 200 with its errors.
        return render(request, "identity/_item.html", {**entry, "saved": not errors, "focus": True})
    return render(request, "identity/profile.html", {"person": person, "entries": entries}, status=422)


def step_up_response(
    request: HttpRequest, *, person: Person, version: ServiceVersion | None
) -> HttpResponse | None:
    """None when the person and this login meet what the service version asks
    (see selectors.service_assurance). Otherwise the answer to send instead: a page explaining
    how to get a verified identity (403), or allauth's re-authentication with a second factor,
    which then replays this very request; or, without any second factor, how to set one up."""
    requirement = service_assurance(version)
    try:
        assurance_require(
            request=request,
            person=person,
            level=requirement.level,
            fresh_minutes=requirement.fresh_second_factor_minutes,
        )
    except AssuranceLevelTooLow:
        context = {
            "person": person,
            "required_level": requirement.level,
            "service": version.service if version is not None else None,
        }
        return render(request, "identity/assurance_required.html", context, status=403)
    except FreshSecondFactorRequired:
        url = second_factor_reauthentication_url(second_factor_types(person.user))
        if url is None:
            context = {
                "minutes": requirement.fresh_second_factor_minutes,
                "service": version.service if version is not None else None,
            }
            return render(request, "identity/second_factor_required.html", context, status=403)
        messages.info(
            request,
            _(
                "This service asks you to confirm it is you with your second factor. "
                "You will then continue where you were."
            ),
        )
        return suspend_request(request, url)
    return None


@login_required
@require_GET
def sessions(request: HttpRequest) -> HttpResponse:
    rows = user_sessions(user=request.user, current_session_key=request.session.session_key)  # type: ignore[arg-type]
    others = sum(1 for row in rows if not row.current)
    return render(request, "identity/sessions.html", {"sessions": rows, "others": others})


@login_required
@require_POST
def session_end(request: HttpRequest, session_id: int) -> HttpResponse:
    try:
        user_session_end(
            user=request.user,  # type: ignore[arg-type]
            session_id=session_id,
            current_session_key=request.session.session_key,
        )
    except NotFound as exc:
        raise Http404(exc.message) from exc
    messages.success(request, _("The session was ended. That browser is now logged out."))
    return redirect("identity:sessions")


@login_required
@require_POST
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    count = user_sessions_end_others(
        user=request.user,  # type: ignore[arg-type]
        current_session_key=request.session.session_key,
    )
    messages.success(
        request,
        ngettext("%(count)d other session was ended.", "%(count)d other sessions were ended.", count)
        % {"count": count},
    )
    return redirect("identity:sessions")
