"""Logging in (password, then authenticator code) and the account pages, drawn in the site's style."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.core.cache import cache
from django.test import Client

from civicore.identity.tests.factories import PASSWORD, make_citizen

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    """These tests read the English wording."""
    return Client(HTTP_ACCEPT_LANGUAGE="en")


SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def totp_now(secret: str, offset_steps: int = 0) -> str:
    """RFC 6238 code for the current 30-second step, computed here rather than by allauth."""
    key = base64.b32decode(secret)
    if time.time() % 30 > 25:
        # Too close to the next step: the code could expire between computing and using it.
        time.sleep(30 - time.time() % 30 + 0.1)
    counter = int(time.time()) // 30 + offset_steps
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    # allauth remembers used TOTP codes in the cache; tests must not see each other's.
    cache.clear()


@pytest.fixture
def citizen_with_totp():  # type: ignore[no-untyped-def]
    person = make_citizen()
    TOTP.activate(person.user, SECRET)
    return person


def test_login_page_uses_labelled_uswds_fields(client: Client) -> None:
    html = client.get("/accounts/login/").content.decode()
    assert 'class="usa-form usa-form--large"' in html
    assert re.search(r'<label class="usa-label" for="id_login">', html)
    assert re.search(r'<label class="usa-label" for="id_password">', html)
    assert re.search(
        r'<input[^>]*class="usa-input"[^>]*id="id_login"|<input[^>]*id="id_login"[^>]*class="usa-input"', html
    )
    assert 'class="usa-checkbox__input"' in html  # "remember me"
    assert 'class="usa-button"' in html
    assert "placeholder=" not in html


def test_wrong_password_is_reported_accessibly(client: Client, citizen_with_totp) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/accounts/login/", {"login": citizen_with_totp.user.email, "password": "not the password"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="usa-alert usa-alert--error usa-alert--slim margin-bottom-2" role="alert"' in html
    assert "_auth_user_id" not in client.session


def test_invalid_email_error_is_tied_to_its_field(client: Client) -> None:
    html = client.post("/accounts/login/", {"login": "", "password": ""}).content.decode()
    assert '<span class="usa-error-message" id="id_login-error">' in html
    field = re.search(r'<input[^>]*id="id_login"[^>]*>', html)
    assert field and 'aria-describedby="id_login-error"' in field.group(0)
    assert 'aria-invalid="true"' in field.group(0)


def test_password_then_authenticator_code_reaches_the_portal(client: Client, citizen_with_totp) -> None:  # type: ignore[no-untyped-def]
    user = citizen_with_totp.user
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert "_auth_user_id" not in client.session  # not logged in after the password alone

    page = client.get("/accounts/2fa/authenticate/").content.decode()
    assert '<label class="usa-label" for="id_code">' in page
    assert "<h1>" in page and 'action="/accounts/logout/"' in page

    wrong = client.post(
        "/accounts/2fa/authenticate/", {"code": "000000" if totp_now(SECRET) != "000000" else "111111"}
    )
    wrong_html = wrong.content.decode()
    assert wrong.status_code == 200
    assert '<span class="usa-error-message" id="id_code-error">' in wrong_html
    assert "_auth_user_id" not in client.session

    done = client.post("/accounts/2fa/authenticate/", {"code": totp_now(SECRET)})
    assert done.status_code == 302
    assert done["Location"] == "/"
    assert client.session["_auth_user_id"] == str(user.pk)
    home = client.get("/").content.decode()
    assert 'href="/applications/"' in home and 'action="/accounts/logout/"' in home


def test_authenticator_code_cannot_be_replayed(client: Client, citizen_with_totp) -> None:  # type: ignore[no-untyped-def]
    user = citizen_with_totp.user
    code = totp_now(SECRET)
    client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert client.post("/accounts/2fa/authenticate/", {"code": code}).status_code == 302
    client.post("/accounts/logout/")
    other = Client()
    other.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    response = other.post("/accounts/2fa/authenticate/", {"code": code})
    assert response.status_code == 200
    assert "_auth_user_id" not in other.session


@pytest.mark.parametrize("hostile", ["<script>alert(1)</script>", "1' OR '1'='1", "9" * 5000])
def test_hostile_codes_are_refused(client: Client, citizen_with_totp, hostile: str) -> None:  # type: ignore[no-untyped-def]
    client.post("/accounts/login/", {"login": citizen_with_totp.user.email, "password": PASSWORD})
    response = client.post("/accounts/2fa/authenticate/", {"code": hostile})
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert "_auth_user_id" not in client.session


def _login(client: Client, user, secret: str = SECRET) -> None:  # type: ignore[no-untyped-def]
    client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    client.post("/accounts/2fa/authenticate/", {"code": totp_now(secret)})
    assert client.session["_auth_user_id"] == str(user.pk)


def _reauthenticate(client: Client, url: str) -> None:
    page = client.get(url).content.decode()
    assert page.count("<h1") == 1
    assert '<label class="usa-label" for="id_password">' in page
    response = client.post(url, {"password": PASSWORD})
    assert response.status_code == 302


def test_security_page_lists_authenticator_and_recovery_codes(client: Client, citizen_with_totp) -> None:  # type: ignore[no-untyped-def]
    RecoveryCodes.activate(citizen_with_totp.user)
    _login(client, citizen_with_totp.user)
    html = client.get("/accounts/2fa/").content.decode()
    assert html.count("<h1") == 1
    assert 'class="civicore-panel"' in html
    assert '<nav aria-label="Account settings">' in html
    assert 'aria-current="page"' in html

    # Seeing the codes is sensitive: allauth asks for the password again first.
    asked = client.get("/accounts/2fa/recovery-codes/")
    assert asked.status_code == 302 and "reauthenticate" in asked["Location"]
    _reauthenticate(client, asked["Location"])
    codes = client.get("/accounts/2fa/recovery-codes/").content.decode()
    assert '<label class="usa-label" for="recovery_codes">' in codes
    assert 'class="usa-textarea civicore-codes"' in codes
    unused = RecoveryCodes(Authenticator.objects.get(user=citizen_with_totp.user, type="recovery_codes"))
    assert unused.get_unused_codes()[0] in codes


def test_activating_an_authenticator_app(client: Client) -> None:
    person = make_citizen()
    client.post("/accounts/login/", {"login": person.user.email, "password": PASSWORD})
    assert client.session["_auth_user_id"] == str(person.user.pk)
    asked = client.get("/accounts/2fa/totp/activate/")
    assert asked.status_code == 302 and "reauthenticate" in asked["Location"]
    _reauthenticate(client, asked["Location"])
    page = client.get("/accounts/2fa/totp/activate/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'class="civicore-qr"' in html
    assert '<label class="usa-label" for="authenticator_secret">' in html
    assert 'aria-describedby="authenticator_secret-hint"' in html
    secret = re.search(r'id="authenticator_secret" value="([A-Z2-7]+)"', html)
    assert secret
    response = client.post("/accounts/2fa/totp/activate/", {"code": totp_now(secret.group(1))})
    assert response.status_code == 302
    assert Authenticator.objects.filter(user=person.user, type="totp").exists()


@pytest.mark.parametrize(
    "url", ["/accounts/signup/", "/accounts/password/reset/", "/accounts/confirm-email/bogus-key/"]
)
def test_entrance_pages_render_in_site_style(client: Client, url: str) -> None:
    response = client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<h1") == 1
    assert 'class="usa-header' in html


def test_signup_form_explains_password_rules_next_to_the_field(client: Client) -> None:
    html = client.post(
        "/accounts/signup/", {"email": "not-an-email", "password1": "short", "password2": "x"}
    ).content.decode()
    assert 'id="id_email-error"' in html
    email = re.search(r'<input[^>]*id="id_email"[^>]*>', html)
    assert email and "id_email-error" in email.group(0)
    assert 'id="id_password1-hint"' in html or 'id="id_password1-error"' in html


def test_verification_sent_page(client: Client) -> None:
    response = client.post(
        "/accounts/signup/",
        {
            "full_name": "Nguyễn Thị Mai",
            "national_id": "079301000123",
            "email": "new.citizen@example.test",
            "password1": "a long enough passphrase 9",
            "password2": "a long enough passphrase 9",
        },
    )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert page.count("<h1") == 1 and "usa-header" in page


def test_logout_confirmation_page(client: Client, citizen_with_totp) -> None:  # type: ignore[no-untyped-def]
    _login(client, citizen_with_totp.user)
    html = client.get("/accounts/logout/").content.decode()
    assert re.search(r'<form class="usa-form usa-form--large" method="post" action="/accounts/logout/"', html)
    client.post("/accounts/logout/")
    assert "_auth_user_id" not in client.session
