"""The one REST API, under /api/v1. Each app contributes a Router."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from civicore.core.api_auth import ApiTokenAuth, SessionAuth
from civicore.core.errors import ApplicationError

api = NinjaAPI(
    title="Civicore API",
    version="1",
    description="Public e-services, applications, cases and result verification.",
    auth=[ApiTokenAuth(), SessionAuth()],
    urls_namespace="api",
)


@api.exception_handler(ApplicationError)
def application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    return api.create_response(
        request, {"code": exc.code, "message": exc.message, "details": exc.details}, status=exc.status
    )


@api.exception_handler(NinjaValidationError)
def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    return api.create_response(
        request,
        {"code": "invalid_request", "message": "The request is not valid.", "details": exc.errors},
        status=422,
    )


@api.exception_handler(AuthenticationError)
def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request,
        {"code": "unauthenticated", "message": "Authentication required.", "details": None},
        status=401,
    )


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return api.create_response(
        request,
        {"code": f"http_{exc.status_code}", "message": str(exc), "details": None},
        status=exc.status_code,
    )


def _mount() -> None:
    from civicore.applications.api import router as applications_router
    from civicore.cases.api import router as cases_router
    from civicore.catalogue.api import router as catalogue_router
    from civicore.credentials.api import router as credentials_router
    from civicore.notify.api import router as notify_router

    api.add_router("/catalogue", catalogue_router)
    api.add_router("/applications", applications_router)
    api.add_router("/cases", cases_router)
    api.add_router("/credentials", credentials_router)
    api.add_router("/notifications", notify_router)
    api.add_router("/consent", "civicore.consent.api.router")
    api.add_router("/exchange", "civicore.identity.exchange_api.router")


_mount()
