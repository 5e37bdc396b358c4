"""The OAuth endpoints over HTTP: every way a request can be wrong, and what the client hears."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone
from joserfc.jwk import ECKey

from civicore.audit.models import AuditEntry
from civicore.consent.models import AccessToken, AuthorizationCode, Consent
from civicore.consent.services import sha256_hex
from civicore.consent.tests.helpers import (
    ASSERTION_TYPE,
    REDIRECT_URI,
    approve,
    authorize_query,
    authorize_url,
    client_assertion,
    exchange,
    pkce_pair,
    redirect_params,
)
from civicore.core.jose import reset_cache
from civicore.identity.models import Person
from civicore.identity.tests.factories import UserFactory, make_citizen
from civicore.registry.models import AgencyApplication
from civicore.registry.tests.factories import make_application

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_platform_keys() -> Any:
    reset_cache()
    yield
    reset_cache()


@pytest.fixture
def citizen() -> Person:
    return make_citizen()


@pytest.fixture
def browser(citizen: Person) -> Client:
    """The citizen's browser, logged in, reading English."""
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(citizen.user)
    return client


@pytest.fixture
def agency() -> tuple[AgencyApplication, ECKey]:
    return make_application()


def _token_error(response: Any) -> str:
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response.status_code in (400, 401)
    return str(response.json()["error"])


def _issue(browser: Client, app: AgencyApplication, key: ECKey, **extra: Any) -> str:
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge, **extra)
    response = exchange(Client(), app, key, code=code, verifier=verifier)
    assert response.status_code == 200, response.content
    return str(response.json()["access_token"])


def _read(token: str) -> Any:
    return Client().get("/api/v1/consent/person", HTTP_AUTHORIZATION=f"Bearer {token}")


# --- Authorization endpoint: the consent screen -------------------------------------------------


def test_authorize_needs_login(agency: Any) -> None:
    app, _key = agency
    url = authorize_url(authorize_query(app, challenge=pkce_pair()[1]))
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_consent_screen_names_agency_application_purpose_items_and_duration(
    browser: Client, agency: Any
) -> None:
    app, _key = agency
    url = authorize_url(authorize_query(app, challenge=pkce_pair()[1], consent_days="30"))
    response = browser.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert app.agency.name_en in html
    assert app.name_en in html
    assert "Benefit eligibility" in html
    assert "Full name" in html and "Permanent address" in html
    assert "12 Đường Lê Lợi" in html  # the current value
    assert "National Population Database" in html  # and where it comes from
    assert "30 days, until" in html
    assert "form-action 'self' https://agency.example" in response["Content-Security-Policy"]
    assert response["Cache-Control"] == "no-store"

    vietnamese = Client()
    vietnamese.force_login(Person.objects.get().user)
    assert "Xét trợ cấp" in vietnamese.get(url).content.decode()


def test_default_duration_is_ninety_days(browser: Client, agency: Any) -> None:
    app, key = agency
    approve(browser, app, challenge=pkce_pair()[1])
    consent = Consent.objects.get()
    assert consent.expires_at - consent.granted_at == timedelta(days=90)


def test_approve_redirects_with_a_code_and_the_state(browser: Client, agency: Any) -> None:
    app, _key = agency
    code = approve(browser, app, challenge=pkce_pair()[1], consent_days="7")
    consent = Consent.objects.get()
    assert consent.items == ["full_name", "address"]
    assert consent.purpose == "benefit"
    assert consent.expires_at - consent.granted_at == timedelta(days=7)
    row = AuthorizationCode.objects.get()
    assert row.code_hash == sha256_hex(code)
    assert row.expires_at - row.issued_at == timedelta(seconds=60)
    assert AuditEntry.objects.filter(action="consent.grant").count() == 1


def test_decline_redirects_with_access_denied_and_is_audited(browser: Client, agency: Any) -> None:
    app, _key = agency
    url = authorize_url(authorize_query(app, challenge=pkce_pair()[1]))
    response = browser.post(url, {"decision": "decline"})
    assert response.status_code == 302
    params = redirect_params(response["Location"])
    assert params["error"] == "access_denied"
    assert params["state"] == "state-123"
    assert "code" not in params
    assert not Consent.objects.exists()
    assert AuditEntry.objects.filter(action="consent.decline").count() == 1


def test_a_decision_needs_the_csrf_token(citizen: Person, agency: Any) -> None:
    app, _key = agency
    client = Client(enforce_csrf_checks=True)
    client.force_login(citizen.user)
    url = authorize_url(authorize_query(app, challenge=pkce_pair()[1]))
    assert client.post(url, {"decision": "approve"}).status_code == 403
    assert not Consent.objects.exists()


