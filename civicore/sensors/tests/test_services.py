"""Device types and devices: validation, permissions, audit, and credentials that are shown once,
stored only as hashes and stop working when rotated or revoked (in-memory broker)."""

from __future__ import annotations

from typing import Any

import pytest

from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.audit.models import AuditEntry
from civicore.core.errors import ApplicationError, PermissionDenied
from civicore.sensors import services
from civicore.sensors.broker import InMemoryBroker, broker, commands_topic, senml_topic
from civicore.sensors.models import Device, DeviceType
from civicore.sensors.tests.factories import (
    make_device,
    make_provisioned_device,
    rain_gauge_type,
    sensor_engineer,
    sensor_operator,
    soil_moisture_type,
    valve_type,
)

pytestmark = pytest.mark.django_db


def fake() -> InMemoryBroker:
    configured = broker()
    assert isinstance(configured, InMemoryBroker)
    return configured


def _type_args(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "agency": AgencyFactory(),
        "code": "soil-x",
        "name_vi": "Cảm biến",
        "quantities": [{"name": "soil_moisture", "unit": "%", "min": 0, "max": 100}],
    }
    values.update(overrides)
    return values


# --- device types -----------------------------------------------------------------------------------


def test_presets_are_valid_types() -> None:
    agency = AgencyFactory()
    soil, rain, valve = soil_moisture_type(agency), rain_gauge_type(agency), valve_type(agency)
    assert soil.quantity("soil_moisture")["unit"] == "%"
    assert rain.quantity("rainfall")["unit"] == "mm"
    assert valve.role == DeviceType.Role.ACTUATOR
    assert valve.command_names() == ["open", "close"]
    assert valve.max_run_s == 1800
    assert AuditEntry.objects.filter(action="sensors.device_type.create", agency=agency).count() == 3


@pytest.mark.parametrize(
    ("quantities", "fragment"),
    [
        ("soil", "must be a list"),
        ([], "at least one quantity"),
        (["soil"], "must be an object"),
        ([{"name": "Soil Moisture", "unit": "%"}], "lowercase letters"),
        ([{"name": "a"}, {"name": "a"}], "used twice"),
        ([{"name": "a", "unit": "deg C"}], "SenML unit"),
        ([{"name": "a", "min": "0"}], "min must be a number"),
        ([{"name": "a", "max": float("nan")}], "max must be a number"),
        ([{"name": "a", "min": 5, "max": 5}], "min must be below max"),
        ([{"name": "a", "units": "%"}], "unknown key units"),
        ([{"name": "a", "label_vi": 3}], "label_vi must be text"),
    ],
)
def test_bad_quantities_are_refused_with_a_stable_code(quantities: Any, fragment: str) -> None:
    with pytest.raises(ApplicationError) as caught:
        services.device_type_create(**_type_args(quantities=quantities))
    assert caught.value.code == "sensors.invalid_quantities"
    assert caught.value.status == 422
    assert fragment in caught.value.details["quantities"]
    assert not DeviceType.objects.exists()


@pytest.mark.parametrize(
    ("commands", "fragment"),
    [
        ({"open": {}}, "must be a list"),
        ([], "at least one command"),
        ([{"name": "open"}, {"name": "open"}], "used twice"),
        ([{"name": "open", "params": []}], "params must be an object"),
        ([{"name": "open", "params": {"Duration": {}}}], "parameter name"),
        ([{"name": "open", "params": {"duration_s": "seconds"}}], "must be an object"),
        ([{"name": "open", "params": {"duration_s": {"type": "float"}}}], "the type must be one of"),
        ([{"name": "open", "params": {"duration_s": {"min": 10, "max": 1}}}], "min must not be above max"),
        ([{"name": "open", "params": {"duration_s": {"required": "yes"}}}], "true or false"),
        ([{"name": "open", "verb": "x"}], "unknown key verb"),
    ],
)
def test_bad_commands_are_refused_with_a_stable_code(commands: Any, fragment: str) -> None:
    with pytest.raises(ApplicationError) as caught:
        services.device_type_create(**_type_args(role="actuator", quantities=[], commands=commands))
    assert caught.value.code == "sensors.invalid_commands"
    assert fragment in caught.value.details["commands"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code", "Soil X"),
        ("name_vi", "   "),
        ("role", "robot"),
        ("expected_interval_s", 0),
        ("rate_per_minute", "600"),
        ("max_run_s", 10**9),
        ("command_retries", 11),
    ],
)
def test_bad_type_fields_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(ApplicationError) as caught:
        services.device_type_create(**_type_args(**{field: value}))
    assert caught.value.code == "sensors.invalid_device_type"
    assert field in caught.value.details


