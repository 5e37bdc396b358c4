"""Devices that cannot speak MQTT post SenML over HTTPS with their own token:
POST /api/v1/sensors/devices/{device_id}/senml."""

from __future__ import annotations

import json
import time
from typing import Any

import cbor2
import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from civicore.agencies.tests.factories import back_office_client
from civicore.sensors import services
from civicore.sensors.api import THROTTLE_SCOPE
from civicore.sensors.models import Device, Reading, Rejection
from civicore.sensors.tests.factories import (
    make_device,
    make_provisioned_device,
    sensor_engineer,
    soil_moisture_type,
)

pytestmark = pytest.mark.django_db

SENML_JSON = "application/senml+json"
SENML_CBOR = "application/senml+cbor"


def url(device_id: str) -> str:
    return f"/api/v1/sensors/devices/{device_id}/senml"


def pack(
    values: list[float], *, start: float | None = None, quantity: str = "soil_moisture"
) -> list[dict[str, Any]]:
    start = time.time() - 600 if start is None else start
    records: list[dict[str, Any]] = [{"bt": start, "n": quantity, "u": "%", "v": values[0]}]
    records += [
        {"n": quantity, "t": 60 * index, "v": value} for index, value in enumerate(values[1:], start=1)
    ]
    return records


def post(
    device_id: str,
    token: str | None,
    body: Any,
    *,
    content_type: str = SENML_JSON,
    client: Client | None = None,
) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return (client or Client()).post(url(device_id), data=data, content_type=content_type, **headers)


@pytest.fixture
def device() -> tuple[Device, services.DeviceCredentials]:
    return make_provisioned_device(soil_moisture_type(), device_id="park-3-soil-01")


def test_a_json_pack_is_stored(device: Any) -> None:
    dev, credentials = device
    response = post(dev.device_id, credentials.http_token, pack([30.0, 29.5, 29.0]))
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected_count": 0, "rejected": []}
    values = sorted(Reading.objects.filter(device=dev).values_list("value", flat=True))
    assert values == [29.0, 29.5, 30.0]


def test_a_cbor_pack_is_stored(device: Any) -> None:
    dev, credentials = device
    body = cbor2.dumps([{-3: time.time() - 120, 0: "soil_moisture", 1: "%", 2: 41.0}])
    response = post(dev.device_id, credentials.http_token, body, content_type=SENML_CBOR)
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 1
    assert Reading.objects.get(device=dev).value == 41.0


def test_a_message_sent_twice_is_stored_once(device: Any) -> None:
    dev, credentials = device
    body = pack([30.0, 31.0])
    assert post(dev.device_id, credentials.http_token, body).json()["accepted"] == 2
    again = post(dev.device_id, credentials.http_token, body)
    assert again.status_code == 202
    assert again.json() == {"accepted": 0, "duplicates": 2, "rejected_count": 0, "rejected": []}
    assert Reading.objects.filter(device=dev).count() == 2


def test_what_cannot_be_stored_is_listed_beside_what_was(device: Any) -> None:
    dev, credentials = device
    body = pack([30.0]) + [{"n": "soil_moisture", "t": 60, "v": 250.0}, {"n": "wind", "t": 60, "v": 3.0}]
    response = post(dev.device_id, credentials.http_token, body)
    assert response.status_code == 202
    answer = response.json()
    assert answer["accepted"] == 1 and answer["rejected_count"] == 2
    assert [item["reason"] for item in answer["rejected"]] == ["out_of_range", "unknown_quantity"]


@pytest.mark.parametrize(
    "body",
    [
        b"not senml at all",
        b'{"n": "soil_moisture"}',
        b"[]",
        json.dumps([{"n": "soil_moisture", "v": 900}]).encode(),
    ],
    ids=["garbage", "object", "empty", "all-out-of-range"],
)
def test_a_message_with_nothing_usable_is_a_400(device: Any, body: bytes) -> None:
    dev, credentials = device
    response = post(dev.device_id, credentials.http_token, body)
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] == "sensors.malformed"
    assert answer["details"]["rejected_count"] >= 1
    assert not Reading.objects.filter(device=dev).exists()
    assert Rejection.objects.filter(device=dev).exists()  # officers see what the device sent


