"""API authentication: bearer tokens for API clients, the session (with CSRF) for the portal."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from civicore.core.errors import ApplicationError
from civicore.identity.services import api_token_authenticate


class CsrfFailed(ApplicationError):
    """The CSRF token is missing or wrong."""

    code = "csrf_failed"
    status = 403


class ApiTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = api_token_authenticate(token)
        if user is not None:
            request.user = user
        return user


class SessionAuth(APIKeyCookie):
    """The logged-in portal session; unsafe methods need the CSRF token as usual."""

    param_name = "sessionid"

    def __init__(self) -> None:
        # The cookie's real name (`__Host-sessionid` behind HTTPS) in the OpenAPI document.
        self.param_name = settings.SESSION_COOKIE_NAME
        super().__init__(csrf=True)

    def __call__(self, request: HttpRequest) -> Any:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            # No session, nothing a forged request could use: the caller is told 401, not 403.
            return None
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request) is not None:
            raise CsrfFailed(
                _("The CSRF token is missing or wrong: send the csrftoken cookie's value in X-CSRFToken.")
            )
        return user

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return user
        return None


class AnonymousAllowed:
    """Last in an operation's auth list when signing in is optional (public data, more for those
    who sign in): a caller without credentials goes through, but one whose bearer token did not
    authenticate is refused (401) rather than read as anonymous. OpenAPI shows it as the empty
    security requirement `{}` (config.api.document_common_errors)."""

    openapi_security_schema = {"type": "http", "scheme": "bearer"}  # replaced by {} in the document

    def __call__(self, request: HttpRequest) -> bool:
        return not request.headers.get("Authorization", "").lower().startswith("bearer ")
