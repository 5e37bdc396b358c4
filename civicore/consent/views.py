"""The OAuth endpoints (consent screen and token) and the citizen's consent dashboard.

A request whose client or redirect_uri cannot be trusted is answered with an error page here and
never redirected; once both are known, errors go back to the client as RFC 6749 says.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from civicore.consent import selectors, services
from civicore.consent.models import Consent
from civicore.consent.oauth import UnregisteredRedirectURI, server
from civicore.consent.presentation import item_label, purpose_name
from civicore.core.errors import NotFound
from civicore.core.middleware import CONTENT_SECURITY_POLICY
from civicore.identity.models import Person
from civicore.identity.selectors import person_for_user
from civicore.portal.pagination import paginate_page

PAGE_SIZE = 25
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$")


def _error_page(request: HttpRequest, error: OAuth2Error | None, *, status: int = 400) -> HttpResponse:
    if isinstance(error, InvalidClientError):
        explanation = _(
            "The application that sent you here is not registered with Civicore, or has been switched off."
        )
    elif isinstance(error, UnregisteredRedirectURI):
        explanation = _(
            "The application that sent you here asked us to send you back to an address it has not "
            "registered. To protect your data we stopped here."
        )
    else:
        explanation = _("The application that sent you here made a request that Civicore cannot process.")
    context = {
        "explanation": explanation,
        "error_code": getattr(error, "error", None) or "invalid_request",
        "error_description": getattr(error, "description", "") or "",
    }
    return render(request, "consent/authorize_error.html", context, status=status)


def _oauth_error_response(request: HttpRequest, error: OAuth2Error) -> HttpResponse:
    if error.redirect_uri:
        # Client and redirect_uri are verified: the client hears about the error itself.
        return server.handle_response(*error())
    return _error_page(request, error)


def _content_security_policy(redirect_uri: str) -> str:
    """Let the consent form's redirect reach the client: browsers apply form-action to it."""
    parts = urlsplit(redirect_uri)
    origin = f"{parts.scheme}://{parts.netloc}"
    if not _ORIGIN.match(origin):
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace("form-action 'self'", f"form-action 'self' {origin}")


def _consent_screen(request: HttpRequest, grant: Any, person: Person) -> HttpResponse:
    oauth_request = grant.request
    application = oauth_request.client.application
    items: list[str] = oauth_request.consent_items
    held = selectors.profile_items_for(person=person, keys=items)
    rows = [
        {
            "key": key,
            "label": item_label(key),
            "display": held[key].display if key in held else None,
            "source": held[key].source_label if key in held else "",
            "verified_at": held[key].verified_at if key in held else None,
            "held": key in held,
        }
        for key in items
    ]
    days: int = oauth_request.consent_days
    existing = selectors.active_consent_for(
        person=person, application=application, purpose=oauth_request.purpose
    )
    context = {
        "application": application,
        "agency": application.agency,
        "description": application.description_en
        if (get_language() or "vi").startswith("en") and application.description_en
        else application.description_vi,
        "purpose": purpose_name(application.purpose(oauth_request.purpose), oauth_request.purpose),
        "rows": rows,
        "days": days,
        "expires_at": timezone.now() + timedelta(days=days),
        "existing": existing,
        "form_action": request.get_full_path(),
    }
    response = render(request, "consent/authorize.html", context)
    response["Content-Security-Policy"] = _content_security_policy(grant.redirect_uri)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    """GET: the consent screen. POST: the citizen's decision, sent back to the client."""
    person = person_for_user(request.user)  # type: ignore[arg-type]
    if person is None:
        return render(request, "consent/authorize_error.html", {"not_a_citizen": True}, status=403)
    try:
        grant = server.get_consent_grant(request, end_user=person)
    except OAuth2Error as error:
        return _oauth_error_response(request, error)
    except ValueError:
        # Authlib refuses to put characters outside ASCII into an error description.
        return _error_page(request, None)
    if request.method == "GET":
        return _consent_screen(request, grant, person)

    decision = request.POST.get("decision")
    if decision == "approve":
        return server.create_authorization_response(request, grant_user=person, grant=grant)
    if decision == "decline":
        services.authorization_decline(
            person=person,
            application=grant.request.client.application,
            items=grant.request.consent_items,
            purpose=grant.request.purpose,
        )
        return server.create_authorization_response(request, grant_user=None, grant=grant)
    return _error_page(request, None)


@csrf_exempt
@require_POST
def token(request: HttpRequest) -> HttpResponse:
    """The token endpoint: an authorization code and its PKCE verifier for an access token."""
    try:
        return server.create_token_response(request)
    except OAuth2Error as error:
        return server.handle_error_response(None, error)
    except ValueError:
        return JsonResponse({"error": "invalid_request"}, status=400, headers={"Cache-Control": "no-store"})


STATUS_LABELS = {
    "active": gettext_lazy("Active"),
    "expired": gettext_lazy("Expired"),
    Consent.Ending.REVOKED: gettext_lazy("Withdrawn"),
    Consent.Ending.REPLACED: gettext_lazy("Replaced by a newer consent"),
}


def _consent_rows(consents: Any) -> list[dict[str, Any]]:
    rows = []
    for consent in consents:
        status = consent.status
        rows.append(
            {
                "consent": consent,
                "items": [item_label(key) for key in consent.items],
                "status": status,
                "status_label": str(STATUS_LABELS.get(status, status)),
            }
        )
    return rows


@login_required
@require_GET
def consents(request: HttpRequest) -> HttpResponse:
    person = person_for_user(request.user)  # type: ignore[arg-type]
    if person is None:
        return render(request, "consent/consents.html", {"person": None})
    context = paginate_page(request, selectors.ended_consents_for(person=person), PAGE_SIZE)
    context["person"] = person
    context["active"] = _consent_rows(selectors.active_consents_for(person=person))
    context["ended"] = _consent_rows(context["page"].object_list)
    return render(request, "consent/consents.html", context)


@login_required
@require_POST
def revoke(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    person = person_for_user(request.user)  # type: ignore[arg-type]
    if person is None:
        raise Http404
    try:
        consent = services.consent_revoke(person=person, consent_id=public_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    messages.success(
        request,
        _("You withdrew your consent. %(application)s can no longer receive your data.")
        % {"application": consent.application.name},
    )
    return redirect("consent:consents")
