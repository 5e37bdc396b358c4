"""Model rows read and inserted with SQL built once per model, for the busiest requests.

In a short request most of the CPU goes to the ORM itself: compiling each query, resolving its
joins, building the INSERT behind every `save()`. On the filing path (token check, pre-fill, six
rows written) that was more than half of the request. These helpers build each statement's text
once per model and process from the model's own field definitions, and convert values with the
same field methods the ORM uses (encryption at rest, JSON, time zones), so the rows written and
the instances read are the ones `save()` and a queryset would write and read.

They call no `save()`, send no model signals and validate nothing: use them for models whose
`save()` adds nothing, after the service has checked what it writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Field, ForeignObject, Model

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Sql:
    """A column value the database computes as it writes the row, for `insert` on PostgreSQL:
    `sql` with a %s for each of `params`. A `PkOf(obj)` parameter stands for the id of an
    object written earlier in the same statement."""

    sql: str
    params: Sequence[Any] = ()


@dataclass(frozen=True, eq=False)
class PkOf:
    """The id of `obj`, written earlier in the same `insert`, inside an `Sql` value."""

    obj: Model


Converter = Callable[[Any, Any, Any], Any]

# Keyed by (vendor, model[, alias]): the statements and converters depend only on those.
_columns: dict[tuple[str, type[Model], str], str] = {}
_converters: dict[tuple[str, type[Model]], list[tuple[list[Converter], Any]]] = {}
_inserts: dict[tuple[str, type[Model], bool], tuple[str, list[Field[Any, Any]]]] = {}


@contextmanager
def cursor() -> Iterator[CursorWrapper]:
    """A cursor for these statements. On PostgreSQL each distinct statement is prepared on its
    connection the first time it runs there and executed from then on without being parsed and
    planned again: planning, not running, was most of what the server spent on a filing's
    statements. Elsewhere, with DATABASE_PREPARED_STATEMENTS off (a pooler that cannot keep
    them), or while queries are logged (DEBUG, tests counting queries: the log shows each
    statement with its values), an ordinary cursor. Either way Django's wrapper runs the
    execute wrappers and translates errors."""
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor != "postgresql" or conn.queries_logged or not settings.DATABASE_PREPARED_STATEMENTS:
        with conn.cursor() as plain:
            yield plain
        return
    # What BaseDatabaseWrapper.cursor() does before it wraps a cursor.
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    conn.validate_thread_sharing()
    with conn.wrap_database_errors:
        raw = _preparing_cursor_class()(conn.connection)
    wrapped = conn.make_cursor(raw)
    with wrapped:
        yield wrapped


_preparing_cursor: type[Any] | None = None


def _preparing_cursor_class() -> type[Any]:
    """psycopg's server-side binding cursor, preparing what it executes. Django turns prepared
    statements off for the whole connection (prepare_threshold None, for poolers); they are
    turned on only while this cursor executes, so Django's own cursors are unaffected."""
    global _preparing_cursor
    if _preparing_cursor is None:
        import psycopg

        class PreparingCursor(psycopg.Cursor[Any]):
            def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
                connection = self.connection
                saved = connection.prepare_threshold
                connection.prepare_threshold = 0
                try:
                    return super().execute(query, params, prepare=True)
                finally:
                    connection.prepare_threshold = saved

        _preparing_cursor = PreparingCursor
    return _preparing_cursor


def columns(model: type[Model], alias: str) -> str:
    """`alias."column", …` for every concrete field of `model`, in the order `from_row` takes."""
    conn = connections[DEFAULT_DB_ALIAS]
    key = (conn.vendor, model, alias)
    text = _columns.get(key)
    if text is None:
        qn = conn.ops.quote_name
        text = ", ".join(f"{qn(alias)}.{qn(_column(f))}" for f in model._meta.concrete_fields)
        _columns[key] = text
    return text


def width(model: type[Model]) -> int:
    """How many values of a row `columns(model, …)` selects."""
    return len(model._meta.concrete_fields)


def _converters_for(conn: BaseDatabaseWrapper, model: type[Model]) -> list[tuple[list[Converter], Any]]:
    key = (conn.vendor, model)
    found = _converters.get(key)
    if found is None:
        found = []
        for field in model._meta.concrete_fields:
            column = field.get_col(model._meta.db_table)
            # What a queryset applies to a selected column: the backend's, then the field's.
            found.append((conn.ops.get_db_converters(column) + column.get_db_converters(conn), column))
        _converters[key] = found
    return found


