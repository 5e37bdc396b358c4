"""Security headers that Django does not set itself, and the sign-in throttle around allauth."""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)


class SecurityHeadersMiddleware:
    """CSP without 'unsafe-inline' (a view may set its own, stricter or wider, first), and the
    cross-origin isolation headers. HSTS, nosniff, Referrer-Policy and X-Frame-Options come
    from Django's SecurityMiddleware and XFrameOptionsMiddleware (see config/settings)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith("/api/v1/docs"):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if not getattr(response, "xframe_options_exempt", False):
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response


class LoginProtectionMiddleware:
    """Progressive lockout on allauth's sign-in, second-factor, reauthentication, password-reset
    and sign-up views (civicore.core.auth_protection). Place it after AuthenticationMiddleware
    and allauth's AccountMiddleware, and after CsrfViewMiddleware so forged posts never count."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from civicore.core import auth_protection

        return auth_protection.finish(request, self.get_response(request))

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        from civicore.core import auth_protection

        return auth_protection.start(request)
