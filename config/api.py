"""The one REST API, under /api/v1. Each app contributes a Router."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from civicore.core.api_auth import ApiTokenAuth, SessionAuth
from civicore.core.errors import ApplicationError
from civicore.core.schemas import ErrorOut

_UNSAFE = {"post", "put", "patch", "delete"}
_ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorOut"}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_SCHEMA}}}


def document_common_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add to each operation the errors every operation of its kind can answer, so that clients
    (and the schema-driven tests) see them without each endpoint repeating them: 401 where
    authentication is required, 403 `csrf_failed` where the session may be used for an unsafe
    method, 422 `invalid_request` where there is input to validate. An endpoint's own
    declaration of the same status wins."""
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            # django-ninja keys responses by int status; JSON and these additions use strings.
            responses = operation["responses"] = {
                str(k): v for k, v in operation.get("responses", {}).items()
            }
            if {"AnonymousAllowed": []} in operation.get("security", []):
                # Signing in is optional here: OpenAPI's empty requirement says so.
                operation["security"] = [
                    {} if requirement == {"AnonymousAllowed": []} else requirement
                    for requirement in operation["security"]
                ]
            security = [name for requirement in operation.get("security", []) for name in requirement]
            if security:
                responses.setdefault(
                    "401",
                    _error_response("Not signed in: no valid session or API token (`unauthenticated`)."),
                )
            if "SessionAuth" in security and method in _UNSAFE:
                refused = responses.setdefault(
                    "403", _error_response("Refused (`forbidden` or a more specific code).")
                )
                refused["description"] = (
                    refused["description"].rstrip(".")
                    + ". With a session: the CSRF token is missing or wrong (`csrf_failed`)."
                )
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                responses.setdefault("400", _error_response("The body is not valid JSON (`malformed_body`)."))
            if operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault(
                    "422", _error_response("The parameters or the body are not valid (`invalid_request`).")
                )
    schema.get("components", {}).get("securitySchemes", {}).pop("AnonymousAllowed", None)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}"))
    return schema


class CivicoreAPI(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> Any:
        return document_common_errors(
            super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        )


api = CivicoreAPI(
    title="Civicore API",
    version="1",
    description="Public e-services, applications, cases and result verification.",
    auth=[ApiTokenAuth(), SessionAuth()],
    urls_namespace="api",
)


@api.exception_handler(ApplicationError)
def application_error(request: HttpRequest, exc: ApplicationError) -> HttpResponse:
    response = api.create_response(
        request, {"code": exc.code, "message": exc.message, "details": exc.details}, status=exc.status
    )
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        response["Retry-After"] = str(max(1, int(retry_after)))
    return response


@api.exception_handler(NinjaValidationError)
def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    return api.create_response(
        request,
        {"code": "invalid_request", "message": _("The request is not valid."), "details": exc.errors},
        status=422,
    )


@api.exception_handler(AuthenticationError)
def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request,
        {"code": "unauthenticated", "message": _("Authentication required."), "details": None},
        status=401,
    )


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # django-ninja raises HttpError(400) for a body that is not JSON (or not the declared form).
    if exc.status_code == 400:
        code, message = "malformed_body", _("The request body cannot be read: send valid JSON.")
    else:
        code, message = f"http_{exc.status_code}", str(exc)
    return api.create_response(
        request, {"code": code, "message": message, "details": None}, status=exc.status_code
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
    api.add_router("/sensors", "civicore.sensors.api.router")
    api.add_router("/payments", "civicore.payments.api.router")
    api.add_router("/transparency", "civicore.transparency.api.router")
    api.add_router("/vc", "civicore.vc.api.router")
    api.add_router("/insights", "civicore.insights.api.router")
    api.add_router("/feedback", "civicore.feedback.api.router")
    api.add_router("/consultations", "civicore.consultations.api.router")


_mount()