def from_row(model: type[M], values: Sequence[Any]) -> M | None:
    """An instance from the values `columns(model, …)` selected, converted as a queryset would
    convert them; None when the primary key is NULL (nothing matched an outer join)."""
    pk_index = model._meta.concrete_fields.index(model._meta.pk)
    if values[pk_index] is None:
        return None
    conn = connections[DEFAULT_DB_ALIAS]
    converted = []
    for value, (converters, column) in zip(values, _converters_for(conn, model), strict=True):
        for convert in converters:
            value = convert(value, column, conn)
        converted.append(value)
    return model.from_db(conn.alias, [f.attname for f in model._meta.concrete_fields], converted)


def _insert_statement(
    conn: BaseDatabaseWrapper, model: type[Model], with_pk: bool
) -> tuple[str, list[Field[Any, Any]]]:
    key = (conn.vendor, model, with_pk)
    found = _inserts.get(key)
    if found is None:
        meta = model._meta
        fields = [f for f in meta.local_concrete_fields if not f.generated]
        if not with_pk:
            fields = [f for f in fields if f is not meta.auto_field]
        if any(hasattr(f, "get_placeholder") for f in fields):
            raise TypeError(f"{meta.label} has a field that needs its own SQL placeholder")
        qn = conn.ops.quote_name
        found = (f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(_column(f)) for f in fields)})", fields)
        _inserts[key] = found
    return found


def _values(
    conn: BaseDatabaseWrapper, obj: Model, fields: list[Field[Any, Any]], earlier: dict[int, str]
) -> tuple[list[str], list[Any]]:
    """Placeholders and parameters for one row. A foreign key to an object inserted earlier in
    the same statement (assigned as an object, still without a primary key) becomes that row's
    id, read from its part of the statement (`earlier` maps id(object) to that part's name)."""
    placeholders: list[str] = []
    params: list[Any] = []
    for field in fields:
        computed = getattr(obj, field.attname)
        if isinstance(computed, Sql):
            if conn.vendor != "postgresql":
                raise NotImplementedError("computed values are written on PostgreSQL only")
            sql, values = _expand(computed, earlier)
            placeholders.append(sql)
            params.extend(values)
            continue
        if isinstance(field, ForeignObject) and field.is_cached(obj):
            target = field.get_cached_value(obj)
            if target is not None and target.pk is None:
                if id(target) not in earlier:
                    raise ValueError(f"{obj._meta.label}.{field.name} points to an unsaved object")
                placeholders.append(f"(SELECT id FROM {earlier[id(target)]})")  # noqa: S608 - r0, r1 …
                continue
            if target is not None:
                setattr(obj, field.attname, target.pk)
        value = field.get_db_prep_save(field.pre_save(obj, add=True), connection=conn)
        # Empty values are written into the statement: fewer parameters to send, and psycopg
        # keeps the parsed form only of statements with at most 50 of them.
        if value is None:
            placeholders.append("NULL")
        elif isinstance(value, str) and value == "":
            placeholders.append("''")
        else:
            placeholders.append("%s")
            params.append(value)
    return placeholders, params


def _expand(value: Sql, earlier: dict[int, str]) -> tuple[str, list[Any]]:
    """An Sql value's text and parameters, its PkOf parameters written in as subqueries."""
    pieces = value.sql.split("%s")
    if len(pieces) != len(value.params) + 1:
        raise ValueError(f"{value.sql!r} does not have one %s per parameter")
    sql, params = pieces[0], []
    for param, piece in zip(value.params, pieces[1:], strict=True):
        if isinstance(param, PkOf):
            if id(param.obj) not in earlier:
                raise ValueError(f"PkOf({param.obj._meta.label}) must be written earlier in the statement")
            sql += f"(SELECT id FROM {earlier[id(param.obj)]})"  # noqa: S608 - r0, r1 …
        else:
            sql += "%s"
            params.append(param)
        sql += piece
    return sql, params


def reserve_ids(*objs: Model) -> None:
    """Give each object without a primary key the id it will be inserted with, before any row
    is written, so that rows written together can name each other (a job's payload, an audit
    entry's subject)."""
    pending = [obj for obj in objs if obj.pk is None]
    for obj, pk in zip(pending, next_ids(*(type(obj) for obj in pending)), strict=True):
        obj.pk = pk


