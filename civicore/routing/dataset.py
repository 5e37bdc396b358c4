"""Reading training and prediction CSV files, with one clear message for each way they go wrong."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from civicore.routing.ml import Example, RoutingError

TEXT_SEPARATOR = " | "
_TIME_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%d/%m/%Y")


@dataclass
class Table:
    path: Path
    sha256: str
    rows: list[dict[str, str]]
    line_numbers: list[int]


@dataclass
class Loaded:
    examples: list[Example]
    ids: list[str] = field(default_factory=list)
    skipped_empty: int = 0
    sha256: str = ""


def read_table(path: Path | str, required: list[str]) -> Table:
    path = Path(path)
    if not path.is_file():
        raise RoutingError(f"{path}: no such file.")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RoutingError(
            f"{path}: line {line} is not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8."
        ) from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    if not header:
        raise RoutingError(f"{path}: the file is empty.")
    missing = [c for c in required if c not in header]
    if missing:
        raise RoutingError(
            f"{path}: missing column(s) {', '.join(missing)}; the file has {', '.join(header)}."
        )
    rows, lines = [], []
    try:
        for row in reader:
            rows.append({k: (v or "") for k, v in row.items() if k is not None})
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise RoutingError(f"{path}: line {reader.line_num} is not valid CSV ({exc}).") from exc
    if not rows:
        raise RoutingError(f"{path}: the file has a header but no rows.")
    return Table(path, hashlib.sha256(data).hexdigest(), rows, lines)


def parse_time(value: str) -> dt.datetime:
    value = value.strip()
    parsed: dt.datetime | None = None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        for fmt in _TIME_FORMATS:
            try:
                parsed = dt.datetime.strptime(value, fmt)  # noqa: DTZ007 - made aware below
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(f"not a date and time: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def load_examples(
    path: Path | str,
    *,
    text: list[str],
    label: str | None = None,
    time: str | None = None,
    id_column: str | None = None,
) -> Loaded:
    """Rows with their text columns joined; rows with empty text are skipped and counted, and a
    file with none left is refused."""
    if not text:
        raise RoutingError("Name at least one --text column.")
    required = [*text, *(c for c in (label, time, id_column) if c)]
    table = read_table(path, required)
    loaded = Loaded(examples=[], sha256=table.sha256)
    for row, line in zip(table.rows, table.line_numbers, strict=True):
        joined = TEXT_SEPARATOR.join(row[c].strip() for c in text if row[c].strip())
        if not joined:
            loaded.skipped_empty += 1
            continue
        value = row[label].strip() if label else ""
        if label and not value:
            raise RoutingError(f"{table.path}: line {line} has no label in column {label}.")
        when = None
        if time:
            try:
                when = parse_time(row[time])
            except ValueError as exc:
                raise RoutingError(
                    f"{table.path}: line {line}: {row[time]!r} in column {time} is not a date and time "
                    "(use ISO 8601, e.g. 2025-03-01T08:30:00)."
                ) from exc
        loaded.examples.append(Example(joined, value, when))
        if id_column:
            loaded.ids.append(row[id_column])
    if not loaded.examples:
        raise RoutingError(
            f"{table.path}: every row has empty text ({loaded.skipped_empty} rows); nothing to use."
        )
    return loaded
