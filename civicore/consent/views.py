"""The OAuth and OpenID Connect endpoints (consent screen, token, PAR, userinfo, revocation,
logout, discovery) and the citizen's consent dashboard.

A request whose client or redirect_uri cannot be trusted is answered with an error page here and
never redirected; once both are known, errors go back to the client as RFC 6749 says. Every
refusal is logged (civicore.consent.oauth.log_refusal) and none is a 500.
"""

from __future__ import annotations

import functools
import re
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from allauth.account.internal.flows.reauthentication import suspend_request
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError
from authlib.oidc.core.errors import ConsentRequiredError, InteractionRequiredError, LoginRequiredError
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from joserfc.errors import JoseError

from civicore.consent import oidc, selectors, services
from civicore.consent.models import Consent, PushedAuthorizationRequest
from civicore.consent.oauth import (
    InvalidRequestURIError,
    SiteRequest,
    UnmetAuthenticationRequirementsError,
    UnregisteredRedirectURI,
    log_refusal,
    remember_client,
    request_scope,
    server,
)
from civicore.consent.presentation import item_label, purpose_name
from civicore.core.cors import public_document
from civicore.core.errors import NotFound
from civicore.core.middleware import CONTENT_SECURITY_POLICY
from civicore.identity.middleware import second_factor_reauthentication_url
from civicore.identity.models import Person
from civicore.identity.selectors import last_second_factor_at, person_for_user, second_factor_types
from civicore.portal.pagination import paginate_page

PAGE_SIZE = 25
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:\d{1,5})?$")
# A secret in the browser's session that ties a pushed request to the browser that brought it.
PAR_BROWSER_KEY = "consent.par.browser"
# When we sent the citizen to authenticate again (prompt=login, max_age), to know they did.
REAUTH_KEY = "consent.reauth.asked_at"
# When we asked the citizen to confirm with their second factor to reach a requested acr.
STEP_UP_KEY = "consent.stepup.asked_at"
_JSON_NO_STORE = {"Cache-Control": "no-store"}


def no_store(view: Any) -> Any:
    """RFC 6749 section 5.1 and OpenID Connect Core 5.3.2: nothing these endpoints answer (tokens,
    pushed request URIs, claims), errors and refusals of the method included, may be cached."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = view(request, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        return response

    return wrapper


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


def _json_error(error: str, description: str, *, status: int = 400) -> JsonResponse:
    return JsonResponse(
        {"error": error, "error_description": description}, status=status, headers=_JSON_NO_STORE
    )


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
    claims: oidc.ClaimsRequest = getattr(oauth_request, "claims_request", None) or oidc.ClaimsRequest()
    essential = claims.essential_items()
    held = selectors.profile_items_for(person=person, keys=items)
    rows = [
        {
            "key": key,
            "label": item_label(key),
            "display": held[key].display if key in held else None,
            "source": held[key].source_label if key in held else "",
            "verified_at": held[key].verified_at if key in held else None,
            "held": key in held,
            "essential": key in essential,
        }
        for key in items
    ]
    days: int = oauth_request.consent_days
    requested: oidc.RequestedScope = oauth_request.requested_scope
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
        "sign_in": requested.openid,
        "offline": requested.offline,
        "form_action": request.get_full_path(),
    }
    response = render(request, "consent/authorize.html", context)
    response["Content-Security-Policy"] = _content_security_policy(grant.redirect_uri)
    response["Cache-Control"] = "no-store"
    return response


def _trusted_redirect_uri(pushed: PushedAuthorizationRequest) -> str | None:
    """The pushed request's redirect URI, if its application may still be sent there."""
    application = pushed.application
    redirect_uri = pushed.parameters.get("redirect_uri")
    if application.active and isinstance(redirect_uri, str) and redirect_uri in application.redirect_uris:
        return redirect_uri
    return None