# --- who may post -------------------------------------------------------------------------------------


def test_no_token_or_a_wrong_one_is_a_401(device: Any) -> None:
    dev, credentials = device
    for token in (None, "", "wrong", credentials.mqtt_password, credentials.http_token + "0"):
        response = post(dev.device_id, token, pack([30.0]))
        assert response.status_code == 401, token
        assert response.json()["code"] == "sensors.bad_token"
        assert response["WWW-Authenticate"].startswith("Bearer")
    basic = Client().post(
        url(dev.device_id),
        data=json.dumps(pack([30.0])),
        content_type=SENML_JSON,
        HTTP_AUTHORIZATION=f"Basic {credentials.http_token}",
    )
    assert basic.status_code == 401
    assert not Reading.objects.exists()


def test_a_token_of_another_device_is_a_401(device: Any) -> None:
    dev, _credentials = device
    other, other_credentials = make_provisioned_device(dev.device_type, device_id="park-3-soil-02")
    response = post(dev.device_id, other_credentials.http_token, pack([30.0]))
    assert response.status_code == 401
    assert response.json()["code"] == "sensors.bad_token"
    assert not Reading.objects.exists()
    assert post(other.device_id, other_credentials.http_token, pack([30.0])).status_code == 202


def test_a_revoked_device_is_a_403(device: Any) -> None:
    dev, credentials = device
    services.device_revoke(device=dev)
    response = post(dev.device_id, credentials.http_token, pack([30.0]))
    assert response.status_code == 403
    assert response.json()["code"] == "sensors.revoked"


def test_old_tokens_stop_working_when_rotated(device: Any) -> None:
    dev, old = device
    new = services.device_rotate_credentials(device=dev)
    assert post(dev.device_id, old.http_token, pack([30.0])).status_code == 401
    assert post(dev.device_id, new.http_token, pack([30.0])).status_code == 202


def test_a_device_never_provisioned_has_no_token_that_works() -> None:
    dev = make_device(device_id="park-3-soil-09")
    assert post(dev.device_id, "0" * 64, pack([30.0])).status_code == 401


def test_wrong_tokens_from_one_address_are_throttled_but_devices_keep_posting(device: Any) -> None:
    from civicore.core import throttle

    dev, credentials = device
    free = throttle.SCOPES[THROTTLE_SCOPE]["address"].free
    for _ in range(free):
        assert post(dev.device_id, "guess", pack([30.0])).status_code == 401
    refused = post(dev.device_id, "guess", pack([30.0]))
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) >= 1
    # A device with its own token, behind the same address, is not held up.
    assert post(dev.device_id, credentials.http_token, pack([30.0])).status_code == 202


def test_no_session_or_csrf_token_is_involved(device: Any) -> None:
    dev, credentials = device
    engineer = sensor_engineer(dev.agency)
    browser = back_office_client(engineer.user)
    browser.handler.enforce_csrf_checks = True
    # A signed-in officer's session is no credential here, and a device needs no CSRF token.
    assert post(dev.device_id, None, pack([30.0]), client=browser).status_code == 401
    assert post(dev.device_id, credentials.http_token, pack([30.0]), client=browser).status_code == 202


# --- size, type and rate ------------------------------------------------------------------------------


def test_a_message_over_the_size_limit_is_a_413_and_counted(device: Any, settings: Any) -> None:
    dev, credentials = device
    settings.SENSOR_MAX_PAYLOAD_BYTES = 2048
    body = json.dumps(pack([30.0] * 200)).encode()
    assert len(body) > 2048
    response = post(dev.device_id, credentials.http_token, body)
    assert response.status_code == 413
    assert response.json()["code"] == "sensors.too_large"
    assert response.json()["details"]["max_bytes"] == 2048
    assert Rejection.objects.get(device=dev).reason == Rejection.Reason.TOO_LARGE
    assert not Reading.objects.exists()