def next_ids(*models: type[Model]) -> list[int]:
    """One new primary key per model given (a model given twice gets two). PostgreSQL draws
    them from the tables' sequences in one statement; SQLite, whose writers take turns, from each
    table's AUTOINCREMENT counter, which only works inside the transaction that uses them."""
    if not models:
        return []
    _check_pk(models)
    conn = connections[DEFAULT_DB_ALIAS]
    with cursor() as db:
        if conn.vendor == "postgresql":
            sql, params = next_ids_sql(*models)
            db.execute(f"SELECT {sql}", params)
            return list(db.fetchone())
        if conn.vendor != "sqlite" or not conn.in_atomic_block:
            raise NotImplementedError("ids are reserved on PostgreSQL, or on SQLite inside a transaction")
        ids = []
        for model in models:
            # What AUTOINCREMENT does on insert: one more than any id the table ever had.
            table = model._meta.db_table
            db.execute(
                f"SELECT MAX(COALESCE((SELECT MAX(id) FROM {conn.ops.quote_name(table)}), 0), "  # noqa: S608
                "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = %s), 0)) + 1",
                [table],
            )
            pk = db.fetchone()[0]
            db.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [pk, table])
            if db.rowcount == 0:
                db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, pk])
            ids.append(pk)
        return ids


def next_ids_sql(*models: type[Model]) -> tuple[str, list[str]]:
    """PostgreSQL only: the select-list expressions (and their parameters) that draw one new
    primary key per model, for a statement that does something else as well."""
    qn = connections[DEFAULT_DB_ALIAS].ops.quote_name
    return (
        ", ".join(["nextval(pg_get_serial_sequence(%s, 'id'))"] * len(models)),
        [qn(model._meta.db_table) for model in models],
    )


def insert(
    *objs: Model,
    before: Sequence[tuple[str, str, Sequence[Any]]] = (),
    only_if: str = "",
    returning: Sequence[str] = (),
) -> tuple[Any, ...]:
    """INSERT the instances in the order given and set their primary keys: on PostgreSQL in one
    statement (one round trip), elsewhere one statement each.

    A foreign key may point to an object earlier in the same call that has no primary key yet,
    assigned as an object (`case.application = application`): it gets that row's id.

    PostgreSQL only: `before` are (name, sql, params) parts of the WITH list written ahead of the
    rows (which may refer to them by name, in `Sql` values); with `only_if`, a condition on
    them, the rows are written only when it holds (otherwise no object gets a primary key);
    `returning` are expressions over them whose values are returned. Alone, such a statement
    commits by itself in autocommit mode: no BEGIN and COMMIT round trips."""
    _check_pk(objs)
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor == "postgresql":
        returned = _insert_together(conn, objs, before, only_if, returning)
    elif before or only_if or returning:
        raise NotImplementedError("only PostgreSQL writes rows with other statement parts")
    else:
        _insert_one_by_one(conn, objs)
        returned = ()
    for obj in objs:
        if obj.pk is None:
            continue
        obj._state.adding = False
        obj._state.db = conn.alias
        for field in _relations(type(obj)):
            # Point foreign keys at the ids the objects they were assigned got.
            if field.is_cached(obj):
                target = field.get_cached_value(obj)
                if target is not None:
                    setattr(obj, field.attname, target.pk)
    return returned


_relation_fields: dict[type[Model], list[ForeignObject[Any, Any]]] = {}


def _relations(model: type[Model]) -> list[ForeignObject[Any, Any]]:
    found = _relation_fields.get(model)
    if found is None:
        found = [f for f in model._meta.concrete_fields if isinstance(f, ForeignObject)]
        _relation_fields[model] = found
    return found


def _column(field: Field[Any, Any]) -> str:
    return field.column or field.attname


def _check_pk(objs: Sequence[Model | type[Model]]) -> None:
    for obj in objs:
        if obj._meta.pk.column != "id" or obj._meta.auto_field is None:
            raise TypeError(f"{obj._meta.label} needs an automatic primary key called id")