def test_an_unknown_decision_is_refused(browser: Client, agency: Any) -> None:
    app, _key = agency
    url = authorize_url(authorize_query(app, challenge=pkce_pair()[1]))
    response = browser.post(url, {"decision": "maybe"})
    assert response.status_code == 400
    assert not Consent.objects.exists()


@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "no-such-app"},
        {"client_id": None},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": REDIRECT_URI + "/more"},
        {"redirect_uri": REDIRECT_URI + "?x=1"},
        {"redirect_uri": None},
        {"redirect_uri": 'https://agency.example/"quoted"'},
        {"redirect_uri": "https://cơquan.example/callback"},
        {"response_type": "tökén", "redirect_uri": "https://evil.example/"},
    ],
)
def test_untrusted_client_or_redirect_uri_gets_an_error_page_and_no_redirect(
    browser: Client, agency: Any, change: dict[str, Any]
) -> None:
    app, _key = agency
    query = authorize_query(app, challenge=pkce_pair()[1], **change)
    for response in (
        browser.get(authorize_url(query)),
        browser.post(authorize_url(query), {"decision": "approve"}),
    ):
        assert response.status_code == 400
        assert "Location" not in response
        assert "Your data was not shared" in response.content.decode()
    assert not Consent.objects.exists()


def test_inactive_application_gets_an_error_page(browser: Client, agency: Any) -> None:
    app, _key = agency
    AgencyApplication.objects.filter(pk=app.pk).update(active=False)
    response = browser.get(authorize_url(authorize_query(app, challenge=pkce_pair()[1])))
    assert response.status_code == 400
    assert "not registered with Civicore" in response.content.decode()


def test_an_account_without_a_citizen_profile_cannot_consent(agency: Any) -> None:
    app, _key = agency
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(UserFactory())
    response = client.get(authorize_url(authorize_query(app, challenge=pkce_pair()[1])))
    assert response.status_code == 403
    assert "not linked to a citizen profile" in response.content.decode()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"scope": "full_name national_id"}, "invalid_scope"),
        ({"scope": "full_name favourite_colour"}, "invalid_scope"),
        ({"scope": "full_name sở_thích"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
        ({"purpose": None}, "invalid_request"),
        ({"purpose": "marketing"}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"consent_days": "0"}, "invalid_request"),
        ({"consent_days": "91"}, "invalid_request"),
        ({"consent_days": "ten"}, "invalid_request"),
        ({"consent_days": "²"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_bad_requests_from_a_known_client_go_back_to_it_with_the_error(
    browser: Client, agency: Any, change: dict[str, Any], error: str
) -> None:
    app, _key = agency
    query = authorize_query(app, challenge=pkce_pair()[1], **change)
    response = browser.get(authorize_url(query))
    assert response.status_code == 302
    params = redirect_params(response["Location"])
    assert params["error"] == error
    assert params["state"] == "state-123"
    assert not Consent.objects.exists()


def test_an_application_without_items_or_purposes_is_an_unauthorized_client(browser: Client) -> None:
    for fields in ({"allowed_items": []}, {"purposes": []}):
        app, _key = make_application(**fields)
        response = browser.get(authorize_url(authorize_query(app, challenge=pkce_pair()[1])))
        params = redirect_params(response["Location"])
        assert params["error"] == "unauthorized_client"
        assert params["state"] == "state-123"


def test_a_client_switched_off_consented_sharing_after_the_code_is_an_unauthorized_client(
    browser: Client, agency: Any
) -> None:
    app, key = agency
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge)
    AgencyApplication.objects.filter(pk=app.pk).update(purposes=[])
    assert _token_error(exchange(Client(), app, key, code=code, verifier=verifier)) == "unauthorized_client"


def test_plain_pkce_is_refused_even_with_a_valid_looking_challenge(browser: Client, agency: Any) -> None:
    app, _key = agency
    verifier, _challenge = pkce_pair()
    query = authorize_query(app, challenge=verifier[:50], code_challenge_method="plain")
    params = redirect_params(browser.get(authorize_url(query))["Location"])
    assert params["error"] == "invalid_request"
    assert "S256" in params["error_description"]


def test_asking_for_items_outside_the_allowed_ones_is_audited(
    browser: Client, citizen: Person, agency: Any
) -> None:
    app, _key = agency
    browser.get(authorize_url(authorize_query(app, challenge=pkce_pair()[1], scope="full_name national_id")))
    entry = AuditEntry.objects.get(action="consent.authorize.refused")
    assert entry.person == citizen
    assert entry.details["client_id"] == app.client_id
    assert entry.details["error"] == "invalid_scope"
    assert entry.details["items"] == ["national_id"]


def test_repeated_parameters_are_refused(browser: Client, agency: Any) -> None:
    app, _key = agency
    query = urlencode(authorize_query(app, challenge=pkce_pair()[1])) + "&purpose=benefit"
    response = browser.get("/oauth/authorize?" + query)
    assert redirect_params(response["Location"])["error"] == "invalid_request"
    query = urlencode(authorize_query(app, challenge=pkce_pair()[1])) + "&scope=national_id"
    response = browser.get("/oauth/authorize?" + query)
    assert response.status_code == 400  # Authlib refuses a repeated scope before it knows the client


# --- Token endpoint --------------------------------------------------------------------------


def test_token_response_is_a_short_lived_bearer_token_stored_as_a_hash(browser: Client, agency: Any) -> None:
    app, key = agency
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge)
    response = exchange(Client(), app, key, code=code, verifier=verifier)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "full_name address"
    assert "refresh_token" not in body
    access = AccessToken.objects.get()
    assert access.token_hash == sha256_hex(body["access_token"])
    assert access.consent == Consent.objects.get()
    assert AuthorizationCode.objects.get().used_at is not None


def test_wrong_pkce_verifier_is_invalid_grant(browser: Client, agency: Any) -> None:
    app, key = agency
    _verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge)
    other_verifier, _ = pkce_pair()
    assert _token_error(exchange(Client(), app, key, code=code, verifier=other_verifier)) == "invalid_grant"
    assert _token_error(exchange(Client(), app, key, code=code, verifier=None)) == "invalid_request"
    assert not AccessToken.objects.exists()


