"""OpenID Connect conformance as a relying party written elsewhere sees it: idpyoidc, acting for
an agency system, against a live Civicore server over HTTP, while the citizen's browser logs in
(password and second factor) and answers the consent screen.

Each flow, and each way a request can be wrong, with the error the specifications name and its
HTTP status: OAuth 2.0 (RFC 6749, 6750), PKCE (RFC 7636), private_key_jwt (RFC 7523, OpenID
Connect Core 9), revocation (RFC 7009), PAR (RFC 9126), OpenID Connect Core, Discovery,
RP-Initiated, Front-Channel and Back-Channel Logout. The helpers are in relying_party.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from cryptojwt.exception import BadSignature
from cryptojwt.jwk.ec import ECKey as CryptoECKey
from cryptojwt.jws.jws import factory as jws_factory
from cryptojwt.jws.utils import left_hash
from django.utils import timezone
from idpyoidc.client.client_auth import assertion_jwt
from idpyoidc.client.oauth2.stand_alone_client import backchannel_logout
from idpyoidc.message.oidc import verified_claim_name
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from civicore.consent.models import AccessToken, AuthorizationCode, PushedAuthorizationRequest, RefreshToken
from civicore.consent.services import pairwise_subject
from civicore.consent.tests.relying_party import (
    LOGOUT_URI,
    Agency,
    Browser,
    PushRefused,
    callback_params,
    query,
    with_query,
)
from civicore.core import jobs
from civicore.core.jose import ensure_signing_keys, reset_cache
from civicore.identity.models import Person
from civicore.identity.tests.factories import (
    PASSWORD,
    TOTP_SECRET,
    make_citizen,
    make_self_registered_citizen,
)
from civicore.registry.models import AgencyApplication
from civicore.registry.tests.factories import make_application

# The live server's threads must see what a test writes, so no transaction wraps a test. Each
# test then costs a flush of the database (seconds on PostgreSQL): the cases are grouped by
# endpoint and flow, each group with its own citizen and applications.
pytestmark = pytest.mark.django_db(transaction=True)

ID_TOKEN = verified_claim_name("id_token")
_IFRAME_SOURCE = re.compile(r'<iframe\b[^>]*\bsrc="([^"]+)"')
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --- Fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def site(live_server: Any, settings: Any) -> Iterator[str]:
    settings.SITE_URL = live_server.url
    reset_cache()
    ensure_signing_keys()  # as migrating a new database does
    yield live_server.url
    reset_cache()


def citizen_browser(site: str, person: Person) -> Browser:
    """The citizen's browser, not logged in yet; the citizen has a password and an authenticator
    app, and uses their one-time recovery codes as the second factor (no clock involved)."""
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
    from allauth.mfa.totp.internal.auth import TOTP

    TOTP.activate(person.user, TOTP_SECRET)
    codes = RecoveryCodes.activate(person.user).get_unused_codes()
    return Browser(site, email=person.user.email, password=PASSWORD, recovery_codes=codes)


@pytest.fixture
def person() -> Person:
    """A citizen whose identity an agency of record verified."""
    citizen = make_citizen()
    assert citizen.assurance_level == Person.AssuranceLevel.VERIFIED
    return citizen


@pytest.fixture
def browser(site: str, person: Person) -> Iterator[Browser]:
    citizen = citizen_browser(site, person)
    yield citizen
    citizen.close()


def register(site: str, *, scope: list[str] | None = None, **fields: Any) -> tuple[AgencyApplication, Agency]:
    """An application in the registry (`fields` as an administrator sets them), and the idpyoidc
    client acting for it, with discovery done. `scope` is what the client asks for."""
    fields.setdefault("post_logout_redirect_uris", [LOGOUT_URI])
    app, key = make_application(**fields)
    agency = Agency(
        site,
        app.client_id,
        key,
        id_token_alg=app.id_token_signed_response_alg,
        userinfo_alg=app.userinfo_signed_response_alg,
        scope=scope,
    )
    agency.discover()
    return app, agency


@pytest.fixture
def agency(site: str) -> tuple[AgencyApplication, Agency]:
    return register(site)


def approved(agency: Agency, browser: Browser, **req_args: Any) -> tuple[str, dict[str, str]]:
    """The citizen approves the request; returns idpyoidc's state and the redirect's query."""
    url = agency.authorization_url(**req_args)
    screen = browser.open(url)
    assert screen.status_code == 200, screen.text[:2000]
    params = callback_params(browser.decide(screen, "approve"))
    response = agency.callback(params)
    assert "error" not in response, response.to_dict()
    return query(url)["state"], params


def signed_in(agency: Agency, browser: Browser, **req_args: Any) -> tuple[str, Any]:
    """Approve, then exchange the code; returns the state and the token response."""
    state, _params = approved(agency, browser, **req_args)
    tokens = agency.tokens(state)
    assert "error" not in tokens, tokens.to_dict()
    assert ID_TOKEN in tokens, "idpyoidc did not verify an ID token"
    return state, tokens


def assert_error(response: Any, http: requests.Response, error: str, status: int) -> None:
    assert response.get("error") == error, (http.status_code, http.text[:500])
    assert http.status_code == status, (http.status_code, http.text[:500])
    assert http.headers["Content-Type"].startswith("application/json")


def assert_bearer_refused(agency: Agency, state: str, access_token: str) -> None:
    """RFC 6750 section 3.1: 401 and a challenge naming invalid_token."""
    response = agency.userinfo(state, access_token)
    http = agency.last("userinfo_endpoint")
    assert response.get("error") == "invalid_token", http.text[:500]
    assert http.status_code == 401
    assert 'error="invalid_token"' in http.headers["WWW-Authenticate"]
    assert http.headers["WWW-Authenticate"].startswith("Bearer ")


# --- Discovery -----------------------------------------------------------------------------------


def test_discovery_passes_idpyoidc_checks(site: str) -> None:
    """OpenID Connect Discovery 1.0: idpyoidc's own checks pass (issuer = the URL it read from,
    RS256 among the ID-token algorithms, ...), the endpoints are the server's, the JWKS it
    loads is the published one, and a page on another origin may read both documents."""
    _app, agency = register(site)
    metadata = agency.metadata
    assert metadata["issuer"] == site
    for endpoint in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "pushed_authorization_request_endpoint",
        "revocation_endpoint",
        "end_session_endpoint",
    ):
        assert metadata[endpoint].startswith(site + "/"), endpoint
    assert {"RS256", "ES256"} <= set(metadata["id_token_signing_alg_values_supported"])
    assert metadata["response_types_supported"] == ["code"]
    assert set(metadata["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert metadata["revocation_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert "none" not in metadata["token_endpoint_auth_signing_alg_values_supported"]
    assert metadata["request_parameter_supported"] is False
    assert metadata["claims_parameter_supported"] is True
    assert "urn:civicore:loa:2" in metadata["acr_values_supported"]

    agency.keyjar.update()
    published = requests.get(metadata["jwks_uri"], timeout=10).json()["keys"]
    loaded = agency.keyjar.get_issuer_keys(site)
    assert {key.kid for key in loaded} == {key["kid"] for key in published}
    assert {key.kty for key in loaded} >= {"EC", "RSA"}

    for url in (f"{site}/.well-known/openid-configuration", metadata["jwks_uri"]):
        response = requests.get(url, headers={"Origin": "https://agency.example"}, timeout=10)
        assert response.status_code == 200
        assert response.headers.get("Access-Control-Allow-Origin") in ("*", "https://agency.example"), url


# --- The authorization code flow ---------------------------------------------------------------


def test_code_flow_with_pkce_private_key_jwt_id_token_and_userinfo(
    site: str, agency: tuple[AgencyApplication, Agency], browser: Browser, person: Person
) -> None:
    app, rp = agency
    url = rp.authorization_url()
    request = query(url)
    assert request["code_challenge_method"] == "S256"
    assert request["nonce"] and request["state"]
    assert app.id_token_signed_response_alg == "ES256"  # the default for a new registration

    # The browser is sent to log in (password, then the second factor), then sees the consent screen.
    screen = browser.open(url)
    assert browser.authentications == 2
    assert screen.status_code == 200
    assert f"Sign in to {app.name_en} with Civicore" in screen.text
    params = callback_params(browser.decide(screen, "approve"))
    assert params["state"] == request["state"]
    assert "error" not in rp.callback(params).to_dict()

    tokens = rp.tokens(request["state"])
    http = rp.last("token_endpoint")
    assert http.status_code == 200
    assert http.headers["Cache-Control"] == "no-store"  # RFC 6749 section 5.1
    assert tokens["token_type"] == "Bearer"
    assert set(tokens["scope"]) == set(rp.scope)  # idpyoidc splits the space-separated list
    # idpyoidc checked signature, alg, iss, aud, exp, iat and nonce; the claims are these.
    id_token = tokens[ID_TOKEN]
    assert id_token.jws_header["alg"] == "ES256"
    assert id_token.jws_header["kid"]
    assert id_token["iss"] == site
    assert id_token["aud"] == [app.client_id]
    assert id_token["nonce"] == request["nonce"]
    assert id_token["sub"] == pairwise_subject(person=person, client_id=app.client_id)
    assert id_token["exp"] > time.time() > id_token["iat"] - 5
    assert abs(id_token["auth_time"] - time.time()) < 60
    assert id_token["acr"] == "urn:civicore:loa:2"
    assert {"pwd", "otp", "mfa"} <= set(id_token["amr"])
    assert id_token["sid"]
    # idpyoidc checks at_hash only on front-channel responses; on a token response it is
    # optional, and checked here by hand with idpyoidc's own hash (OpenID Connect Core 3.1.3.6).
    assert id_token["at_hash"] == left_hash(tokens["access_token"], "HS256")
    if "c_hash" in id_token:
        assert id_token["c_hash"] == left_hash(params["code"], "HS256")
    # The checks are live: the same response with the ID token's signature altered is refused.
    body = http.json()
    header, payload, signature = body["id_token"].split(".")
    middle = len(signature) // 2
    altered = signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    body["id_token"] = f"{header}.{payload}.{altered}"
    with pytest.raises(BadSignature):
        rp.rp.get_service("accesstoken").parse_response(json.dumps(body), "json", state=request["state"])

    # Userinfo: idpyoidc checks its sub against the ID token's.
    userinfo = rp.userinfo(request["state"])
    assert rp.last("userinfo_endpoint").status_code == 200
    assert userinfo.to_dict() == {
        "sub": id_token["sub"],
        "name": person.user.full_name or "Nguyễn Văn An",
        "birthdate": "1990-05-17",
        "address": {"formatted": "12 Đường Lê Lợi, xã An Bình"},
    }


def test_refresh_revocation_and_rp_initiated_logout(
    site: str, agency: tuple[AgencyApplication, Agency], browser: Browser
) -> None:
    _app, rp = agency
    state, tokens = signed_in(rp, browser)
    first = tokens[ID_TOKEN]

    # Refresh: a new access and refresh token, and a new ID token for the same login.
    refreshed = rp.refresh(state)
    http = rp.last("token_endpoint")
    assert http.status_code == 200, http.text
    assert http.headers["Cache-Control"] == "no-store"
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["access_token"] != tokens["access_token"]
    again = refreshed[ID_TOKEN]
    assert (again["sub"], again["auth_time"], again["acr"], again["sid"]) == (
        first["sub"],
        first["auth_time"],
        first["acr"],
        first["sid"],
    )
    assert "nonce" not in again
    assert rp.userinfo(state, refreshed["access_token"])["sub"] == first["sub"]

    # RFC 7009: revoking the refresh token ends its family, the access tokens with it.
    assert rp.revoke(refreshed["refresh_token"], "refresh_token").status_code == 200
    refused = rp.refresh(state, refresh_token=refreshed["refresh_token"])
    assert_error(refused, rp.last("token_endpoint"), "invalid_grant", 400)
    assert rp.last("token_endpoint").headers["Cache-Control"] == "no-store"
    assert_bearer_refused(rp, state, refreshed["access_token"])

    # RP-initiated logout: idpyoidc's URL, the citizen confirms and comes back with the state.
    logout = rp.logout_url(state)
    sent = query(logout)
    assert sent["id_token_hint"] == refreshed["id_token"]  # the latest one idpyoidc holds
    assert sent["post_logout_redirect_uri"] == LOGOUT_URI
    confirm = browser.open(logout)
    assert confirm.status_code == 200
    assert "Sign out of Civicore?" in confirm.text
    done = browser.decide(confirm, "logout")
    assert done.status_code == 302
    assert done.headers["Location"] == with_query(LOGOUT_URI, state=sent["state"])
    # The Civicore session is over: the next request asks the citizen to log in again.
    before = browser.authentications
    browser.open(rp.authorization_url())
    assert browser.authentications == before + 2


def test_refresh_token_reuse_within_and_after_the_grace_window(
    agency: tuple[AgencyApplication, Agency], browser: Browser
) -> None:
    """A retry after a lost response (the same client, the same token, seconds later) gets
    tokens again; the same token after the grace window is theft: invalid_grant, and the whole
    family is withdrawn (RFC 9700 section 4.14)."""
    app, rp = agency
    state, tokens = signed_in(rp, browser)
    first = rp.refresh(state, refresh_token=tokens["refresh_token"])
    assert rp.last("token_endpoint").status_code == 200
    retried = rp.refresh(state, refresh_token=tokens["refresh_token"])
    assert rp.last("token_endpoint").status_code == 200, rp.last("token_endpoint").text
    assert ID_TOKEN in retried
    for pair in (first, retried):
        assert rp.userinfo(state, pair["access_token"])["sub"] == tokens[ID_TOKEN]["sub"]

    past = timezone.now() - timedelta(hours=1)
    RefreshToken.objects.filter(application=app).exclude(used_at=None).update(
        used_at=past, successor_until=past
    )
    refused = rp.refresh(state, refresh_token=tokens["refresh_token"])
    assert_error(refused, rp.last("token_endpoint"), "invalid_grant", 400)
    for pair in (first, retried):
        successor = rp.refresh(state, refresh_token=pair["refresh_token"])
        assert_error(successor, rp.last("token_endpoint"), "invalid_grant", 400)
        assert_bearer_refused(rp, state, pair["access_token"])


# --- Pushed authorization requests (RFC 9126) --------------------------------------------------


def test_pushed_authorization_requests(site: str, browser: Browser) -> None:
    """RFC 9126, for a client registered to push every request (require_par)."""
    app, rp = register(site, require_par=True)
    # What the PAR endpoint refuses: an unregistered redirect URI (section 2.4) and a request_uri
    # inside a pushed request (section 2.1), 400 invalid_request; a client that cannot prove who
    # it is, 401 invalid_client (section 2.3). No request_uri either way.
    for bad, status, error in (
        ({"redirect_uri": "https://evil.example/callback"}, 400, "invalid_request"),
        ({"request_uri": "urn:ietf:params:oauth:request_uri:abc"}, 400, "invalid_request"),
    ):
        with pytest.raises(PushRefused) as refused:
            rp.pushed_authorization_url(**bad)
        assert refused.value.response.status_code == status
        assert refused.value.response.json()["error"] == error
    impostor = Agency(site, app.client_id, ECKey.generate_key("P-256", auto_kid=True))
    impostor.discover()
    with pytest.raises(PushRefused) as wrong_key:
        impostor.pushed_authorization_url()
    assert wrong_key.value.response.status_code == 401
    assert wrong_key.value.response.json()["error"] == "invalid_client"

    # Section 4: this client must push, so a request through the browser is invalid_request.
    url = rp.authorization_url()
    params = callback_params(browser.open(url))
    assert params["error"] == "invalid_request"
    assert params["state"] == query(url)["state"]
    assert rp.callback(params)["error"] == "invalid_request"

    # Pushed, it goes through: 201, and the browser carries client_id and request_uri only.
    url = rp.pushed_authorization_url()
    pushed = rp.last("pushed_authorization_request_endpoint")
    assert pushed.status_code == 201
    assert pushed.headers["Cache-Control"] == "no-store"
    assert rp.pushed["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert 0 < rp.pushed["expires_in"] <= 600
    assert set(query(url)) == {"client_id", "request_uri"}
    screen = browser.open(url)
    params = callback_params(browser.decide(screen, "approve"))
    assert "error" not in rp.callback(params)
    assert ID_TOKEN in rp.tokens(params["state"])  # with the nonce that was pushed

    # A request_uri is used once; the agency hears of a second use...
    again = callback_params(browser.open(url))
    assert again["error"] == "invalid_request_uri"
    assert again["state"] == params["state"]
    # ... and of one that expired before the browser brought it.
    late = rp.pushed_authorization_url()
    expired = timezone.now() - timedelta(seconds=1)
    PushedAuthorizationRequest.objects.filter(application=app, used_at=None).update(expires_at=expired)
    params = callback_params(browser.open(late))
    assert params["error"] == "invalid_request_uri"
    assert params["state"] == rp.pushed_state


# --- Errors at the authorization endpoint -----------------------------------------------------


def test_errors_at_the_authorization_endpoint(
    site: str, agency: tuple[AgencyApplication, Agency], browser: Browser
) -> None:
    _app, rp = agency

    # RFC 6749 section 4.1.2.1: an unregistered redirect URI, or an unknown client, is shown
    # to the citizen and never followed.
    page = browser.open(rp.authorization_url(redirect_uri="https://evil.example/callback"))
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert "invalid_request" in page.text
    assert "asked us to send you back to an address it has not registered" in page.text
    stranger = Agency(site, "no-such-client", ECKey.generate_key("P-256", auto_kid=True))
    stranger.discover()
    page = browser.open(stranger.authorization_url())
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert "not registered with Civicore" in page.text

    # Once client and redirect URI are known, the error goes back to the client with its state.
    def refused(url: str) -> str:
        params = callback_params(browser.open(url))
        assert params["state"] == query(url)["state"]
        assert "code" not in params
        return params["error"]

    # A scope the client is not registered for.
    assert refused(rp.authorization_url(scope="openid profile national_id")) == "invalid_scope"
    # A request object (OpenID Connect Core 6.1), signed by idpyoidc with the client's key;
    # discovery says request_parameter_supported: false.
    with_object = rp.rp.init_authorization(
        req_args={"purpose": "benefit"},
        behaviour_args={"request_param": "request", "request_object_signing_alg": rp.alg},
    )
    assert "request" in query(with_object)
    params = callback_params(browser.open(with_object))
    assert params["error"] == "request_not_supported"
    # A response type other than code. idpyoidc builds requests only for the response types
    # the client registered, so this one is built for "code" and changed by hand.
    url = rp.authorization_url().replace("response_type=code", "response_type=token")
    assert refused(url) == "unsupported_response_type"

    # The citizen declines: access_denied, which idpyoidc matches to its own request.
    url = rp.authorization_url()
    params = callback_params(browser.decide(browser.open(url), "decline"))
    assert params["error"] == "access_denied"
    assert "code" not in params
    response = rp.callback(params)
    assert response["error"] == "access_denied"
    assert response["state"] == query(url)["state"]


# --- Errors at the token endpoint ---------------------------------------------------------------


def test_errors_at_the_token_endpoint(
    site: str, agency: tuple[AgencyApplication, Agency], browser: Browser
) -> None:
    app, rp = agency
    cstate = rp.rp.get_context().cstate

    # PKCE (RFC 7636 section 4.6): a verifier that does not match is invalid_grant.
    state, _params = approved(rp, browser)
    verifier = cstate.get_set(state, claim=["code_verifier"])["code_verifier"]
    cstate.update(state, {"code_verifier": verifier[::-1]})
    assert_error(rp.tokens(state), rp.last("token_endpoint"), "invalid_grant", 400)
    assert rp.last("token_endpoint").headers["Cache-Control"] == "no-store"

    # An expired code (RFC 6749 section 4.1.2: short-lived).
    state, _params = approved(rp, browser)
    AuthorizationCode.objects.filter(application=app).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(rp.tokens(state), rp.last("token_endpoint"), "invalid_grant", 400)

    # A code used twice is refused, and the tokens issued for it are withdrawn (section 4.1.2).
    state, tokens = signed_in(rp, browser)
    assert_error(rp.tokens(state), rp.last("token_endpoint"), "invalid_grant", 400)
    assert_bearer_refused(rp, state, tokens["access_token"])
    again = rp.refresh(state, refresh_token=tokens["refresh_token"])
    assert_error(again, rp.last("token_endpoint"), "invalid_grant", 400)

    # A grant type the server does not support: idpyoidc's client credentials request.
    refused = rp.rp.do_request(
        "client_credentials", request_args={"scope": "openid"}, authn_method="private_key_jwt"
    )
    assert_error(refused, rp.last("token_endpoint"), "unsupported_grant_type", 400)

    # An unknown client: 401 invalid_client (RFC 6749 section 5.2).
    stranger = Agency(site, "no-such-client", ECKey.generate_key("P-256", auto_kid=True))
    stranger.discover()
    state = query(stranger.authorization_url())["state"]
    stranger.rp.get_context().cstate.update(state, {"code": "a-code-never-issued"})
    assert_error(stranger.tokens(state), stranger.last("token_endpoint"), "invalid_client", 401)

    # RFC 7523 section 3 and OpenID Connect Core 9: 401 invalid_client for a client assertion
    # (each made by idpyoidc) signed with another key, expired, or with a jti seen before.
    assert isinstance(rp.key, ECKey)
    token_endpoint = rp.metadata["token_endpoint"]

    def assertion(key: ECKey, lifetime: int = 60) -> str:
        signing = CryptoECKey(**key.as_dict(private=True))
        return str(assertion_jwt(app.client_id, [signing], token_endpoint, "ES256", lifetime=lifetime))

    state, _params = approved(rp, browser)
    wrong_key = assertion(ECKey.generate_key("P-256", auto_kid=True))
    expired = assertion(rp.key, lifetime=-120)
    replayed = assertion(rp.key)  # accepted once (at the revocation endpoint), then sent again
    assert rp.revoke("an-unknown-token", client_assertion=replayed).status_code == 200
    for client_assertion in (wrong_key, expired, replayed):
        refused = rp.tokens(state, client_assertion=client_assertion, client_assertion_type=ASSERTION_TYPE)
        assert_error(refused, rp.last("token_endpoint"), "invalid_client", 401)
        assert rp.last("token_endpoint").headers["Cache-Control"] == "no-store"
    assert ID_TOKEN in rp.tokens(state)  # none of the refusals spent the code


# --- Userinfo and revocation ---------------------------------------------------------------------


def test_userinfo_and_revocation_refusals(
    site: str, agency: tuple[AgencyApplication, Agency], browser: Browser
) -> None:
    app, rp = agency
    state, tokens = signed_in(rp, browser)
    refreshed = rp.refresh(state)
    # A revoked access token: 401 with WWW-Authenticate error="invalid_token" (RFC 6750 3.1).
    assert rp.revoke(tokens["access_token"], "access_token").status_code == 200
    assert_bearer_refused(rp, state, tokens["access_token"])
    # The other access token still works, until it expires.
    assert rp.userinfo(state, refreshed["access_token"])["sub"]
    AccessToken.objects.filter(application=app).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_bearer_refused(rp, state, refreshed["access_token"])

    # RFC 7009 section 2.2: a token the server does not know is answered 200 as well...
    assert rp.revoke("a-token-nobody-issued").status_code == 200
    # ... but a client that cannot authenticate is 401 invalid_client (section 2.2.1).
    impostor = Agency(site, app.client_id, ECKey.generate_key("P-256", auto_kid=True))
    impostor.discover()
    refused = impostor.revoke(refreshed["refresh_token"], "refresh_token")
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert rp.refresh(state, refresh_token=refreshed["refresh_token"])["access_token"]


# --- Signing algorithms the client registered ----------------------------------------------------


def test_rs256_id_tokens_and_signed_userinfo_for_a_client_registered_for_them(
    site: str, browser: Browser
) -> None:
    """OpenID Connect Registration 2: id_token_signed_response_alg=RS256 (idpyoidc then accepts
    no other), and userinfo_signed_response_alg, which makes userinfo an application/jwt signed
    with that alg and carrying iss and aud (Core 5.3.2)."""
    app, rp = register(site, id_token_signed_response_alg="RS256", userinfo_signed_response_alg="ES256")
    state, tokens = signed_in(rp, browser)
    header = tokens[ID_TOKEN].jws_header
    assert header["alg"] == "RS256"
    published = {key["kid"]: key for key in requests.get(rp.metadata["jwks_uri"], timeout=10).json()["keys"]}
    assert published[header["kid"]]["kty"] == "RSA"
    assert rp.refresh(state)[ID_TOKEN].jws_header["alg"] == "RS256"

    userinfo = rp.userinfo(state)
    http = rp.last("userinfo_endpoint")
    assert http.status_code == 200
    assert http.headers["Content-Type"].startswith("application/jwt")
    # idpyoidc verified it with the platform keys and the registered alg only, and keeps the
    # JWS as it came.
    assert jws_factory(userinfo._jws).jwt.headers["alg"] == "ES256"
    assert userinfo["sub"] == tokens[ID_TOKEN]["sub"]
    assert userinfo["iss"] == site
    assert userinfo["aud"] in (app.client_id, [app.client_id])


# --- prompt, max_age, acr_values, claims ---------------------------------------------------------


def test_prompt_max_age_and_acr_values(site: str, browser: Browser) -> None:
    """OpenID Connect Core 3.1.2.1. (These clients do not ask for offline_access: idpyoidc would
    then add prompt=consent, as Core section 11 says.)"""
    _app, rp = register(site, scope=["openid", "profile"])
    # prompt=none shows no page: without a session, login_required...
    url = rp.authorization_url(prompt="none")
    params = callback_params(browser.open(url))
    assert browser.authentications == 0
    assert params["error"] == "login_required"
    assert params["state"] == query(url)["state"]

    # (a sign-in, asking for loa:2 or loa:1: the login reached loa:2)
    _state, tokens = signed_in(rp, browser, acr_values="urn:civicore:loa:2 urn:civicore:loa:1")
    assert tokens[ID_TOKEN]["acr"] == "urn:civicore:loa:2"
    first = tokens[ID_TOKEN]["auth_time"]
    before = browser.authentications

    # ... with a session and a consent, a code at once...
    url = rp.authorization_url(prompt="none")
    params = callback_params(browser.open(url))
    assert "error" not in params, params
    assert params["state"] == query(url)["state"]
    assert "error" not in rp.callback(params)
    assert rp.tokens(params["state"])[ID_TOKEN]["nonce"] == query(url)["nonce"]
    # ... and without a consent, consent_required.
    _other, newcomer = register(site, scope=["openid", "profile"])
    url = newcomer.authorization_url(prompt="none")
    params = callback_params(browser.open(url))
    assert params["error"] == "consent_required"
    assert params["state"] == query(url)["state"]

    # max_age: a login younger than it stands, an older one is done again; either way the ID
    # token has auth_time.
    _state, tokens = signed_in(rp, browser, max_age=3600)
    assert browser.authentications == before
    assert tokens[ID_TOKEN]["auth_time"] == first
    _state, tokens = signed_in(rp, browser, max_age=0)
    assert browser.authentications > before
    assert first <= tokens[ID_TOKEN]["auth_time"] <= time.time() + 5

    # An essential acr (Core 5.5.1.1) the citizen cannot reach: a citizen whose identity was
    # never verified cannot be at loa:2, however they log in.
    unverified = citizen_browser(site, make_self_registered_citizen())
    essential = {"id_token": {"acr": {"essential": True, "values": ["urn:civicore:loa:2"]}}}
    url = rp.authorization_url(claims=json.dumps(essential))
    try:
        params = callback_params(unverified.open(url))
    finally:
        unverified.close()
    assert params["error"] == "unmet_authentication_requirements"
    assert params["state"] == query(url)["state"]


def test_the_claims_parameter_adds_claims_to_the_id_token_and_userinfo(
    site: str, browser: Browser, person: Person
) -> None:
    """OpenID Connect Core 5.5: claims asked for by name, on top of those the scope gives."""
    _app, rp = register(site, scope=["openid", "address"])
    claims = {"id_token": {"birthdate": {"essential": True}}, "userinfo": {"name": None}}
    state, tokens = signed_in(rp, browser, claims=json.dumps(claims))
    assert tokens[ID_TOKEN]["birthdate"] == "1990-05-17"
    userinfo = rp.userinfo(state)
    assert userinfo["name"] == (person.user.full_name or "Nguyễn Văn An")
    assert userinfo.to_dict()["address"] == {"formatted": "12 Đường Lê Lợi, xã An Bình"}


# --- Front- and back-channel logout -------------------------------------------------------------


class _LogoutReceiver(BaseHTTPRequestHandler):
    """The agency's back-channel logout endpoint: keeps what it is sent, answers 200."""

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.server.received.append((dict(self.headers), body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature is fixed
        return None


@pytest.fixture
def logout_receiver() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LogoutReceiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _delivered(received: list[Any], *, within: float = 5.0) -> list[Any]:
    """Run the job queue once (logout tokens are sent from it), then wait for the token."""
    jobs.work(once=True)
    deadline = time.monotonic() + within
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    return received


def test_front_and_back_channel_logout(
    site: str, browser: Browser, logout_receiver: ThreadingHTTPServer
) -> None:
    """OpenID Connect Front-Channel and Back-Channel Logout 1.0, for a client registered for
    both, with the session id required: the page that ends the session loads the client's
    front-channel URI in an iframe, and a logout token is posted to its back-channel URI, which
    idpyoidc verifies and matches to its session."""
    front = "https://agency.example/front-logout"
    back = f"http://127.0.0.1:{logout_receiver.server_address[1]}/backchannel-logout"
    _app, rp = register(
        site,
        frontchannel_logout_uri=front,
        frontchannel_logout_session_required=True,
        backchannel_logout_uri=back,
        backchannel_logout_session_required=True,
    )
    state, tokens = signed_in(rp, browser)
    id_token = tokens[ID_TOKEN]
    logout = rp.logout_url(state)
    done = browser.decide(browser.open(logout), "logout")

    assert done.status_code == 200, done.headers.get("Location")
    frames = [unescape(src) for src in _IFRAME_SOURCE.findall(done.text) if unescape(src).startswith(front)]
    assert len(frames) == 1, done.text[:3000]
    assert query(frames[0]) == {"iss": site, "sid": id_token["sid"]}
    # The citizen still goes back to the agency afterwards, with its state.
    assert with_query(LOGOUT_URI, state=query(logout)["state"]) in unescape(done.text)

    received = _delivered(logout_receiver.received)  # type: ignore[attr-defined]
    assert len(received) == 1
    headers, body = received[0]
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    # idpyoidc: signature (the client's ID-token alg), iss, aud, iat, jti, the events claim,
    # no nonce, sub or sid; then the session it names.
    assert backchannel_logout(rp.rp, request=body) == state
    logout_token = parse_qs(body)["logout_token"][0]
    keys = KeySet.import_key_set(requests.get(rp.metadata["jwks_uri"], timeout=10).json())
    token = jwt.decode(logout_token, keys)
    claims = token.claims
    assert token.header.get("typ") in (None, "logout+jwt")
    assert claims["events"] == {BACKCHANNEL_EVENT: {}}
    assert claims["sid"] == id_token["sid"]
    assert claims["sub"] == id_token["sub"]
    assert "nonce" not in claims
    assert claims["jti"]
    # idpyoidc does not look at exp, which Back-Channel Logout 1.0 section 2.4 requires.
    assert claims["iat"] <= time.time() + 5 < claims["exp"] + 5
    assert claims["exp"] - claims["iat"] <= 600