def _open_pushed_request(request: HttpRequest) -> PushedAuthorizationRequest:
    """RFC 9126 section 4: the pushed request named by request_uri, for the client_id sent with
    it; other parameters only as copies of the pushed ones."""
    if len(request.GET.getlist("request_uri")) != 1 or len(request.GET.getlist("client_id")) != 1:
        raise InvalidRequestError("Send client_id and request_uri, once each.")
    secret = request.session.get(PAR_BROWSER_KEY)
    if not isinstance(secret, str) or not secret:
        secret = secrets.token_urlsafe(24)
        request.session[PAR_BROWSER_KEY] = secret
    try:
        pushed = services.pushed_request_open(
            request_uri=request.GET["request_uri"], client_id=request.GET["client_id"], browser_secret=secret
        )
    except services.InvalidRequestURI as exc:
        known = exc.pushed
        raise InvalidRequestURIError(
            exc.message,
            redirect_uri=_trusted_redirect_uri(known) if known else None,
            state=known.parameters.get("state") if known else None,
        ) from exc
    remember_client(pushed.application)  # read with the pushed request, agency included
    # OpenID Connect Core 6.2 has clients repeat response_type and scope beside request_uri; only
    # the pushed request counts (RFC 9126 section 4), so a repeated value must be the pushed one.
    extra = {key: request.GET.getlist(key) for key in set(request.GET) - {"client_id", "request_uri"}}
    if any(values != [pushed.parameters.get(key)] for key, values in extra.items()):
        raise InvalidRequestError(
            "Only client_id and request_uri, and parameters equal to the pushed ones, may accompany "
            "a pushed request.",
            redirect_uri=_trusted_redirect_uri(pushed),
            state=pushed.parameters.get("state"),
        )
    return pushed


def _asks_fresh_login(parameters: Any) -> bool:
    return "login" in (parameters.get("prompt") or "").split() or parameters.get("max_age") is not None


def _needs_fresh_login(request: HttpRequest, parameters: Any) -> bool:
    """prompt=login, or a login older than max_age: the citizen authenticates again first. Once
    they have (after we asked), the request goes on."""
    prompts = (parameters.get("prompt") or "").split()
    max_age = parameters.get("max_age")
    if not _asks_fresh_login(parameters):
        return False
    auth_time = oidc.session_auth_time(request).timestamp()
    asked = request.session.get(REAUTH_KEY)
    if isinstance(asked, int | float) and auth_time >= asked:
        del request.session[REAUTH_KEY]
        return False
    if "login" in prompts:
        return True
    return time.time() - auth_time > int(max_age)


def _reauthenticate(request: HttpRequest) -> HttpResponse:
    request.session[REAUTH_KEY] = time.time()
    return redirect(reverse("account_reauthenticate") + "?" + urlencode({"next": request.get_full_path()}))


def _refused(request: HttpRequest, error: OAuth2Error, client_id: Any) -> HttpResponse:
    log_refusal("authorize", error, client_id=client_id)
    return _oauth_error_response(request, error)


def _client_error_args(grant: Any, parameters: Any) -> dict[str, Any]:
    """Where an error about a validated request goes: the client's verified redirect URI."""
    return {"redirect_uri": grant.redirect_uri, "state": parameters.get("state")}


def _acr_plan(request: HttpRequest, grant: Any, person: Person) -> oidc.AcrPlan:
    """What the request's acr_values or essential acr claim asks of this login. Once the citizen
    has confirmed with a second factor at our asking, what the session then reaches is all it
    can reach, so a request is never sent round the step-up twice."""
    asked: oidc.AcrRequest | None = getattr(grant.request, "acr_request", None)
    if asked is None:
        return oidc.AcrPlan("met")
    current = oidc.session_acr(request, oidc.session_amr(request))
    plan = oidc.acr_plan(asked, current=current, reachable=oidc.reachable_acr(request, person))
    asked_at = request.session.get(STEP_UP_KEY)
    if plan.outcome == "step_up" and isinstance(asked_at, int | float):
        confirmed = last_second_factor_at(request)
        if confirmed is not None and confirmed.timestamp() >= asked_at:
            plan = oidc.acr_plan(asked, current=current, reachable=current)
    if plan.outcome != "step_up":
        request.session.pop(STEP_UP_KEY, None)
    return plan


def _acr_step_up(
    request: HttpRequest, grant: Any, person: Person, parameters: Any, *, silent: bool = False
) -> HttpResponse | None:
    """None when the login meets the requested acr (or need not). An essential level the citizen
    cannot reach is unmet_authentication_requirements; a level they can reach by confirming
    with their second factor sends them to do so, as a service needing more assurance does,
    and brings them back to this request (interaction_required for prompt=none)."""
    plan = _acr_plan(request, grant, person)
    if plan.outcome == "unmet":
        raise UnmetAuthenticationRequirementsError(
            "The citizen cannot reach the essential acr requested.", **_client_error_args(grant, parameters)
        )
    if plan.outcome != "step_up":
        return None
    url = second_factor_reauthentication_url(second_factor_types(person.user))
    if silent or url is None:
        raise InteractionRequiredError(
            description="The citizen must confirm with their second factor to reach the acr requested.",
            **_client_error_args(grant, parameters),
        )
    request.session[STEP_UP_KEY] = time.time()
    if request.method == "GET" and _asks_fresh_login(parameters):
        # Confirming with the second factor is authenticating again: it answers prompt=login
        # and max_age as well, so the citizen is not asked twice.
        request.session[REAUTH_KEY] = time.time()
    messages.info(
        request,
        _(
            "%(application)s asks you to confirm it is you with your second factor. You will then "
            "continue where you were."
        )
        % {"application": grant.request.client.application.name},
    )
    return suspend_request(request, url)


