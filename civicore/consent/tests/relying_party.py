"""An agency's relying party built with idpyoidc, and a citizen's browser, both speaking HTTP to
a live Civicore server (test_rp_conformance). idpyoidc does the relying party's part: discovery
and its checks, the authorization request (PKCE S256, state, nonce), private_key_jwt, the token
exchange, ID-token and userinfo checks, refresh, revocation and the logout URL. The browser logs
the citizen in through the real pages (password, then a one-time recovery code as second factor)
and answers the consent screen, following Civicore's redirects until it is sent to the agency."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from cryptojwt.key_jar import KeyJar
from idpyoidc.client.oauth2.stand_alone_client import StandAloneClient
from idpyoidc.message import Message
from joserfc.jwk import ECKey, RSAKey

REDIRECT_URI = "https://agency.example/callback"
LOGOUT_URI = "https://agency.example/signed-out"
SCOPE = ["openid", "profile", "address", "offline_access"]
PURPOSE = "benefit"
URL_ENCODED = "application/x-www-form-urlencoded"

_SERVICES = {
    "discovery": {"class": "idpyoidc.client.oidc.provider_info_discovery.ProviderInfoDiscovery"},
    "authorization": {"class": "idpyoidc.client.oidc.authorization.Authorization"},
    "access_token": {"class": "idpyoidc.client.oidc.access_token.AccessToken"},
    "refresh_access_token": {"class": "idpyoidc.client.oidc.refresh_access_token.RefreshAccessToken"},
    "userinfo": {"class": "idpyoidc.client.oidc.userinfo.UserInfo"},
    "token_revocation": {"class": "idpyoidc.client.oauth2.token_revocation.TokenRevocation"},
    "end_session": {"class": "idpyoidc.client.oidc.end_session.EndSession"},
    "client_credentials": {"class": "idpyoidc.client.oauth2.client_credentials.CCAccessTokenRequest"},
}


@dataclass
class RecordingHTTP:
    """The HTTP client idpyoidc is given: plain requests, keeping every response so a test can
    read the status and headers idpyoidc does not pass on."""

    responses: list[requests.Response] = field(default_factory=list)

    def __call__(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("allow_redirects", False)
        # One request per connection: the live server's thread for a kept-alive connection, and
        # that thread's database connection, would otherwise outlive the test.
        kwargs["headers"] = {**(kwargs.get("headers") or {}), "Connection": "close"}
        response = requests.request(method, url, **kwargs)  # noqa: S113 - the timeout is set above
        self.responses.append(response)
        return response

    def last(self, endpoint: str) -> requests.Response:
        """The latest response from `endpoint` (idpyoidc may have fetched the JWKS since)."""
        for response in reversed(self.responses):
            if response.url.split("?")[0] == endpoint:
                return response
        raise AssertionError(f"Nothing was sent to {endpoint}")


def assertion_alg(key: ECKey | RSAKey) -> str:
    return "ES256" if key.key_type == "EC" else "RS256"


class Agency:
    """One agency system: its registry entry's client_id and private key, and the idpyoidc
    client (`rp`) that acts for it."""

    def __init__(
        self,
        site: str,
        client_id: str,
        key: ECKey | RSAKey,
        *,
        id_token_alg: str = "ES256",  # noqa: S107 - an algorithm name
        userinfo_alg: str = "",
        scope: list[str] | None = None,
    ):
        self.client_id = client_id
        self.key = key
        self.alg = assertion_alg(key)
        self.scope = scope or SCOPE
        self.http = RecordingHTTP()
        self.pushed: dict[str, Any] = {}  # the last PAR answer, and the state of its request
        self.pushed_state = ""
        # What the registry holds for this client stands in for a registration response: the
        # client is registered out of band, so idpyoidc does no dynamic registration.
        self.registration: dict[str, Any] = {
            "client_id": client_id,
            "redirect_uris": [REDIRECT_URI],
            "post_logout_redirect_uris": [LOGOUT_URI],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": self.alg,
            "id_token_signed_response_alg": id_token_alg,
            "response_types": ["code"],
            "grant_types": ["authorization_code", "refresh_token"],
        }
        if userinfo_alg:
            self.registration["userinfo_signed_response_alg"] = userinfo_alg
        self.keyjar = KeyJar()
        self.keyjar.import_jwks({"keys": [key.as_dict(private=True)]}, "")
        self.rp = StandAloneClient(config=self._config(site), keyjar=self.keyjar, httpc=self.http)

    def _config(self, issuer: str) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_type": "oidc",
            "base_url": "https://agency.example",
            "redirect_uris": [REDIRECT_URI],
            "provider_info": {"issuer": issuer},  # the rest comes from discovery
            "preference": {
                "scopes_supported": self.scope,
                "response_types_supported": ["code"],
                "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "id_token_signed_response_alg": self.registration["id_token_signed_response_alg"],
            },
            "client_authn_methods": ["private_key_jwt", "bearer_header"],
            "add_ons": {
                "pkce": {
                    "function": "idpyoidc.client.oauth2.add_on.pkce.add_support",
                    "kwargs": {"code_challenge_length": 64, "code_challenge_method": "S256"},
                }
            },
            "services": _SERVICES,
        }

    # --- Discovery ---------------------------------------------------------------------------

    def discover(self) -> StandAloneClient:
        """idpyoidc reads /.well-known/openid-configuration, checks it (the issuer is the URL it
        was read from, https or local http, openid among the scopes, RS256 among the ID-token
        algorithms, no "none" for client assertions) and loads the JWKS it names."""
        self.rp.do_provider_info()
        context = self.rp.get_context()
        context.registration_response = self.registration
        context.map_preferred_to_registered(registration_response=self.registration)
        return self.rp

    @property
    def metadata(self) -> Message:
        return self.rp.get_context().provider_info

    # --- Requests ------------------------------------------------------------------------------

    def authorization_url(self, **req_args: Any) -> str:
        """idpyoidc's authorization request: state, nonce and a PKCE S256 challenge of its own,
        the registered redirect URI, the scope; plus Civicore's `purpose`."""
        return str(self.rp.init_authorization(req_args={"purpose": PURPOSE, **req_args}))

    def pushed_authorization_url(self, **req_args: Any) -> str:
        """PAR (RFC 9126), with idpyoidc building the request and the client assertion.
        idpyoidc's own PAR add-on cannot be used: it always wraps the parameters in a signed
        request object (RFC 9101), which Civicore does not accept, and it treats any answer
        but 200 as a failure, where RFC 9126 section 2.2 answers 201. So this step, done here
        by hand, posts the same parameters form-encoded and reads the 201."""
        service = self.rp.get_service("authorization")
        service.post_construct.append(self._push)
        try:
            return self.authorization_url(**req_args)
        finally:
            service.post_construct.remove(self._push)

    def _push(self, request: Message, service: Any, **kwargs: Any) -> Message:
        body = Message(**request.to_dict())
        self.authenticate(body, service=service)
        endpoint = self.metadata["pushed_authorization_request_endpoint"]
        response = self.http(
            "POST", endpoint, data=body.to_urlencoded(), headers={"Content-Type": URL_ENCODED}
        )
        if response.status_code != 201:
            raise PushRefused(response)
        self.pushed = response.json()
        self.pushed_state = request["state"]
        # RFC 9126 section 4: the browser carries client_id and request_uri only.
        return Message(client_id=self.client_id, request_uri=self.pushed["request_uri"])

    def authenticate(self, request: Message, *, service: Any, **kwargs: Any) -> Message:
        """Add idpyoidc's private_key_jwt client assertion to `request`. For endpoints other
        than the token endpoint idpyoidc signs with RS256 unless told, so the algorithm of the
        registered key is passed along."""
        method = self.rp.get_context().client_authn_methods["private_key_jwt"]
        method.construct(request, service=service, algorithm=self.alg, **kwargs)
        return request

    def callback(self, params: dict[str, str]) -> Message:
        """Hand the redirect's query to idpyoidc (state checked against what it sent)."""
        return self.rp.finalize_auth(params)

    def tokens(self, state: str, **kwargs: Any) -> Message:
        """The code for tokens at the token endpoint: idpyoidc sends the code with its PKCE
        verifier and a client assertion, then checks the ID token (signature against the JWKS,
        alg, iss, aud, exp, iat, nonce)."""
        return self.rp.do_request(
            "accesstoken",
            request_args={
                "code": self.rp.get_context().cstate.get_set(state, claim=["code"])["code"],
                "redirect_uri": REDIRECT_URI,
                "grant_type": "authorization_code",
                "state": state,
            },
            authn_method="private_key_jwt",
            state=state,
            **kwargs,
        )

    def refresh(self, state: str, **request_args: Any) -> Message:
        return self.rp.do_request(
            "refresh_token", request_args=request_args, authn_method="private_key_jwt", state=state
        )

    def userinfo(self, state: str, access_token: str = "", **kwargs: Any) -> Message:
        args = {"access_token": access_token} if access_token else None
        return self.rp.do_request("userinfo", request_args=args, state=state, **kwargs)

    def revoke(self, token: str, hint: str = "", **kwargs: Any) -> requests.Response:
        """RFC 7009, the request built by idpyoidc. Its response is read by hand: idpyoidc 5.0
        takes the empty 200 body that section 2.2 allows for a faulty response."""
        args = {"token": token, **({"token_type_hint": hint} if hint else {})}
        service = self.rp.get_service("token_revocation")
        info = service.get_request_parameters(
            request_args=args, authn_method="private_key_jwt", algorithm=self.alg, **kwargs
        )
        return self.http(info["method"], info["url"], data=info["body"], headers=info["headers"])

    def last(self, endpoint: str) -> requests.Response:
        """The HTTP response from the endpoint named in discovery, e.g. "token_endpoint"."""
        return self.http.last(self.metadata[endpoint])

    def logout_url(self, state: str) -> str:
        """RP-initiated logout: idpyoidc adds id_token_hint, post_logout_redirect_uri and a
        state of its own."""
        return str(self.rp.logout(state=state, post_logout_redirect_uri=LOGOUT_URI)["url"])


