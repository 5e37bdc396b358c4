"""End to end over real HTTP: a relying party built with Authlib's OAuth client (private_key_jwt,
PKCE S256) logs a citizen in with Civicore against a live server. It reads the discovery document,
pushes its authorization request (PAR), sends the browser with the request_uri, exchanges the
code, verifies the ID token with joserfc against the JWKS named in discovery, reads userinfo,
refreshes (rotation, and reuse detection) and logs the citizen out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from django.conf import settings
from django.test import Client
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from civicore.consent.models import RefreshToken
from civicore.consent.services import pairwise_subject
from civicore.consent.tests.helpers import PASSWORD, REDIRECT_URI, TOTP, record_login
from civicore.core.jose import reset_cache
from civicore.identity.models import Person
from civicore.identity.tests.factories import make_citizen
from civicore.registry.models import AgencyApplication
from civicore.registry.tests.factories import make_application

pytestmark = pytest.mark.django_db(transaction=True)
SCOPE = "openid profile address offline_access"
LOGOUT_URI = "https://agency.example/signed-out"


@pytest.fixture
def site(live_server: Any, settings: Any) -> Iterator[str]:
    settings.SITE_URL = live_server.url
    reset_cache()
    yield live_server.url
    reset_cache()


def _citizen_browser(site: str, person: Person) -> httpx.Client:
    """The citizen's browser after logging in with a password and an authenticator app."""
    django_client = Client()
    django_client.force_login(person.user)
    record_login(django_client, person.user, PASSWORD, TOTP)
    session = django_client.cookies[settings.SESSION_COOKIE_NAME].value
    return httpx.Client(
        base_url=site,
        cookies={settings.SESSION_COOKIE_NAME: session},
        headers={"Accept-Language": "en"},
        follow_redirects=False,
    )


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def _relying_party(app: AgencyApplication, key: ECKey, metadata: dict[str, Any]) -> OAuth2Client:
    client = OAuth2Client(
        client_id=app.client_id,
        client_secret=key,
        token_endpoint_auth_method="private_key_jwt",
        revocation_endpoint_auth_method="private_key_jwt",
        code_challenge_method="S256",
        redirect_uri=REDIRECT_URI,
        scope=SCOPE,
        token_endpoint=metadata["token_endpoint"],
    )
    # No fixed audience: each assertion names the endpoint it is sent to (token, PAR, revoke).
    client.register_client_auth_method(PrivateKeyJWT(headers={"kid": key.kid}, alg="ES256"))
    return client


