"""Officers and staff use the back office (case inbox, agency systems, admin, case API) only with
a second factor: without one set up they are sent to set it up, and a login that did not use
one is asked to confirm with it before going on."""

from __future__ import annotations

import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.test import Client

from civicore.agencies.tests.factories import make_officer
from civicore.identity.services import api_token_create
from civicore.identity.tests.factories import TOTP_SECRET, UserFactory, log_in, make_citizen

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en")


def test_an_officer_without_a_second_factor_is_sent_to_set_one_up(client: Client) -> None:
    officer = make_officer()
    log_in(client, officer.user, second_factor=False)
    for path in ("/office/", "/office/systems/", "/office/deliveries/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == "/accounts/2fa/"
    page = client.get("/accounts/2fa/").content.decode()
    assert "Officers must protect their account with a second factor" in page


def test_staff_without_a_second_factor_cannot_open_the_admin(client: Client) -> None:
    staff = UserFactory(is_staff=True, is_superuser=True)
    log_in(client, staff, second_factor=False)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/"
    assert client.get("/admin/identity/user/")["Location"] == "/accounts/2fa/"


def test_officers_and_staff_who_logged_in_with_a_second_factor_get_in(client: Client) -> None:
    officer = make_officer()
    officer.user.is_staff = True
    officer.user.is_superuser = True
    officer.user.save()
    log_in(client, officer.user)
    assert client.get("/office/").status_code == 200
    assert client.get("/admin/").status_code == 200


def test_a_login_without_the_second_factor_is_asked_for_it_and_comes_back(client: Client) -> None:
    """The officer logged in with the password alone, then set up an authenticator: the session
    still has no second factor, so the back office asks for it, then shows the page asked for."""
    officer = make_officer()
    log_in(client, officer.user, second_factor=False)
    TOTP.activate(officer.user, TOTP_SECRET)
    codes = RecoveryCodes.activate(officer.user)

    asked = client.get("/office/?state=open")
    assert asked.status_code == 302
    assert asked["Location"] == "/accounts/2fa/reauthenticate/?next=%2Foffice%2F%3Fstate%3Dopen"
    page = client.get(asked["Location"]).content.decode()
    assert "The back office needs your second factor" in page

    wrong = client.post(asked["Location"], {"code": "000000"})
    assert wrong.status_code == 200
    assert client.get("/office/").status_code == 302  # still refused

    confirmed = client.post(asked["Location"], {"code": codes.get_unused_codes()[0]})
    assert confirmed.status_code == 302 and confirmed["Location"] == "/office/?state=open"
    assert client.get("/office/?state=open").status_code == 200


def test_a_password_reauthentication_does_not_open_the_back_office(client: Client) -> None:
    from civicore.identity.tests.factories import PASSWORD

    officer = make_officer()
    log_in(client, officer.user, second_factor=False)
    TOTP.activate(officer.user, TOTP_SECRET)
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert client.get("/office/")["Location"].startswith("/accounts/2fa/reauthenticate/")


def test_an_officer_with_only_a_passkey_is_asked_for_it() -> None:
    from civicore.identity.tests.test_assurance import _passkey

    officer = make_officer()
    client = Client()
    log_in(client, officer.user, second_factor=False)
    _passkey(officer.user, synced=False)
    response = client.get("/office/")
    assert response["Location"].startswith("/accounts/2fa/webauthn/reauthenticate/?next=")


def test_recovery_codes_alone_are_not_a_second_factor_to_set_up(client: Client) -> None:
    officer = make_officer()
    log_in(client, officer.user, second_factor=False)
    RecoveryCodes.activate(officer.user)
    assert client.get("/office/")["Location"] == "/accounts/2fa/"


def test_citizens_and_former_officers_are_left_to_the_pages_own_rules(client: Client) -> None:
    citizen = make_citizen()
    log_in(client, citizen.user, second_factor=False)
    assert client.get("/office/").status_code == 403  # the inbox's own refusal, not a redirect
    former = make_officer(active=False)
    other = Client()
    log_in(other, former.user, second_factor=False)
    assert other.get("/office/").status_code == 403


def test_htmx_requests_are_told_to_navigate(client: Client) -> None:
    officer = make_officer()
    log_in(client, officer.user, second_factor=False)
    response = client.get("/office/", HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/accounts/2fa/"


def test_the_case_api_refuses_a_session_without_a_second_factor(client: Client) -> None:
    officer = make_officer()
    log_in(client, officer.user, second_factor=False)
    response = client.get("/api/v1/cases")
    assert response.status_code == 403
    assert response.json()["code"] == "second_factor_setup_required"
    TOTP.activate(officer.user, TOTP_SECRET)
    assert client.get("/api/v1/cases").json()["code"] == "second_factor_required"


def test_a_junk_bearer_token_does_not_get_a_session_past_the_check(client: Client) -> None:
    """The API falls back to the session when a token does not authenticate."""
    officer = make_officer()
    log_in(client, officer.user, second_factor=False)
    response = client.get("/api/v1/cases", HTTP_AUTHORIZATION="Bearer cvc_not-a-real-token")
    assert response.status_code == 403
    assert response.json()["code"] == "second_factor_setup_required"


def test_the_case_api_with_a_token_is_not_a_login() -> None:
    officer = make_officer()
    _token, secret = api_token_create(user=officer.user, name="agency system")
    response = Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/v1/cases")
    assert response.status_code == 200


def test_logging_out_of_the_admin_is_always_possible(client: Client) -> None:
    staff = UserFactory(is_staff=True)
    log_in(client, staff, second_factor=False)
    assert client.post("/admin/logout/").status_code in (200, 302)
    assert "_auth_user_id" not in client.session
