"""OpenID Connect over HTTP: discovery, ID tokens, userinfo, refresh rotation, PAR, revocation,
logout and key rotation, with every way a request can be wrong and what the client hears."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet

from civicore.audit.models import AuditEntry
from civicore.consent import oidc
from civicore.consent.models import (
    AccessToken,
    AuthorizationCode,
    Consent,
    PushedAuthorizationRequest,
    RefreshToken,
)
from civicore.consent.selectors import HeldItem
from civicore.consent.services import pairwise_subject
from civicore.consent.tests.helpers import (
    ASSERTION_TYPE,
    PASSWORD,
    TOTP,
    approve,
    authorize_query,
    authorize_url,
    client_assertion,
    exchange,
    par_url,
    pkce_pair,
    push,
    record_login,
    redirect_params,
    token_url,
)
from civicore.core.jose import reset_cache, signing_key, signing_key_rotate
from civicore.identity.models import Person
from civicore.identity.services import profile_item_declare
from civicore.identity.tests.factories import make_citizen
from civicore.registry.models import AgencyApplication, MessageLogEntry
from civicore.registry.tests.factories import make_application

pytestmark = pytest.mark.django_db
LOGOUT_URI = "https://agency.example/signed-out"


@pytest.fixture(autouse=True)
def _fresh_platform_keys() -> Any:
    reset_cache()
    yield
    reset_cache()


@pytest.fixture
def citizen() -> Person:
    person = make_citizen()
    if hasattr(Person, "assurance_level"):
        # loa:2 asks for a verified identity as well as two factors.
        Person.objects.filter(pk=person.pk).update(assurance_level=2)
    return person


@pytest.fixture
def browser(citizen: Person) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(citizen.user)
    record_login(client, citizen.user, PASSWORD, TOTP)
    return client


@pytest.fixture
def agency() -> tuple[AgencyApplication, ECKey]:
    return make_application(post_logout_redirect_uris=[LOGOUT_URI])


def _platform_keys() -> KeySet:
    return KeySet.import_key_set(Client().get("/.well-known/jwks.json").json())


def _login_flow(
    browser: Client, app: AgencyApplication, key: ECKey, *, scope: str = "openid profile", **extra: Any
) -> dict[str, Any]:
    """Authorize (approved), exchange; returns the token response."""
    verifier, challenge = pkce_pair()
    extra.setdefault("nonce", "n-0S6_WzA2Mj")
    code = approve(browser, app, challenge=challenge, scope=scope, **extra)
    response = exchange(Client(), app, key, code=code, verifier=verifier)
    assert response.status_code == 200, response.content
    return dict(response.json())


def _id_claims(id_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    token = jwt.decode(id_token, _platform_keys(), algorithms=["ES256"])
    return dict(token.header), dict(token.claims)


def _userinfo(token: str, **headers: Any) -> Any:
    return Client().get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def _refresh(app: AgencyApplication, key: ECKey, refresh_token: str, **extra: Any) -> Any:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(app, key),
        **extra,
    }
    return Client().post("/oauth/token", {k: v for k, v in data.items() if v is not None})


def _error(response: Any) -> str:
    assert response.status_code in (400, 401), response.content
    assert response["Cache-Control"] == "no-store"
    return str(response.json()["error"])


# --- Discovery ------------------------------------------------------------------------------


def test_discovery_describes_the_provider(settings: Any) -> None:
    from authlib.oidc.discovery import OpenIDProviderMetadata

    settings.SITE_URL = "https://dichvucong.example.vn"
    response = Client().get("/.well-known/openid-configuration")
    assert response.status_code == 200
    meta = response.json()
    # Every rule Authlib knows must hold, RS256 among the ID token algorithms included.
    OpenIDProviderMetadata(meta).validate()
    base = "https://dichvucong.example.vn"
    assert meta["issuer"] == base
    assert meta["authorization_endpoint"] == base + "/oauth/authorize"
    assert meta["token_endpoint"] == base + "/oauth/token"
    assert meta["userinfo_endpoint"] == base + "/oauth/userinfo"
    assert meta["jwks_uri"] == base + "/.well-known/jwks.json"
    assert meta["pushed_authorization_request_endpoint"] == base + "/oauth/par"
    assert meta["end_session_endpoint"] == base + "/oauth/logout"
    assert meta["revocation_endpoint"] == base + "/oauth/revoke"
    assert meta["require_pushed_authorization_requests"] is False
    assert meta["request_parameter_supported"] is False
    assert meta["response_types_supported"] == ["code"]
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert "ES256" in meta["token_endpoint_auth_signing_alg_values_supported"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert meta["userinfo_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert meta["claims_parameter_supported"] is True
    assert meta["subject_types_supported"] == ["pairwise"]
    assert {"openid", "profile", "email", "phone", "address", "offline_access", "national_id"} <= set(
        meta["scopes_supported"]
    )
    assert {"name", "birthdate", "gender", "address", "phone_number", "email", "national_id", "acr"} <= set(
        meta["claims_supported"]
    )
    assert meta["acr_values_supported"] == ["urn:civicore:loa:1", "urn:civicore:loa:2"]


# --- Scopes and the consent screen ------------------------------------------------------------


def test_scope_maps_standard_scopes_to_allowed_items() -> None:
    allowed = ["full_name", "date_of_birth", "address"]
    parsed = oidc.parse_scope("openid profile address offline_access profile", allowed)
    assert parsed.tokens == ["openid", "profile", "address", "offline_access"]
    assert parsed.items == ["full_name", "date_of_birth", "address"]  # no gender: not allowed
    assert parsed.openid and parsed.offline and not parsed.refused
    assert oidc.parse_scope("openid email", allowed).refused == ["email"]
    assert oidc.parse_scope("openid profile", ["address"]).refused == ["profile"]
    assert oidc.parse_scope("openid", allowed).items == []


def test_claims_use_openid_connect_names_and_formats() -> None:
    def held(key: str, value: Any, verified: bool = True) -> HeldItem:
        return HeldItem(
            key=key,
            value=value,
            display={},
            source={},
            source_label="",
            verified_at=timezone.now() if verified else None,
        )

    items = {
        "full_name": held("full_name", "Nguyễn Văn An"),
        "date_of_birth": held("date_of_birth", "1990-05-17"),
        "gender": held("gender", "female"),
        "address": held("address", "12 Đường Lê Lợi"),
        "phone": held("phone", "0901234567", verified=False),
        "email": held("email", "an@example.vn"),
        "national_id": held("national_id", "079190000001"),
    }
    claims = oidc.person_claims(items, list(items))
    assert claims == {
        "name": "Nguyễn Văn An",
        "birthdate": "1990-05-17",
        "gender": "female",
        "address": {"formatted": "12 Đường Lê Lợi"},
        "phone_number": "+84901234567",
        "phone_number_verified": False,
        "email": "an@example.vn",
        "email_verified": True,
        "national_id": "079190000001",
    }
    assert oidc.person_claims(items, ["full_name"]) == {"name": "Nguyễn Văn An"}


def test_sign_in_consent_screen_names_what_the_application_learns(browser: Client, agency: Any) -> None:
    app, _key = agency
    url = authorize_url(
        authorize_query(app, challenge=pkce_pair()[1], scope="openid profile offline_access", nonce="abc")
    )
    html = browser.get(url).content.decode()
    assert f"Sign in to {app.name_en} with Civicore" in html
    assert "Full name" in html and "Date of birth" in html
    assert "keep receiving these items while you are not signed in" in html


def test_sign_in_only_needs_no_item(browser: Client, agency: Any) -> None:
    app, key = agency
    url = authorize_url(authorize_query(app, challenge=pkce_pair()[1], scope="openid"))
    assert "receives none of your profile items" in browser.get(url).content.decode()
    token = _login_flow(browser, app, key, scope="openid")
    assert Consent.objects.get().items == []
    assert _userinfo(token["access_token"]).json() == {
        "sub": pairwise_subject(person=Consent.objects.get().person, client_id=app.client_id)
    }
    assert "Sign-in only" in browser.get("/my-data/consents/").content.decode()


@pytest.mark.parametrize(
    ("scope", "error"),
    [
        ("openid email", "invalid_scope"),  # email is not an allowed item
        ("openid national_id", "invalid_scope"),
        ("openid unknown_scope", "invalid_scope"),
        ("offline_access", "invalid_scope"),  # neither an item nor openid
    ],
)
def test_scopes_outside_the_registration_are_invalid_scope(
    browser: Client, agency: Any, scope: str, error: str
) -> None:
    app, _key = agency
    response = browser.get(authorize_url(authorize_query(app, challenge=pkce_pair()[1], scope=scope)))
    assert redirect_params(response["Location"])["error"] == error


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"prompt": "select_account"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        ({"nonce": "x" * 256}, "invalid_request"),
        ({"response_mode": "form_post"}, "invalid_request"),
    ],
)
def test_bad_openid_parameters_go_back_to_the_client(
    browser: Client, agency: Any, extra: dict[str, str], error: str
) -> None:
    app, _key = agency
    query = authorize_query(app, challenge=pkce_pair()[1], scope="openid", **extra)
    params = redirect_params(browser.get(authorize_url(query))["Location"])
    assert params["error"] == error
    assert params["state"] == "state-123"


# --- ID tokens ---------------------------------------------------------------------------------


def test_id_token_is_signed_by_the_platform_and_says_who_and_how(
    browser: Client, citizen: Person, agency: Any
) -> None:
    app, key = agency
    token = _login_flow(browser, app, key, nonce="n-0S6_WzA2Mj")
    assert token["scope"] == "openid profile"
    header, claims = _id_claims(token["id_token"])
    assert header["alg"] == "ES256"
    assert header["kid"] == signing_key("ES256").kid
    assert claims["iss"] == settings.SITE_URL
    assert claims["aud"] == app.client_id
    assert claims["sub"] == pairwise_subject(person=citizen, client_id=app.client_id)
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["exp"] - claims["iat"] == 600
    assert abs(claims["auth_time"] - claims["iat"]) < 60
    assert claims["acr"] == "urn:civicore:loa:2"
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])
    assert claims["sid"]
    assert claims["at_hash"] == oidc._at_hash(token["access_token"])
    assert "name" not in claims  # item values only come from userinfo


def test_id_token_sub_is_the_person_endpoints_sub(browser: Client, agency: Any) -> None:
    app, key = agency
    token = _login_flow(browser, app, key, scope="openid full_name")
    person = Client().get("/api/v1/consent/person", HTTP_AUTHORIZATION=f"Bearer {token['access_token']}")
    person_claims = json.loads(jws.deserialize_compact(person.content, _platform_keys()).payload)
    assert _id_claims(token["id_token"])[1]["sub"] == person_claims["sub"]


def test_a_password_only_login_is_loa1_pwd(citizen: Person, agency: Any) -> None:
    app, key = agency
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(citizen.user)
    record_login(client, citizen.user, PASSWORD)
    claims = _id_claims(_login_flow(client, app, key)["id_token"])[1]
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == "urn:civicore:loa:1"


def test_no_id_token_without_openid(browser: Client, agency: Any) -> None:
    app, key = agency
    token = _login_flow(browser, app, key, scope="full_name")
    assert "id_token" not in token
    assert "refresh_token" not in token


def test_a_replayed_nonce_is_refused(browser: Client, agency: Any) -> None:
    app, key = agency
    _login_flow(browser, app, key, nonce="same-nonce")
    query = authorize_query(app, challenge=pkce_pair()[1], scope="openid", nonce="same-nonce")
    params = redirect_params(browser.get(authorize_url(query))["Location"])
    assert params["error"] == "invalid_request"


def test_new_id_tokens_use_the_rotated_key_and_old_ones_still_verify(browser: Client, agency: Any) -> None:
    app, key = agency
    before = _login_flow(browser, app, key)["id_token"]
    old_kid = jwt.decode(before, _platform_keys()).header["kid"]
    rotated = signing_key_rotate(immediately=True)  # the next key signing (see core test_jose)
    after = _login_flow(browser, app, key, nonce="second")["id_token"]
    published = _platform_keys()  # a relying party fetching the JWKS after the rotation
    assert jwt.decode(after, published).header["kid"] == rotated.kid != old_kid
    assert jwt.decode(before, published).claims["aud"] == app.client_id
    assert {k["kid"] for k in Client().get("/.well-known/jwks.json").json()["keys"]} >= {old_kid, rotated.kid}


# --- prompt and max_age ------------------------------------------------------------------------


def test_prompt_none_without_a_session_is_login_required(agency: Any) -> None:
    app, _key = agency
    query = authorize_query(app, challenge=pkce_pair()[1], scope="openid", prompt="none")
    params = redirect_params(Client().get(authorize_url(query))["Location"])
    assert params["error"] == "login_required"
    assert params["state"] == "state-123"


def test_prompt_none_with_a_session_is_consent_required(browser: Client, agency: Any) -> None:
    app, _key = agency
    query = authorize_query(app, challenge=pkce_pair()[1], scope="openid", prompt="none")
    assert redirect_params(browser.get(authorize_url(query))["Location"])["error"] == "consent_required"


@pytest.mark.parametrize("extra", [{"prompt": "login"}, {"max_age": "0"}])
def test_prompt_login_and_max_age_ask_the_citizen_to_authenticate_again(
    browser: Client, citizen: Person, agency: Any, extra: dict[str, str]
) -> None:
    app, _key = agency
    url = authorize_url(authorize_query(app, challenge=pkce_pair()[1], scope="openid", **extra))
    response = browser.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/?next=")
    record_login(browser, citizen.user, PASSWORD, TOTP)  # what reauthenticating records
    assert browser.get(url).status_code == 200


def test_a_recent_enough_login_satisfies_max_age(browser: Client, agency: Any) -> None:
    app, _key = agency
    url = authorize_url(authorize_query(app, challenge=pkce_pair()[1], scope="openid", max_age="3600"))
    assert browser.get(url).status_code == 200


# --- Userinfo ----------------------------------------------------------------------------------


def test_userinfo_returns_only_consented_claims_and_is_logged(browser: Client, citizen: Person) -> None:
    app, key = make_application(allowed_items=["full_name", "date_of_birth", "address", "national_id"])
    token = _login_flow(browser, app, key, scope="openid profile address")
    response = _userinfo(token["access_token"])
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {
        "sub": pairwise_subject(person=citizen, client_id=app.client_id),
        "name": citizen.user.full_name or "Nguyễn Văn An",
        "birthdate": "1990-05-17",
        "address": {"formatted": "12 Đường Lê Lợi, xã An Bình"},
    }
    message = MessageLogEntry.objects.get(operation="person.read")
    assert message.items == ["full_name", "date_of_birth", "address"]
    assert message.consent_id == str(Consent.objects.get().public_id)


def test_userinfo_national_id_phone_and_email(browser: Client, citizen: Person) -> None:
    profile_item_declare(person=citizen, key="phone", value="0901 234 567")
    profile_item_declare(person=citizen, key="email", value="an@example.vn")
    app, key = make_application(allowed_items=["national_id", "phone", "email"])
    token = _login_flow(browser, app, key, scope="openid national_id phone email")
    claims = _userinfo(token["access_token"]).json()
    assert claims["national_id"] == citizen.national_id
    assert claims["phone_number"] == "+84901234567"
    assert claims["phone_number_verified"] is False
    assert claims["email"] == "an@example.vn"


def test_userinfo_takes_post_and_is_signed_when_the_client_registered_it(
    browser: Client, agency: Any
) -> None:
    app, key = agency
    token = _login_flow(browser, app, key)
    posted = Client().post("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {token['access_token']}")
    assert posted.status_code == 200
    # OpenID Connect Core 5.3.2: JSON unless the client registered a signed response, whatever
    # it sends in Accept.
    assert (
        _userinfo(token["access_token"], HTTP_ACCEPT="application/jwt")["Content-Type"] == "application/json"
    )
    AgencyApplication.objects.filter(pk=app.pk).update(userinfo_signed_response_alg="ES256")
    signed = _userinfo(token["access_token"], HTTP_ACCEPT="application/json")
    assert signed["Content-Type"] == "application/jwt"
    claims = jwt.decode(signed.content.decode(), _platform_keys()).claims
    assert claims["iss"] == settings.SITE_URL
    assert claims["aud"] == app.client_id
    assert claims["sub"] == posted.json()["sub"]


def test_userinfo_refuses_once_the_consent_is_withdrawn(
    browser: Client, agency: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app, key = agency
    token = _login_flow(browser, app, key)
    assert _userinfo(token["access_token"]).status_code == 200
    browser.post(f"/my-data/consents/{Consent.objects.get().public_id}/revoke")
    with caplog.at_level(logging.WARNING, logger="civicore.consent"):
        response = _userinfo(token["access_token"])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert f"endpoint=userinfo client_id={app.client_id}" in caplog.text


def test_userinfo_token_errors(browser: Client, agency: Any) -> None:
    app, key = agency
    no_token = Client().get("/oauth/userinfo")
    assert no_token.status_code == 401
    assert no_token["WWW-Authenticate"] == 'Bearer realm="civicore"'
    forged = _userinfo("forged")
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_token"
    items_only = _login_flow(browser, app, key, scope="full_name")
    refused = _userinfo(items_only["access_token"])
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"
    token = _login_flow(browser, app, key, nonce="expiring")
    AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _userinfo(token["access_token"]).status_code == 401


# --- Refresh tokens ----------------------------------------------------------------------------


def test_offline_access_gives_a_refresh_token_bound_to_the_consent(browser: Client, agency: Any) -> None:
    app, key = agency
    token = _login_flow(browser, app, key, scope="openid profile offline_access")
    assert token["refresh_token"]
    consent = Consent.objects.get()
    assert consent.offline_access
    row = RefreshToken.objects.get()
    assert row.consent == consent
    assert row.token_hash != token["refresh_token"]
    assert row.expires_at <= consent.expires_at


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(
    browser: Client, agency: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app, key = agency
    first = _login_flow(browser, app, key, scope="openid profile offline_access")
    first_claims = _id_claims(first["id_token"])[1]
    response = _refresh(app, key, first["refresh_token"])
    assert response.status_code == 200, response.content
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    claims = _id_claims(second["id_token"])[1]
    assert claims["sub"] == first_claims["sub"]
    assert claims["auth_time"] == first_claims["auth_time"]
    assert claims["acr"] == first_claims["acr"]
    assert "nonce" not in claims
    assert _userinfo(second["access_token"]).status_code == 200

    # The old refresh token comes back after the grace window: someone else has a copy.
    # Everything of the family goes.
    RefreshToken.objects.update(successor_until=timezone.now())
    with caplog.at_level(logging.WARNING, logger="civicore.consent"):
        assert _error(_refresh(app, key, first["refresh_token"])) == "invalid_grant"
    assert "refresh_token_reused" in caplog.text
    assert AuditEntry.objects.filter(action="consent.refresh.reused").count() == 1
    assert _error(_refresh(app, key, second["refresh_token"])) == "invalid_grant"
    assert _userinfo(second["access_token"]).status_code == 401
    assert _userinfo(first["access_token"]).status_code == 401


def test_refresh_with_a_narrower_scope_and_not_a_wider_one(browser: Client, agency: Any) -> None:
    app, key = agency
    token = _login_flow(browser, app, key, scope="openid profile offline_access")
    wider = _refresh(app, key, token["refresh_token"], scope="openid profile address offline_access")
    assert _error(wider) == "invalid_scope"
    narrower = _refresh(app, key, token["refresh_token"], scope="openid")
    assert narrower.status_code == 200
    assert narrower.json()["scope"] == "openid"
    assert set(_userinfo(narrower.json()["access_token"]).json()) == {"sub"}
    # The refresh token keeps the scope the citizen consented to.
    again = _refresh(app, key, narrower.json()["refresh_token"])
    assert again.json()["scope"] == "openid profile offline_access"


def test_refresh_is_refused_when_the_consent_ends_or_the_token_expires(browser: Client, agency: Any) -> None:
    app, key = agency
    token = _login_flow(browser, app, key, scope="openid offline_access")
    RefreshToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _error(_refresh(app, key, token["refresh_token"])) == "invalid_grant"
    token = _login_flow(browser, app, key, scope="openid offline_access", nonce="two")
    browser.post(f"/my-data/consents/{Consent.objects.filter(revoked_at=None).get().public_id}/revoke")
    assert _error(_refresh(app, key, token["refresh_token"])) == "invalid_grant"


def test_a_refresh_token_belongs_to_its_client(browser: Client, agency: Any) -> None:
    app, key = agency
    other, other_key = make_application()
    token = _login_flow(browser, app, key, scope="openid offline_access")
    assert _error(_refresh(other, other_key, token["refresh_token"])) == "invalid_grant"
    assert _error(_refresh(app, key, "made-up-token")) == "invalid_grant"
    assert _error(_refresh(app, key, None)) == "invalid_request"
    wrong_key = client_assertion(app, ECKey.generate_key("P-256", auto_kid=True))
    assert _error(_refresh(app, key, token["refresh_token"], client_assertion=wrong_key)) == "invalid_client"
    # None of that touched the family.
    assert _refresh(app, key, token["refresh_token"]).status_code == 200


def test_a_reused_code_also_withdraws_its_refresh_tokens(browser: Client, agency: Any) -> None:
    app, key = agency
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge, scope="openid offline_access")
    token = exchange(Client(), app, key, code=code, verifier=verifier).json()
    assert _error(exchange(Client(), app, key, code=code, verifier=verifier)) == "invalid_grant"
    assert _error(_refresh(app, key, token["refresh_token"])) == "invalid_grant"


# --- Revocation (RFC 7009) ---------------------------------------------------------------------


def _revoke(app: AgencyApplication, key: ECKey, token: str, **extra: Any) -> Any:
    data = {
        "token": token,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(app, key, audience=settings.SITE_URL + "/oauth/revoke"),
        **extra,
    }
    return Client().post("/oauth/revoke", data)


def test_revocation_of_access_and_refresh_tokens(browser: Client, agency: Any) -> None:
    app, key = agency
    token = _login_flow(browser, app, key, scope="openid offline_access")
    assert _revoke(app, key, token["access_token"]).status_code == 200
    assert _userinfo(token["access_token"]).status_code == 401
    refreshed = _refresh(app, key, token["refresh_token"]).json()
    assert _revoke(app, key, refreshed["refresh_token"], token_type_hint="refresh_token").status_code == 200
    assert _userinfo(refreshed["access_token"]).status_code == 401  # the family goes with it
    assert _error(_refresh(app, key, refreshed["refresh_token"])) == "invalid_grant"


def test_revocation_of_unknown_or_other_clients_tokens_changes_nothing(browser: Client, agency: Any) -> None:
    app, key = agency
    other, other_key = make_application()
    token = _login_flow(browser, app, key)
    assert _revoke(app, key, "no-such-token").status_code == 200
    assert _revoke(other, other_key, token["access_token"]).status_code == 200
    assert _userinfo(token["access_token"]).status_code == 200
    unauthenticated = Client().post("/oauth/revoke", {"token": token["access_token"]})
    assert _error(unauthenticated) == "invalid_client"
    assert _error(_revoke(app, key, "x", token_type_hint="id_token")) == "unsupported_token_type"


# --- Pushed authorization requests (RFC 9126) ---------------------------------------------------


def _pushed(app: AgencyApplication, key: ECKey, **extra: Any) -> tuple[str, str]:
    """Push a request; returns (request_uri, code_verifier)."""
    verifier, challenge = pkce_pair()
    response = push(Client(), app, key, challenge=challenge, **extra)
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Cache-Control"] == "no-store"
    assert body["expires_in"] == 90
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    return body["request_uri"], verifier


def _par_authorize_url(app: AgencyApplication, request_uri: str, **extra: str) -> str:
    return "/oauth/authorize?" + urlencode({"client_id": app.client_id, "request_uri": request_uri, **extra})


def test_a_pushed_request_goes_through_the_consent_screen_to_tokens(browser: Client, agency: Any) -> None:
    app, key = agency
    request_uri, verifier = _pushed(app, key, scope="openid profile", nonce="pushed-nonce")
    url = _par_authorize_url(app, request_uri)
    assert "Sign in to" in browser.get(url).content.decode()
    response = browser.post(url, {"decision": "approve"})
    params = redirect_params(response["Location"])
    assert params["state"] == "state-123"
    token = exchange(Client(), app, key, code=params["code"], verifier=verifier)
    assert token.status_code == 200
    assert _id_claims(token.json()["id_token"])[1]["nonce"] == "pushed-nonce"
    stored = PushedAuthorizationRequest.objects.get()
    assert stored.used_at is not None
    assert request_uri not in json.dumps(stored.parameters) and stored.request_uri_hash != request_uri
    # Single use: the decision spent it.
    again = browser.get(url)
    assert redirect_params(again["Location"])["error"] == "invalid_request_uri"


@pytest.mark.parametrize(
    "audience",
    [lambda: par_url(), lambda: settings.SITE_URL, lambda: token_url()],
    ids=["par", "iss", "token"],
)
def test_par_accepts_the_audiences_rfc_9126_names(agency: Any, audience: Any) -> None:
    app, key = agency
    verifier, challenge = pkce_pair()
    response = push(
        Client(), app, key, challenge=challenge, assertion=client_assertion(app, key, audience=audience())
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uri": "https://evil.example/callback"}, "invalid_request"),
        ({"redirect_uri": None}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"scope": "openid national_id"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
        ({"purpose": "marketing"}, "invalid_request"),
        ({"purpose": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"request_uri": "urn:ietf:params:oauth:request_uri:abc"}, "invalid_request"),
        ({"consent_days": "365"}, "invalid_request"),
    ],
)
def test_par_validates_the_whole_request(
    agency: Any, change: dict[str, Any], error: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, key = agency
    with caplog.at_level(logging.WARNING, logger="civicore.consent"):
        response = push(Client(), app, key, challenge=pkce_pair()[1], **change)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert "Location" not in response
    assert f"endpoint=par client_id={app.client_id} error={error}" in caplog.text
    assert not PushedAuthorizationRequest.objects.exists()


@pytest.mark.parametrize(
    "assertion",
    [
        lambda app, key: client_assertion(
            app, ECKey.generate_key("P-256", auto_kid=True), audience=par_url()
        ),
        lambda app, key: client_assertion(app, key, audience="https://elsewhere.example/oauth/par"),
        lambda app, key: client_assertion(app, key, iss="no-such-app", sub="no-such-app", audience=par_url()),
        lambda app, key: "garbage",
    ],
    ids=["wrong-key", "wrong-aud", "unknown-client", "garbage"],
)
def test_par_needs_private_key_jwt(agency: Any, assertion: Any) -> None:
    app, key = agency
    response = push(Client(), app, key, challenge=pkce_pair()[1], assertion=assertion(app, key))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    no_assertion = Client().post("/oauth/par", authorize_query(app, challenge=pkce_pair()[1]))
    assert no_assertion.status_code == 401
    # A client_id in the body that is not the one the assertion proves.
    mismatch = push(Client(), app, key, challenge=pkce_pair()[1], client_id="someone-else")
    assert mismatch.status_code == 401
    assert mismatch.json()["error"] == "invalid_client"


def test_par_refuses_repeated_parameters_and_query_strings(agency: Any) -> None:
    app, key = agency
    data = authorize_query(app, challenge=pkce_pair()[1])
    data.update(
        client_assertion_type=ASSERTION_TYPE,
        client_assertion=client_assertion(app, key, audience=par_url()),
        purpose=["benefit", "benefit"],
    )
    assert Client().post("/oauth/par", data).json()["error"] == "invalid_request"
    data.update(purpose="benefit", client_assertion=client_assertion(app, key, audience=par_url()))
    assert Client().post("/oauth/par?scope=national_id", data).json()["error"] == "invalid_request"
    assert Client().get("/oauth/par").status_code == 405


def test_an_unknown_or_foreign_request_uri_gets_an_error_page(browser: Client, agency: Any) -> None:
    app, key = agency
    other, _other_key = make_application()
    request_uri, _verifier = _pushed(app, key)
    for url in (
        _par_authorize_url(app, "urn:ietf:params:oauth:request_uri:made-up"),
        _par_authorize_url(app, "https://evil.example/request.jwt"),
        _par_authorize_url(other, request_uri),
        "/oauth/authorize?" + urlencode({"request_uri": request_uri}),
    ):
        response = browser.get(url)
        assert response.status_code == 400, url
        assert "Location" not in response
        assert "Your data was not shared" in response.content.decode()


def test_an_expired_request_uri_is_invalid_request_uri(browser: Client, agency: Any) -> None:
    app, key = agency
    request_uri, _verifier = _pushed(app, key)
    PushedAuthorizationRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    params = redirect_params(browser.get(_par_authorize_url(app, request_uri))["Location"])
    assert params == {"error": "invalid_request_uri", "error_description": params["error_description"],
                      "state": "state-123"}  # fmt: skip


def test_parameters_mixed_into_a_pushed_request_are_refused(browser: Client, agency: Any) -> None:
    app, key = agency
    request_uri, _verifier = _pushed(app, key)
    response = browser.get(_par_authorize_url(app, request_uri, scope="national_id"))
    assert redirect_params(response["Location"])["error"] == "invalid_request"
    assert not Consent.objects.exists()


def test_copies_of_pushed_parameters_may_accompany_the_request_uri(browser: Client, agency: Any) -> None:
    """OpenID Connect Core 6.2 has clients send response_type and scope beside request_uri."""
    app, key = agency
    request_uri, _verifier = _pushed(app, key, scope="openid profile")
    url = _par_authorize_url(app, request_uri, response_type="code", scope="openid profile")
    assert "Sign in to" in browser.get(url).content.decode()
    assert not Consent.objects.exists()


def test_a_pushed_request_belongs_to_the_browser_that_brought_it(browser: Client, agency: Any) -> None:
    app, key = agency
    request_uri, _verifier = _pushed(app, key)
    url = _par_authorize_url(app, request_uri)
    assert browser.get(url).status_code == 200
    thief = Client()
    thief.force_login(make_citizen().user)
    assert redirect_params(thief.get(url)["Location"])["error"] == "invalid_request_uri"
    assert browser.get(url).status_code == 200


def test_a_pushed_request_survives_a_slow_login(citizen: Person, agency: Any) -> None:
    """The citizen arrives logged out; logging in takes longer than the request_uri's 90 s."""
    app, key = agency
    request_uri, verifier = _pushed(app, key)
    url = _par_authorize_url(app, request_uri)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert client.get(url)["Location"].startswith("/accounts/login/")
    PushedAuthorizationRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    client.force_login(citizen.user)  # the same browser session, now logged in
    assert client.get(url).status_code == 200
    params = redirect_params(client.post(url, {"decision": "approve"})["Location"])
    assert exchange(Client(), app, key, code=params["code"], verifier=verifier).status_code == 200