def _verify_id_token(
    id_token: str, metadata: dict[str, Any], app: AgencyApplication, nonce: str | None
) -> Any:
    keys = KeySet.import_key_set(httpx.get(metadata["jwks_uri"]).json())
    token = jwt.decode(id_token, keys, algorithms=metadata["id_token_signing_alg_values_supported"])
    expected: dict[str, Any] = {
        "iss": {"essential": True, "value": metadata["issuer"]},
        "aud": {"essential": True, "value": app.client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "auth_time": {"essential": True},
    }
    if nonce is not None:
        expected["nonce"] = {"essential": True, "value": nonce}
    jwt.JWTClaimsRegistry(**expected).validate(token.claims)
    return token


def test_a_relying_party_logs_a_citizen_in_with_par_and_private_key_jwt(site: str) -> None:
    person = make_citizen()
    if hasattr(Person, "assurance_level"):
        Person.objects.filter(pk=person.pk).update(assurance_level=2)
    app, key = make_application(post_logout_redirect_uris=[LOGOUT_URI])

    # Discovery.
    metadata = httpx.get(f"{site}/.well-known/openid-configuration").json()
    assert metadata["issuer"] == site
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]

    with _relying_party(app, key, metadata) as rp, _citizen_browser(site, person) as browser:
        # 1. Push the authorization request (RFC 9126), authenticated with private_key_jwt.
        verifier, nonce = generate_token(64), generate_token(20)
        full_url, state = rp.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce, purpose="benefit"
        )
        request = {k: v[0] for k, v in parse_qs(urlsplit(full_url).query).items()}
        assert request["code_challenge_method"] == "S256"
        pushed = rp.post(
            metadata["pushed_authorization_request_endpoint"],
            data=request,
            auth=rp.client_auth("private_key_jwt"),
        )
        assert pushed.status_code == 201, pushed.text
        request_uri = pushed.json()["request_uri"]
        assert 60 <= pushed.json()["expires_in"] <= 90

        # 2. The citizen's browser brings only client_id and request_uri, and approves.
        authorize = (
            metadata["authorization_endpoint"]
            + "?"
            + urlencode({"client_id": app.client_id, "request_uri": request_uri})
        )
        screen = browser.get(authorize)
        assert screen.status_code == 200
        assert f"Sign in to {app.name_en} with Civicore" in screen.text
        decision = browser.post(authorize, data={"csrfmiddlewaretoken": _csrf(screen), "decision": "approve"})
        assert decision.status_code == 302
        callback = decision.headers["Location"]
        assert callback.startswith(REDIRECT_URI + "?")

        # 3. Code for tokens at the token endpoint.
        token = rp.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
        assert token["token_type"] == "Bearer"
        assert set(token["scope"].split()) == set(SCOPE.split())
        assert token["refresh_token"]

        # 4. The ID token, verified with the keys discovery points to.
        id_token = _verify_id_token(token["id_token"], metadata, app, nonce)
        claims = id_token.claims
        assert id_token.header["kid"] in {k["kid"] for k in httpx.get(metadata["jwks_uri"]).json()["keys"]}
        assert claims["sub"] == pairwise_subject(person=person, client_id=app.client_id)
        assert claims["acr"] == "urn:civicore:loa:2"
        assert {"pwd", "otp", "mfa"} <= set(claims["amr"])
        assert claims["sid"]

        # 5. Userinfo: the consented claims only.
        userinfo = rp.get(metadata["userinfo_endpoint"])
        assert userinfo.status_code == 200
        assert userinfo.json() == {
            "sub": claims["sub"],
            "name": person.user.full_name or "Nguyễn Văn An",
            "birthdate": "1990-05-17",
            "address": {"formatted": "12 Đường Lê Lợi, xã An Bình"},
        }

        # 6. Refresh: a new pair, and a new ID token for the same login.
        first_refresh = token["refresh_token"]
        refreshed = rp.refresh_token(metadata["token_endpoint"])
        assert refreshed["refresh_token"] != first_refresh
        again = _verify_id_token(refreshed["id_token"], metadata, app, None).claims
        assert (again["sub"], again["auth_time"], again["acr"]) == (
            claims["sub"],
            claims["auth_time"],
            claims["acr"],
        )
        assert rp.get(metadata["userinfo_endpoint"]).status_code == 200

        # The old refresh token comes back after the grace window: refused, and the whole family
        # is withdrawn.
        RefreshToken.objects.update(successor_until=timezone.now())
        with pytest.raises(OAuthError) as replay:
            rp.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh)
        assert replay.value.error == "invalid_grant"
        with pytest.raises(OAuthError) as successor:
            rp.refresh_token(metadata["token_endpoint"], refresh_token=refreshed["refresh_token"])
        assert successor.value.error == "invalid_grant"
        revoked = rp.get(metadata["userinfo_endpoint"])
        assert revoked.status_code == 401
        assert 'error="invalid_token"' in revoked.headers["WWW-Authenticate"]

        # 7. RP-initiated logout: the citizen confirms, and comes back with the state.
        logout = (
            metadata["end_session_endpoint"]
            + "?"
            + urlencode(
                {"id_token_hint": token["id_token"], "post_logout_redirect_uri": LOGOUT_URI, "state": "bye"}
            )
        )
        confirm = browser.get(logout)
        assert confirm.status_code == 200
        assert "Sign out of Civicore?" in confirm.text
        done = browser.post(logout, data={"csrfmiddlewaretoken": _csrf(confirm), "decision": "logout"})
        assert done.status_code == 302
        assert done.headers["Location"] == LOGOUT_URI + "?state=bye"
        assert browser.get("/my-data/consents/").headers["Location"].startswith("/accounts/login/")


def test_the_relying_party_hears_the_errors_the_specifications_name(site: str) -> None:
    app, key = make_application()
    metadata = httpx.get(f"{site}/.well-known/openid-configuration").json()
    with _relying_party(app, key, metadata) as rp:
        # A code that was never issued.
        with pytest.raises(OAuthError) as wrong_code:
            rp.fetch_token(code="not-a-code", code_verifier=generate_token(64))
        assert wrong_code.value.error == "invalid_grant"
        # An unregistered redirect URI, pushed: refused at once, no request_uri.
        url, _state = rp.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=generate_token(64), purpose="benefit"
        )
        request = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        request["redirect_uri"] = "https://evil.example/callback"
        refused = rp.post(
            metadata["pushed_authorization_request_endpoint"],
            data=request,
            auth=rp.client_auth("private_key_jwt"),
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_request"

    # A client signing with a key it never registered.
    impostor_key = ECKey.generate_key("P-256", auto_kid=True)
    with _relying_party(app, impostor_key, metadata) as impostor:
        with pytest.raises(OAuthError) as wrong_key:
            impostor.fetch_token(code="whatever", code_verifier=generate_token(64))
        assert wrong_key.value.error == "invalid_client"
    # An unknown client.
    unknown = AgencyApplication(client_id="no-such-client")
    with _relying_party(unknown, key, metadata) as stranger:
        with pytest.raises(OAuthError) as unknown_client:
            stranger.fetch_token(code="whatever", code_verifier=generate_token(64))
        assert unknown_client.value.error == "invalid_client"
