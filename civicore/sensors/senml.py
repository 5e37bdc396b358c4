"""SenML (RFC 8428) packs in JSON and CBOR, resolved into plain records.

A pack is an array of records. Base fields (bn, bt, bu, bv, bs) apply to the record that carries
them and to every later record until changed; a record's name is the base name followed by its
name, its time the base time plus its time, its value the base value plus its value. A resolved
time below 2**28 is relative to now (RFC 8428 section 4.5.3). Only numeric values (v, s) and
booleans (vb, as 1 or 0) are readings here; a string or data value is refused for that record.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import cbor2
import orjson

# RFC 8428 section 6: CBOR labels of the fields.
_CBOR_LABELS = {-1: "bver", -2: "bn", -3: "bt", -4: "bu", -5: "bv", -6: "bs", 0: "n", 1: "u", 2: "v"}
_CBOR_LABELS |= {3: "vs", 4: "vb", 5: "s", 6: "t", 7: "ut", 8: "vd"}
RELATIVE_TIME_LIMIT = 2**28
_PLAIN_KEYS = frozenset({"n", "v", "t", "u"})
_NUMBER_TYPES = (int, float)
MAX_RECORDS = 10_000
MAX_NAME = 200


class SenMLError(ValueError):
    """The message as a whole is not a SenML pack."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Record(NamedTuple):
    """One resolved record: full name, unit ("" when none), numeric value or None, epoch time."""

    name: str
    unit: str
    value: float | None
    time: float
    problem: str = ""


def decode(payload: bytes) -> list[Any]:
    """JSON when the first significant byte opens an array, CBOR otherwise."""
    start = payload.lstrip()[:1]
    try:
        if start == b"[":
            pack = orjson.loads(payload)
        elif start == b"{":
            raise SenMLError("a SenML pack is an array of records, not an object")
        else:
            pack = cbor2.loads(payload)
    except SenMLError:
        raise
    except Exception as exc:  # orjson.JSONDecodeError, cbor2.CBORDecodeError, and recursion limits
        raise SenMLError(f"not JSON or CBOR: {str(exc)[:120]}") from exc
    if not isinstance(pack, list):
        raise SenMLError("a SenML pack is an array of records")
    if not pack:
        raise SenMLError("the pack has no records")
    if len(pack) > MAX_RECORDS:
        raise SenMLError(f"more than {MAX_RECORDS} records in one pack")
    return pack


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def resolve(pack: list[Any], *, now: float) -> list[Record]:
    """Resolve base fields; a record that cannot be read becomes a Record with a problem."""
    base_name = ""
    base_time = 0.0
    base_unit = ""
    base_value = 0.0
    base_sum = 0.0
    records: list[Record] = []
    append = records.append
    isfinite = math.isfinite
    for raw in pack:
        # The common record (name, value, time, unit; no base fields) takes a short path.
        if type(raw) is dict and raw.keys() <= _PLAIN_KEYS:
            name = raw.get("n", "")
            value: Any = raw.get("v")
            offset: Any = raw.get("t", 0.0)
            unit = raw.get("u", base_unit)
            if (
                type(name) is str
                and type(value) in _NUMBER_TYPES
                and type(offset) in _NUMBER_TYPES
                and type(unit) is str
                and isfinite(value)
                and isfinite(offset)
                and len(base_name) + len(name) <= MAX_NAME
            ):
                when = base_time + offset
                if when < RELATIVE_TIME_LIMIT:
                    when += now
                append(Record(base_name + name, unit, base_value + value, when, ""))
                continue
        if isinstance(raw, dict) and raw and all(isinstance(key, int) for key in raw):
            raw = {_CBOR_LABELS.get(key, str(key)): value for key, value in raw.items()}
        if not isinstance(raw, dict):
            records.append(Record("", "", None, now, "a record is not an object"))
            continue
        if "bn" in raw:
            if not isinstance(raw["bn"], str):
                records.append(Record("", "", None, now, "bn is not a string"))
                continue
            base_name = raw["bn"]
        if "bt" in raw:
            number = _number(raw["bt"])
            if number is None:
                records.append(Record("", "", None, now, "bt is not a number"))
                continue
            base_time = number
        if "bu" in raw:
            if not isinstance(raw["bu"], str):
                records.append(Record("", "", None, now, "bu is not a string"))
                continue
            base_unit = raw["bu"]
        if "bv" in raw:
            number = _number(raw["bv"])
            if number is None:
                records.append(Record("", "", None, now, "bv is not a number"))
                continue
            base_value = number
        if "bs" in raw:
            number = _number(raw["bs"])
            if number is None:
                records.append(Record("", "", None, now, "bs is not a number"))
                continue
            base_sum = number
        name = raw.get("n", "")
        if not isinstance(name, str):
            records.append(Record("", "", None, now, "n is not a string"))
            continue
        full_name = base_name + name
        if len(full_name) > MAX_NAME:
            records.append(Record(full_name[:MAX_NAME], "", None, now, "name too long"))
            continue
        unit = raw.get("u", base_unit)
        if not isinstance(unit, str):
            records.append(Record(full_name, "", None, now, "u is not a string"))
            continue
        offset = raw.get("t", 0.0)
        offset_number = _number(offset)
        if offset_number is None:
            records.append(Record(full_name, unit, None, now, "t is not a number"))
            continue
        when = base_time + offset_number
        if when < RELATIVE_TIME_LIMIT:
            when = now + when
        if "v" in raw:
            number = _number(raw["v"])
            value = None if number is None else base_value + number
            problem = "" if value is not None else "v is not a finite number"
        elif "s" in raw:
            number = _number(raw["s"])
            value = None if number is None else base_sum + number
            problem = "" if value is not None else "s is not a finite number"
        elif "vb" in raw:
            value = 1.0 if raw["vb"] is True else 0.0 if raw["vb"] is False else None
            problem = "" if value is not None else "vb is not a boolean"
        elif "vs" in raw or "vd" in raw:
            value, problem = None, "a string or data value is not a reading"
        elif "bv" in raw:
            value, problem = base_value, ""
        else:
            value, problem = None, "the record has no value"
        records.append(Record(full_name, unit, value, when, problem))
    return records


def split_name(full_name: str, device_id: str) -> tuple[str, bool]:
    """The quantity a record names and whether the name belongs to the device.

    Names are "quantity", or "<device prefix><quantity>" where the prefix ends with the device id
    followed by ":" or "/" (as in a base name "urn:dev:civicore:park-1-soil-03:").
    """
    cut = max(full_name.rfind(":"), full_name.rfind("/"))
    if cut < 0:
        return full_name, True
    prefix, quantity = full_name[:cut], full_name[cut + 1 :]
    owned = prefix == device_id or prefix.endswith((":" + device_id, "/" + device_id))
    return quantity, owned
