"""The datastore: each resource's rows in a table of their own, searched the way CKAN's
`datastore_search` searches (q, filters, sort, fields, limit, offset, total).

Table and column names come from the resource's own field list (checked against NAME_PATTERN when
the resource is written), never from a request: a request may only name fields the resource has.
Every value from a request is a bound parameter. Each column has an index, so filters and sorts
on a million-row resource stay index look-ups.

A resource's rows change only when its dataset is regenerated (`replace_rows`, which moves its
`modified_at`), so the total of a filtered search is counted once per resource version and kept in
the cache: counting a hundred thousand matching rows is what a filtered search would otherwise
spend most of its time on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction

from civicore.opendata.models import Resource

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
TYPES = ("text", "int", "numeric", "date", "timestamp", "bool")
_SQL_TYPES = {
    "postgresql": {
        "text": "text",
        "int": "bigint",
        "numeric": "double precision",
        "date": "date",
        "timestamp": "timestamp with time zone",
        "bool": "boolean",
    },
    "sqlite": {
        "text": "text",
        "int": "integer",
        "numeric": "real",
        "date": "text",
        "timestamp": "text",
        "bool": "integer",
    },
}
# CKAN's default ckan.datastore.search.rows_max.
MAX_LIMIT = 32_000
DEFAULT_LIMIT = 100
MAX_OFFSET = 100_000_000
MAX_FILTER_VALUES = 100
MAX_Q_WORDS = 10
MAX_TEXT = 200
BATCH = 5_000
TOTAL_CACHE_SECONDS = 24 * 3600


class DatastoreError(Exception):
    """A request the datastore refuses: `errors` maps the parameter to its messages (CKAN's
    Validation Error shape)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Field:
    id: str
    type: str
    label_vi: str = ""
    label_en: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "type": self.type, "label_vi": self.label_vi, "label_en": self.label_en}


def check_fields(fields: Sequence[Field]) -> None:
    """Programming errors in a generator's field list (never request input)."""
    seen: set[str] = set()
    for column in fields:
        if not NAME_PATTERN.match(column.id) or column.type not in TYPES or column.id in seen:
            raise ValueError(f"bad datastore field {column!r}")
        seen.add(column.id)


def _quote(name: str) -> str:
    if not NAME_PATTERN.match(name) and name != "_id":
        raise ValueError(f"not a datastore name: {name!r}")
    return connection.ops.quote_name(name)


def _sql_type(kind: str) -> str:
    return _SQL_TYPES["postgresql" if connection.vendor == "postgresql" else "sqlite"][kind]


def _stored(kind: str, value: Any) -> Any:
    """A generator's value as the column stores it."""
    if value is None:
        return None
    if connection.vendor != "postgresql":
        if kind in ("date", "timestamp"):
            return value.isoformat()
        if kind == "bool":
            return int(bool(value))
    return value


def replace_rows(resource: Resource, fields: Sequence[Field], rows: Iterable[Sequence[Any]]) -> int:
    """Replace the resource's table by `rows` (in `fields` order) in one transaction; readers see
    the old rows until it commits. Returns the number of rows."""
    check_fields(fields)
    table = _quote(resource.table)
    columns = [_quote(f.id) for f in fields]
    kinds = [f.type for f in fields]
    definition = ", ".join(f"{c} {_sql_type(k)}" for c, k in zip(columns, kinds, strict=True))
    count = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(f"CREATE TABLE {table} ({_quote('_id')} bigint PRIMARY KEY, {definition})")
        names = ", ".join([_quote("_id"), *columns])
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for count, row in enumerate(rows, start=1):
                    copy.write_row((count, *row))
        else:
            marks = ", ".join(["%s"] * (len(columns) + 1))
            statement = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 - names are the resource's, checked
            batch: list[tuple[Any, ...]] = []
            for count, row in enumerate(rows, start=1):
                batch.append((count, *(_stored(k, v) for k, v in zip(kinds, row, strict=True))))
                if len(batch) >= BATCH:
                    cursor.executemany(statement, batch)
                    batch = []
            if batch:
                cursor.executemany(statement, batch)
        trigrams = connection.vendor == "postgresql" and _has_trigrams(cursor)
        for position, (column, kind) in enumerate(zip(columns, kinds, strict=True)):
            index = _quote(f"{resource.table[:40]}_i{position}")
            cursor.execute(f"CREATE INDEX {index} ON {table} ({column})")
            if trigrams and kind == "text":
                # `q` searches text columns for a substring (ILIKE '%word%'): a trigram index
                # answers that without reading the whole table.
                index = _quote(f"{resource.table[:40]}_t{position}")
                cursor.execute(f"CREATE INDEX {index} ON {table} USING gin ({column} gin_trgm_ops)")
        # Statistics now, not when autovacuum gets round to it: without them the planner guesses,
        # and on a million rows a filter or `q` picks a bitmap scan and a sort over a third of the
        # table instead of walking `_id` until the page is full.
        cursor.execute(f"ANALYZE {table}")
    return count