class PushRefused(Exception):
    def __init__(self, response: requests.Response):
        super().__init__(f"{response.status_code} {response.text[:500]}")
        self.response = response


# --- The citizen's browser ---------------------------------------------------------------------

_FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.I | re.S)
_INPUT = re.compile(r"<input\b[^>]*>", re.I)
_ATTR = re.compile(r'([\w-]+)="([^"]*)"')
_NAME = re.compile(r'\bname="([^"]*)"')
_ACCOUNT_PAGES = ("/accounts/login/", "/accounts/reauthenticate/", "/accounts/2fa/")


def _attributes(tag: str) -> dict[str, str]:
    return {name.lower(): unescape(value) for name, value in _ATTR.findall(tag)}


def form_fields(html: str, *, wanting: tuple[str, ...] = ()) -> tuple[str | None, dict[str, str]]:
    """The action and pre-filled fields of the first POST form with a field or button named
    in `wanting` (or of the first POST form)."""
    for attrs_text, body in _FORM.findall(html):
        attrs = _attributes(attrs_text)
        if attrs.get("method", "get").lower() != "post":
            continue
        if wanting and not set(_NAME.findall(body)) & set(wanting):
            continue
        inputs = [_attributes(tag) for tag in _INPUT.findall(body)]
        fields = {
            i["name"]: i.get("value", "")
            for i in inputs
            if "name" in i and i.get("type", "text") in ("hidden", "text", "email", "password")
        }
        return attrs.get("action"), fields
    return None, {}


