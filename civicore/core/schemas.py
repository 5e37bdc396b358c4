"""API shapes every router shares."""

from __future__ import annotations

from ninja import Schema


class ErrorOut(Schema):
    """What the API's exception handlers return for every 4xx."""

    code: str
    message: str
    details: object | None = None


def errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """`response=` entries for the 4xx an endpoint answers with the error body, e.g.
    `response={200: ThingOut, **errors(403, 404)}`. The API adds 401, 403 (CSRF) and 422 where
    every endpoint of the kind can answer them (config.api.document_common_errors)."""
    return dict.fromkeys(statuses, ErrorOut)
