"""The OAuth 2.0 authorization server and OpenID Connect provider, assembled from Authlib.

Only the authorization code grant, with PKCE S256 required, and refresh tokens (rotated) when the
citizen allowed offline access. Clients prove who they are with private_key_jwt (RFC 7523),
signed by a key from their registry JWKS, at the token, pushed authorization request (RFC 9126)
and revocation (RFC 7009) endpoints. `scope` is a space-separated list of profile item keys and
OpenID Connect scopes (see civicore.consent.oidc), `purpose` one of the application's registered
purposes. Every refusal is logged with the client id and the error.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.django_oauth2 import AuthorizationServer
from authlib.integrations.django_oauth2.requests import DjangoOAuth2Payload
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeGrant,
    ClientMixin,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oidc.core.errors import LoginRequiredError, RequestNotSupportedError
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest
from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from civicore.consent import oidc, selectors, services
from civicore.consent.models import AccessToken, AuthorizationCode, RefreshToken
from civicore.identity.models import Person
from civicore.registry.models import AgencyApplication
from civicore.registry.services import SIGNING_ALGORITHMS, Unauthenticated, application_keys

logger = logging.getLogger("civicore.consent")

AUTH_METHOD = "private_key_jwt"
# Clock skew tolerated on client assertions, and the longest one may live: an hour, the default
# of Authlib's and most other clients. Each jti is remembered that long, so it is still used once.
ASSERTION_LEEWAY_SECONDS = 60
ASSERTION_MAX_LIFETIME_SECONDS = 3600
# A pushed request is small; this bounds what one client can make us store.
MAX_PUSHED_REQUEST_BYTES = 8192
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_DAYS = re.compile(r"^[0-9]{1,3}$")
_MAX_AGE = re.compile(r"^[0-9]{1,9}$")
_ITEM_KEY = re.compile(r"^[a-z0-9_]{1,50}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Parameters a request may carry once only, beyond those Authlib checks itself.
_SINGLE_PARAMETERS = (
    "response_mode",
    "purpose",
    "consent_days",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "prompt",
    "max_age",
    "claims",
    "acr_values",
)
_ASSERTION_PARAMETERS = ("client_assertion", "client_assertion_type")
# The audiences a client assertion may name at the endpoint being called.
_assertion_audiences: ContextVar[tuple[str, ...]] = ContextVar("assertion_audiences", default=())
# Authlib asks for the same client several times while handling one request (authentication, the
# jti check, the authorization request); inside `request_scope` it is read once per request, never
# remembered from one request to the next.
_request_clients: ContextVar[dict[str, AgencyApplication | None] | None] = ContextVar(
    "request_clients", default=None
)


def application_for_client(client_id: Any) -> AgencyApplication | None:
    memo = _request_clients.get()
    if memo is None or not isinstance(client_id, str):
        return selectors.application_for_client(client_id)
    if client_id not in memo:
        memo[client_id] = selectors.application_for_client(client_id)
    return memo[client_id]


def remember_client(application: AgencyApplication) -> None:
    """Within `request_scope`, answer look-ups of this application's client_id with `application`,
    just read from the database with its agency (a pushed request's), as a look-up would: None
    if it is switched off."""
    memo = _request_clients.get()
    if memo is not None:
        memo[application.client_id] = application if application.active else None


def request_scope(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate an endpoint so that its client look-ups are shared within the request."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> HttpResponse:
        token = _request_clients.set({})
        try:
            return view(*args, **kwargs)
        finally:
            _request_clients.reset(token)

    return wrapper


_endpoint_paths: dict[tuple[str, str, str], str] = {}


def endpoint_path(name: str) -> str:
    """reverse(name) for the OAuth endpoints, worked out once per URLconf and script prefix:
    every client authentication and token response needs several."""
    key = (name, str(get_urlconf() or settings.ROOT_URLCONF), get_script_prefix())
    path = _endpoint_paths.get(key)
    if path is None:
        path = _endpoint_paths[key] = reverse(name)
    return path


def token_endpoint_url() -> str:
    return settings.SITE_URL + endpoint_path("consent:token")


def _endpoint_audiences(uri: str) -> tuple[str, ...]:
    """The issuer and the token endpoint are always accepted (RFC 7523, OpenID Connect Core
    section 9); the PAR and revocation endpoints also accept their own URL (RFC 9126 section 2)."""
    audiences = [oidc.issuer(), token_endpoint_url()]
    path = urlsplit(uri).path
    for name in ("consent:par", "consent:token_revoke"):
        if path == endpoint_path(name):
            audiences.append(settings.SITE_URL + path)
    return tuple(audiences)


class UnregisteredRedirectURI(InvalidRequestError):
    """The redirect_uri is not one the client registered: never redirect to it."""


class InvalidRequestURIError(OAuth2Error):
    error = "invalid_request_uri"


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Core Error Code unmet_authentication_requirements 1.0: the login cannot
    meet what the client required, such as an essential acr claim (Core section 5.5.1.1)."""

    error = "unmet_authentication_requirements"


def log_refusal(endpoint: str, error: OAuth2Error | None, *, client_id: Any = None, **extra: Any) -> None:
    """One line per refused request: endpoint, client and the error the client was given."""
    code = getattr(error, "error", None) or "invalid_request"
    description = getattr(error, "description", None) or ""
    # client_id may come straight from the request: no line breaks or other controls in the log.
    known = _CONTROL.sub("?", str(client_id)[:100]) if client_id else "-"
    details = " ".join(f"{key}={value}" for key, value in extra.items())
    logger.warning(
        "oauth refused: endpoint=%s client_id=%s error=%s description=%r %s",
        endpoint,
        known,
        code,
        description[:200],
        details,
    )


class RegisteredClient(ClientMixin):
    """An agency application, as Authlib sees a client."""

    def __init__(self, application: AgencyApplication):
        self.application = application
        self.client_id = application.client_id

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        # Every request names its redirect_uri, compared exactly with the registered ones.
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        requested = oidc.parse_scope(scope, self.application.allowed_items)
        if requested.refused or not (requested.items or requested.openid):
            return None
        return requested.value

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return isinstance(redirect_uri, str) and redirect_uri in self.application.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == AUTH_METHOD

    def may_ask_for_consent(self) -> bool:
        """Only an application with items and purposes registered takes part in consented sharing."""
        return bool(self.application.allowed_items) and bool(self.application.purposes)

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.may_ask_for_consent()

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token") and self.may_ask_for_consent()

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {"post_logout_redirect_uris": list(self.application.post_logout_redirect_uris or [])}


def requested_items(scope: str | None) -> list[str]:
    """The values in a scope string, in order, each once."""
    return list(dict.fromkeys((scope or "").split()))


class ParametersPayload(OAuth2Payload):
    """A pushed authorization request's stored parameters, read as if they had been sent."""

    def __init__(self, parameters: dict[str, str]):
        self._data = dict(parameters)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return defaultdict(list, {key: [value] for key, value in self._data.items()})


class SiteRequest(OAuth2Request):
    """A Django request as Authlib reads it. Its URI is built from SITE_URL, not the Host
    header, so the transport check and the token endpoint audience follow configuration.
    With `parameters`, the authorization request is a pushed one: its parameters are those
    stored, not the query string."""

    def __init__(self, request: HttpRequest, parameters: dict[str, str] | None = None):
        super().__init__(
            method=request.method, uri=settings.SITE_URL + request.get_full_path(), headers=request.headers
        )
        self.payload = DjangoOAuth2Payload(request) if parameters is None else ParametersPayload(parameters)
        self.pushed = parameters is not None
        self._request = request

    @property
    def django_request(self) -> HttpRequest:
        return self._request

    @property
    def args(self) -> Any:
        return self._request.GET

    @property
    def form(self) -> Any:
        return self._request.POST


class S256CodeChallenge(CodeChallenge):
    """PKCE (RFC 7636) with S256 only: a request without a challenge, or with "plain", is
    refused at the authorization endpoint; a wrong verifier is invalid_grant at the token one."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        if not challenge:
            raise InvalidRequestError("PKCE is required: send code_challenge and code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is accepted.")
        if not _S256_CHALLENGE.match(challenge):
            raise InvalidRequestError("Invalid 'code_challenge'.")


class ConsentCodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [AUTH_METHOD]

    def generate_authorization_code(self) -> str:
        # 256 random bits from the OS in one call (Authlib draws each character separately).
        return secrets.token_urlsafe(32)

    def validate_authorization_request(self) -> str:
        # Authlib's create_authorization_response validates again the grant get_consent_grant
        # has just validated in the same request; the answer would be the same.
        validated: str | None = getattr(self, "_validated_redirect_uri", None)
        if validated is None:
            validated = self._validated_redirect_uri = super().validate_authorization_request()
        return validated

    @staticmethod
    def validate_authorization_redirect_uri(request: OAuth2Request, client: RegisteredClient) -> str:
        redirect_uri = request.payload.redirect_uri
        if not redirect_uri:
            raise UnregisteredRedirectURI("Missing 'redirect_uri' in request.")
        if not client.check_redirect_uri(redirect_uri):
            raise UnregisteredRedirectURI("The redirect_uri is not registered for this client.")
        return str(redirect_uri)

    def validate_requested_scope(self) -> None:
        """Items within the application's allowed items, a registered purpose, a duration, and
        the OpenID Connect parameters Civicore takes."""
        request = self.request
        application: AgencyApplication = request.client.application
        person: Person | None = request.user
        datalist = request.payload.datalist
        data = request.payload.data
        for name in _SINGLE_PARAMETERS:
            if len(datalist.get(name, [])) > 1:
                raise InvalidRequestError(f"Multiple '{name}' in request.")
        if application.require_par and not getattr(request, "pushed", False):
            raise InvalidRequestError("This client must push its authorization requests (PAR) first.")
        if "request" in data:
            raise RequestNotSupportedError("Request objects are not supported; use PAR.")
        if "request_uri" in data:
            raise InvalidRequestError("A 'request_uri' must come from the PAR endpoint.")
        if data.get("response_mode", "query") != "query":
            raise InvalidRequestError("Only response_mode=query is supported.")
        requested = oidc.parse_scope(request.payload.scope, application.allowed_items)
        if requested.refused:
            services.authorization_refuse(
                person=person,
                application=application,
                error="invalid_scope",
                details={"items": [item[:60] for item in requested.refused[:20]]},
            )
            named = [item for item in requested.refused if _ITEM_KEY.match(item)]
            raise InvalidScopeError(
                "The client may not ask for: " + " ".join(named) if named else "Unknown items in 'scope'."
            )
        if not requested.items and not requested.openid:
            raise InvalidScopeError("Ask for at least one profile item in 'scope'.")
        purpose = data.get("purpose")
        if not purpose:
            raise InvalidRequestError("Missing 'purpose' in request.")
        if application.purpose(purpose) is None:
            services.authorization_refuse(
                person=person,
                application=application,
                error="invalid_request",
                details={"purpose": str(purpose)[:60]},
            )
            raise InvalidRequestError("The 'purpose' is not registered for this client.")
        days_text = data.get("consent_days")
        days = services.DEFAULT_CONSENT_DAYS
        if days_text is not None:
            if not _DAYS.match(str(days_text)) or not 1 <= int(days_text) <= services.MAX_CONSENT_DAYS:
                raise InvalidRequestError(
                    f"'consent_days' must be a whole number from 1 to {services.MAX_CONSENT_DAYS}."
                )
            days = int(days_text)
        nonce = data.get("nonce")
        if nonce is not None and not 1 <= len(nonce) <= 255:
            raise InvalidRequestError("'nonce' must be 1 to 255 characters.")
        max_age = data.get("max_age")
        if max_age is not None and not _MAX_AGE.match(max_age):
            raise InvalidRequestError("'max_age' must be a whole number of seconds.")
        prompts = set((data.get("prompt") or "").split())
        if prompts - {"none", "login", "consent"}:
            raise InvalidRequestError("Unsupported 'prompt' value.")
        claims = _claims_request(data.get("claims"), application, person, openid=requested.openid)
        request.claims_request = claims
        acr_values = data.get("acr_values")
        if acr_values is not None and len(acr_values) > oidc.ACR_VALUES_MAX_LENGTH:
            raise InvalidRequestError(f"'acr_values' is longer than {oidc.ACR_VALUES_MAX_LENGTH} characters.")
        request.acr_request = oidc.acr_request(acr_values, claims) if requested.openid else None
        request.consent_items = list(dict.fromkeys([*requested.items, *claims.items()]))
        request.requested_scope = requested
        request.purpose = purpose
        request.consent_days = days

    def save_authorization_code(self, code: str, request: Any) -> AuthorizationCode:
        claims: oidc.ClaimsRequest = getattr(request, "claims_request", None) or oidc.ClaimsRequest()
        data = request.payload.data
        requested: oidc.RequestedScope = request.requested_scope
        return services.authorization_approve(
            person=request.user,
            application=request.client.application,
            items=request.consent_items,
            purpose=request.purpose,
            days=request.consent_days,
            code=code,
            redirect_uri=request.payload.redirect_uri,
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            scope=requested.value,
            nonce=(data.get("nonce") or "") if requested.openid else "",
            login=oidc.login_context(request.django_request, getattr(request, "acr_request", None)),
            claims=claims.as_json(),
            covering=getattr(request, "covering_consent", None),
        )

    def query_authorization_code(self, code: str, client: RegisteredClient) -> AuthorizationCode | None:
        if not isinstance(code, str) or not code:
            return None
        row = selectors.code_by_hash(code_hash=services.sha256_hex(code), application=client.application)
        if row is None:
            return None
        if row.used_at is not None:
            services.authorization_code_reuse(code=row)
            return None
        if row.expires_at <= timezone.now() or not row.consent.is_active():
            return None
        return row

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        # The code was spent when its token was saved; the row stays to recognise a reuse.
        return None

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Person:
        return authorization_code.consent.person

    def generate_token(self, user: Any = None, scope: Any = None, **kwargs: Any) -> dict[str, Any]:
        # A refresh token only when the citizen allowed offline access on the consent screen, and
        # this request asked for it (a prompt=none request may be answered under that consent).
        code: AuthorizationCode = self.request.authorization_code
        asked = oidc.OFFLINE_ACCESS in requested_items(code.scope)
        kwargs["include_refresh_token"] = code.consent.offline_access and asked
        return super().generate_token(user=user, scope=scope, **kwargs)


def _claims_request(
    text: Any, application: AgencyApplication, person: Person | None, *, openid: bool
) -> oidc.ClaimsRequest:
    """The `claims` parameter (OpenID Connect Core section 5.5), kept to the claims of items the
    application may ask for. It means something only with the openid scope. A `sub` with a value
    must be the signed-in citizen's (section 5.5.1): another citizen is login_required."""
    try:
        claims = oidc.parse_claims_request(text, application.allowed_items)
    except oidc.InvalidClaimsRequest as exc:
        raise InvalidRequestError(str(exc)) from exc
    if not openid:
        return oidc.ClaimsRequest()
    expected = claims.expected("sub")
    if expected and person is not None:
        subject = services.pairwise_subject(person=person, client_id=application.client_id)
        if subject not in expected:
            raise LoginRequiredError(
                description="The signed-in citizen is not the subject the client asked for."
            )
    return claims


class ConsentRefreshGrant(RefreshTokenGrant):
    """Refresh token rotation: every use spends the token and returns the next one; a spent
    token presented again withdraws its whole family (services.refresh_token_reuse), unless the
    same client repeats the refresh within the grace window (OAUTH_REFRESH_GRACE_SECONDS): it
    then gets the same pair again (services.refresh_token_rotate)."""

    TOKEN_ENDPOINT_AUTH_METHODS = [AUTH_METHOD]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def _validate_request_token(self, client: RegisteredClient) -> RefreshToken:
        value = self.request.form.get("refresh_token")
        if not value:
            raise InvalidRequestError("Missing 'refresh_token' in request.")
        row = selectors.refresh_token_by_hash(services.sha256_hex(value))
        if row is not None and not row.check_client(client) and row.used_at is not None:
            # Another client holds a spent token of this family: it leaked, so the family goes.
            services.refresh_token_reuse(token=row)
        if row is None or not row.check_client(client):
            raise InvalidGrantError("Invalid 'refresh_token' in request.")
        try:
            return services.refresh_token_check(row)
        except services.RefreshRefused as exc:
            raise InvalidGrantError(exc.message) from exc

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:  # pragma: no cover
        return selectors.refresh_token_by_hash(services.sha256_hex(refresh_token))

    def authenticate_user(self, refresh_token: RefreshToken) -> Person:
        return refresh_token.consent.person

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        # Spent in the same transaction that saved its successor (services.refresh_token_rotate).
        return None


class CivicoreOpenIDCode(OpenIDCode):
    """OpenID Connect on the code grant: the nonce is checked for replays and the ID token is
    signed with the platform key for the client's registered algorithm
    (civicore.consent.oidc.id_token_encode)."""

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return selectors.nonce_used(application=request.client.application, nonce=nonce)

    def process_token(self, grant: Any, response: Any) -> Any:
        _status, token, _headers = response
        if oidc.OPENID not in requested_items(token.get("scope")):
            return token
        code: AuthorizationCode = grant.request.authorization_code
        token["id_token"] = _id_token_for(code, token, nonce=code.nonce)
        services.client_session_record(code=code)  # told when that login session ends
        return token


class OpenIDRefresh:
    """A fresh ID token with each refresh of an OpenID Connect grant (OpenID Connect Core
    section 12.2): the same subject, audience, auth_time, acr and amr as the first one."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_create_token_response", self.process_token)

    def process_token(self, grant: Any, response: Any) -> Any:
        _status, token, _headers = response
        if oidc.OPENID in requested_items(token.get("scope")):
            token["id_token"] = _id_token_for(grant.request.refresh_token.code, token, nonce="")
        return token


def _id_token_for(code: AuthorizationCode, token: dict[str, Any], *, nonce: str) -> str:
    """Signed with the client's registered id_token_signed_response_alg, and carrying the claims
    it asked for in the ID token with the `claims` parameter."""
    consent = code.consent
    application = consent.application
    client_id = application.client_id
    return oidc.id_token_encode(
        alg=application.id_token_signed_response_alg or oidc.ID_TOKEN_ALG,
        person=services.id_token_claims_release(
            code=code, consent=consent, endpoint=endpoint_path("consent:token")
        ),
        subject=services.pairwise_subject(person=consent.person, client_id=client_id),
        client_id=client_id,
        auth_time=code.auth_time,
        acr=code.acr,
        amr=list(code.amr or []),
        sid=code.sid,
        nonce=nonce,
        access_token=token.get("access_token"),
    )


class PrivateKeyJWTAuthentication(JWTBearerClientAssertion):
    """private_key_jwt: a JWT signed by the client's own key (RFC 7523 section 2.2), addressed
    to this server, short-lived and never seen before."""

    CLIENT_AUTH_METHOD = AUTH_METHOD

    def __init__(self) -> None:
        super().__init__(validate_jti=True, leeway=ASSERTION_LEEWAY_SECONDS)

    def __call__(self, query_client: Any, request: Any) -> Any:
        reset = _assertion_audiences.set(_endpoint_audiences(request.uri))
        try:
            client = super().__call__(query_client, request)
        finally:
            _assertion_audiences.reset(reset)
        declared = request.form.get("client_id")
        if client is not None and declared and declared != client.client_id:
            raise InvalidClientError(description="The client_id does not match the client assertion.")
        return client

    def get_audiences(self) -> list[str]:
        return list(_assertion_audiences.get() or (token_endpoint_url(),))

    def resolve_client_public_key(self, client: RegisteredClient) -> KeySet:
        try:
            keys = application_keys(client.application)
        except (Unauthenticated, JoseError, ValueError, TypeError) as exc:
            raise InvalidClientError(description="The client's keys could not be loaded.") from exc
        signing = [key for key in keys.keys if key.get("use") in (None, "sig")]
        if not signing:
            raise InvalidClientError(description="The client has no signing key.")
        return KeySet(signing)

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=SIGNING_ALGORITHMS)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidClientError(description="The client assertion does not verify.") from exc
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: Any) -> None:
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise InvalidClientError(description="The client assertion needs an 'exp'.")
        if exp > time.time() + ASSERTION_MAX_LIFETIME_SECONDS + self.leeway:
            raise InvalidClientError(description="The client assertion lives too long.")
        super().verify_claims(claims)

    def validate_jti(self, claims: Any, jti: Any) -> bool:
        if not isinstance(jti, str) or not 8 <= len(jti) <= 200:
            raise InvalidClientError(description="The client assertion needs a jti of 8 to 200 characters.")
        application = application_for_client(claims.get("sub"))
        if application is None:
            return False
        keep_until = datetime.fromtimestamp(float(claims["exp"]) + self.leeway, tz=UTC)
        return services.client_assertion_use(application=application, jti=jti, keep_until=keep_until)


class ConsentRevocationEndpoint(RevocationEndpoint):
    """RFC 7009. A token of another client, or an unknown one, is answered 200 like a revoked
    one, as the RFC asks, so the endpoint tells nobody which tokens exist."""

    CLIENT_AUTH_METHODS = [AUTH_METHOD]

    def authenticate_token(self, request: Any, client: RegisteredClient) -> AccessToken | RefreshToken | None:
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if token is None or token.application_id != client.application.pk:
            return None
        return token

    def query_token(
        self, token_string: str, token_type_hint: str | None
    ) -> AccessToken | RefreshToken | None:
        if not isinstance(token_string, str) or not token_string or len(token_string) > 500:
            return None
        digest = services.sha256_hex(token_string)
        if token_type_hint == "refresh_token":  # noqa: S105 - a token type, not a secret
            return selectors.refresh_token_by_hash(digest) or selectors.token_by_hash(digest)
        return selectors.token_by_hash(digest) or selectors.refresh_token_by_hash(digest)

    def revoke_token(self, token: AccessToken | RefreshToken, request: Any) -> None:
        services.token_revoke(application=request.client.application, token=token)


class ConsentEndSessionEndpoint(EndSessionEndpoint):
    """OpenID Connect RP-Initiated Logout 1.0. An id_token_hint must be one Civicore signed (an
    expired one is fine); the citizen always confirms before their session ends."""

    def get_server_jwks(self) -> KeySet:
        from civicore.core.jose import signing_key, verification_keys

        for alg in oidc.CLIENT_SIGNING_ALGS:
            signing_key(alg)  # there is always a key, so the key set is never empty
        return verification_keys()

    def get_algorithms(self) -> list[str]:
        # Every algorithm a client may have its ID tokens signed with.
        return list(oidc.CLIENT_SIGNING_ALGS)

    def validate_request(self, request: Any) -> EndSessionRequest:
        end_session = super().validate_request(request)
        claims = end_session.id_token_claims
        if claims is not None and claims.get("iss") != oidc.issuer():
            raise InvalidRequestError("The 'id_token_hint' was not issued by Civicore.")
        return end_session

    def end_session(self, end_session_request: EndSessionRequest) -> None:
        logout(end_session_request.request.django_request)  # type: ignore[attr-defined]


def _token_value() -> str:
    return secrets.token_urlsafe(32)


class ConsentAuthorizationServer(AuthorizationServer):
    def __init__(self) -> None:
        super().__init__(AgencyApplication, AccessToken)
        self.register_grant(ConsentCodeGrant, [S256CodeChallenge(required=True), CivicoreOpenIDCode()])
        self.register_grant(ConsentRefreshGrant, [OpenIDRefresh()])
        self.register_client_auth_method(AUTH_METHOD, PrivateKeyJWTAuthentication())
        self.register_endpoint(ConsentRevocationEndpoint)
        self.register_endpoint(ConsentEndSessionEndpoint)

    def load_config(self, config: Any) -> None:
        self.config = config
        self.scopes_supported = None
        self.register_token_generator("default", self.generate_bearer_token)

    @staticmethod
    def generate_bearer_token(
        grant_type: str,
        client: Any,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": _token_value(),
            "expires_in": services.TOKEN_LIFETIME_SECONDS,
        }
        if include_refresh_token:
            token["refresh_token"] = _token_value()
        if scope:
            token["scope"] = scope
        return token

    def query_client(self, client_id: Any) -> RegisteredClient | None:
        application = application_for_client(client_id)
        return RegisteredClient(application) if application is not None else None

    def save_token(self, token: dict[str, Any], request: Any) -> AccessToken:
        lifetime = int(token.get("expires_in") or services.TOKEN_LIFETIME_SECONDS)
        if isinstance(request.refresh_token, RefreshToken):
            try:
                issued = services.refresh_token_rotate(
                    old=request.refresh_token,
                    token=token["access_token"],
                    refresh_token=token["refresh_token"],
                    scope=token.get("scope") or request.refresh_token.scope,
                    lifetime_seconds=lifetime,
                )
            except services.RefreshRefused as exc:
                raise InvalidGrantError(exc.message) from exc
            if issued.retried:
                # A retry within the grace window: the same pair as the first answer.
                remaining = (issued.access.expires_at - timezone.now()).total_seconds()
                token["access_token"] = issued.access_token
                token["refresh_token"] = issued.refresh_token
                token["expires_in"] = max(1, int(remaining))
                token["scope"] = issued.access.scope
            return issued.access
        access = services.access_token_issue(
            code=request.authorization_code,
            token=token["access_token"],
            lifetime_seconds=lifetime,
            refresh_token=token.get("refresh_token"),
        )
        if access is None:
            raise InvalidGrantError("The authorization code was already used.")
        return access

    def create_oauth2_request(self, request: Any) -> SiteRequest:
        if isinstance(request, SiteRequest):
            return request
        return SiteRequest(request)

    def handle_error_response(self, request: Any, error: OAuth2Error) -> HttpResponse:
        client = getattr(request, "client", None) if request is not None else None
        client_id = getattr(client, "client_id", None)
        if client_id is None and request is not None and getattr(request, "payload", None) is not None:
            client_id = request.payload.client_id
        path = urlsplit(getattr(request, "uri", "") or "").path
        log_refusal(path.rsplit("/", 1)[-1] or "oauth", error, client_id=client_id)
        response: HttpResponse = super().handle_error_response(request, error)
        if not error.redirect_uri:
            response["Cache-Control"] = "no-store"
            if isinstance(error, InvalidClientError):
                response.status_code = 401  # the client failed to authenticate: as at the PAR endpoint
        return response

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    # --- Pushed authorization requests (RFC 9126) ---------------------------------------------

    def create_pushed_authorization_response(self, request: HttpRequest) -> HttpResponse:
        """Authenticate the client, validate its authorization request as the authorization
        endpoint would, keep it and answer its request_uri."""
        oauth_request = SiteRequest(request)
        client: RegisteredClient | None = None
        try:
            client = self.authenticate_client(oauth_request, [AUTH_METHOD], endpoint="par")
            if client is None:  # pragma: no cover - authenticate_client raises instead
                raise InvalidClientError()
            parameters = _pushed_parameters(request, client)
            pushed = SiteRequest(request, parameters=parameters)
            grant = self.get_authorization_grant(pushed)
            grant.validate_no_multiple_request_parameter(pushed)
            grant.validate_authorization_request()
        except OAuth2Error as error:
            log_refusal(
                "par", error, client_id=getattr(client, "client_id", None) or _claimed_client(request)
            )
            status = 401 if isinstance(error, InvalidClientError) else 400
            body = {"error": error.error}
            if error.description:
                body["error_description"] = error.description
            return JsonResponse(body, status=status, headers={"Cache-Control": "no-store"})
        request_uri, row = services.pushed_request_store(
            application=client.application, parameters=parameters
        )
        expires_in = int((row.expires_at - row.created_at).total_seconds())
        return JsonResponse(
            {"request_uri": request_uri, "expires_in": expires_in},
            status=201,
            headers={"Cache-Control": "no-store"},
        )


def _claimed_client(request: HttpRequest) -> str | None:
    """Who a refused request said it came from, for the log only (nothing was verified)."""
    declared = request.POST.get("client_id") or request.GET.get("client_id")
    if declared:
        return declared
    try:
        from joserfc import jws

        claims = json.loads(jws.extract_compact(request.POST.get("client_assertion", "").encode()).payload)
    except (JoseError, ValueError, TypeError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None


def _pushed_parameters(request: HttpRequest, client: RegisteredClient) -> dict[str, str]:
    """The authorization request in a PAR body, each parameter once, without the client's
    credentials."""
    if request.GET:
        raise InvalidRequestError("Send the authorization request in the POST body.")
    parameters: dict[str, str] = {}
    for name in request.POST:
        if name in _ASSERTION_PARAMETERS:
            continue
        values = request.POST.getlist(name)
        if len(values) != 1:
            raise InvalidRequestError(f"Multiple '{name[:40]}' in request.")
        parameters[name] = values[0]
    if "request_uri" in parameters:
        raise InvalidRequestError("A pushed request cannot carry a 'request_uri'.")
    declared = parameters.get("client_id")
    if declared is not None and declared != client.client_id:
        raise InvalidRequestError("The 'client_id' does not match the authenticated client.")
    parameters["client_id"] = client.client_id
    if len(json.dumps(parameters)) > MAX_PUSHED_REQUEST_BYTES:
        raise InvalidRequestError("The authorization request is too large.")
    return parameters


server = ConsentAuthorizationServer()