def _insert_together(
    conn: BaseDatabaseWrapper,
    objs: Sequence[Model],
    before: Sequence[tuple[str, str, Sequence[Any]]],
    only_if: str,
    returning: Sequence[str],
) -> tuple[Any, ...]:
    """WITH r0 AS (INSERT … RETURNING id), r1 AS (INSERT … VALUES (…, (SELECT id FROM r0), …)
    RETURNING id), … SELECT the ids: the rows commit or fail together."""
    parts = [f"{name} AS ({sql})" for name, sql, _params in before]
    params: list[Any] = [param for _name, _sql, values in before for param in values]
    earlier: dict[int, str] = {}
    for index, obj in enumerate(objs):
        name = f"r{index}"
        head, fields = _insert_statement(conn, type(obj), obj.pk is not None)
        placeholders, values = _values(conn, obj, fields, earlier)
        rows = (
            f"SELECT {', '.join(placeholders)} WHERE {only_if}"
            if only_if
            else f"VALUES ({', '.join(placeholders)})"
        )
        parts.append(f"{name} AS ({head} {rows} RETURNING id)")
        params.extend(values)
        earlier[id(obj)] = name
    selected = [f"(SELECT id FROM r{index})" for index in range(len(objs))]  # noqa: S608
    with cursor() as db:
        db.execute(f"WITH {', '.join(parts)} SELECT {', '.join([*selected, *returning])}", params)  # noqa: S608
        row = db.fetchone()
    for obj, pk in zip(objs, row, strict=False):
        obj.pk = pk
    return tuple(row[len(objs) :])


def _insert_one_by_one(conn: BaseDatabaseWrapper, objs: Sequence[Model]) -> None:
    returning = conn.features.can_return_columns_from_insert
    with cursor() as db:
        for obj in objs:
            head, fields = _insert_statement(conn, type(obj), obj.pk is not None)
            placeholders, values = _values(conn, obj, fields, {})
            sql = f"{head} VALUES ({', '.join(placeholders)})"
            if returning:
                db.execute(f"{sql} RETURNING id", values)
                obj.pk = db.fetchone()[0]
            else:
                db.execute(sql, values)
                obj.pk = db.lastrowid


# Fields whose values the drivers take as they are; any other field's values go through its
# get_db_prep_save (JSON, encryption at rest, UUIDs), and dates and times too except on PostgreSQL.
_AS_IS = (
    models.AutoField, models.BigAutoField, models.BooleanField, models.CharField, models.IntegerField,
    models.BigIntegerField, models.PositiveIntegerField, models.PositiveBigIntegerField,
    models.SmallIntegerField, models.TextField,
)  # fmt: skip


def _passes_as_is(field: Field[Any, Any], conn: BaseDatabaseWrapper) -> bool:
    if isinstance(field, ForeignObject):
        return True
    if conn.vendor == "postgresql" and type(field) in (models.DateTimeField, models.DateField):
        return True  # psycopg writes aware datetimes and dates as Django would
    return type(field) in _AS_IS


def insert_many(model: type[Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """INSERT many rows of `model` and read nothing back, for a batch too large for model
    instances (a bank statement's lines). `fields` are attnames; each row holds their values as
    the model fields take them (aware datetimes, dicts for JSON, plain text for encrypted
    fields), converted by the fields' own get_db_prep_save where the driver would not take them
    as they are. On PostgreSQL the rows go in one COPY, streamed to the server while the caller's
    generator builds them; elsewhere with executemany. Like `insert`: no save(), no signals,
    nothing validated."""
    conn = connections[DEFAULT_DB_ALIAS]
    meta = model._meta
    targets: list[Field[Any, Any]] = [meta.get_field(name) for name in fields]  # type: ignore[misc]
    converted = [(index, field) for index, field in enumerate(targets) if not _passes_as_is(field, conn)]

    def prepared(row: Sequence[Any]) -> Sequence[Any]:
        if not converted:
            return row
        values = list(row)
        for index, field in converted:
            values[index] = field.get_db_prep_save(values[index], connection=conn)
        return values

    qn = conn.ops.quote_name
    table = qn(meta.db_table)
    columns = ", ".join(qn(_column(field)) for field in targets)
    with conn.cursor() as db:
        if conn.vendor == "postgresql":
            # Built before COPY starts: preparing a value (an encrypted field's key) may query the
            # database, which cannot happen on a connection in the middle of a COPY.
            ready = [prepared(row) for row in rows]
            with conn.wrap_database_errors, db.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in ready:
                    copy.write_row(row)
            return
        placeholders = ", ".join(["%s"] * len(targets))
        db.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",  # noqa: S608 - model names
            [prepared(row) for row in rows],
        )