def test_a_reused_code_is_invalid_grant_and_withdraws_the_token_it_gave(browser: Client, agency: Any) -> None:
    app, key = agency
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge)
    first = exchange(Client(), app, key, code=code, verifier=verifier)
    token = first.json()["access_token"]
    assert _read(token).status_code == 200

    assert _token_error(exchange(Client(), app, key, code=code, verifier=verifier)) == "invalid_grant"
    response = _read(token)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_an_expired_code_is_invalid_grant(browser: Client, agency: Any) -> None:
    app, key = agency
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge)
    AuthorizationCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _token_error(exchange(Client(), app, key, code=code, verifier=verifier)) == "invalid_grant"


def test_a_code_is_bound_to_its_client_and_redirect_uri(browser: Client, agency: Any) -> None:
    app, key = agency
    other, other_key = make_application()
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge)
    assert _token_error(exchange(Client(), other, other_key, code=code, verifier=verifier)) == "invalid_grant"
    wrong_uri = exchange(Client(), app, key, code=code, verifier=verifier, redirect_uri=REDIRECT_URI + "x")
    assert _token_error(wrong_uri) == "invalid_grant"
    assert _token_error(exchange(Client(), app, key, code=code, verifier=verifier, redirect_uri="")) == (
        "invalid_grant"
    )
    assert exchange(Client(), app, key, code=code, verifier=verifier).status_code == 200


def test_a_code_whose_consent_was_withdrawn_is_invalid_grant(
    browser: Client, citizen: Person, agency: Any
) -> None:
    app, key = agency
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge)
    browser.post(f"/my-data/consents/{Consent.objects.get().public_id}/revoke")
    assert _token_error(exchange(Client(), app, key, code=code, verifier=verifier)) == "invalid_grant"