def test_a_type_code_is_taken_once() -> None:
    services.device_type_create(**_type_args())
    with pytest.raises(ApplicationError) as caught:
        services.device_type_create(**_type_args())
    assert (caught.value.code, caught.value.status) == ("sensors.already_exists", 409)


def test_only_a_sensor_engineer_of_the_agency_creates_types() -> None:
    agency = AgencyFactory()
    with pytest.raises(PermissionDenied) as caught:
        services.device_type_create(**_type_args(agency=agency, actor=sensor_operator(agency)))
    assert caught.value.code == "missing_permission"
    with pytest.raises(PermissionDenied) as caught:
        services.device_type_create(**_type_args(agency=agency, actor=sensor_engineer(AgencyFactory())))
    assert caught.value.code == "sensors.other_agency"
    engineer = sensor_engineer(agency)
    kind = services.device_type_create(**_type_args(agency=agency, actor=engineer))
    entry = AuditEntry.objects.get(action="sensors.device_type.create")
    assert (entry.actor_id, entry.agency_id, entry.subject_id) == (engineer.user_id, agency.pk, str(kind.pk))


# --- registering ---------------------------------------------------------------------------------------


def test_register_a_device() -> None:
    kind = soil_moisture_type()
    engineer = sensor_engineer(kind.agency)
    device = services.device_register(
        agency=kind.agency,
        device_id="park-7-soil-01",
        name="  Soil   sensor 1 ",
        device_type=kind,
        group="park-7",
        district="Ba Đình",
        latitude=21.03,
        longitude=105.83,
        actor=engineer,
    )
    assert device.status == Device.Status.REGISTERED
    assert device.name == "Soil sensor 1"
    assert device.http_token_hash == ""
    assert AuditEntry.objects.filter(action="sensors.device.register", subject_id=str(device.pk)).exists()
    assert fake().clients == {}  # no credentials until provisioned


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("device_id", "Park 7/soil"),
        ("device_id", "ab"),
        ("device_id", "soil/+/#"),
        ("device_id", "-soil"),
        ("name", ""),
        ("group", "Park 7"),
        ("latitude", 91),
        ("longitude", float("inf")),
        ("latitude", "21"),
    ],
)
def test_bad_devices_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(ApplicationError) as caught:
        make_device(**{field: value})
    assert caught.value.code == "sensors.invalid_device"
    assert field in caught.value.details


def test_a_device_id_is_taken_once_and_a_type_must_be_the_agencys() -> None:
    kind = soil_moisture_type()
    make_device(kind, device_id="soil-1")
    with pytest.raises(ApplicationError) as caught:
        make_device(kind, device_id="soil-1")
    assert caught.value.code == "sensors.already_exists"
    with pytest.raises(ApplicationError) as caught:
        make_device(kind, device_id="soil-2", agency=AgencyFactory())
    assert caught.value.code == "sensors.invalid_device"
    assert "device_type" in caught.value.details


def test_officers_without_sensor_manage_cannot_register() -> None:
    kind = soil_moisture_type()
    for officer in (
        sensor_operator(kind.agency),
        make_officer(agency=kind.agency, roles=("agency_admin",)),
        make_officer(agency=kind.agency, roles=("sensor_engineer",), active=False),
    ):
        with pytest.raises(PermissionDenied):
            make_device(kind, actor=officer)
    assert not Device.objects.exists()


# --- credentials ---------------------------------------------------------------------------------------


def test_provisioning_shows_secrets_once_and_stores_only_hashes() -> None:
    kind = soil_moisture_type()
    device = make_device(kind, device_id="soil-1")
    engineer = sensor_engineer(kind.agency)
    credentials = services.device_provision(device=device, actor=engineer)
    device.refresh_from_db()

    assert credentials.device_id == credentials.mqtt_username == "soil-1"
    assert len(credentials.mqtt_password) >= 40 and len(credentials.http_token) == 64
    assert credentials.mqtt_password not in repr(credentials)
    assert credentials.http_token not in repr(credentials)
    assert device.status == Device.Status.ACTIVE
    assert device.credential_version == credentials.credential_version == 1
    assert device.credential_issued_at is not None
    assert device.http_token_hash and credentials.http_token not in device.http_token_hash
    assert fake().authenticate("soil-1", credentials.mqtt_password, client_id="soil-1")
    assert not fake().authenticate("soil-1", credentials.mqtt_password, client_id="someone-else")
    assert services.device_for_token(credentials.http_token) == device

    entry = AuditEntry.objects.get(action="sensors.device.provision")
    assert entry.actor_id == engineer.user_id
    stored = str(entry.details)
    assert credentials.mqtt_password not in stored and credentials.http_token not in stored


