"""SenML packs as RFC 8428 defines them: base fields, relative times, CBOR labels, and what is refused."""

from __future__ import annotations

import cbor2
import pytest

from civicore.sensors import senml

NOW = 1_800_000_000.0


def _records(payload: bytes) -> list[senml.Record]:
    return senml.resolve(senml.decode(payload), now=NOW)


def test_base_fields_apply_to_later_records_until_changed() -> None:
    payload = (
        b'[{"bn":"urn:dev:civicore:soil-7:","bt":1799999900,"bu":"%","n":"soil_moisture","v":21.5},'
        b'{"n":"soil_moisture","t":60,"v":20.0},'
        b'{"n":"temperature","u":"Cel","t":60,"v":31.2}]'
    )
    records = _records(payload)
    assert [(r.name, r.unit, r.value, r.time) for r in records] == [
        ("urn:dev:civicore:soil-7:soil_moisture", "%", 21.5, 1799999900.0),
        ("urn:dev:civicore:soil-7:soil_moisture", "%", 20.0, 1799999960.0),
        ("urn:dev:civicore:soil-7:temperature", "Cel", 31.2, 1799999960.0),
    ]


def test_times_below_two_to_the_28_are_relative_to_now() -> None:
    records = _records(b'[{"n":"rain","v":0,"t":-30},{"n":"rain","v":1}]')
    assert [r.time for r in records] == [NOW - 30, NOW]


def test_base_value_and_sum_are_added() -> None:
    records = _records(b'[{"n":"a","bv":10,"v":2.5},{"n":"b","bs":100,"s":5}]')
    assert [r.value for r in records] == [12.5, 105.0]


def test_cbor_pack_uses_integer_labels() -> None:
    pack = [
        {-2: "soil-7:", -3: 1799999900, -4: "%", 0: "soil_moisture", 2: 18.25},
        {0: "valve_open", 4: True},
    ]
    records = _records(cbor2.dumps(pack))
    assert [(r.name, r.unit, r.value) for r in records] == [
        ("soil-7:soil_moisture", "%", 18.25),
        ("soil-7:valve_open", "%", 1.0),
    ]


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b'{"n":"x","v":1}',
        b"[]",
        b"[" * 5000 + b"]" * 5000,
        b"\xff\xfe\x00",
        cbor2.dumps({"n": "x"}),
    ],
)
def test_messages_that_are_not_packs_are_refused(payload: bytes) -> None:
    with pytest.raises(senml.SenMLError):
        senml.decode(payload)


@pytest.mark.parametrize(
    "record, problem",
    [
        ({"n": "a", "vs": "hello"}, "a string or data value is not a reading"),
        ({"n": "a"}, "the record has no value"),
        ({"n": 5, "v": 1}, "n is not a string"),
        ({"n": "a", "v": "1"}, "v is not a finite number"),
        ({"n": "a", "v": True}, "v is not a finite number"),
        ({"n": "a", "v": 1, "t": "soon"}, "t is not a number"),
        ({"bn": ["x"], "n": "a", "v": 1}, "bn is not a string"),
        ({"n": "a" * 300, "v": 1}, "name too long"),
        (["n", "a"], "a record is not an object"),
    ],
)
def test_records_that_cannot_be_read_carry_their_problem(record: object, problem: str) -> None:
    (resolved,) = senml.resolve([record], now=NOW)
    assert resolved.problem == problem
    assert resolved.value is None


def test_non_finite_numbers_are_not_readings() -> None:
    (resolved,) = senml.resolve([{"n": "a", "v": float("nan")}], now=NOW)
    assert resolved.problem
    (resolved,) = senml.resolve([{"n": "a", "v": float("inf")}], now=NOW)
    assert resolved.problem


@pytest.mark.parametrize(
    "name, quantity, owned",
    [
        ("soil_moisture", "soil_moisture", True),
        ("soil-7:soil_moisture", "soil_moisture", True),
        ("urn:dev:civicore:soil-7:soil_moisture", "soil_moisture", True),
        ("parks/soil-7/soil_moisture", "soil_moisture", True),
        ("soil-8:soil_moisture", "soil_moisture", False),
        ("xsoil-7:soil_moisture", "soil_moisture", False),
    ],
)
def test_a_record_name_belongs_to_its_device(name: str, quantity: str, owned: bool) -> None:
    assert senml.split_name(name, "soil-7") == (quantity, owned)
