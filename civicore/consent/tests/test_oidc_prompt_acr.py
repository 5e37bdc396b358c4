"""prompt=none, prompt=login and max_age, and the levels of assurance a client asks for (acr_values,
an essential acr claim): when Civicore answers without a page, what it answers when it cannot,
when the citizen is asked to authenticate again or confirm with their second factor, and what
the ID token then says about the login."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from allauth.account.authentication import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP as AuthenticatorApp
from django.test import Client
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from civicore.audit.models import AuditEntry
from civicore.consent import oidc
from civicore.consent.models import AuthorizationCode, Consent, PushedAuthorizationRequest, RefreshToken
from civicore.consent.tests.helpers import (
    PASSWORD,
    TOTP,
    approve,
    authorize_query,
    authorize_url,
    exchange,
    pkce_pair,
    push,
    record_login,
    redirect_params,
)
from civicore.core.jose import reset_cache
from civicore.identity.models import Person
from civicore.identity.tests.factories import PASSWORD as SECRET
from civicore.identity.tests.factories import TOTP_SECRET, UserFactory, make_citizen
from civicore.registry.models import AgencyApplication
from civicore.registry.tests.factories import make_application

pytestmark = pytest.mark.django_db
LOA1, LOA2 = oidc.ACR_VALUES
ESSENTIAL_LOA2 = json.dumps({"id_token": {"acr": {"essential": True, "values": [LOA2]}}})


@pytest.fixture(autouse=True)
def _fresh_platform_keys() -> Any:
    reset_cache()
    yield
    reset_cache()


@pytest.fixture
def citizen() -> Person:
    """Verified (assurance level 2), with an authenticator app and recovery codes."""
    person = make_citizen()
    Person.objects.filter(pk=person.pk).update(assurance_level=2)
    person.refresh_from_db()
    AuthenticatorApp.activate(person.user, TOTP_SECRET)
    RecoveryCodes.activate(person.user)
    return person


@pytest.fixture
def agency() -> tuple[AgencyApplication, ECKey]:
    return make_application()


def _browser(person: Person, *methods: dict[str, Any]) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(person.user)
    record_login(client, person.user, *(methods or (PASSWORD, TOTP)))
    return client


def _age_login(client: Client, seconds: float) -> None:
    session = client.session
    records = session[AUTHENTICATION_METHODS_SESSION_KEY]
    for record in records:
        record["at"] -= seconds
    session[AUTHENTICATION_METHODS_SESSION_KEY] = records
    session.save()


def _tokens(app: AgencyApplication, key: ECKey, code: str, verifier: str) -> dict[str, Any]:
    response = exchange(Client(), app, key, code=code, verifier=verifier)
    assert response.status_code == 200, response.content
    return dict(response.json())


def _id_claims(id_token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(Client().get("/.well-known/jwks.json").json())
    return dict(jwt.decode(id_token, keys).claims)


def _silent(client: Client, app: AgencyApplication, challenge: str, **extra: Any) -> dict[str, str]:
    """A prompt=none request: never a page, always a redirect back to the client."""
    extra.setdefault("scope", "openid profile")
    response = client.get(authorize_url(authorize_query(app, challenge=challenge, prompt="none", **extra)))
    assert response.status_code == 302, response.content.decode()[:500]
    params = redirect_params(response["Location"])
    assert params["state"] == "state-123"
    return params


def _consented(client: Client, app: AgencyApplication, **extra: Any) -> None:
    """The citizen approves once on the consent screen."""
    extra.setdefault("scope", "openid profile")
    approve(client, app, challenge=pkce_pair()[1], **extra)


# --- prompt=none -------------------------------------------------------------------------------


def test_prompt_none_with_a_covering_consent_answers_with_a_code_and_no_page(
    citizen: Person, agency: Any
) -> None:
    app, key = agency
    browser = _browser(citizen)
    verifier, challenge = pkce_pair()
    first = approve(browser, app, challenge=challenge, scope="openid profile offline_access")
    refresh_token = _tokens(app, key, first, verifier)["refresh_token"]
    consent = Consent.objects.get()

    verifier, challenge = pkce_pair()
    params = _silent(browser, app, challenge, nonce="silent-1")
    assert "error" not in params
    tokens = _tokens(app, key, params["code"], verifier)
    claims = _id_claims(tokens["id_token"])
    assert claims["nonce"] == "silent-1"
    assert claims["acr"] == LOA2
    # Issued under the consent the citizen gave: nothing granted again, nothing withdrawn.
    assert Consent.objects.get() == consent
    assert AuthorizationCode.objects.filter(consent=consent).count() == 2
    assert RefreshToken.objects.filter(revoked_at__isnull=True).count() == 1
    assert RefreshToken.objects.get(revoked_at__isnull=True).consent == consent
    assert refresh_token  # the first grant's refresh token is still the live one
    silent = AuditEntry.objects.get(action="consent.authorize.silent")
    assert silent.details["consent"] == str(consent.public_id)
    assert AuditEntry.objects.filter(action="consent.grant").count() == 1


@pytest.mark.parametrize(
    ("asked", "why"),
    [
        ({"scope": "openid profile address"}, "an item beyond the consent"),
        ({"scope": "openid profile offline_access"}, "offline access the citizen did not allow"),
        ({"purpose": "other"}, "another purpose"),
        ({"claims": json.dumps({"userinfo": {"address": None}})}, "a claim of an item beyond the consent"),
    ],
)
def test_prompt_none_without_a_consent_covering_the_request_is_consent_required(
    citizen: Person, asked: dict[str, str], why: str
) -> None:
    purposes = [
        {"code": "benefit", "name_vi": "Xét trợ cấp", "name_en": "Benefit eligibility"},
        {"code": "other", "name_vi": "Khác", "name_en": "Other"},
    ]
    app, _key = make_application(purposes=purposes)
    browser = _browser(citizen)
    _consented(browser, app)
    params = _silent(browser, app, pkce_pair()[1], **asked)
    assert params["error"] == "consent_required", why
    assert "code" not in params


def test_prompt_none_after_the_consent_is_withdrawn_is_consent_required(citizen: Person, agency: Any) -> None:
    app, _key = agency
    browser = _browser(citizen)
    _consented(browser, app)
    consent = Consent.objects.get()
    assert browser.post(f"/my-data/consents/{consent.public_id}/revoke").status_code == 302
    assert _silent(browser, app, pkce_pair()[1])["error"] == "consent_required"


def test_prompt_none_with_a_pushed_request_spends_it(citizen: Person, agency: Any) -> None:
    app, key = agency
    browser = _browser(citizen)
    _consented(browser, app)
    verifier, challenge = pkce_pair()
    pushed = push(Client(), app, key, challenge=challenge, scope="openid profile", prompt="none")
    assert pushed.status_code == 201, pushed.content
    url = authorize_url({"client_id": app.client_id, "request_uri": pushed.json()["request_uri"]})
    params = redirect_params(browser.get(url)["Location"])
    assert _tokens(app, key, params["code"], verifier)["id_token"]
    assert PushedAuthorizationRequest.objects.get().used_at is not None
    assert redirect_params(browser.get(url)["Location"])["error"] == "invalid_request_uri"


def test_prompt_none_and_max_age(citizen: Person, agency: Any) -> None:
    app, _key = agency
    browser = _browser(citizen)
    _consented(browser, app)
    _age_login(browser, 600)
    assert _silent(browser, app, pkce_pair()[1], max_age="300")["error"] == "login_required"
    assert "code" in _silent(browser, app, pkce_pair()[1], max_age="3600")


def test_prompt_none_when_a_second_factor_must_be_confirmed_is_interaction_required(
    citizen: Person, agency: Any
) -> None:
    app, _key = agency
    browser = _browser(citizen, PASSWORD)  # a password login: loa:1, though loa:2 is in reach
    _consented(browser, app)
    for asked in ({"acr_values": LOA2}, {"claims": ESSENTIAL_LOA2}):
        params = _silent(browser, app, pkce_pair()[1], **asked)
        assert params["error"] == "interaction_required"
    # Nothing to confirm when loa:1 is all the client wants.
    assert "code" in _silent(browser, app, pkce_pair()[1], acr_values=LOA1)


def test_prompt_none_from_an_account_that_is_not_a_citizens_is_interaction_required(agency: Any) -> None:
    app, _key = agency
    officer = UserFactory()  # an account with no citizen profile
    browser = Client()
    browser.force_login(officer)
    params = _silent(browser, app, pkce_pair()[1])
    assert params["error"] == "interaction_required"


# --- prompt=login and max_age: authenticating again -------------------------------------------


@pytest.mark.parametrize("asked", [{"prompt": "login"}, {"max_age": "60"}])
def test_auth_time_is_the_new_authentication_after_logging_in_again(
    citizen: Person, agency: Any, asked: dict[str, str]
) -> None:
    app, key = agency
    browser = _browser(citizen)
    _age_login(browser, 3600)  # logged in an hour ago
    verifier, challenge = pkce_pair()
    url = authorize_url(authorize_query(app, challenge=challenge, scope="openid", **asked))
    sent = browser.get(url)
    assert sent.status_code == 302
    assert sent["Location"].startswith("/accounts/reauthenticate/?next=")
    before = int(time.time())
    # allauth's own re-authentication page, with the citizen's password.
    back = browser.post(sent["Location"], {"password": SECRET})
    assert back.status_code == 302
    assert back["Location"] == url
    assert browser.get(url).status_code == 200  # the consent screen, not another round
    response = browser.post(url, {"decision": "approve"})
    claims = _id_claims(
        _tokens(app, key, redirect_params(response["Location"])["code"], verifier)["id_token"]
    )
    assert before <= claims["auth_time"] <= int(time.time())


# --- acr_values and an essential acr claim ---------------------------------------------------------


def test_a_loa2_request_steps_up_with_the_second_factor_then_issues_loa2(
    citizen: Person, agency: Any
) -> None:
    app, key = agency
    browser = _browser(citizen, PASSWORD)
    verifier, challenge = pkce_pair()
    url = authorize_url(
        authorize_query(app, challenge=challenge, scope="openid", acr_values=f"{LOA2} {LOA1}")
    )
    asked = browser.get(url)
    assert asked.status_code == 302
    assert asked["Location"].startswith("/accounts/2fa/reauthenticate/?next=")
    page = browser.get(asked["Location"]).content.decode()
    assert f"{app.name_en} asks you to confirm it is you with your second factor" in page
    code = RecoveryCodes(
        Authenticator.objects.get(user=citizen.user, type="recovery_codes")
    ).get_unused_codes()[0]
    back = browser.post(asked["Location"], {"code": code})
    assert back.status_code == 302 and back["Location"] == url
    assert browser.get(url).status_code == 200  # the consent screen now
    response = browser.post(url, {"decision": "approve"})
    claims = _id_claims(
        _tokens(app, key, redirect_params(response["Location"])["code"], verifier)["id_token"]
    )
    assert claims["acr"] == LOA2
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])


def test_one_second_factor_confirmation_answers_both_prompt_login_and_the_level(
    citizen: Person, agency: Any
) -> None:
    app, key = agency
    browser = _browser(citizen, PASSWORD)
    _age_login(browser, 3600)
    verifier, challenge = pkce_pair()
    query = authorize_query(app, challenge=challenge, scope="openid", prompt="login", acr_values=LOA2)
    url = authorize_url(query)
    asked = browser.get(url)
    assert asked["Location"].startswith("/accounts/2fa/reauthenticate/?next=")
    before = int(time.time())
    code = RecoveryCodes(
        Authenticator.objects.get(user=citizen.user, type="recovery_codes")
    ).get_unused_codes()[0]
    assert browser.post(asked["Location"], {"code": code})["Location"] == url
    assert browser.get(url).status_code == 200  # no password asked on top
    response = browser.post(url, {"decision": "approve"})
    claims = _id_claims(
        _tokens(app, key, redirect_params(response["Location"])["code"], verifier)["id_token"]
    )
    assert claims["acr"] == LOA2
    assert claims["auth_time"] >= before


def test_an_approval_posted_without_the_step_up_is_sent_to_it(citizen: Person, agency: Any) -> None:
    app, _key = agency
    browser = _browser(citizen, PASSWORD)
    url = authorize_url(authorize_query(app, challenge=pkce_pair()[1], scope="openid", claims=ESSENTIAL_LOA2))
    response = browser.post(url, {"decision": "approve"})
    assert response["Location"].startswith("/accounts/2fa/reauthenticate/?next=")
    assert not AuthorizationCode.objects.exists()


def test_the_first_level_in_reach_in_the_clients_order_is_the_one_met(citizen: Person, agency: Any) -> None:
    app, key = agency
    browser = _browser(citizen, PASSWORD)
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge, scope="openid", acr_values=f"{LOA1} {LOA2}")
    assert _id_claims(_tokens(app, key, code, verifier)["id_token"])["acr"] == LOA1


def test_a_voluntary_level_out_of_reach_goes_on_at_the_best_the_citizen_can_do(agency: Any) -> None:
    app, key = agency
    person = make_citizen()
    Person.objects.filter(pk=person.pk).update(assurance_level=1)  # not verified: loa:2 is out of reach
    browser = _browser(person)
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge, scope="openid", acr_values=LOA2)
    assert _id_claims(_tokens(app, key, code, verifier)["id_token"])["acr"] == LOA1


@pytest.mark.parametrize(
    "claims",
    [
        ESSENTIAL_LOA2,
        json.dumps({"id_token": {"acr": {"essential": True, "value": LOA2}}}),
        json.dumps({"id_token": {"acr": {"essential": True, "values": ["urn:elsewhere:high"]}}}),
    ],
)
def test_an_essential_level_out_of_reach_is_unmet_authentication_requirements(
    agency: Any, claims: str
) -> None:
    app, _key = agency
    person = make_citizen()
    Person.objects.filter(pk=person.pk).update(assurance_level=1)
    browser = _browser(person)
    for extra in ({}, {"prompt": "none"}):
        url = authorize_url(
            authorize_query(app, challenge=pkce_pair()[1], scope="openid", claims=claims, **extra)
        )
        params = redirect_params(browser.get(url)["Location"])
        assert params["error"] == "unmet_authentication_requirements"
        assert params["state"] == "state-123"
    assert not AuthorizationCode.objects.exists()


def test_a_verified_citizen_without_a_second_factor_cannot_reach_loa2(agency: Any) -> None:
    app, key = agency
    person = make_citizen()
    Person.objects.filter(pk=person.pk).update(assurance_level=2)
    browser = _browser(person, PASSWORD)
    url = authorize_url(authorize_query(app, challenge=pkce_pair()[1], scope="openid", claims=ESSENTIAL_LOA2))
    assert redirect_params(browser.get(url)["Location"])["error"] == "unmet_authentication_requirements"
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge, scope="openid", acr_values=LOA2)
    assert _id_claims(_tokens(app, key, code, verifier)["id_token"])["acr"] == LOA1


def test_an_essential_acr_is_answered_with_one_of_the_values_asked(citizen: Person, agency: Any) -> None:
    """Core 5.5.1.1: a loa:2 login satisfies an essential loa:1, and the ID token names loa:1."""
    app, key = agency
    browser = _browser(citizen)
    verifier, challenge = pkce_pair()
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": [LOA1]}}})
    code = approve(browser, app, challenge=challenge, scope="openid", claims=claims)
    id_claims = _id_claims(_tokens(app, key, code, verifier)["id_token"])
    assert id_claims["acr"] == LOA1
    assert "mfa" in id_claims["amr"]  # how the citizen logged in is still told as it was


def test_unknown_voluntary_acr_values_are_ignored(citizen: Person, agency: Any) -> None:
    app, key = agency
    browser = _browser(citizen)
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge, scope="openid", acr_values="urn:elsewhere:high")
    assert _id_claims(_tokens(app, key, code, verifier)["id_token"])["acr"] == LOA2


def test_acr_values_must_be_reasonable(citizen: Person, agency: Any) -> None:
    app, _key = agency
    browser = _browser(citizen)
    url = authorize_url(authorize_query(app, challenge=pkce_pair()[1], scope="openid", acr_values="x" * 2000))
    assert redirect_params(browser.get(url)["Location"])["error"] == "invalid_request"
    url += "&acr_values=" + LOA1
    assert redirect_params(browser.get(url)["Location"])["error"] == "invalid_request"


def test_discovery_names_the_levels_it_enforces() -> None:
    metadata = Client().get("/.well-known/openid-configuration").json()
    assert metadata["acr_values_supported"] == [LOA1, LOA2]
    assert metadata["claims_parameter_supported"] is True


def test_the_acr_plan_reads_the_levels_as_an_order() -> None:
    voluntary = oidc.acr_request(f"{LOA2} {LOA1}", None)
    assert voluntary == oidc.AcrRequest(values=(LOA2, LOA1), essential=False, asked=True)
    assert oidc.acr_plan(voluntary, current=LOA1, reachable=LOA2) == oidc.AcrPlan("step_up", LOA2)
    assert oidc.acr_plan(voluntary, current=LOA1, reachable=LOA1) == oidc.AcrPlan("met", LOA1)
    assert oidc.acr_plan(voluntary, current=LOA2, reachable=LOA2) == oidc.AcrPlan("met", LOA2)
    assert oidc.acr_plan(None, current=LOA1, reachable=LOA1).outcome == "met"
    claims = oidc.parse_claims_request(ESSENTIAL_LOA2, [])
    essential = oidc.acr_request(LOA1, claims)  # the essential claim wins over acr_values
    assert essential == oidc.AcrRequest(values=(LOA2,), essential=True, asked=True)
    assert oidc.acr_plan(essential, current=LOA1, reachable=LOA1).outcome == "unmet"
    assert oidc.acr_reported(essential, LOA2) == LOA2
    assert oidc.acr_reported(oidc.AcrRequest((LOA1,), essential=True, asked=True), LOA2) == LOA1
    assert oidc.acr_reported(oidc.AcrRequest((LOA1,), essential=False, asked=True), LOA2) == LOA2
    assert oidc.acr_request(None, oidc.parse_claims_request('{"id_token": {"acr": null}}', [])) is None