def test_a_huge_body_is_refused_unread(device: Any) -> None:
    dev, credentials = device
    response = post(dev.device_id, credentials.http_token, b"[" + b" " * 300_000 + b"]")
    assert response.status_code == 413
    assert response.json()["code"] == "sensors.too_large"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "image/png"])
def test_other_media_types_are_a_415(device: Any, content_type: str) -> None:
    dev, credentials = device
    response = post(dev.device_id, credentials.http_token, pack([30.0]), content_type=content_type)
    assert response.status_code == 415
    assert response.json()["code"] == "sensors.unsupported_media_type"


def test_plain_json_and_charset_parameters_are_accepted(device: Any) -> None:
    dev, credentials = device
    assert (
        post(dev.device_id, credentials.http_token, pack([30.0]), content_type="application/json").status_code
        == 202
    )
    response = post(
        dev.device_id,
        credentials.http_token,
        pack([31.0], start=time.time() - 30),
        content_type=f"{SENML_JSON}; charset=utf-8",
    )
    assert response.status_code == 202


def test_a_device_over_its_rate_is_a_429(settings: Any) -> None:
    kind = soil_moisture_type(rate_per_minute=2)
    dev, credentials = make_provisioned_device(kind, device_id="park-3-soil-07")
    start = time.time() - 600
    statuses = [
        post(dev.device_id, credentials.http_token, pack([30.0], start=start + n)).status_code
        for n in range(3)
    ]
    assert statuses == [202, 202, 429]
    refused = post(dev.device_id, credentials.http_token, pack([30.0], start=start + 10))
    assert refused.json()["code"] == "sensors.rate_limited"
    assert int(refused["Retry-After"]) == 30
    assert Reading.objects.filter(device=dev).count() == 2


def test_only_post_is_answered(device: Any) -> None:
    dev, credentials = device
    response = Client().get(url(dev.device_id), HTTP_AUTHORIZATION=f"Bearer {credentials.http_token}")
    assert response.status_code == 405


# --- whatever a device sends, the answer is documented and never a 500 ------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=30,
)
_records = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "bn": st.sampled_from(["", "park-3-soil-01:", "other:", "urn:dev:x/"]) | st.text(max_size=10),
            "bt": st.floats() | st.integers(min_value=-(2**40), max_value=2**40),
            "n": st.sampled_from(["soil_moisture", "soil_temperature", "battery", "wind"])
            | st.text(max_size=10),
            "u": st.sampled_from(["%", "Cel", "%EL", "m"]),
            "v": st.floats() | st.integers(),
            "vb": st.booleans(),
            "vs": st.text(max_size=5),
            "t": st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
        },
    ),
    max_size=6,
)


@given(
    body=st.one_of(
        st.binary(max_size=300),
        _records.map(lambda records: json.dumps(records).encode()),
        _json_values.map(lambda value: json.dumps(value).encode()),
        st.tuples(_records, st.just(None)).map(lambda pair: cbor2.dumps(pair[0])),
        _json_values.map(cbor2.dumps),
    ),
    content_type=st.sampled_from([SENML_JSON, SENML_CBOR]),
)
@hypothesis_settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_body_gets_a_documented_answer(device: Any, body: bytes, content_type: str) -> None:
    dev, credentials = device
    response = post(dev.device_id, credentials.http_token, body, content_type=content_type)
    assert response.status_code in (202, 400, 429), response.content
    answer = response.json()
    if response.status_code == 202:
        assert answer["accepted"] + answer["duplicates"] >= 1
    else:
        assert answer["code"] in ("sensors.malformed", "sensors.rate_limited")