def test_a_device_may_use_only_its_own_topics() -> None:
    _device, credentials = make_provisioned_device(device_id="soil-1")
    make_provisioned_device(device_id="soil-2")
    broker = fake()
    assert broker.allows("soil-1", "publishClientSend", senml_topic("soil-1"))
    assert broker.allows("soil-1", "publishClientSend", "civicore/v1/devices/soil-1/acks")
    assert broker.allows("soil-1", "subscribe", commands_topic("soil-1"))
    assert broker.allows("soil-1", "publishClientReceive", commands_topic("soil-1"))
    assert not broker.allows("soil-1", "publishClientSend", senml_topic("soil-2"))
    assert not broker.allows("soil-1", "publishClientSend", commands_topic("soil-1"))
    assert not broker.allows("soil-1", "subscribe", commands_topic("soil-2"))
    assert not broker.allows("soil-1", "subscribe", "civicore/v1/devices/+/commands")
    assert not broker.allows("soil-1", "subscribe", "#")
    assert not broker.allows("soil-1", "publishClientReceive", senml_topic("soil-2"))


def test_provisioning_twice_is_refused() -> None:
    device, _credentials = make_provisioned_device()
    with pytest.raises(ApplicationError) as caught:
        services.device_provision(device=device)
    assert caught.value.code == "sensors.already_provisioned"


def test_rotation_makes_the_old_secrets_useless() -> None:
    device, old = make_provisioned_device(device_id="soil-1")
    new = services.device_rotate_credentials(device=device)
    device.refresh_from_db()
    assert device.credential_version == new.credential_version == 2
    assert new.mqtt_password != old.mqtt_password and new.http_token != old.http_token
    assert not fake().authenticate("soil-1", old.mqtt_password)
    assert fake().authenticate("soil-1", new.mqtt_password)
    assert services.device_for_token(old.http_token) is None
    assert services.device_for_token(new.http_token) == device
    assert AuditEntry.objects.filter(action="sensors.device.rotate").count() == 1


def test_revoking_cuts_the_device_off_in_the_broker_and_over_https() -> None:
    device, credentials = make_provisioned_device(device_id="soil-1")
    services.device_revoke(device=device, reason="stolen from the park")
    device.refresh_from_db()
    assert device.status == Device.Status.REVOKED
    assert fake().revoked == ["soil-1"]
    assert not fake().authenticate("soil-1", credentials.mqtt_password)
    assert services.device_for_token(credentials.http_token) is None
    assert services.revoked_device_for_token(credentials.http_token) == device
    assert AuditEntry.objects.get(action="sensors.device.revoke").details["reason"] == "stolen from the park"
    with pytest.raises(ApplicationError) as caught:
        services.device_revoke(device=device)
    assert caught.value.code == "sensors.already_revoked"
    with pytest.raises(ApplicationError) as caught:
        services.device_rotate_credentials(device=device)
    assert caught.value.code == "sensors.not_active"


def test_a_revoked_device_can_be_provisioned_again_with_new_secrets() -> None:
    device, old = make_provisioned_device(device_id="soil-1")
    services.device_revoke(device=device)
    new = services.device_provision(device=device)
    assert fake().authenticate("soil-1", new.mqtt_password)
    assert services.device_for_token(new.http_token) is not None
    assert services.device_for_token(old.http_token) is None
    assert services.revoked_device_for_token(old.http_token) is None


def test_credentials_of_another_agencys_device_cannot_be_touched() -> None:
    device, credentials = make_provisioned_device()
    outsider = sensor_engineer(AgencyFactory())
    for operation in (services.device_rotate_credentials, services.device_revoke):
        with pytest.raises(PermissionDenied) as caught:
            operation(device=device, actor=outsider)
        assert caught.value.code == "sensors.other_agency"
    assert fake().authenticate(device.device_id, credentials.mqtt_password)


def test_a_broker_failure_changes_nothing() -> None:
    device = make_device()
    fake().unavailable = True
    with pytest.raises(ApplicationError) as caught:
        services.device_provision(device=device)
    assert caught.value.code == "sensors.broker_unavailable"
    device.refresh_from_db()
    assert (device.status, device.credential_version, device.http_token_hash) == ("registered", 0, "")
    assert not AuditEntry.objects.filter(action="sensors.device.provision").exists()


@pytest.mark.parametrize("token", ["", "x", "a" * 64, "a" * 5000])
def test_unknown_tokens_find_no_device(token: str) -> None:
    make_provisioned_device()
    assert services.device_for_token(token) is None
    assert services.revoked_device_for_token(token) is None
