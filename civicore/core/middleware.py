"""Security headers that Django does not set itself, the sign-in throttle around allauth, and the
request id and request metrics (civicore.core.request_ids, civicore.core.metrics)."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
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


class RequestIdMiddleware:
    """Gives each request its id (civicore.core.request_ids): the caller's X-Request-ID when it is
    well formed, a new one otherwise; returned in the X-Request-ID response header. First in
    MIDDLEWARE, so every later step's log lines carry it. The id is cleared when the response is
    closed, after Django's own log line for an error response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from civicore.core import request_ids

        request_id = request_ids.from_header(request.headers.get(request_ids.HEADER))
        request_ids.set_current(request_id)
        request.request_id = request_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response[request_ids.HEADER] = request_id
        return response


class MetricsMiddleware:
    """Counts each request and its duration by the URL pattern Django resolved (not the path, so
    the series stay few), its method and status (civicore.core.metrics)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        import time

        from civicore.core import metrics

        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        if match is None and request.path.startswith(settings.STATIC_URL):
            route = "static"  # answered by WhiteNoise before any URL pattern is tried
        else:
            route = metrics.route_label(match.route if match is not None else None)
        method = metrics.method_label(request.method)
        metrics.HTTP_REQUESTS.labels(route=route, method=method, status=str(response.status_code)).inc()
        metrics.HTTP_DURATION.labels(route=route, method=method).observe(elapsed)
        return response
