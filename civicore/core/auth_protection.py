"""Sign-in protection: civicore.core.throttle around allauth's sign-in, second-factor,
reauthentication, password-reset and sign-up views, plus the trusted-device cookie.

LoginProtectionMiddleware calls `start` before a protected view (a locked attempt gets the 429
page and never reaches allauth) and `finish` after it; Django's and allauth's signals tell
`finish` whether the attempt failed or completed a step. A browser that completed a sign-in with
a second factor gets a signed device cookie, and an address that completed one is remembered:
both are then limited only by their own failures, so nobody elsewhere can lock the owner out.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from allauth.account import signals as account_signals
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core import signing
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.crypto import salted_hmac

from civicore.core import metrics, throttle

# Trust realm shared by the password and second-factor steps: an address that completed a sign-in.
REALM = "account"
# Failures in these scopes are failed sign-ins (civicore_logins_total{result="failure"}).
SIGN_IN_SCOPES = frozenset({"login", "mfa", "passkey_login"})
DEVICE_COOKIE = "civicore_device"
DEVICE_SALT = "civicore.core.auth_protection.device"
DEVICE_ACCOUNTS = 5  # a shared computer remembers at most this many accounts
_ATTEMPT = "_civicore_attempt"
_EVENTS = "_civicore_auth_events"
_LOGGED_IN = "_civicore_logged_in_user"


@dataclass(frozen=True)
class Flow:
    """How a protected view is counted.

    subject: where the account comes from ("login_form", "email_form", "pending_login",
    "session", or "" when only the address counts); counts: "failures" counts attempts that
    failed (with `strict`, any attempt that did not complete an authentication step, as a code
    or a security key that does not verify sends no signal), "uses" counts every request."""

    scope: str
    subject: str
    counts: str = "failures"
    strict: bool = False
    anonymous_only: bool = True


# By allauth URL name. Names of views that are not installed (passkeys, codes) are harmless.
FLOWS: dict[str, Flow] = {
    "account_login": Flow("login", "login_form"),
    "mfa_authenticate": Flow("mfa", "pending_login", strict=True),
    "account_confirm_login_code": Flow("mfa", "pending_login", strict=True),
    "mfa_login_webauthn": Flow("passkey_login", "", strict=True),
    "account_reauthenticate": Flow("reauthenticate", "session", anonymous_only=False),
    "mfa_reauthenticate": Flow("reauthenticate", "session", strict=True, anonymous_only=False),
    "mfa_reauthenticate_webauthn": Flow("reauthenticate", "session", strict=True, anonymous_only=False),
    "account_confirm_reauthentication_code": Flow(
        "reauthenticate", "session", strict=True, anonymous_only=False
    ),
    "account_reset_password": Flow("password_reset", "email_form", counts="uses", anonymous_only=False),
    "account_signup": Flow("signup", "", counts="uses"),
    "mfa_signup_webauthn": Flow("signup", "", counts="uses"),
}


@dataclass
class Attempt:
    flow: Flow
    keys: dict[str, str]
    address: str
    person: Callable[[], Any]
    refused: bool = False

    @property
    def details(self) -> dict[str, Any]:
        return {"address": self.address}

    def record(self, events: set[str]) -> throttle.Decision:
        """Count the attempt once its view has run; returns the decision for the next one."""
        scope = self.flow.scope
        if self.flow.counts == "uses":
            return throttle.fail(scope, self.keys, person=self.person, details=self.details)
        stepped = "step" in events
        failed = "login_failed" in events or (self.flow.strict and not stepped)
        if failed:
            if scope in SIGN_IN_SCOPES:
                metrics.LOGINS.labels(result="failure").inc()
            return throttle.fail(scope, self.keys, person=self.person, details=self.details)
        if stepped:
            throttle.succeed(scope, self.keys, person=self.person)
        return throttle.ALLOWED


# --- middleware entry points ---------------------------------------------------------------------


def start(request: HttpRequest) -> HttpResponse | None:
    """Before the view: refuse a locked attempt with the 429 page."""
    if request.method in ("GET", "HEAD", "OPTIONS", "TRACE") or request.resolver_match is None:
        return None
    view_name = request.resolver_match.view_name
    if view_name in WEBAUTHN_VIEWS:
        _drop_malformed_credential(request, registration=view_name in WEBAUTHN_REGISTRATION_VIEWS)
    flow = FLOWS.get(view_name)
    if flow is None:
        return None
    attempt = _attempt(request, flow)
    if attempt is None:
        return None
    setattr(request, _ATTEMPT, attempt)
    decision = throttle.check(flow.scope, attempt.keys, person=attempt.person, details=attempt.details)
    if decision.allowed:
        return None
    attempt.refused = True
    return throttled_response(request, decision, scope=flow.scope)


def finish(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """After the view: count the attempt; on a completed sign-in, trust the device and address."""
    attempt: Attempt | None = getattr(request, _ATTEMPT, None)
    events: set[str] = getattr(request, _EVENTS, set())
    if attempt is not None and not attempt.refused:
        decision = attempt.record(events)
        if not decision.allowed and attempt.flow.counts == "failures":
            # Say so now rather than on the next try. ("uses" views already did their work.)
            response = throttled_response(request, decision, scope=attempt.flow.scope)
    user = getattr(request, _LOGGED_IN, None)
    if user is not None:
        _after_sign_in(request, response, user)
    return response


def throttled_response(request: HttpRequest, decision: throttle.Decision, *, scope: str = "") -> HttpResponse:
    """The 429 page: what happened and when to try again."""
    context = {
        "scope": scope,
        "retry_after": decision.retry_after,
        "retry_minutes": max(1, math.ceil(decision.retry_after / 60)),
        "retry_at": decision.retry_at,
    }
    response = render(request, "429.html", context, status=429)
    response["Retry-After"] = str(max(1, decision.retry_after))
    response["Cache-Control"] = "no-store"
    return response


WEBAUTHN_REGISTRATION_VIEWS = {"mfa_add_webauthn", "mfa_signup_webauthn"}
WEBAUTHN_VIEWS = {
    "mfa_authenticate",
    "mfa_login_webauthn",
    "mfa_reauthenticate_webauthn",
    *WEBAUTHN_REGISTRATION_VIEWS,
}


def _drop_malformed_credential(request: HttpRequest, *, registration: bool) -> None:
    """allauth 65.22 turns fido2's TypeError and ValueError on a malformed security-key answer
    into a form error, but fido2 2.x raises KeyError for a missing member (say rawId): a 500 on a
    public page. An answer that does not even parse cannot verify, so it is blanked and the form
    reports the missing answer (and, here, counts as a failed attempt)."""
    raw = request.POST.get("credential")
    if raw is None:
        return
    from fido2.webauthn import AuthenticationResponse, RegistrationResponse

    try:
        data = json.loads(raw)
        (RegistrationResponse if registration else AuthenticationResponse).from_dict(data)
    except Exception:  # noqa: BLE001 - whatever fido2 raises, this answer cannot be valid
        post = request.POST.copy()
        post["credential"] = ""
        request.POST = post  # type: ignore[assignment]


# --- who is attempting ---------------------------------------------------------------------------


def _attempt(request: HttpRequest, flow: Flow) -> Attempt | None:
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    if flow.anonymous_only and signed_in:
        return None  # allauth sends signed-in users away
    address = throttle.client_address(request)
    pk: Any = None
    if flow.subject == "session":
        if not signed_in or not request.session.session_key:
            return None
        pk = user.pk  # type: ignore[union-attr]
        session = salted_hmac("civicore.session", request.session.session_key).hexdigest()[:32]
        keys = {"session": f"user:{pk}|session:{session}"}
    elif flow.subject == "pending_login":
        pk = _pending_login_user_pk(request)
        keys = _keys(pk, None, address, request)
    elif flow.subject in ("login_form", "email_form"):
        field_name = "login" if flow.subject == "login_form" else "email"
        email = _normalise_email(request.POST.get(field_name, ""))
        pk = _account_pk(email)
        if flow.scope == "password_reset":  # no trusted sources here: every request sends an e-mail
            keys = {"address": address}
            if pk or email:
                keys["subject"] = f"user:{pk}" if pk else f"email:{email}"
        else:
            keys = _keys(pk, email, address, request)
    else:
        keys = {"address": address}
    return Attempt(flow=flow, keys=keys, address=address, person=_person_getter(pk))


def _keys(pk: Any, email: str | None, address: str, request: HttpRequest) -> dict[str, str]:
    if pk is not None:
        subject = f"user:{pk}"
        return throttle.keys_for(
            subject=subject, address=address, realm=REALM, device=trusted_device(request, pk)
        )
    return throttle.keys_for(subject=f"email:{email}" if email else None, address=address, realm=REALM)


def _normalise_email(value: str) -> str:
    return value.strip().lower()[:320]


def _account_pk(email: str) -> Any:
    if not email or "@" not in email or len(email) > 254 or "\x00" in email:
        return None  # not an address any account can have (and PostgreSQL refuses NUL)
    from allauth.account.utils import filter_users_by_email

    users = filter_users_by_email(email, prefer_verified=True)
    return users[0].pk if len(users) == 1 else None


def _pending_login_user_pk(request: HttpRequest) -> Any:
    # allauth keeps the half-done sign-in in the session; peeking does not consume it.
    from allauth.account.internal.stagekit import unstash_login

    login = unstash_login(request, peek=True)
    user = getattr(login, "user", None) if login else None
    return getattr(user, "pk", None)


def _person_getter(pk: Any) -> Callable[[], Any]:
    def person() -> Any:
        if pk is None:
            return None
        from civicore.identity.models import Person

        return Person.objects.filter(user_id=pk).first()

    return person


# --- trusted devices -----------------------------------------------------------------------------


def device_cookie_name() -> str:
    # Over HTTPS the __Host- prefix makes the browser refuse it from subdomains and plain HTTP.
    return ("__Host-" if settings.SESSION_COOKIE_SECURE else "") + DEVICE_COOKIE


def _account_tag(pk: Any) -> str:
    """An opaque tag for an account, so the cookie does not show which accounts used the device."""
    return salted_hmac("civicore.device.account", str(pk)).hexdigest()[:20]


def _read_device(request: HttpRequest) -> tuple[str, list[str]] | None:
    raw = request.COOKIES.get(device_cookie_name())
    if not raw:
        return None
    try:
        data = signing.loads(raw, salt=DEVICE_SALT, max_age=throttle.TRUST_SECONDS)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    device, accounts = data.get("d"), data.get("a")
    if not isinstance(device, str) or not isinstance(accounts, list):
        return None
    return device, [tag for tag in accounts if isinstance(tag, str)]


def trusted_device(request: HttpRequest, pk: Any) -> str | None:
    """The device id when this browser completed a sign-in with a second factor for account pk."""
    device = _read_device(request)
    if device is None or _account_tag(pk) not in device[1]:
        return None
    return device[0]


def _remember_device(request: HttpRequest, response: HttpResponse, pk: Any) -> None:
    device = _read_device(request)
    device_id = device[0] if device else secrets.token_urlsafe(16)
    tag = _account_tag(pk)
    accounts = [t for t in (device[1] if device else []) if t != tag][-(DEVICE_ACCOUNTS - 1) :] + [tag]
    response.set_cookie(
        device_cookie_name(),
        signing.dumps({"d": device_id, "a": accounts}, salt=DEVICE_SALT),
        max_age=throttle.TRUST_SECONDS,
        path="/",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def _second_factor_used(request: HttpRequest) -> bool:
    from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY

    records = request.session.get(AUTHENTICATION_METHODS_SESSION_KEY) or []
    return any(isinstance(r, dict) and r.get("method") == "mfa" for r in records)


def _after_sign_in(request: HttpRequest, response: HttpResponse, user: Any) -> None:
    address = throttle.client_address(request)
    subject = f"user:{user.pk}"
    device = trusted_device(request, user.pk)
    # The device's (or known address's) own failures are forgiven; nobody else's are.
    for scope in ("login", "mfa"):
        keys = throttle.keys_for(subject=subject, address=address, realm=REALM, device=device)
        throttle.succeed(scope, keys, person=_person_getter(user.pk))
    throttle.trust(REALM, subject=subject, address=address)
    if _second_factor_used(request):
        _remember_device(request, response, user.pk)


# --- signals: what happened during the request ---------------------------------------------------


def _mark(request: Any, event: str) -> None:
    if isinstance(request, HttpRequest):
        events = getattr(request, _EVENTS, None)
        if events is None:
            events = set()
            setattr(request, _EVENTS, events)
        events.add(event)


@receiver(user_login_failed, dispatch_uid="civicore.auth_protection.login_failed")
def _on_login_failed(sender: Any, credentials: Any = None, request: Any = None, **kwargs: Any) -> None:
    _mark(request, "login_failed")


@receiver(account_signals.authentication_step_completed, dispatch_uid="civicore.auth_protection.step")
def _on_step(sender: Any, request: Any = None, **kwargs: Any) -> None:
    _mark(request, "step")


@receiver(user_logged_in, dispatch_uid="civicore.auth_protection.logged_in")
def _on_logged_in(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    metrics.LOGINS.labels(result="success").inc()
    if isinstance(request, HttpRequest) and user is not None:
        setattr(request, _LOGGED_IN, user)


@receiver(account_signals.password_reset, dispatch_uid="civicore.auth_protection.password_reset")
def _on_password_reset(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """Whoever opened the reset link controls the account's e-mail: their address becomes known
    and the account's own failure counts are forgiven, so a victim can always get back in."""
    if not isinstance(request, HttpRequest) or user is None:
        return
    address = throttle.client_address(request)
    subject = f"user:{user.pk}"
    throttle.trust(REALM, subject=subject, address=address)
    for scope in ("login", "mfa"):
        throttle.reset(scope, {"subject": subject}, person=_person_getter(user.pk), reason="password_reset")
