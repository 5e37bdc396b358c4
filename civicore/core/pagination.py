"""Cursor (keyset) pagination for API lists.

The cursor is a signed, opaque token holding the sort values of the last row returned, so a
page is found by an index seek instead of an OFFSET, and rows inserted meanwhile neither
repeat nor vanish. A tampered cursor is refused with a stable error code.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from django.core import signing
from django.db.models import Model, Q, QuerySet
from django.utils.translation import gettext as _

from civicore.core.errors import ValidationFailed

M = TypeVar("M", bound=Model)
_SALT = "civicore.cursor"
MAX_LIMIT = 100


def _encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"dt": value.isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "dt" in value:
        return dt.datetime.fromisoformat(value["dt"])
    return value


def paginate(
    queryset: QuerySet[M], *, cursor: str | None, limit: int, order: tuple[str, ...] = ("-id",)
) -> tuple[list[M], str | None]:
    """Return one page of `queryset` sorted by `order` (which must end in a unique field) and the
    cursor for the next page, or None on the last page."""
    limit = max(1, min(limit, MAX_LIMIT))
    fields = [name.lstrip("-") for name in order]
    qs = queryset.order_by(*order)
    if cursor:
        try:
            values = [_decode_value(v) for v in signing.loads(cursor, salt=_SALT)]
        except (signing.BadSignature, TypeError, ValueError) as exc:
            raise ValidationFailed(_("The cursor is not valid."), code="invalid_cursor") from exc
        if len(values) != len(fields):
            raise ValidationFailed(_("The cursor is not valid."), code="invalid_cursor")
        qs = qs.filter(_after(order, values))
    rows = list(qs[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    token = signing.dumps([_encode_value(getattr(last, f)) for f in fields], salt=_SALT, compress=True)
    return rows, token


def _after(order: tuple[str, ...], values: list[Any]) -> Q:
    """Rows strictly after `values` in `order`: (a > x) OR (a = x AND b > y) ..."""
    condition = Q()
    for i, name in enumerate(order):
        field = name.lstrip("-")
        op = "lt" if name.startswith("-") else "gt"
        term = Q(**{f"{field}__{op}": values[i]})
        for prev_name, prev_value in zip(order[:i], values[:i], strict=False):
            term &= Q(**{prev_name.lstrip("-"): prev_value})
        condition |= term
    return condition