@pytest.mark.parametrize(
    "assertion",
    [
        pytest.param(
            lambda app, key: client_assertion(app, ECKey.generate_key("P-256", auto_kid=True)), id="wrong-key"
        ),
        pytest.param(
            lambda app, key: client_assertion(app, key, audience="https://civicore.example/oauth/token"),
            id="wrong-aud",
        ),
        pytest.param(lambda app, key: client_assertion(app, key, audience=None, aud=[]), id="empty-aud"),
        pytest.param(lambda app, key: client_assertion(app, key, iat=1_000_000, exp=1_000_060), id="expired"),
        pytest.param(lambda app, key: client_assertion(app, key, lifetime=7200), id="lives-too-long"),
        pytest.param(lambda app, key: client_assertion(app, key, sub="someone-else"), id="iss-not-sub"),
        pytest.param(lambda app, key: client_assertion(app, key, jti=""), id="no-jti"),
        pytest.param(lambda app, key: client_assertion(app, key, jti="short"), id="short-jti"),
        pytest.param(
            lambda app, key: client_assertion(app, key, iss="no-such-app", sub="no-such-app"), id="unknown"
        ),
        pytest.param(lambda app, key: "not-a-jwt", id="garbage"),
        pytest.param(
            lambda app, key: (
                base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).decode()
                + "."
                + base64.urlsafe_b64encode(json.dumps({"sub": app.client_id}).encode()).decode()
                + "."
            ),
            id="alg-none",
        ),
    ],
)
def test_bad_client_assertions_are_invalid_client(browser: Client, agency: Any, assertion: Any) -> None:
    app, key = agency
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge)
    response = exchange(Client(), app, key, code=code, verifier=verifier, assertion=assertion(app, key))
    assert _token_error(response) == "invalid_client"
    assert not AccessToken.objects.exists()
    # The code is still good for the real client.
    assert exchange(Client(), app, key, code=code, verifier=verifier).status_code == 200


def test_a_replayed_assertion_is_invalid_client(browser: Client, agency: Any) -> None:
    app, key = agency
    assertion = client_assertion(app, key)
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge)
    assert exchange(Client(), app, key, code=code, verifier=verifier, assertion=assertion).status_code == 200
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge)
    replay = exchange(Client(), app, key, code=code, verifier=verifier, assertion=assertion)
    assert _token_error(replay) == "invalid_client"


@pytest.mark.parametrize(
    "auth",
    [
        {"client_id": "{client_id}", "client_secret": "s3cret"},  # client_secret_post
        {"client_id": "{client_id}"},  # none
        {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"{client_id}:s3cret").decode()},
        {"client_id": "someone-else"},  # a client_id that contradicts the assertion
    ],
)
def test_only_private_key_jwt_authenticates_a_client(
    browser: Client, agency: Any, auth: dict[str, str]
) -> None:
    app, key = agency
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge)
    data: dict[str, str] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    headers: dict[str, str] = {}
    for name, value in auth.items():
        target = headers if name.startswith("HTTP_") else data
        target[name] = value.replace("{client_id}", app.client_id)
    if auth.get("client_id") == "someone-else":
        data["client_assertion_type"] = ASSERTION_TYPE
        data["client_assertion"] = client_assertion(app, key)
    response = Client().post("/oauth/token", data, **headers)  # type: ignore[arg-type]
    assert _token_error(response) == "invalid_client"


@pytest.mark.parametrize("grant_type", ["client_credentials", "password", "implicit", ""])
def test_other_grant_types_are_unsupported(agency: Any, grant_type: str) -> None:
    app, key = agency
    response = Client().post(
        "/oauth/token",
        {
            "grant_type": grant_type,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(app, key),
        },
    )
    assert _token_error(response) == "unsupported_grant_type"


def test_token_endpoint_takes_post_only() -> None:
    assert Client().get("/oauth/token").status_code == 405


# --- The person endpoint ---------------------------------------------------------------------


def test_person_endpoint_without_a_token_asks_for_one() -> None:
    response = Client().get("/api/v1/consent/person")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="civicore"'
    assert response.json()["code"] == "unauthenticated"
    assert Client().get("/api/v1/consent/person", HTTP_AUTHORIZATION="Basic abc").status_code == 401


def test_a_forged_token_is_invalid_token() -> None:
    response = _read("forged-token-value")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_withdrawing_consent_stops_the_agency_at_once(browser: Client, agency: Any) -> None:
    app, key = agency
    token = _issue(browser, app, key)
    assert _read(token).status_code == 200
    browser.post(f"/my-data/consents/{Consent.objects.get().public_id}/revoke")
    response = _read(token)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_an_expired_token_is_refused(browser: Client, agency: Any) -> None:
    app, key = agency
    token = _issue(browser, app, key)
    AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _read(token).status_code == 401


def test_person_endpoint_answers_a_signed_jwt_that_is_not_cached(browser: Client, agency: Any) -> None:
    app, key = agency
    response = _read(_issue(browser, app, key))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jwt"
    assert response["Cache-Control"] == "no-store"
    assert response.content.count(b".") == 2


def test_person_endpoint_is_in_the_openapi_schema() -> None:
    schema = Client().get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/consent/person"]["get"]
    assert "application/jwt" in operation["responses"]["200"]["content"]
    assert "security" not in operation or operation["security"] in ([], [{}])