def _answer_silently(
    request: HttpRequest,
    oauth_request: HttpRequest | SiteRequest,
    grant: Any,
    person: Person,
    parameters: Any,
    pushed: PushedAuthorizationRequest | None,
) -> HttpResponse:
    """prompt=none (OpenID Connect Core 3.1.2.1): no page at all. With a recent enough login, the
    acr asked for and an active consent that already covers the request, the code goes straight
    back to the client; otherwise the error that names what the citizen would have to do."""
    where = _client_error_args(grant, parameters)
    max_age = parameters.get("max_age")
    if max_age is not None and time.time() - oidc.session_auth_time(request).timestamp() > int(max_age):
        raise LoginRequiredError(description="The citizen's login is older than max_age.", **where)
    _acr_step_up(request, grant, person, parameters, silent=True)
    asked = grant.request
    consent = selectors.covering_consent(
        person=person,
        application=asked.client.application,
        purpose=asked.purpose,
        items=asked.consent_items,
        offline=asked.requested_scope.offline,
    )
    if consent is None:
        raise ConsentRequiredError(description="The citizen has not consented to this request.", **where)
    if pushed is not None and not services.pushed_request_spend(pushed=pushed):
        raise InvalidRequestURIError("The 'request_uri' was already used.", **where)
    asked.covering_consent = consent
    try:
        return server.create_authorization_response(oauth_request, grant_user=person, grant=grant)
    except services.ConsentNotCovering as exc:
        raise ConsentRequiredError(description="The citizen's consent has just ended.", **where) from exc


def _not_a_citizen_silently(
    request: HttpRequest, oauth_request: HttpRequest | SiteRequest, client_id: Any
) -> HttpResponse | None:
    """prompt=none from an account that is not a citizen's (an officer's, say): the account
    would have to act, so the client hears interaction_required once its request is known to be
    good. None when the request is not an OpenID Connect one."""
    try:
        server.get_consent_grant(oauth_request, end_user=None)
    except LoginRequiredError as error:
        interaction = InteractionRequiredError(
            description="The signed-in account is not a citizen's.",
            redirect_uri=error.redirect_uri,
            state=error.state,
        )
        return _refused(request, interaction, client_id)
    except OAuth2Error as error:
        return _refused(request, error, client_id)
    except ValueError:
        log_refusal("authorize", None, client_id=client_id, reason="malformed")
        return _error_page(request, None)
    return None


@request_scope
@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    """GET: the consent screen. POST: the citizen's decision, sent back to the client. The
    request comes in the query string or, pushed beforehand, as a request_uri."""
    client_id = request.GET.get("client_id")
    pushed: PushedAuthorizationRequest | None = None
    oauth_request: HttpRequest | SiteRequest = request
    parameters: Any = request.GET
    try:
        if "request_uri" in request.GET:
            pushed = _open_pushed_request(request)
            parameters = pushed.parameters
            oauth_request = SiteRequest(request, parameters=pushed.parameters)
        if not request.user.is_authenticated:
            if "none" in (parameters.get("prompt") or "").split():
                # Authlib's OpenID Connect extension answers login_required, once the client
                # and redirect URI are known to be good.
                server.get_consent_grant(oauth_request, end_user=None)
            return redirect_to_login(request.get_full_path())
    except OAuth2Error as error:
        return _refused(request, error, client_id)
    except ValueError:
        log_refusal("authorize", None, client_id=client_id, reason="malformed")
        return _error_page(request, None)

    silent = request.method == "GET" and "none" in (parameters.get("prompt") or "").split()
    person = person_for_user(request.user)  # type: ignore[arg-type]
    if person is None:
        if silent and (refusal := _not_a_citizen_silently(request, oauth_request, client_id)) is not None:
            return refusal
        log_refusal("authorize", None, client_id=client_id, reason="not_a_citizen")
        return render(request, "consent/authorize_error.html", {"not_a_citizen": True}, status=403)
    try:
        grant = server.get_consent_grant(oauth_request, end_user=person)
        openid = grant.request.requested_scope.openid
        if openid and silent:
            return _answer_silently(request, oauth_request, grant, person, parameters, pushed)
        if openid and (request.method == "GET" or request.POST.get("decision") == "approve"):
            if (step_up := _acr_step_up(request, grant, person, parameters)) is not None:
                return step_up
        if openid and request.method == "GET" and _needs_fresh_login(request, parameters):
            return _reauthenticate(request)
    except OAuth2Error as error:
        return _refused(request, error, client_id)
    except ValueError:
        # Authlib refuses to put characters outside ASCII into an error description.
        log_refusal("authorize", None, client_id=client_id, reason="malformed")
        return _error_page(request, None)
    if request.method == "GET":
        return _consent_screen(request, grant, person)

    decision = request.POST.get("decision")
    if decision not in ("approve", "decline"):
        log_refusal("authorize", None, client_id=client_id, reason="unknown_decision")
        return _error_page(request, None)
    if pushed is not None and not services.pushed_request_spend(pushed=pushed):
        spent = InvalidRequestURIError(
            "The 'request_uri' was already used.",
            redirect_uri=grant.redirect_uri,
            state=parameters.get("state"),
        )
        return _refused(request, spent, client_id)
    if decision == "approve":
        return server.create_authorization_response(oauth_request, grant_user=person, grant=grant)
    services.authorization_decline(
        person=person,
        application=grant.request.client.application,
        items=grant.request.consent_items,
        purpose=grant.request.purpose,
    )
    return server.create_authorization_response(oauth_request, grant_user=None, grant=grant)


