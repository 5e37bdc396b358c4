"""Errors that services raise. Each has a stable `code` that API clients can rely on; the
API exception handler turns them into 4xx JSON {code, message, details}."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    code = "application_error"
    status = 400

    def __init__(self, message: str = "", *, details: Any = None, code: str | None = None):
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = str(message or self.__class__.__doc__ or self.code)
        self.details = details
        if code:
            self.code = code


class ValidationFailed(ApplicationError):
    """The input is not valid."""

    code = "validation_failed"
    status = 422


class NotFound(ApplicationError):
    """Not found."""

    code = "not_found"
    status = 404


class PermissionDenied(ApplicationError):
    """You are not allowed to do this."""

    code = "forbidden"
    status = 403


class Conflict(ApplicationError):
    """The request conflicts with the current state."""

    code = "conflict"
    status = 409
