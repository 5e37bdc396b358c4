"""Progressive lockout on the real allauth sign-in, driven through the test client: per account
and per address, never against the owner on a device or address they signed in from before."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import struct
import time
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.core import mail
from django.test import Client, RequestFactory, override_settings

from civicore.audit.models import AuditEntry
from civicore.core import throttle
from civicore.core.auth_protection import _drop_malformed_credential, device_cookie_name
from civicore.identity.models import Person
from civicore.identity.tests.factories import PASSWORD, make_citizen

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
MFA = "/accounts/2fa/authenticate/"
LOGOUT = "/accounts/logout/"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
OWNER_ADDRESS = "192.0.2.10"
ATTACKER_ADDRESS = "198.51.100.66"


def totp_now(offset_steps: int = 0) -> str:
    """RFC 6238 code for the current 30-second step, computed here rather than by allauth."""
    key = base64.b32decode(SECRET)
    if time.time() % 30 > 25:
        time.sleep(30 - time.time() % 30 + 0.1)  # never straddle a step change
    counter = int(time.time()) // 30 + offset_steps
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def wrong_code() -> str:
    valid = {totp_now(step) for step in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in valid)


def browser(address: str) -> Client:
    return Client(REMOTE_ADDR=address, HTTP_ACCEPT_LANGUAGE="en")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(throttle, "clock", fake)
    return fake


@pytest.fixture
def citizen() -> Person:
    """A citizen with an authenticator app and recovery codes."""
    person = make_citizen()
    TOTP.activate(person.user, SECRET)
    RecoveryCodes.activate(person.user)
    return person


def recovery_code(person: Person, index: int) -> str:
    codes = RecoveryCodes(Authenticator.objects.get(user=person.user, type="recovery_codes"))
    return str(codes.get_unused_codes()[index])


def sign_in(client: Client, person: Person, code: str) -> None:
    first = client.post(LOGIN, {"login": person.user.email, "password": PASSWORD})
    assert first.status_code == 302 and first["Location"] == MFA, first.status_code
    second = client.post(MFA, {"code": code})
    assert second.status_code == 302, second.status_code
    assert client.session["_auth_user_id"] == str(person.user.pk)


def guess_password(client: Client, email: str, times: int) -> list[int]:
    return [
        client.post(LOGIN, {"login": email, "password": "not the password"}).status_code for _ in range(times)
    ]


# --- per account ---------------------------------------------------------------------------------


def test_password_guessing_locks_the_account_progressively(clock: Clock, citizen: Person) -> None:
    email = citizen.user.email
    attacker = browser(ATTACKER_ADDRESS)
    assert guess_password(attacker, email, 4) == [200, 200, 200, 200]

    fifth = attacker.post(LOGIN, {"login": email, "password": "not the password"})
    assert fifth.status_code == 429
    assert fifth["Retry-After"] == "60"

    # While locked, even the right password is refused unchecked, from any address it does not know.
    for client in (attacker, browser("203.0.113.9")):
        refused = client.post(LOGIN, {"login": email, "password": PASSWORD})
        assert refused.status_code == 429
        assert "account_login" not in client.session and "_auth_user_id" not in client.session

    clock.advance(61)
    assert attacker.post(LOGIN, {"login": email, "password": "not the password"})["Retry-After"] == "300"
    clock.advance(301)
    assert attacker.post(LOGIN, {"login": email, "password": "not the password"})["Retry-After"] == "900"


def test_lockout_expires(clock: Clock, citizen: Person) -> None:
    guess_password(browser(ATTACKER_ADDRESS), citizen.user.email, 5)
    newcomer = browser("203.0.113.9")
    assert newcomer.post(LOGIN, {"login": citizen.user.email, "password": PASSWORD}).status_code == 429
    clock.advance(61)
    sign_in(newcomer, citizen, totp_now())


def test_lockouts_and_their_end_are_audited_for_the_citizen(clock: Clock, citizen: Person) -> None:
    guess_password(browser(ATTACKER_ADDRESS), citizen.user.email, 5)
    locked = AuditEntry.objects.get(action="auth.lockout", person=citizen)
    assert locked.details == {
        "event": "locked",
        "reason": "failures",
        "scope": "login",
        "limiter": "subject",
        "address": ATTACKER_ADDRESS,
        "failures": 5,
        "seconds": 60,
    }
    clock.advance(61)
    browser("203.0.113.9").post(LOGIN, {"login": citizen.user.email, "password": PASSWORD})
    lifted = AuditEntry.objects.filter(action="auth.lockout", person=citizen).latest("id")
    assert (lifted.details["event"], lifted.details["reason"]) == ("unlocked", "expired")


def test_unknown_accounts_lock_the_same_way(clock: Clock) -> None:
    """No difference to learn from: an address nobody has behaves as an account does."""
    statuses = guess_password(browser(ATTACKER_ADDRESS), "nobody@example.test", 6)
    assert statuses == [200, 200, 200, 200, 429, 429]
    entry = AuditEntry.objects.get(action="auth.lockout")
    assert entry.person is None and entry.details["limiter"] == "subject"


# --- the owner is never locked out from where they signed in before ------------------------------


def test_the_owner_on_a_trusted_device_signs_in_during_an_attack(clock: Clock, citizen: Person) -> None:
    owner = browser(OWNER_ADDRESS)
    sign_in(owner, citizen, recovery_code(citizen, 0))
    cookie = owner.cookies[device_cookie_name()]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["max-age"] >= 90 * 86400
    owner.post(LOGOUT)

    # The owner takes the laptop to a café. Someone elsewhere locks the account, and someone in the
    # café (the same address) burns through that address's allowance on other accounts.
    cafe = "203.0.113.30"
    owner.defaults["REMOTE_ADDR"] = cafe
    guess_password(browser(ATTACKER_ADDRESS), citizen.user.email, 5)
    neighbour = browser(cafe)
    for n in range(20):
        neighbour.post(LOGIN, {"login": f"someone{n}@example.test", "password": "guess"})
    assert neighbour.post(LOGIN, {"login": "another@example.test", "password": "x"}).status_code == 429
    assert browser(cafe).post(LOGIN, {"login": citizen.user.email, "password": PASSWORD}).status_code == 429

    # The owner's browser, with the right password and second factor, is not held up.
    sign_in(owner, citizen, totp_now())


def test_a_device_cookie_is_only_given_after_a_second_factor(citizen: Person) -> None:
    password_only = make_citizen()
    client = browser(OWNER_ADDRESS)
    response = client.post(LOGIN, {"login": password_only.user.email, "password": PASSWORD})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(password_only.user.pk)
    assert device_cookie_name() not in client.cookies


def test_a_forged_or_foreign_device_cookie_does_not_help(clock: Clock, citizen: Person) -> None:
    other = make_citizen()
    TOTP.activate(other.user, SECRET)
    shared = browser("203.0.113.40")
    sign_in(shared, other, totp_now())  # a device trusted for another account only
    shared.post(LOGOUT)
    guess_password(browser(ATTACKER_ADDRESS), citizen.user.email, 5)
    assert shared.post(LOGIN, {"login": citizen.user.email, "password": PASSWORD}).status_code == 429

    forger = browser("203.0.113.41")
    forger.cookies[device_cookie_name()] = "eyJkIjoieCIsImEiOltdfQ:1tX:forged"
    assert forger.post(LOGIN, {"login": citizen.user.email, "password": PASSWORD}).status_code == 429


def test_an_address_that_signed_in_before_is_not_locked_out(clock: Clock) -> None:
    """Accounts without a second factor have no device cookie, but their address is remembered."""
    person = make_citizen()
    first = browser(OWNER_ADDRESS)
    assert first.post(LOGIN, {"login": person.user.email, "password": PASSWORD}).status_code == 302
    guess_password(browser(ATTACKER_ADDRESS), person.user.email, 5)

    again = browser(OWNER_ADDRESS)  # a new browser on the same address
    assert again.post(LOGIN, {"login": person.user.email, "password": PASSWORD}).status_code == 302
    assert again.session["_auth_user_id"] == str(person.user.pk)
    assert (
        browser("203.0.113.50").post(LOGIN, {"login": person.user.email, "password": PASSWORD}).status_code
        == 429
    )


def test_a_trusted_device_is_still_limited_by_its_own_failures(clock: Clock, citizen: Person) -> None:
    device = browser(OWNER_ADDRESS)
    sign_in(device, citizen, recovery_code(citizen, 0))
    device.post(LOGOUT)
    device.defaults["REMOTE_ADDR"] = "203.0.113.31"  # the cookie, not the address, is what it has
    assert guess_password(device, citizen.user.email, 10) == [200] * 9 + [429]  # ten free, then locked
    assert (
        browser("203.0.113.60").post(LOGIN, {"login": citizen.user.email, "password": PASSWORD}).status_code
        == 302
    )


# --- per address ---------------------------------------------------------------------------------


def test_one_address_is_capped_across_many_accounts(clock: Clock) -> None:
    attacker = browser(ATTACKER_ADDRESS)
    statuses = [
        attacker.post(LOGIN, {"login": f"target{n}@example.test", "password": "guess"}).status_code
        for n in range(20)
    ]
    assert statuses == [200] * 19 + [429]
    assert attacker.post(LOGIN, {"login": "fresh@example.test", "password": "guess"}).status_code == 429
    assert (
        browser("198.51.100.67").post(LOGIN, {"login": "fresh@example.test", "password": "g"}).status_code
        == 200
    )
    entry = AuditEntry.objects.get(action="auth.lockout", details__limiter="address")
    assert entry.person is None and entry.details["address"] == ATTACKER_ADDRESS


# --- second factor -------------------------------------------------------------------------------


def test_guessing_the_second_factor_is_throttled(clock: Clock, citizen: Person) -> None:
    attacker = browser(ATTACKER_ADDRESS)
    assert attacker.post(LOGIN, {"login": citizen.user.email, "password": PASSWORD}).status_code == 302
    code = wrong_code()
    assert [attacker.post(MFA, {"code": code}).status_code for _ in range(4)] == [200] * 4
    fifth = attacker.post(MFA, {"code": code})
    assert fifth.status_code == 429 and fifth["Retry-After"] == "60"

    right = attacker.post(MFA, {"code": totp_now()})
    assert right.status_code == 429
    assert "_auth_user_id" not in attacker.session

    # A security-key answer that does not verify sends no signal of its own, and counts too.
    clock.advance(61)
    key = attacker.post(MFA, {"credential": '{"id": "x"}'})
    assert key.status_code == 429 and key["Retry-After"] == "300"
    entry = AuditEntry.objects.filter(action="auth.lockout", details__scope="mfa").first()
    assert entry is not None and entry.person == citizen

    clock.advance(301)  # once the lock is over, the right code goes through
    assert attacker.post(MFA, {"code": totp_now()}).status_code == 302
    assert attacker.session["_auth_user_id"] == str(citizen.user.pk)


def test_recovery_codes_count_as_second_factor_guesses(clock: Clock, citizen: Person) -> None:
    attacker = browser(ATTACKER_ADDRESS)
    attacker.post(LOGIN, {"login": citizen.user.email, "password": PASSWORD})
    statuses = [attacker.post(MFA, {"code": f"bad{n:05d}"}).status_code for n in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    assert attacker.post(MFA, {"code": recovery_code(citizen, 0)}).status_code == 429


@override_settings(MFA_RATE_LIMITS=False)  # allauth's own 10/m/ip first layer, tested below
@pytest.mark.parametrize(
    "answer", ["{}", '{"id": "x"}', "not json", '{"id": "x", "rawId": 5, "response": []}']
)
def test_passkey_sign_in_guesses_count_per_address(clock: Clock, answer: str) -> None:
    client = browser(ATTACKER_ADDRESS)
    statuses = [
        client.post("/accounts/2fa/webauthn/login/", {"credential": answer}).status_code for _ in range(20)
    ]
    assert statuses[:19] == [302] * 19 and statuses[19] == 429, statuses


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_well_formed_security_key_answer_reaches_allauth_untouched() -> None:
    """Only answers fido2 cannot even parse are blanked; a real one must pass as it came."""
    client_data = json.dumps(
        {"type": "webauthn.get", "challenge": _b64(b"c" * 16), "origin": "http://testserver"}
    )
    authenticator_data = b"\x01" * 32 + bytes([5]) + (1).to_bytes(4, "big")
    answer = json.dumps(
        {
            "id": _b64(b"k" * 16),
            "rawId": _b64(b"k" * 16),
            "type": "public-key",
            "response": {
                "clientDataJSON": _b64(client_data.encode()),
                "authenticatorData": _b64(authenticator_data),
                "signature": _b64(b"s" * 64),
                "userHandle": None,
            },
            "clientExtensionResults": {},
        }
    )
    well_formed = RequestFactory().post("/", {"credential": answer})
    _drop_malformed_credential(well_formed, registration=False)
    assert well_formed.POST["credential"] == answer
    malformed = RequestFactory().post("/", {"credential": '{"id": "x"}'})
    _drop_malformed_credential(malformed, registration=False)
    assert malformed.POST["credential"] == ""


def test_allauths_own_429_uses_our_page(clock: Clock) -> None:
    client = browser(ATTACKER_ADDRESS)
    for _ in range(10):
        client.post("/accounts/2fa/webauthn/login/", {"credential": "{}"})
    response = client.post("/accounts/2fa/webauthn/login/", {"credential": "{}"})
    html = response.content.decode()
    assert response.status_code == 429 and "Too many attempts" in html
    assert "You have sent too many requests in a short time." in html


# --- reauthentication, password reset, sign-up ---------------------------------------------------


def test_reauthentication_is_throttled_per_session(clock: Clock) -> None:
    person = make_citizen()
    hijacked = browser(ATTACKER_ADDRESS)
    hijacked.force_login(person.user)
    statuses = [
        hijacked.post("/accounts/reauthenticate/", {"password": "guess"}).status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]
    assert hijacked.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 429

    own = browser(OWNER_ADDRESS)
    own.force_login(person.user)
    assert own.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302


def test_password_reset_requests_are_limited_per_account(clock: Clock, citizen: Person) -> None:
    client = browser(ATTACKER_ADDRESS)
    statuses = [
        client.post("/accounts/password/reset/", {"email": citizen.user.email}).status_code for _ in range(4)
    ]
    assert statuses == [302, 302, 302, 429]
    assert len(mail.outbox) == 3


def test_a_password_reset_gets_the_owner_back_in(clock: Clock, citizen: Person) -> None:
    guess_password(browser(ATTACKER_ADDRESS), citizen.user.email, 5)
    owner = browser("203.0.113.70")  # a new device: no cookie, an unknown address
    assert owner.post(LOGIN, {"login": citizen.user.email, "password": PASSWORD}).status_code == 429

    owner.post("/accounts/password/reset/", {"email": citizen.user.email})
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[-1].body)
    assert link
    form = owner.get(link.group(1))
    assert form.status_code == 302
    new_password = "a quite different passphrase 77 Hà Nội"
    done = owner.post(form["Location"], {"password1": new_password, "password2": new_password})
    assert done.status_code == 302, done.content.decode()[:2000]

    signed_in = owner.post(LOGIN, {"login": citizen.user.email, "password": new_password})
    assert signed_in.status_code == 302 and signed_in["Location"] == MFA
    lifted = AuditEntry.objects.filter(action="auth.lockout", details__event="unlocked").latest("id")
    assert lifted.details["reason"] == "password_reset" and lifted.person == citizen
    assert (
        browser("203.0.113.71").post(LOGIN, {"login": citizen.user.email, "password": "x"}).status_code == 200
    )


def test_sign_up_forms_are_limited_per_address(clock: Clock) -> None:
    client = browser(ATTACKER_ADDRESS)
    statuses = [
        client.post("/accounts/signup/", {"email": f"n{n}@example.test"}).status_code for n in range(21)
    ]
    assert statuses[:20] == [200] * 20 and statuses[20] == 429


# --- the page, the first layer, the session ------------------------------------------------------


def test_the_429_page_says_when_to_try_again(clock: Clock, citizen: Person) -> None:
    client = browser(ATTACKER_ADDRESS)
    guess_password(client, citizen.user.email, 4)
    response = client.post(LOGIN, {"login": citizen.user.email, "password": "guess"})
    html = response.content.decode()
    assert response.status_code == 429 and response["Retry-After"] == "60"
    assert html.count("<h1") == 1 and "Too many attempts" in html
    assert 'class="usa-alert usa-alert--warning' in html and 'role="alert"' in html
    assert "You can try again in 1 minute, at " in html
    assert 'href="/accounts/password/reset/"' in html
    assert 'class="usa-header' in html  # the site's own layout


@override_settings(ACCOUNT_RATE_LIMITS={"login_failed": "10/m/ip"})
def test_allauths_own_limit_stays_on_as_a_first_layer(clock: Clock) -> None:
    from config.settings.base import ACCOUNT_RATE_LIMITS

    assert ACCOUNT_RATE_LIMITS["login_failed"] == "10/m/ip"  # what production runs
    client = browser(ATTACKER_ADDRESS)
    for n in range(10):
        client.post(LOGIN, {"login": f"target{n}@example.test", "password": "guess"})
    eleventh = client.post(LOGIN, {"login": "target10@example.test", "password": "guess"})
    assert eleventh.status_code == 200  # below our address allowance: allauth's own message
    assert "Too many failed login attempts" in eleventh.content.decode()


def test_the_session_is_rotated_when_sign_in_completes(citizen: Person) -> None:
    client = browser(OWNER_ADDRESS)
    client.post(LOGIN, {"login": citizen.user.email, "password": PASSWORD})
    during = client.session.session_key
    assert during
    assert client.post(MFA, {"code": totp_now()}).status_code == 302
    assert client.session.session_key != during
    assert client.session["_auth_user_id"] == str(citizen.user.pk)


@pytest.mark.parametrize(
    "login",
    ["", "a" * 5000 + "@example.test", "nul\x00@example.test", "\u202e@example.test", "' OR 1=1 --@x.test"],
)
def test_hostile_sign_in_input_is_never_a_server_error(login: str, clock: Clock) -> None:
    client = browser(ATTACKER_ADDRESS)
    client.cookies[device_cookie_name()] = "\x7f garbage"
    assert client.post(LOGIN, {"login": login, "password": "x" * 10_000}).status_code in (200, 429)
    assert client.post(MFA, {"code": login[:100]}).status_code in (200, 302, 429)


def test_proxy_headers_are_ignored_unless_configured(clock: Clock, citizen: Person, settings: Any) -> None:
    """Rotating X-Forwarded-For does not give an attacker fresh addresses."""
    statuses = [
        Client(REMOTE_ADDR=ATTACKER_ADDRESS, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
        .post(LOGIN, {"login": f"t{n}@example.test", "password": "g"})
        .status_code
        for n in range(21)
    ]
    assert statuses[-1] == 429
    settings.TRUSTED_PROXY_COUNT = 1
    behind_proxy = Client(REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert behind_proxy.post(LOGIN, {"login": "t@example.test", "password": "g"}).status_code == 200