def test_an_application_that_requires_par_cannot_skip_it(browser: Client) -> None:
    app, key = make_application(require_par=True)
    query = authorize_query(app, challenge=pkce_pair()[1])
    params = redirect_params(browser.get(authorize_url(query))["Location"])
    assert params["error"] == "invalid_request"
    assert "PAR" in params["error_description"]
    request_uri, _verifier = _pushed(app, key)
    assert browser.get(_par_authorize_url(app, request_uri)).status_code == 200


# --- Logout ------------------------------------------------------------------------------------


def _logout_url(**params: str) -> str:
    return "/oauth/logout?" + urlencode(params)


def test_logout_asks_then_ends_the_session_and_returns_with_state(browser: Client, agency: Any) -> None:
    app, key = agency
    id_token = _login_flow(browser, app, key)["id_token"]
    url = _logout_url(id_token_hint=id_token, post_logout_redirect_uri=LOGOUT_URI, state="bye-1")
    page = browser.get(url)
    assert page.status_code == 200
    assert "Sign out of Civicore?" in page.content.decode()
    assert app.name_en in page.content.decode()
    assert "form-action 'self' https://agency.example" in page["Content-Security-Policy"]
    assert browser.get("/my-data/consents/").status_code == 200  # still signed in
    response = browser.post(url, {"decision": "logout"})
    assert response.status_code == 302
    assert response["Location"] == LOGOUT_URI + "?state=bye-1"
    assert browser.get("/my-data/consents/").status_code == 302  # signed out