class Browser:
    """The citizen's browser: a cookie jar that follows Civicore's redirects, logs in when a
    login or re-authentication page comes up, and stops at any other page or at a redirect
    that leaves the site (to the agency)."""

    def __init__(self, site: str, *, email: str, password: str, recovery_codes: list[str]):
        self.site = site
        self.http = requests.Session()
        self.http.headers["Accept-Language"] = "en"
        self.email = email
        self.password = password
        self.recovery_codes = list(recovery_codes)
        self.authentications = 0  # forms filled in: the password, the second factor

    def close(self) -> None:
        self.http.close()

    def open(self, url: str, *, method: str = "GET", data: dict[str, Any] | None = None) -> requests.Response:
        url = urljoin(self.site, url)
        for _ in range(12):
            response = self.http.request(method, url, data=data, allow_redirects=False, timeout=10)
            if response.is_redirect:
                target = urljoin(url, response.headers["Location"])
                if not target.startswith(self.site + "/"):
                    return response
                url, method, data = target, "GET", None
                continue
            if response.status_code == 200 and urlsplit(response.url).path.startswith(_ACCOUNT_PAGES):
                url, method, data = self._authenticate(response)
                continue
            return response
        raise AssertionError(f"Too many redirects, last at {url}")

    def _authenticate(self, page: requests.Response) -> tuple[str, str, dict[str, Any]]:
        """Fill in the login, re-authentication or second-factor form on `page`."""
        action, fields = form_fields(page.text, wanting=("password", "code"))
        assert action is not None or fields, page.text[:2000]
        if "login" in fields:
            fields["login"] = self.email
        if "password" in fields:
            fields["password"] = self.password
        if "code" in fields:
            fields["code"] = self.recovery_codes.pop(0)
        self.authentications += 1
        return urljoin(page.url, action or page.url), "POST", fields

    def decide(self, screen: requests.Response, decision: str) -> requests.Response:
        """Press "approve" or "decline" on the consent screen (or "logout" on the logout one)."""
        assert screen.status_code == 200, screen.text[:2000]
        action, fields = form_fields(screen.text, wanting=("decision",))
        fields["decision"] = decision
        return self.open(urljoin(screen.url, action or screen.url), method="POST", data=fields)


def callback_params(response: requests.Response, redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    """The query Civicore sent the browser to the agency with."""
    assert response.is_redirect, (response.status_code, response.text[:2000])
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == redirect_uri, location
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **params: Any) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)
