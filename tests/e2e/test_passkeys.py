"""Passkeys in a real browser, with Chromium's virtual authenticator standing in for the phone or
laptop (CDP WebAuthn domain): a citizen adds a passkey as a second factor, logs out and logs
back in with the passkey alone; then a roaming security key serves as the second factor after
the password. Also the step-up pages a service that needs more assurance shows. Every page on
the way is checked with axe-core."""

from __future__ import annotations

import re
from importlib import import_module
from typing import Any

import pytest
from allauth.account.authentication import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.test import RequestFactory

from civicore.applications.models import Application
from civicore.applications.tests.factories import make_service
from civicore.identity.selectors import session_amr
from civicore.identity.tests.factories import (
    PASSWORD,
    TOTP_SECRET,
    make_citizen,
    make_self_registered_citizen,
)
from tests.e2e.accessibility import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _authenticator(cdp: Any, **options: Any) -> str:
    result = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {"options": {"protocol": "ctap2", "automaticPresenceSimulation": True, **options}},
    )
    return str(result["authenticatorId"])


def _submit(page: Any, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def _log_out(page: Any) -> None:
    _submit(page, "header form[action='/accounts/logout/'] button[type=submit]")


def _amr(context: Any, user: Any) -> list[str]:
    """The method references of the browser's current session, read from the session store."""
    cookie = next(c for c in context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    store = import_module(settings.SESSION_ENGINE).SessionStore(cookie["value"])
    request = RequestFactory().get("/")
    request.session = store
    request.user = user if store.get("_auth_user_id") == str(user.pk) else AnonymousUser()
    return session_amr(request)


def test_passkey_as_second_factor_then_passkey_login(browser: Any, live_server: Any) -> None:
    cache.clear()
    person = make_citizen(email="passkey@example.test")
    user = person.user
    # An authenticator app and recovery codes are already set up; one code logs in the first time.
    TOTP.activate(user, TOTP_SECRET)
    codes = RecoveryCodes.activate(user).get_unused_codes()
    base = live_server.url

    context = browser.new_context(locale="vi-VN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    platform = _authenticator(
        cdp,
        transport="internal",
        hasResidentKey=True,
        hasUserVerification=True,
        isUserVerified=True,
    )

    # Log in with the password and a recovery code.
    page.goto(f"{base}/accounts/login/")
    assert_accessible(page, "login with the passkey button")
    assert page.is_visible("#passkey_login")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    _submit(page, "main button[type=submit]")
    page.fill("input[name=code]", codes[0])
    _submit(page, "main button[type=submit]")
    assert _amr(context, user) == ["pwd", "otp", "mfa"]

    # Add a passkey: allauth first asks for the password again.
    page.goto(f"{base}/accounts/2fa/")
    assert_accessible(page, "account security with passkeys")
    page.goto(f"{base}/accounts/2fa/webauthn/add/")
    if "/reauthenticate/" in page.url:
        assert_accessible(page, "confirm access")
        page.fill("input[name=password]", PASSWORD)
        _submit(page, "main button[type=submit]")
    assert page.url.endswith("/accounts/2fa/webauthn/add/")
    assert_accessible(page, "add a passkey")
    page.fill("input[name=name]", "Laptop")
    # USWDS draws its own checkbox over the hidden input: click the label, as a person would.
    page.click("label[for=id_passwordless]")  # a passkey that logs in on its own (user verification)
    assert page.is_checked("#id_passwordless")
    _submit(page, "#mfa_webauthn_add")

    key = Authenticator.objects.get(user=user, type=Authenticator.Type.WEBAUTHN)
    assert key.wrap().name == "Laptop"
    assert key.wrap().is_passwordless is True
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": platform})["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"]

    page.goto(f"{base}/accounts/2fa/webauthn/")
    assert_accessible(page, "passkey list")
    assert "Laptop" in page.inner_text("main")

    # Log out, then log in with the passkey alone: no password, no code.
    _log_out(page)
    page.goto(f"{base}/accounts/login/")
    _submit(page, "#passkey_login")
    assert re.search(r"/$", page.url)
    assert page.is_visible("header form[action='/accounts/logout/']")
    assert _amr(context, user) == ["hwk", "user", "mfa"]
    key.refresh_from_db()
    assert key.last_used_at is not None

    # The sessions page shows this browser.
    page.goto(f"{base}/my-profile/sessions/")
    assert_accessible(page, "active sessions")
    assert page.locator("#sessions tbody tr").count() == 1

    # A roaming security key (USB) as the second factor after the password.
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": platform})
    _authenticator(cdp, transport="usb", hasResidentKey=False, hasUserVerification=False)
    page.goto(f"{base}/accounts/2fa/webauthn/add/")
    if "/reauthenticate/" in page.url:
        # A passkey login offers the security key to confirm access; the password also works.
        page.goto(f"{base}/accounts/reauthenticate/?next=/accounts/2fa/webauthn/add/")
        page.fill("input[name=password]", PASSWORD)
        _submit(page, "main button[type=submit]")
    page.fill("input[name=name]", "USB key")
    _submit(page, "#mfa_webauthn_add")
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN).count() == 2

    _log_out(page)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    _submit(page, "main button[type=submit]")
    assert "/accounts/2fa/authenticate/" in page.url
    assert_accessible(page, "second factor with a security key option")
    _submit(page, "#mfa_webauthn_authenticate")
    assert re.search(r"/$", page.url)
    amr = _amr(context, user)
    assert amr[0] == "pwd" and "hwk" in amr and amr[-1] == "mfa"
    context.close()


def test_step_up_pages_and_returning_to_where_the_citizen_was(browser: Any, live_server: Any) -> None:
    """A self-registered citizen is told how to get verified; a verified one whose second factor
    is older than the service allows confirms it and lands on the application they started."""
    cache.clear()
    base = live_server.url
    strict = make_service(assurance_level=2, fresh_second_factor_minutes=15)

    def log_in(page: Any, user: Any) -> list[str]:
        codes = RecoveryCodes.activate(user).get_unused_codes()
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=login]", user.email)
        page.fill("input[name=password]", PASSWORD)
        _submit(page, "main button[type=submit]")
        page.fill("input[name=code]", codes[0])
        _submit(page, "main button[type=submit]")
        return codes

    def start(page: Any) -> None:
        page.goto(f"{base}/services/{strict.code}/")
        _submit(page, f"form[action='/applications/start/{strict.code}/'] button[type=submit]")

    newcomer = make_self_registered_citizen()
    TOTP.activate(newcomer.user, TOTP_SECRET)
    context = browser.new_context(locale="vi-VN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    log_in(page, newcomer.user)
    start(page)
    assert page.locator("#assurance-required").count() == 1
    assert_accessible(page, "verified identity needed")
    context.close()

    verified = make_citizen()
    TOTP.activate(verified.user, TOTP_SECRET)
    context = browser.new_context(locale="vi-VN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    codes = log_in(page, verified.user)
    # Twenty minutes pass: the login's second factor is now too old for this service.
    cookie = next(c for c in context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    store = import_module(settings.SESSION_ENGINE).SessionStore(cookie["value"])
    records = store[AUTHENTICATION_METHODS_SESSION_KEY]
    for record in records:
        record["at"] -= 20 * 60
    store[AUTHENTICATION_METHODS_SESSION_KEY] = records
    store.save()

    start(page)
    assert "/accounts/2fa/reauthenticate/" in page.url
    assert_accessible(page, "confirm with the second factor")
    page.fill("input[name=code]", codes[1])
    _submit(page, "main button[type=submit]")
    application = Application.objects.get(applicant=verified)
    assert page.url.endswith(f"/applications/{application.public_id}/")
    page.wait_for_selector("#application-form")
    context.close()
