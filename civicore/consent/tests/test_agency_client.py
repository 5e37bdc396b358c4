"""End to end over real HTTP: an agency system built with Authlib's own OAuth client (PKCE S256,
private_key_jwt) against a live server. The citizen approves in their (logged-in) browser, the
agency exchanges the code, reads the person and checks the answer with the published JWKS."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from django.conf import settings
from django.test import Client
from joserfc import jwe, jws
from joserfc.jwk import ECKey, KeySet, RSAKey

from civicore.consent.services import pairwise_subject
from civicore.consent.tests.helpers import REDIRECT_URI
from civicore.core.jose import reset_cache
from civicore.identity.models import Person
from civicore.identity.tests.factories import make_citizen
from civicore.registry.models import AgencyApplication, MessageLogEntry
from civicore.registry.tests.factories import make_application

pytestmark = pytest.mark.django_db(transaction=True)
SCOPE = "full_name date_of_birth address"


@pytest.fixture
def site(live_server: Any, settings: Any) -> Iterator[str]:
    settings.SITE_URL = live_server.url
    reset_cache()
    yield live_server.url
    reset_cache()


def _citizen_browser(site: str, person: Person) -> httpx.Client:
    """An HTTP client carrying the citizen's session, as their browser would after logging in."""
    django_client = Client()
    django_client.force_login(person.user)
    session = django_client.cookies[settings.SESSION_COOKIE_NAME].value
    return httpx.Client(
        base_url=site,
        cookies={settings.SESSION_COOKIE_NAME: session},
        headers={"Accept-Language": "en"},
        follow_redirects=False,
    )


def _agency_client(site: str, app: AgencyApplication, key: ECKey) -> OAuth2Client:
    client = OAuth2Client(
        client_id=app.client_id,
        client_secret=key,
        token_endpoint_auth_method="private_key_jwt",
        code_challenge_method="S256",
        redirect_uri=REDIRECT_URI,
        scope=SCOPE,
    )
    client.register_client_auth_method(
        PrivateKeyJWT(f"{site}/oauth/token", headers={"kid": key.kid}, alg="ES256")
    )
    return client


def _consent_flow(site: str, person: Person, agency: OAuth2Client) -> httpx.Response:
    """Authorize, approve, exchange the code, read the person; returns the person response."""
    verifier = generate_token(64)
    url, state = agency.create_authorization_url(
        f"{site}/oauth/authorize", code_verifier=verifier, purpose="benefit"
    )
    with _citizen_browser(site, person) as browser:
        screen = browser.get(url)
        assert screen.status_code == 200
        assert "asks to receive your data" in screen.text
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', screen.text)
        assert csrf is not None
        decision = browser.post(url, data={"csrfmiddlewaretoken": csrf.group(1), "decision": "approve"})
    assert decision.status_code == 302
    callback = decision.headers["Location"]
    assert callback.startswith(REDIRECT_URI + "?")
    token = agency.fetch_token(f"{site}/oauth/token", authorization_response=callback, code_verifier=verifier)
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] <= 600
    return agency.get(f"{site}/api/v1/consent/person")


def _published_keys(site: str) -> KeySet:
    return KeySet.import_key_set(httpx.get(f"{site}/.well-known/jwks.json").json())


def _check_claims(claims: dict[str, Any], site: str, app: AgencyApplication, person: Person) -> None:
    assert claims["iss"] == site
    assert claims["aud"] == app.client_id
    assert claims["sub"] == pairwise_subject(person=person, client_id=app.client_id)
    assert claims["purpose"] == "benefit"
    assert claims["exp"] > claims["iat"]
    assert set(claims["items"]) == set(SCOPE.split())
    assert claims["items"]["date_of_birth"]["value"] == "1990-05-17"
    assert claims["items"]["address"]["value"] == "12 Đường Lê Lợi, xã An Bình"
    for item in claims["items"].values():
        assert item["source"] and item["verified_at"]


def test_agency_client_reads_a_signed_person_with_the_citizens_consent(site: str) -> None:
    person = make_citizen()
    app, key = make_application()
    with _agency_client(site, app, key) as agency:
        response = _consent_flow(site, person, agency)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/jwt"
        verified = jws.deserialize_compact(response.text, _published_keys(site))
        assert verified.protected["typ"] == "person+jwt"
        claims = json.loads(verified.payload)
        _check_claims(claims, site, app, person)
        message = MessageLogEntry.objects.get(operation="person.read")
        assert message.consent_id == claims["consent_id"]

        # The citizen withdraws; the very next read with the same token is refused.
        with _citizen_browser(site, person) as browser:
            page = browser.get("/my-data/consents/")
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert csrf is not None
            revoked = browser.post(
                f"/my-data/consents/{claims['consent_id']}/revoke",
                data={"csrfmiddlewaretoken": csrf.group(1)},
            )
            assert revoked.status_code == 302
        refused = agency.get(f"{site}/api/v1/consent/person")
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_token"


@pytest.mark.parametrize("encryption", ["ECDH-ES", "RSA-OAEP-256"])
def test_agency_client_decrypts_the_person_when_it_publishes_an_encryption_key(
    site: str, encryption: str
) -> None:
    person = make_citizen()
    key = ECKey.generate_key("P-256", auto_kid=True)
    decryption_key: ECKey | RSAKey = (
        ECKey.generate_key("P-256", parameters={"use": "enc", "alg": encryption}, auto_kid=True)
        if encryption == "ECDH-ES"
        else RSAKey.generate_key(2048, parameters={"use": "enc", "alg": encryption}, auto_kid=True)
    )
    app, _ = make_application(
        key=key, jwks={"keys": [key.as_dict(private=False), decryption_key.as_dict(private=False)]}
    )
    with _agency_client(site, app, key) as agency:
        response = _consent_flow(site, person, agency)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/jose"
    decrypted = jwe.decrypt_compact(response.text, decryption_key, algorithms=[encryption, "A256GCM"])
    assert decrypted.protected["cty"] == "JWT"
    verified = jws.deserialize_compact(decrypted.plaintext, _published_keys(site))
    _check_claims(json.loads(verified.payload), site, app, person)