def test_logout_can_be_declined(browser: Client, agency: Any) -> None:
    app, key = agency
    id_token = _login_flow(browser, app, key)["id_token"]
    url = _logout_url(id_token_hint=id_token, post_logout_redirect_uri=LOGOUT_URI)
    assert browser.post(url, {"decision": "stay"})["Location"] == "/"
    assert browser.get("/my-data/consents/").status_code == 200


def test_an_expired_id_token_hint_is_still_a_hint(browser: Client, agency: Any) -> None:
    app, key = agency
    signing = signing_key("ES256")
    old = jwt.encode(
        {"alg": "ES256", "kid": signing.kid},
        {"iss": settings.SITE_URL, "aud": app.client_id, "sub": "x", "iat": 1, "exp": 2},
        signing,
    )
    url = _logout_url(id_token_hint=old, post_logout_redirect_uri=LOGOUT_URI)
    assert browser.post(url, {"decision": "logout"})["Location"] == LOGOUT_URI


@pytest.mark.parametrize(
    "params",
    [
        {"post_logout_redirect_uri": "https://evil.example/"},
        {"post_logout_redirect_uri": LOGOUT_URI},  # no id_token_hint: nothing proves who asks
        {"post_logout_redirect_uri": LOGOUT_URI, "id_token_hint": "forged"},
        {"post_logout_redirect_uri": LOGOUT_URI, "id_token_hint": "{foreign}"},
        {"post_logout_redirect_uri": LOGOUT_URI, "id_token_hint": "{token}", "client_id": "someone-else"},
    ],
)
def test_logout_never_redirects_where_it_cannot_trust(
    browser: Client, agency: Any, params: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    app, key = agency
    id_token = _login_flow(browser, app, key)["id_token"]
    foreign = jwt.encode(
        {"alg": "ES256"},
        {"iss": settings.SITE_URL, "aud": app.client_id, "sub": "x", "exp": 9999999999},
        ECKey.generate_key("P-256"),
    )
    params = {k: v.replace("{token}", id_token).replace("{foreign}", foreign) for k, v in params.items()}
    url = _logout_url(**params)
    with caplog.at_level(logging.WARNING, logger="civicore.consent"):
        page = browser.get(url)
    assert page.status_code == 200
    assert "could not be verified" in page.content.decode()
    assert "endpoint=logout" in caplog.text
    response = browser.post(url, {"decision": "logout"})
    assert response.status_code == 200
    assert "You are signed out" in response.content.decode()
    assert browser.get("/my-data/consents/").status_code == 302


def test_logout_without_a_session_goes_straight_back(browser: Client, agency: Any) -> None:
    app, key = agency
    id_token = _login_flow(browser, app, key)["id_token"]
    url = _logout_url(id_token_hint=id_token, post_logout_redirect_uri=LOGOUT_URI, state="s")
    assert Client().get(url)["Location"] == LOGOUT_URI + "?state=s"
    assert "You are signed out" in Client(HTTP_ACCEPT_LANGUAGE="en").get("/oauth/logout").content.decode()


# --- Never a 500 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        (
            "get",
            "/oauth/authorize",
            {"client_id": "ứng-dụng", "request_uri": "urn:ietf:params:oauth:request_uri:ư"},
        ),
        ("get", "/oauth/authorize", {"client_id": "x" * 500, "request_uri": "y" * 5000}),
        ("post", "/oauth/par", {"client_assertion_type": ASSERTION_TYPE, "client_assertion": "a.b.c"}),
        ("post", "/oauth/par", {"client_assertion_type": ASSERTION_TYPE, "client_assertion": "ư.ư.ư"}),
        ("post", "/oauth/token", {"grant_type": "refresh_token", "refresh_token": "ư" * 10}),
        ("post", "/oauth/revoke", {"token": "ư", "client_assertion": "..."}),
        ("get", "/oauth/userinfo", {"access_token": "ư"}),
        ("get", "/oauth/logout", {"id_token_hint": "ư.ư.ư", "client_id": "ư"}),
        ("get", "/oauth/logout", {"id_token_hint": "a" * 10000}),
    ],
)
def test_malformed_requests_are_refused_not_crashed(
    browser: Client, method: str, path: str, data: dict[str, str]
) -> None:
    response = getattr(browser, method)(path, data)
    assert 200 <= response.status_code < 500
    response = getattr(Client(), method)(path, data)
    assert 200 <= response.status_code < 500


def test_every_token_error_is_logged_with_the_client(
    browser: Client, agency: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app, key = agency
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge)
    with caplog.at_level(logging.WARNING, logger="civicore.consent"):
        exchange(Client(), app, key, code=code, verifier=pkce_pair()[0])  # mismatched PKCE verifier
        exchange(Client(), app, key, code="wrong-code", verifier=verifier)
    assert caplog.text.count(f"endpoint=token client_id={app.client_id} error=invalid_grant") == 2
    assert not AuthorizationCode.objects.filter(used_at__isnull=False).exists()
