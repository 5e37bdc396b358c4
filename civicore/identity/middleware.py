"""Login-related checks on every request.

SessionActivityMiddleware keeps each login's allauth UserSession (browser, IP address, last seen)
up to date for the citizen's sessions page, writing at most once every ACTIVITY_INTERVAL per
session instead of on every request.

BackOfficeSecondFactorMiddleware: officers and staff use the back office only with a second
factor.

For every path under `BACK_OFFICE_PATH_PREFIXES` (the case inbox, agency systems, the admin and
the case API), a logged-in officer (active Officer row) or staff user
- without an authenticator app, security key or passkey is sent to set one up, and
- whose login used no second factor (a password alone) is asked to confirm with one, and is
  brought back to the page they asked for.
API calls get a 403 with a stable code instead. Bearer-token API calls without a session are
not logins and are left to the token rules.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from allauth.account.authentication import get_authentication_records
from allauth.account.internal.flows.reauthentication import suspend_request
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from civicore.agencies.selectors import officer_for_user
from civicore.identity.selectors import has_second_factor, second_factor_types

DEFAULT_PREFIXES = ("/office/", "/admin/", "/api/v1/cases")
ACTIVITY_SESSION_KEY = "identity.session_seen_at"
ACTIVITY_INTERVAL = 5 * 60  # seconds


def second_factor_reauthentication_url(types: list[str]) -> str | None:
    """allauth's page to confirm with a second factor the user has, or None without one."""
    if "totp" in types:
        return reverse("mfa_reauthenticate")
    if "webauthn" in types:
        return reverse("mfa_reauthenticate_webauthn")
    return None


def needs_second_factor(user: object) -> bool:
    return bool(getattr(user, "is_staff", False)) or officer_for_user(user) is not None


class BackOfficeSecondFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self.refusal(request)
        if refusal is None:
            return self.get_response(request)
        if request.headers.get("HX-Request") == "true" and isinstance(refusal, HttpResponseRedirect):
            # htmx would draw the page it is sent to inside a fragment: make it navigate instead.
            navigate = HttpResponse(status=204)
            navigate["HX-Redirect"] = refusal["Location"]
            return navigate
        return refusal

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        path = request.path_info
        prefixes = tuple(getattr(settings, "BACK_OFFICE_PATH_PREFIXES", DEFAULT_PREFIXES))
        if not path.startswith(prefixes) or path.endswith("/logout/"):
            return None
        api = path.startswith("/api/")
        # The session's user: a bearer-token call carries no session and is not checked here. Any
        # Authorization header is ignored on purpose: the API falls back to the session when a
        # token does not authenticate, so a junk header must not skip this check.
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not needs_second_factor(user):
            return None
        reauthenticate_url = second_factor_reauthentication_url(second_factor_types(user))  # type: ignore[arg-type]
        if reauthenticate_url is None:
            message = _(
                "Officers must protect their account with a second factor (an authenticator app, "
                "a security key or a passkey) before using the back office. Set one up here."
            )
            if api:
                return _json_refusal("second_factor_setup_required", message)
            messages.warning(request, message)
            return HttpResponseRedirect(reverse("mfa_index"))
        if has_second_factor(request):
            return None
        message = _("The back office needs your second factor. Confirm it is you to continue.")
        if api:
            return _json_refusal("second_factor_required", message)
        messages.info(request, message)
        return suspend_request(request, reauthenticate_url)


def _json_refusal(code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "details": None}, status=403)


class SessionActivityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # After the view, so that a login or logout in this request is what gets recorded.
        self.track(request)
        return response

    def track(self, request: HttpRequest) -> None:
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if session is None or user is None or not session.session_key or not user.is_authenticated:
            return
        now = time.time()
        seen = session.get(ACTIVITY_SESSION_KEY)
        if isinstance(seen, int | float) and now - seen < ACTIVITY_INTERVAL:
            return
        if not get_authentication_records(request, user):
            # Not a login made through allauth (say, a test's force_login): nothing to list.
            return
        from allauth.usersessions.models import UserSession

        UserSession.objects.create_from_request(request, user=user, session=session)
        session[ACTIVITY_SESSION_KEY] = now
