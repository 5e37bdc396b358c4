"""What a client's registered OpenID Connect metadata changes, and the HTTP rules around it: ID
tokens and userinfo signed with the algorithm the client registered (RS256 or ES256), responses
that must never be cached, and the public documents relying parties read from a browser."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from civicore.consent import oidc
from civicore.consent.tests.helpers import (
    ASSERTION_TYPE,
    PASSWORD,
    TOTP,
    approve,
    client_assertion,
    exchange,
    par_url,
    pkce_pair,
    push,
    record_login,
)
from civicore.core.jose import ensure_signing_keys, reset_cache
from civicore.identity.models import Person
from civicore.identity.tests.factories import make_citizen
from civicore.registry.models import AgencyApplication
from civicore.registry.tests.factories import make_application

pytestmark = pytest.mark.django_db
LOGOUT_URI = "https://agency.example/signed-out"
KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}


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
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(citizen.user)
    record_login(client, citizen.user, PASSWORD, TOTP)
    return client


def _platform_keys() -> KeySet:
    return KeySet.import_key_set(Client().get("/.well-known/jwks.json").json())


def _tokens(browser: Client, app: AgencyApplication, key: ECKey, scope: str = "openid profile") -> Any:
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge, scope=scope, nonce="n-1")
    response = exchange(Client(), app, key, code=code, verifier=verifier)
    assert response.status_code == 200, response.content
    return response.json()


def _refresh(app: AgencyApplication, key: ECKey, refresh_token: str) -> Any:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(app, key),
    }
    return Client().post("/oauth/token", data)


def _userinfo(token: str, **headers: Any) -> Any:
    return Client().get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


# --- ID tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_id_tokens_are_signed_with_the_registered_algorithm(browser: Client, alg: str) -> None:
    app, key = make_application(id_token_signed_response_alg=alg)
    token = _tokens(browser, app, key, scope="openid profile offline_access")
    refreshed = _refresh(app, key, token["refresh_token"])
    assert refreshed.status_code == 200, refreshed.content
    keys = _platform_keys()
    for id_token in (token["id_token"], refreshed.json()["id_token"]):
        decoded = jwt.decode(id_token, keys, algorithms=[alg])
        assert decoded.header["alg"] == alg
        published = keys.get_by_kid(decoded.header["kid"])
        assert published.key_type == KEY_TYPES[alg]
        assert published.get("alg") == alg
        assert decoded.claims["aud"] == app.client_id
        assert decoded.claims["iss"] == settings.SITE_URL
        # at_hash is the left half of a SHA-256 for both algorithms.
        if id_token == token["id_token"]:
            assert decoded.claims["at_hash"] == oidc._at_hash(token["access_token"])
        # Signed with the other algorithm it would not verify.
        other = "ES256" if alg == "RS256" else "RS256"
        with pytest.raises(JoseError):
            jwt.decode(id_token, keys, algorithms=[other])


def test_an_algorithm_nobody_may_register_is_never_used() -> None:
    with pytest.raises(ValueError):
        oidc.id_token_encode(subject="s", client_id="c", auth_time=None, acr="", amr=[], sid="", alg="HS256")


def test_an_rs256_id_token_is_a_valid_hint_at_logout(browser: Client) -> None:
    app, key = make_application(id_token_signed_response_alg="RS256", post_logout_redirect_uris=[LOGOUT_URI])
    id_token = _tokens(browser, app, key)["id_token"]
    query = {"id_token_hint": id_token, "post_logout_redirect_uri": LOGOUT_URI, "state": "bye"}
    url = "/oauth/logout?" + urlencode(query)
    page = browser.get(url)
    assert page.status_code == 200
    assert app.name_en in page.content.decode()
    response = browser.post(url, {"decision": "logout"})
    assert response.status_code == 302
    assert response["Location"] == LOGOUT_URI + "?state=bye"


def test_discovery_offers_both_algorithms_for_id_tokens_and_userinfo() -> None:
    meta = Client().get("/.well-known/openid-configuration").json()
    assert meta["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert meta["userinfo_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert meta["claims_parameter_supported"] is True
    ensure_signing_keys()
    published = {k.get("alg") for k in _platform_keys().keys}
    assert {"RS256", "ES256"} <= published


# --- Userinfo -----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_userinfo_is_a_jwt_signed_with_the_registered_algorithm(browser: Client, alg: str) -> None:
    app, key = make_application(userinfo_signed_response_alg=alg)
    token = _tokens(browser, app, key)
    response = _userinfo(token["access_token"], HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jwt"
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    decoded = jwt.decode(response.content.decode(), _platform_keys(), algorithms=[alg])
    assert decoded.header["alg"] == alg
    claims = decoded.claims
    # OpenID Connect Core 5.3.2: a signed response carries iss and aud.
    assert claims["iss"] == settings.SITE_URL
    assert claims["aud"] == app.client_id
    id_claims = jwt.decode(token["id_token"], _platform_keys()).claims
    assert claims["sub"] == id_claims["sub"]
    assert claims["name"] and claims["birthdate"] == "1990-05-17"


def test_userinfo_is_json_when_the_client_registered_no_signing(browser: Client) -> None:
    app, key = make_application(userinfo_signed_response_alg="")
    token = _tokens(browser, app, key)
    response = _userinfo(token["access_token"], HTTP_ACCEPT="application/jwt")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"sub", "name", "birthdate"}


# --- Never cached -------------------------------------------------------------------------------


def _no_store(response: Any) -> None:
    assert response["Cache-Control"] == "no-store", (response.status_code, response.content)
    assert response["Pragma"] == "no-cache"


def test_nothing_the_token_par_userinfo_and_revocation_endpoints_answer_is_cached(browser: Client) -> None:
    app, key = make_application()
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge, scope="openid profile offline_access", nonce="n-2")
    issued = exchange(Client(), app, key, code=code, verifier=verifier)
    assert issued.status_code == 200
    _no_store(issued)
    replayed = exchange(Client(), app, key, code=code, verifier=verifier)  # invalid_grant
    assert replayed.status_code == 400
    _no_store(replayed)
    unauthenticated = Client().post("/oauth/token", {"grant_type": "refresh_token", "refresh_token": "x"})
    assert unauthenticated.status_code in (400, 401)
    _no_store(unauthenticated)
    malformed = Client().post("/oauth/token", {"grant_type": "refresh_token", "refresh_token": "ư" * 10})
    assert malformed.status_code < 500
    _no_store(malformed)
    wrong_method = Client().get("/oauth/token")
    assert wrong_method.status_code == 405
    _no_store(wrong_method)

    pushed = push(Client(), app, key, challenge=pkce_pair()[1])
    assert pushed.status_code == 201
    _no_store(pushed)
    refused = push(Client(), app, key, challenge=pkce_pair()[1], purpose="marketing")
    assert refused.status_code == 400
    _no_store(refused)
    bad_client = push(
        Client(), app, key, challenge=pkce_pair()[1], assertion=client_assertion(app, key, audience="x")
    )
    assert bad_client.status_code == 401
    _no_store(bad_client)
    assert par_url().endswith("/oauth/par")

    _no_store(_userinfo(issued.json()["access_token"]))
    _no_store(Client().get("/oauth/userinfo"))
    _no_store(_userinfo("forged"))

    revoke = Client().post(
        "/oauth/revoke",
        {
            "token": issued.json()["access_token"],
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(app, key, audience=settings.SITE_URL + "/oauth/revoke"),
        },
    )
    assert revoke.status_code == 200
    _no_store(revoke)
    _no_store(Client().post("/oauth/revoke", {"token": "x"}))


# --- Readable from any origin -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/jwks.json"])
def test_public_documents_are_shared_with_any_origin(path: str) -> None:
    client = Client(HTTP_ORIGIN="https://rp.example")
    response = client.get(path)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cache-Control"] == "public, max-age=300"
    assert "Access-Control-Allow-Credentials" not in response

    preflight = client.options(
        path,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="accept, cache-control",
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert set(preflight["Access-Control-Allow-Methods"].replace(" ", "").split(",")) == {"GET", "OPTIONS"}
    assert preflight["Access-Control-Allow-Headers"] == "accept, cache-control"
    assert int(preflight["Access-Control-Max-Age"]) > 0
    odd = client.options(path, HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x\r\ny: z")
    assert odd.status_code == 204 and "Access-Control-Allow-Headers" not in odd

    assert client.head(path).status_code == 200
    posted = client.post(path)
    assert posted.status_code == 405
    assert posted["Access-Control-Allow-Origin"] == "*"