@no_store
@request_scope
@csrf_exempt
@require_POST
def token(request: HttpRequest) -> HttpResponse:
    """The token endpoint: an authorization code and its PKCE verifier, or a refresh token, for
    an access token (and an ID token for OpenID Connect)."""
    try:
        return server.create_token_response(request)
    except OAuth2Error as error:
        return server.handle_error_response(None, error)
    except ValueError:
        log_refusal("token", None, client_id=request.POST.get("client_id"), reason="malformed")
        return JsonResponse({"error": "invalid_request"}, status=400, headers=_JSON_NO_STORE)


@no_store
@request_scope
@csrf_exempt
@require_POST
def par(request: HttpRequest) -> HttpResponse:
    """Pushed authorization requests (RFC 9126): 201 with a request_uri for /oauth/authorize."""
    try:
        return server.create_pushed_authorization_response(request)
    except ValueError:
        log_refusal("par", None, client_id=request.POST.get("client_id"), reason="malformed")
        return _json_error("invalid_request", "The request could not be read.")


@no_store
@request_scope
@csrf_exempt
@require_POST
def token_revoke(request: HttpRequest) -> HttpResponse:
    """Token revocation (RFC 7009), for the client that holds the token."""
    try:
        response = server.create_endpoint_response("revocation", request)
    except OAuth2Error as error:
        return server.handle_error_response(None, error)
    except ValueError:
        log_refusal("revoke", None, client_id=request.POST.get("client_id"), reason="malformed")
        return _json_error("invalid_request", "The request could not be read.")
    return response or HttpResponse(status=200)


_BEARER_DESCRIPTIONS = {
    "invalid_token": "The access token is not valid, has expired or was revoked, or its consent ended.",
    "insufficient_scope": "The access token was not issued with the openid scope.",
}


def _bearer_error(status: int, error: str | None) -> JsonResponse:
    """RFC 6750 section 3: the challenge names the error, except when no token was sent."""
    challenge = 'Bearer realm="civicore"'
    body: dict[str, str] = {}
    if error:
        description = _BEARER_DESCRIPTIONS[error]
        challenge += f', error="{error}", error_description="{description}"'
        body = {"error": error, "error_description": description}
    return JsonResponse(
        body, status=status, headers={"WWW-Authenticate": challenge, "Cache-Control": "no-store"}
    )


@no_store
@csrf_exempt
@require_http_methods(["GET", "POST"])
def userinfo(request: HttpRequest) -> HttpResponse:
    """OpenID Connect userinfo: the consented claims, checked against the consent on every call.
    JSON, or, when the client registered userinfo_signed_response_alg, a JWT signed with the
    platform key for that algorithm (OpenID Connect Core 5.3.2; the Accept header does not
    change what a client registered)."""
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        log_refusal("userinfo", InvalidRequestError("No bearer token."))
        return _bearer_error(401, None)
    try:
        release = services.userinfo_release(token=token, endpoint=request.path)
    except (services.InvalidToken, services.InsufficientScope) as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        log_refusal("userinfo", None, client_id=details.get("client_id"), error_code=exc.code)
        return _bearer_error(exc.status, exc.code)
    application = release.consent.application
    if application.userinfo_signed_response_alg in oidc.CLIENT_SIGNING_ALGS:
        body = services.userinfo_sign(
            claims=release.claims,
            client_id=application.client_id,
            alg=application.userinfo_signed_response_alg,
        )
        return HttpResponse(body, content_type="application/jwt", headers=_JSON_NO_STORE)
    return JsonResponse(release.claims, headers=_JSON_NO_STORE, json_dumps_params={"ensure_ascii": False})