def _has_trigrams(cursor: Any) -> bool:
    """Whether PostgreSQL's pg_trgm extension is installed (the opendata migrations install it
    where the database role may)."""
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
    return cursor.fetchone() is not None


def drop(resource: Resource) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_quote(resource.table)}")


@dataclass
class Query:
    """A datastore_search request, checked against the resource's fields."""

    resource: Resource
    q: Any = None
    filters: Any = None
    limit: Any = DEFAULT_LIMIT
    offset: Any = 0
    sort: Any = None
    fields: Any = None
    include_total: Any = True


def _all_fields(resource: Resource) -> list[Field]:
    return [Field("_id", "int")] + [
        Field(f["id"], f["type"], f.get("label_vi", ""), f.get("label_en", "")) for f in resource.fields
    ]


def _integer(value: Any, name: str, low: int, high: int, errors: dict[str, list[str]]) -> int:
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if re.fullmatch(r"-?\d{1,12}", text) and low <= int(text) <= high:
        return int(text)
    errors.setdefault(name, []).append(f"must be a whole number from {low} to {high}")
    return low


def _names(value: Any, name: str, known: dict[str, Field], errors: dict[str, list[str]]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        errors.setdefault(name, []).append("must be a list of field names")
        return []
    names = [i.strip() for i in items if i.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        errors.setdefault(name, []).append(
            "unknown field(s): " + ", ".join(repr(n[:MAX_TEXT]) for n in unknown[:10])
        )
    return [n for n in names if n in known]


def _typed(kind: str, value: Any) -> Any:
    """A request's value as a column of `kind` compares it; ValueError when it cannot be one."""
    if isinstance(value, dict | list) or value is None:
        raise ValueError
    text = str(value)
    if len(text) > MAX_TEXT:
        raise ValueError
    if kind == "text":
        return text
    if kind == "int":
        if isinstance(value, bool) or not re.fullmatch(r"-?\d{1,18}", text.strip()):
            raise ValueError
        return int(text)
    if kind == "numeric":
        number = float(text)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError
        return number
    if kind == "bool":
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise ValueError
        return _stored("bool", lowered == "true")
    if kind == "date":
        return _stored("date", dt.date.fromisoformat(text))
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError
    return _stored("timestamp", moment)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search(query: Query) -> dict[str, Any]:
    """Rows of the resource as CKAN's datastore_search returns them; DatastoreError for any bad
    parameter (all problems at once)."""
    resource = query.resource
    fields = _all_fields(resource)
    known = {f.id: f for f in fields}
    errors: dict[str, list[str]] = {}
    limit = _integer(query.limit, "limit", 0, MAX_LIMIT, errors)
    offset = _integer(query.offset, "offset", 0, MAX_OFFSET, errors)
    include_total = query.include_total not in (False, "false", "False", "0", 0)
    selected = _names(query.fields, "fields", known, errors) if query.fields not in (None, "", []) else []
    where: list[str] = []
    params: list[Any] = []
    like = "ILIKE" if connection.vendor == "postgresql" else "LIKE"

    filters = query.filters
    if isinstance(filters, str):
        try:
            filters = json.loads(filters) if filters.strip() else {}
        except (ValueError, RecursionError):
            filters = "not an object"
    if filters not in (None, {}):
        if not isinstance(filters, dict):
            errors.setdefault("filters", []).append("must be an object of field: value")
        else:
            for name, wanted in list(filters.items())[:50]:
                column = known.get(name) if isinstance(name, str) else None
                if column is None:
                    errors.setdefault("filters", []).append(f"unknown field {str(name)[:MAX_TEXT]!r}")
                    continue
                values = wanted if isinstance(wanted, list) else [wanted]
                if not values or len(values) > MAX_FILTER_VALUES:
                    errors.setdefault("filters", []).append(
                        f"{name}: give from 1 to {MAX_FILTER_VALUES} values"
                    )
                    continue
                try:
                    typed = [_typed(column.type, v) for v in values]
                except ValueError:
                    errors.setdefault("filters", []).append(f"{name}: not a valid {column.type} value")
                    continue
                marks = ", ".join(["%s"] * len(typed))
                where.append(f"{_quote(name)} IN ({marks})")
                params.extend(typed)

    q = query.q
    texts = [f.id for f in fields if f.type == "text"]
    if q not in (None, ""):
        if isinstance(q, str):
            words = q.split()
            if len(words) > MAX_Q_WORDS or any(len(w) > MAX_TEXT for w in words):
                errors.setdefault("q", []).append(f"at most {MAX_Q_WORDS} words of {MAX_TEXT} characters")
            elif texts:
                for word in words:
                    where.append("(" + " OR ".join(f"{_quote(t)} {like} %s ESCAPE '\\'" for t in texts) + ")")
                    params.extend([_like(word)] * len(texts))
            elif words:
                where.append("1 = 0")
        elif isinstance(q, dict):
            for name, text in list(q.items())[:50]:
                column = known.get(name) if isinstance(name, str) else None
                if (
                    column is None
                    or column.type != "text"
                    or not isinstance(text, str)
                    or len(text) > MAX_TEXT
                ):
                    errors.setdefault("q", []).append(f"{str(name)[:MAX_TEXT]!r}: not a text field to search")
                    continue
                where.append(f"{_quote(name)} {like} %s ESCAPE '\\'")
                params.append(_like(text))
        else:
            errors.setdefault("q", []).append("must be text, or an object of field: text")

    order: list[str] = []
    if query.sort not in (None, ""):
        items = query.sort.split(",") if isinstance(query.sort, str) else query.sort
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            errors.setdefault("sort", []).append("must be 'field [asc|desc], ...'")
            items = []
        for item in items[:10]:
            parts = item.split()
            direction = parts[1].lower() if len(parts) == 2 else "asc"
            if len(parts) not in (1, 2) or parts[0] not in known or direction not in ("asc", "desc"):
                errors.setdefault("sort", []).append(f"cannot sort by {item.strip()[:MAX_TEXT]!r}")
                continue
            order.append(f"{_quote(parts[0])} {direction.upper()}")
    if errors:
        raise DatastoreError(errors)
    if not any(part.startswith(_quote("_id")) for part in order):
        order.append(f"{_quote('_id')} ASC")

    shown = [known[name] for name in selected] if selected else fields
    table = _quote(resource.table)
    condition = (" WHERE " + " AND ".join(where)) if where else ""
    columns = ", ".join(_quote(f.id) for f in shown)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {table}{condition} ORDER BY {', '.join(order)} LIMIT %s OFFSET %s",  # noqa: S608 - names are the resource's, checked
            [*params, limit, offset],
        )
        rows = cursor.fetchall()
        total = None
        if include_total:
            if not where:
                total = resource.row_count
            else:
                key = _total_key(resource, condition, params)
                total = cache.get(key)
                if total is None:
                    cursor.execute(f"SELECT COUNT(*) FROM {table}{condition}", params)  # noqa: S608 - names are the resource's, checked
                    total = cursor.fetchone()[0]
                    cache.set(key, total, TOTAL_CACHE_SECONDS)
    records = [{f.id: _public(f.type, v) for f, v in zip(shown, row, strict=True)} for row in rows]
    result: dict[str, Any] = {
        "include_total": include_total,
        "resource_id": str(resource.id),
        "fields": [_field_info(f) for f in shown],
        "records_format": "objects",
        "records": records,
        "limit": limit,
        "offset": offset,
    }
    if include_total:
        result["total"] = total
        result["total_was_estimated"] = False
    return result


def _total_key(resource: Resource, condition: str, params: list[Any]) -> str:
    """The cache key of a search's total: the resource's version and the exact condition."""
    text = json.dumps([condition, [str(p) for p in params]], ensure_ascii=False)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"opendata:total:{resource.id}:{resource.modified_at.timestamp()}:{resource.row_count}:{digest}"


def _field_info(column: Field) -> dict[str, Any]:
    info: dict[str, Any] = {"id": column.id, "type": column.type}
    if column.label_vi or column.label_en:
        info["info"] = {"label": column.label_en or column.label_vi, "label_vi": column.label_vi}
    return info


def _public(kind: str, value: Any) -> Any:
    """A stored value as JSON shows it: ISO dates and times, real booleans."""
    if value is None:
        return None
    if kind == "bool":
        return bool(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def rows(resource: Resource, batch: int = BATCH) -> Iterable[list[Any]]:
    """Every row of the resource in _id order, for downloads (keyset pages, constant memory)."""
    fields = _all_fields(resource)[1:]
    table = _quote(resource.table)
    columns = ", ".join(_quote(f.id) for f in fields)
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {_quote('_id')}, {columns} FROM {table} WHERE {_quote('_id')} > %s "  # noqa: S608 - names are the resource's, checked
                f"ORDER BY {_quote('_id')} LIMIT %s",
                [last, batch],
            )
            page = cursor.fetchall()
        if not page:
            return
        for row in page:
            yield [_public(f.type, v) for f, v in zip(fields, row[1:], strict=True)]
        last = page[-1][0]
