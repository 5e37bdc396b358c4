"""What an agency system does in the consent flow, step by step, for the tests to vary."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.conf import settings
from django.test import Client
from joserfc import jwt
from joserfc.jwk import ECKey

from civicore.registry.models import AgencyApplication

REDIRECT_URI = "https://agency.example/callback"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def token_url() -> str:
    return settings.SITE_URL + "/oauth/token"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_query(
    app: AgencyApplication, *, challenge: str, scope: str = "full_name address", **extra: Any
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "purpose": "benefit",
        "state": "state-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def authorize_url(query: dict[str, Any]) -> str:
    return "/oauth/authorize?" + urlencode(query)


def redirect_params(location: str) -> dict[str, str]:
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT_URI, location
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


def approve(client: Client, app: AgencyApplication, *, challenge: str, **extra: Any) -> str:
    """The logged-in citizen allows the request; returns the authorization code."""
    url = authorize_url(authorize_query(app, challenge=challenge, **extra))
    assert client.get(url).status_code == 200
    response = client.post(url, {"decision": "approve"})
    assert response.status_code == 302, response.content
    params = redirect_params(response["Location"])
    assert params["state"] == "state-123"
    return params["code"]


def client_assertion(
    app: AgencyApplication,
    key: ECKey,
    *,
    audience: str | None = None,
    lifetime: int = 60,
    jti: str | None = None,
    **claims: Any,
) -> str:
    now = int(time.time())
    payload = {
        "iss": app.client_id,
        "sub": app.client_id,
        "aud": audience or token_url(),
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(16) if jti is None else jti,
        **claims,
    }
    if payload["jti"] == "":
        del payload["jti"]
    return jwt.encode({"alg": "ES256", "kid": key.kid}, payload, key)


def exchange(
    client: Client,
    app: AgencyApplication,
    key: ECKey,
    *,
    code: str,
    verifier: str | None,
    assertion: str | None = None,
    **extra: Any,
) -> Any:
    data: dict[str, Any] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion or client_assertion(app, key),
    }
    data.update(extra)
    return client.post("/oauth/token", {k: v for k, v in data.items() if v is not None})


# --- OpenID Connect and PAR ------------------------------------------------------------------


def par_url() -> str:
    return settings.SITE_URL + "/oauth/par"


def push(
    client: Client,
    app: AgencyApplication,
    key: ECKey,
    *,
    challenge: str,
    assertion: str | None = None,
    **extra: Any,
) -> Any:
    """The agency pushes its authorization request (RFC 9126); returns the response."""
    data = authorize_query(app, challenge=challenge, **extra)
    data["client_assertion_type"] = ASSERTION_TYPE
    data["client_assertion"] = assertion or client_assertion(app, key, audience=par_url())
    return client.post("/oauth/par", data)


def record_login(client: Client, user: Any, *methods: dict[str, Any]) -> None:
    """Write allauth's authentication records into the client's session, as a real login with
    these methods would (e.g. {"method": "password"}, {"method": "mfa", "type": "totp"})."""
    session = client.session
    session["account_authentication_methods"] = [{"at": time.time(), **m} for m in methods]
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()


PASSWORD = {"method": "password"}
TOTP = {"method": "mfa", "type": "totp"}
