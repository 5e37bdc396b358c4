"""API shapes every router shares."""

from __future__ import annotations

from ninja import Schema


class ErrorOut(Schema):
    """What the API's exception handlers return for every 4xx."""

    code: str
    message: str
    details: object | None = None