@public_document
def openid_configuration(request: HttpRequest) -> JsonResponse:
    """OpenID Connect Discovery: /.well-known/openid-configuration, readable from any origin."""
    response = JsonResponse(oidc.provider_metadata())
    response["Cache-Control"] = "public, max-age=300"
    return response


def _logout_page(
    request: HttpRequest,
    context: dict[str, Any],
    *,
    redirect_uri: str | None = None,
    frames: list[dict[str, str]] | None = None,
) -> HttpResponse:
    response = render(request, "consent/logout.html", context)
    if redirect_uri:
        response["Content-Security-Policy"] = _content_security_policy(redirect_uri)
    if frames:
        # This response alone may frame exactly the applications' logout pages.
        origins = " ".join(dict.fromkeys(frame["origin"] for frame in frames))
        response["Content-Security-Policy"] = f"{CONTENT_SECURITY_POLICY}; frame-src {origins}"
    response["Cache-Control"] = "no-store"
    return response


def _frontchannel_frames(sid: Any) -> list[dict[str, str]]:
    """OpenID Connect Front-Channel Logout 1.0 section 3: the front-channel logout URI of each
    application the ended session signed in to, with iss and sid when it registered
    frontchannel_logout_session_required."""
    frames: list[dict[str, str]] = []
    for row in selectors.frontchannel_logout_sessions(sid=sid if isinstance(sid, str) else ""):
        application = row.application
        url = application.frontchannel_logout_uri
        if application.frontchannel_logout_session_required:
            parts = urlsplit(url)
            query = [
                *parse_qsl(parts.query, keep_blank_values=True),
                ("iss", oidc.issuer()),
                ("sid", row.sid),
            ]
            url = urlunsplit(parts._replace(query=urlencode(query)))
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if _ORIGIN.match(origin):
            frames.append({"url": url, "origin": origin, "name": application.name})
    return frames


@request_scope
@require_http_methods(["GET", "POST"])
def end_session(request: HttpRequest) -> HttpResponse:
    """OpenID Connect RP-initiated logout. The citizen confirms; their Civicore session ends and
    they go back to the application's registered post_logout_redirect_uri, with its state."""
    client_id = request.GET.get("client_id")
    try:
        end = server.validate_endpoint_request("end_session", request)
    except OAuth2Error as error:
        log_refusal("logout", error, client_id=client_id)
        end = None
    except (ValueError, TypeError, JoseError):
        log_refusal("logout", None, client_id=client_id, reason="malformed")
        end = None
    redirect_uri = end.redirect_uri if end is not None else None
    application = getattr(end.client, "application", None) if end is not None else None
    refused = end is None
    if end is not None and request.GET.get("post_logout_redirect_uri") and redirect_uri is None:
        refused = True
        log_refusal(
            "logout",
            InvalidRequestError("post_logout_redirect_uri is not registered, or no valid id_token_hint."),
            client_id=getattr(end.client, "client_id", client_id),
        )
    if not request.user.is_authenticated:
        if redirect_uri:
            return HttpResponseRedirect(redirect_uri)
        return _logout_page(request, {"signed_out": True, "refused": refused})
    if request.method == "POST":
        if request.POST.get("decision") != "logout":
            return redirect("portal:home")
        sid = request.session.get(oidc.SID_SESSION_KEY)
        response = None
        if end is not None:
            response = server.create_endpoint_response("end_session", end)
        else:
            logout(request)
        context: dict[str, Any] = {"signed_out": True, "refused": refused}
        if frames := _frontchannel_frames(sid):
            # The applications' logout pages load in hidden frames first; the citizen then
            # continues to where the application asked to send them, if it did.
            context.update(frames=frames, continue_to=redirect_uri, application=application)
            return _logout_page(request, context, frames=frames)
        return response or _logout_page(request, context)
    context = {"application": application, "refused": refused, "form_action": request.get_full_path()}
    return _logout_page(request, context, redirect_uri=redirect_uri)


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
