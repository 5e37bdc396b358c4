"""The OAuth 2.0 authorization server for consented sharing, assembled from Authlib.

Only the authorization code grant, with PKCE S256 required; at the token endpoint clients prove
who they are with private_key_jwt (RFC 7523), signed by a key from their registry JWKS. `scope`
is a space-separated list of profile item keys and `purpose` one of the application's registered
purposes. OpenID Connect can be added later by registering its grant extensions on `server`.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from authlib.integrations.django_oauth2 import AuthorizationServer
from authlib.integrations.django_oauth2.requests import DjangoOAuth2Payload
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeGrant,
    ClientMixin,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Request,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from civicore.consent import selectors, services
from civicore.consent.models import AccessToken, AuthorizationCode
from civicore.identity.models import Person
from civicore.registry.models import AgencyApplication
from civicore.registry.services import SIGNING_ALGORITHMS, Unauthenticated, application_keys

AUTH_METHOD = "private_key_jwt"
# Clock skew tolerated on client assertions, and the longest one may live: an hour, the default
# of Authlib's and most other clients. Each jti is remembered that long, so it is still used once.
ASSERTION_LEEWAY_SECONDS = 60
ASSERTION_MAX_LIFETIME_SECONDS = 3600
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_ITEM_KEY = re.compile(r"^[a-z0-9_]{1,50}$")
_DAYS = re.compile(r"^[0-9]{1,3}$")
# Parameters a request may carry once only, beyond those Authlib checks itself.
_SINGLE_PARAMETERS = ("purpose", "consent_days", "code_challenge", "code_challenge_method")


def token_endpoint_url() -> str:
    return settings.SITE_URL + reverse("consent:token")


class UnregisteredRedirectURI(InvalidRequestError):
    """The redirect_uri is not one the client registered: never redirect to it."""


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
        items = requested_items(scope)
        if not items or not set(items) <= set(self.application.allowed_items):
            return None
        return " ".join(items)

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
        return grant_type == "authorization_code" and self.may_ask_for_consent()


def requested_items(scope: str | None) -> list[str]:
    """The profile item keys in a scope string, in order, each once."""
    return list(dict.fromkeys((scope or "").split()))


class SiteRequest(OAuth2Request):
    """A Django request as Authlib reads it. Its URI is built from SITE_URL, not the Host
    header, so the transport check and the token endpoint audience follow configuration."""

    def __init__(self, request: HttpRequest):
        super().__init__(
            method=request.method, uri=settings.SITE_URL + request.get_full_path(), headers=request.headers
        )
        self.payload = DjangoOAuth2Payload(request)
        self._request = request

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

    @staticmethod
    def validate_authorization_redirect_uri(request: OAuth2Request, client: RegisteredClient) -> str:
        redirect_uri = request.payload.redirect_uri
        if not redirect_uri:
            raise UnregisteredRedirectURI("Missing 'redirect_uri' in request.")
        if not client.check_redirect_uri(redirect_uri):
            raise UnregisteredRedirectURI("The redirect_uri is not registered for this client.")
        return str(redirect_uri)

    def validate_requested_scope(self) -> None:
        """Items within the application's allowed items, a registered purpose, a duration."""
        request = self.request
        application: AgencyApplication = request.client.application
        person: Person | None = request.user
        datalist = request.payload.datalist
        for name in _SINGLE_PARAMETERS:
            if len(datalist.get(name, [])) > 1:
                raise InvalidRequestError(f"Multiple '{name}' in request.")
        items = requested_items(request.payload.scope)
        if not items:
            raise InvalidScopeError("Ask for at least one profile item in 'scope'.")
        outside = [item for item in items if item not in application.allowed_items]
        if outside:
            services.authorization_refuse(
                person=person,
                application=application,
                error="invalid_scope",
                details={"items": [item[:60] for item in outside[:20]]},
            )
            named = [item for item in outside if _ITEM_KEY.match(item)]
            raise InvalidScopeError(
                "The client may not ask for: " + " ".join(named) if named else "Unknown items in 'scope'."
            )
        purpose = request.payload.data.get("purpose")
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
        days_text = request.payload.data.get("consent_days")
        days = services.DEFAULT_CONSENT_DAYS
        if days_text is not None:
            if not _DAYS.match(str(days_text)) or not 1 <= int(days_text) <= services.MAX_CONSENT_DAYS:
                raise InvalidRequestError(
                    f"'consent_days' must be a whole number from 1 to {services.MAX_CONSENT_DAYS}."
                )
            days = int(days_text)
        request.consent_items = items
        request.purpose = purpose
        request.consent_days = days

    def save_authorization_code(self, code: str, request: Any) -> AuthorizationCode:
        data = request.payload.data
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


class PrivateKeyJWTAuthentication(JWTBearerClientAssertion):
    """private_key_jwt: a JWT signed by the client's own key (RFC 7523 section 2.2), addressed
    to the token endpoint, short-lived and never seen before."""

    CLIENT_AUTH_METHOD = AUTH_METHOD

    def __init__(self) -> None:
        super().__init__(validate_jti=True, leeway=ASSERTION_LEEWAY_SECONDS)

    def __call__(self, query_client: Any, request: Any) -> Any:
        client = super().__call__(query_client, request)
        declared = request.form.get("client_id")
        if client is not None and declared and declared != client.client_id:
            raise InvalidClientError(description="The client_id does not match the client assertion.")
        return client

    def get_audiences(self) -> list[str]:
        return [token_endpoint_url()]

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
        application = selectors.application_for_client(claims.get("sub"))
        if application is None:
            return False
        keep_until = datetime.fromtimestamp(float(claims["exp"]) + self.leeway, tz=UTC)
        return services.client_assertion_use(application=application, jti=jti, keep_until=keep_until)


class ConsentAuthorizationServer(AuthorizationServer):
    def __init__(self) -> None:
        super().__init__(AgencyApplication, AccessToken)
        self.register_grant(ConsentCodeGrant, [S256CodeChallenge(required=True)])
        self.register_client_auth_method(AUTH_METHOD, PrivateKeyJWTAuthentication())

    def load_config(self, config: Any) -> None:
        self.config = config
        self.scopes_supported = None
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **kwargs: secrets.token_urlsafe(32),
                expires_generator=services.TOKEN_LIFETIME_SECONDS,
            ),
        )

    def query_client(self, client_id: Any) -> RegisteredClient | None:
        application = selectors.application_for_client(client_id)
        return RegisteredClient(application) if application is not None else None

    def save_token(self, token: dict[str, Any], request: Any) -> AccessToken:
        access = services.access_token_issue(
            code=request.authorization_code,
            token=token["access_token"],
            lifetime_seconds=int(token.get("expires_in") or services.TOKEN_LIFETIME_SECONDS),
        )
        if access is None:
            raise InvalidGrantError("The authorization code was already used.")
        return access

    def create_oauth2_request(self, request: HttpRequest) -> SiteRequest:
        return SiteRequest(request)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


server = ConsentAuthorizationServer()
