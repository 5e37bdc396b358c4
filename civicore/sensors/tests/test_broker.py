"""Devices in a real Mosquitto (dynamic-security plugin): each may publish only its own readings
and acknowledgements and hear only its own commands; rotation and revocation take effect at once;
the platform receives readings through shared subscriptions and publishes commands."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from civicore.sensors import broker as broker_module
from civicore.sensors import mosquitto as mosquitto_config
from civicore.sensors import services
from civicore.sensors.broker import (
    BrokerError,
    BrokerUnavailable,
    DynsecBroker,
    InMemoryBroker,
    acks_topic,
    commands_topic,
    senml_topic,
)
from civicore.sensors.models import Device
from civicore.sensors.tests.factories import make_device, make_provisioned_device

pytestmark = pytest.mark.django_db

NOT_AUTHORIZED = "Not authorized"


def _unique(prefix: str = "dev") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _pack(device_id: str, value: float = 21.5) -> bytes:
    return json.dumps([{"bn": f"{device_id}:", "n": "soil_moisture", "u": "%", "v": value}]).encode()


@pytest.fixture
def platform(mosquitto: Any, mqtt_connect: Any) -> Any:
    """The platform, as ingestion connects: a shared subscription to every device's readings and
    acknowledgements, in a group of this test's own."""
    client = mqtt_connect(mosquitto.platform_username, mosquitto.platform_password)
    assert not client.connack.is_failure
    group = _unique("group")
    assert not client.subscribe(f"$share/{group}/{senml_topic('+')}").is_failure
    assert not client.subscribe(f"$share/{group}/{acks_topic('+')}").is_failure
    return client


def _topics(client: Any) -> list[tuple[str, bytes]]:
    return [(message.topic, message.payload) for message in client.messages]


# --- provisioning -------------------------------------------------------------------------------------


def test_a_provisioned_device_publishes_readings_the_platform_receives(
    dynsec: DynsecBroker, mosquitto: Any, mqtt_connect: Any, platform: Any
) -> None:
    device, credentials = make_provisioned_device(device_id=_unique())
    client = mqtt_connect(credentials.mqtt_username, credentials.mqtt_password, client_id=device.device_id)
    assert not client.connack.is_failure, client.connack

    reason = client.publish(senml_topic(device.device_id), _pack(device.device_id))
    assert not reason.is_failure, reason
    ack = json.dumps({"id": str(uuid.uuid4()), "status": "ok"}).encode()
    assert not client.publish(acks_topic(device.device_id), ack).is_failure

    assert platform.wait_for(lambda: len(platform.messages) == 2)
    assert _topics(platform) == [
        (senml_topic(device.device_id), _pack(device.device_id)),
        (acks_topic(device.device_id), ack),
    ]


def test_a_device_must_connect_with_its_own_client_id(dynsec: DynsecBroker, mqtt_connect: Any) -> None:
    device, credentials = make_provisioned_device(device_id=_unique())
    other = make_device(device_id=_unique())
    # Taking another device's client id would throw that device off the broker.
    refused = mqtt_connect(credentials.mqtt_username, credentials.mqtt_password, client_id=other.device_id)
    assert refused.connack.is_failure
    assert str(refused.connack) == NOT_AUTHORIZED


def test_a_device_cannot_publish_to_another_devices_topics(
    dynsec: DynsecBroker, mqtt_connect: Any, platform: Any
) -> None:
    intruder, intruder_credentials = make_provisioned_device(device_id=_unique())
    victim, _victim_credentials = make_provisioned_device(device_id=_unique())
    client = mqtt_connect(
        intruder_credentials.mqtt_username, intruder_credentials.mqtt_password, client_id=intruder.device_id
    )

    for topic in (
        senml_topic(victim.device_id),
        acks_topic(victim.device_id),
        commands_topic(victim.device_id),
        commands_topic(intruder.device_id),  # nor send itself commands
        "civicore/v1/anything",
    ):
        reason = client.publish(topic, _pack(victim.device_id, 99.0))
        assert str(reason) == NOT_AUTHORIZED, topic
    # A message it may send, after the refused ones: once the platform has it, nothing sent
    # before it can still be on its way.
    assert not client.publish(senml_topic(intruder.device_id), _pack(intruder.device_id)).is_failure
    assert platform.wait_for(lambda: len(platform.messages) >= 1)
    time.sleep(0.2)
    assert _topics(platform) == [(senml_topic(intruder.device_id), _pack(intruder.device_id))]


def test_a_device_hears_only_its_own_commands(dynsec: DynsecBroker, mqtt_connect: Any) -> None:
    device, credentials = make_provisioned_device(device_id=_unique())
    neighbour, neighbour_credentials = make_provisioned_device(device_id=_unique())
    client = mqtt_connect(credentials.mqtt_username, credentials.mqtt_password, client_id=device.device_id)
    for topic in (
        commands_topic(neighbour.device_id),
        "civicore/v1/devices/+/commands",
        "civicore/v1/devices/#",
        "#",
        senml_topic(neighbour.device_id),
        f"$share/g/{commands_topic(neighbour.device_id)}",
    ):
        assert str(client.subscribe(topic)) == NOT_AUTHORIZED, topic
    assert not client.subscribe(commands_topic(device.device_id)).is_failure
    neighbour_client = mqtt_connect(
        neighbour_credentials.mqtt_username,
        neighbour_credentials.mqtt_password,
        client_id=neighbour.device_id,
    )
    assert not neighbour_client.subscribe(commands_topic(neighbour.device_id)).is_failure

    for target in (neighbour, device):
        command = json.dumps({"id": str(uuid.uuid4()), "name": "open", "params": {}, "expires": 0})
        broker_module.broker().publish(commands_topic(target.device_id), command.encode(), qos=1)
    assert client.wait_for(lambda: len(client.messages) == 1)
    assert neighbour_client.wait_for(lambda: len(neighbour_client.messages) == 1)
    time.sleep(0.2)
    assert [message.topic for message in client.messages] == [commands_topic(device.device_id)]
    assert [message.topic for message in neighbour_client.messages] == [commands_topic(neighbour.device_id)]


def test_the_fake_broker_decides_as_mosquitto_does(dynsec: DynsecBroker, mqtt_connect: Any) -> None:
    device, credentials = make_provisioned_device(device_id=_unique())
    other = _unique()
    fake = InMemoryBroker()
    fake.provision(device_id=device.device_id, password=credentials.mqtt_password)
    client = mqtt_connect(credentials.mqtt_username, credentials.mqtt_password, client_id=device.device_id)
    publishes = [
        senml_topic(device.device_id),
        acks_topic(device.device_id),
        commands_topic(device.device_id),
        senml_topic(other),
        f"civicore/v1/devices/{device.device_id}/senml/extra",
        "$SYS/broker/uptime",
    ]
    subscriptions = [
        commands_topic(device.device_id),
        commands_topic(other),
        "civicore/v1/devices/+/commands",
        senml_topic(device.device_id),
        "#",
        "$SYS/#",
    ]
    for topic in publishes:
        real = not client.publish(topic, b"[]").is_failure
        assert fake.allows(device.device_id, "publishClientSend", topic) == real, topic
    for topic in subscriptions:
        real = not client.subscribe(topic).is_failure
        assert fake.allows(device.device_id, "subscribe", topic) == real, topic


# --- rotation and revocation ----------------------------------------------------------------------------


def test_rotation_refuses_the_old_password_and_drops_its_connection(
    dynsec: DynsecBroker, mqtt_connect: Any
) -> None:
    device, old = make_provisioned_device(device_id=_unique())
    connected = mqtt_connect(old.mqtt_username, old.mqtt_password, client_id=device.device_id)
    assert not connected.connack.is_failure

    new = services.device_rotate_credentials(device=device)

    assert connected.wait_for(lambda: bool(connected.disconnects))
    refused = mqtt_connect(old.mqtt_username, old.mqtt_password, client_id=device.device_id)
    assert refused.connack.is_failure
    accepted = mqtt_connect(new.mqtt_username, new.mqtt_password, client_id=device.device_id)
    assert not accepted.connack.is_failure
    assert not accepted.publish(senml_topic(device.device_id), _pack(device.device_id)).is_failure


def test_revoking_disconnects_a_connected_device_at_once(dynsec: DynsecBroker, mqtt_connect: Any) -> None:
    device, credentials = make_provisioned_device(device_id=_unique())
    client = mqtt_connect(credentials.mqtt_username, credentials.mqtt_password, client_id=device.device_id)
    assert client.connected

    started = time.monotonic()
    services.device_revoke(device=device)
    assert client.wait_for(lambda: bool(client.disconnects), timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert str(client.disconnects[0]) == "Administrative action"

    again = mqtt_connect(credentials.mqtt_username, credentials.mqtt_password, client_id=device.device_id)
    assert again.connack.is_failure
    device.refresh_from_db()
    assert device.status == Device.Status.REVOKED


def test_provisioning_a_revoked_device_again_gives_it_back_its_topics(
    dynsec: DynsecBroker, mqtt_connect: Any
) -> None:
    device, old = make_provisioned_device(device_id=_unique())
    services.device_revoke(device=device)
    new = services.device_provision(device=device)
    assert mqtt_connect(old.mqtt_username, old.mqtt_password, client_id=device.device_id).connack.is_failure
    client = mqtt_connect(new.mqtt_username, new.mqtt_password, client_id=device.device_id)
    assert not client.connack.is_failure
    assert not client.publish(senml_topic(device.device_id), _pack(device.device_id)).is_failure


# --- the platform and the plugin ---------------------------------------------------------------------------


def test_mosquitto_pub_from_a_device_reaches_the_platform(
    dynsec: DynsecBroker, mosquitto: Any, platform: Any
) -> None:
    if shutil.which("mosquitto_pub") is None:
        pytest.skip("mosquitto_pub is not installed (apt-get install mosquitto-clients)")
    device, credentials = make_provisioned_device(device_id=_unique())
    payload = _pack(device.device_id, 33.0).decode()
    result = subprocess.run(
        [
            "mosquitto_pub",
            "-h", mosquitto.host,
            "-p", str(mosquitto.port),
            "-V", "mqttv5",
            "-i", device.device_id,
            "-u", credentials.mqtt_username,
            "-P", credentials.mqtt_password,
            "-q", "1",
            "-t", senml_topic(device.device_id),
            "-m", payload,
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert platform.wait_for(lambda: len(platform.messages) == 1)
    assert _topics(platform) == [(senml_topic(device.device_id), payload.encode())]


def test_the_platform_cannot_publish_readings_in_a_devices_name(dynsec: DynsecBroker) -> None:
    device, _credentials = make_provisioned_device(device_id=_unique())
    with pytest.raises(BrokerError) as caught:
        dynsec.publish(senml_topic(device.device_id), _pack(device.device_id))
    assert NOT_AUTHORIZED in caught.value.message


def test_the_platform_publisher_is_shared_by_threads(dynsec: DynsecBroker, mqtt_connect: Any) -> None:
    device, credentials = make_provisioned_device(device_id=_unique())
    client = mqtt_connect(credentials.mqtt_username, credentials.mqtt_password, client_id=device.device_id)
    assert not client.subscribe(commands_topic(device.device_id)).is_failure
    errors: list[BaseException] = []

    def send(number: int) -> None:
        try:
            for index in range(10):
                body = json.dumps({"id": f"{number}-{index}", "name": "open", "params": {}, "expires": 0})
                dynsec.publish(commands_topic(device.device_id), body.encode())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert client.wait_for(lambda: len(client.messages) == 80, timeout=10)
    assert len({json.loads(message.payload)["id"] for message in client.messages}) == 80


def test_the_platform_publisher_reconnects_after_losing_the_broker(
    dynsec: DynsecBroker, mosquitto: Any, mqtt_connect: Any
) -> None:
    device, credentials = make_provisioned_device(device_id=_unique())
    client = mqtt_connect(credentials.mqtt_username, credentials.mqtt_password, client_id=device.device_id)
    assert not client.subscribe(commands_topic(device.device_id)).is_failure
    dynsec.publish(commands_topic(device.device_id), b'{"id": "before"}')
    # Disabling a client cuts its connections: the platform's publisher is thrown off.
    mosquitto.control(
        [
            {"command": "disableClient", "username": mosquitto.platform_username},
            {"command": "enableClient", "username": mosquitto.platform_username},
        ]
    )
    dynsec.publish(commands_topic(device.device_id), b'{"id": "after"}')
    assert client.wait_for(lambda: len(client.messages) == 2)
    assert [json.loads(message.payload)["id"] for message in client.messages] == ["before", "after"]


def test_the_admin_stands_in_for_the_platform_without_a_platform_password(
    dynsec: DynsecBroker, mosquitto: Any, mqtt_connect: Any, settings: Any
) -> None:
    settings.MQTT_PLATFORM_PASSWORD = ""
    admin_as_platform = broker_module.broker()
    assert isinstance(admin_as_platform, DynsecBroker)
    assert broker_module.platform_credentials() == (mosquitto.admin_username, mosquitto.admin_password)
    device, credentials = make_provisioned_device(device_id=_unique())
    client = mqtt_connect(credentials.mqtt_username, credentials.mqtt_password, client_id=device.device_id)
    assert not client.subscribe(commands_topic(device.device_id)).is_failure
    admin_as_platform.publish(commands_topic(device.device_id), b'{"id": "from-admin"}')
    assert client.wait_for(lambda: len(client.messages) == 1)
    ingest = mqtt_connect(mosquitto.admin_username, mosquitto.admin_password)
    assert not ingest.subscribe(f"$share/{_unique('g')}/{senml_topic('+')}").is_failure


def test_the_platform_role_is_given_back_to_the_admin_when_missing(
    dynsec: DynsecBroker, mosquitto: Any
) -> None:
    admin = mosquitto.admin_username

    def change_roles(command: str) -> None:
        # Changing a client's roles disconnects it, this connection too: the answer may be lost.
        try:
            mosquitto.control([{"command": command, "username": admin, "rolename": "civicore-platform"}])
        except BrokerUnavailable:
            pass

    def admin_roles() -> set[str]:
        client = mosquitto.control([{"command": "getClient", "username": admin}])[0]["data"]["client"]
        return {role["rolename"] for role in client["roles"]}

    change_roles("removeClientRole")
    try:
        assert admin_roles() == {"admin"}
        fresh = DynsecBroker(mosquitto.url, admin_username=admin, admin_password=mosquitto.admin_password)
        fresh._grant_platform_role_to_admin()
        assert admin_roles() == {"admin", "civicore-platform"}
    finally:
        if "civicore-platform" not in admin_roles():
            change_roles("addClientRole")


def test_the_brokers_own_error_text_is_reported(dynsec: DynsecBroker) -> None:
    with pytest.raises(BrokerError) as caught:
        dynsec.set_password(device_id=_unique(), password="x" * 20)
    assert caught.value.code == "sensors.broker_error"
    assert "Client not found" in caught.value.message
    assert caught.value.details == {"command": "setClientPassword", "error": "Client not found"}


def test_ping_says_whether_the_broker_answers_the_admin(mosquitto: Any) -> None:
    assert DynsecBroker(
        mosquitto.url, admin_username="civicore-admin", admin_password=mosquitto.admin_password
    ).ping()
    assert not DynsecBroker(mosquitto.url, admin_username="civicore-admin", admin_password="wrong").ping()
    with socket_closed() as port:
        assert not DynsecBroker(f"mqtt://127.0.0.1:{port}", admin_username="a", admin_password="b").ping()


class socket_closed:  # noqa: N801 - used as a context manager
    """A port nothing listens on."""

    def __enter__(self) -> int:
        import socket

        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        return self.port

    def __exit__(self, *exc: object) -> None:
        return None


def test_an_unreachable_broker_fails_provisioning_cleanly(settings: Any) -> None:
    with socket_closed() as port:
        settings.MQTT_URL = f"mqtt://127.0.0.1:{port}"
        settings.SENSOR_BROKER = "civicore.sensors.broker.DynsecBroker"
        device = make_device(device_id=_unique())
        with pytest.raises(BrokerError) as caught:
            services.device_provision(device=device)
    assert caught.value.code == "sensors.broker_unavailable"
    device.refresh_from_db()
    assert device.status == Device.Status.REGISTERED


# --- configuration --------------------------------------------------------------------------------------


def test_broker_config_writes_the_settings_the_platform_relies_on(tmp_path: Path) -> None:
    config = mosquitto_config.broker_config_write(
        directory=tmp_path, port=18830, admin_username="boss", admin_password="secret-password"
    )
    text = config.conf.read_text()
    lines = set(text.splitlines())
    for expected in (
        "per_listener_settings false",
        "listener 18830 127.0.0.1",
        "allow_anonymous false",
        f"plugin_opt_config_file {tmp_path.resolve() / 'dynamic-security.json'}",
        "max_packet_size 262144",
        "persistence true",
        f"persistence_location {tmp_path.resolve()}",
    ):
        assert expected in lines, expected
    assert any(
        line.startswith("plugin /") and line.endswith("mosquitto_dynamic_security.so") for line in lines
    )
    assert int(next(line for line in lines if line.startswith("max_queued_messages ")).split()[1]) >= 100_000
    assert int(next(line for line in lines if line.startswith("max_inflight_messages ")).split()[1]) >= 5_000

    dynsec_file = json.loads(config.dynsec.read_text())
    admin = next(client for client in dynsec_file["clients"] if client["username"] == "boss")
    assert "secret-password" not in config.dynsec.read_text()
    assert {role["rolename"] for role in admin["roles"]} == {"admin", "civicore-platform"}
    assert config.dynsec.stat().st_mode & 0o077 == 0

    # Written again, the configuration is renewed but the clients (devices) are kept.
    before = config.dynsec.read_text()
    again = mosquitto_config.broker_config_write(
        directory=tmp_path, port=18831, admin_username="boss", admin_password="secret-password"
    )
    assert not again.dynsec_created
    assert config.dynsec.read_text() == before
    assert "listener 18831 127.0.0.1" in again.conf.read_text()


def test_broker_config_needs_an_admin_password(tmp_path: Path) -> None:
    with pytest.raises(mosquitto_config.BrokerConfigError):
        mosquitto_config.broker_config_write(directory=tmp_path, admin_username="boss", admin_password="")


def test_the_sensors_command_writes_the_config_and_manages_devices(
    tmp_path: Path, settings: Any, dynsec: DynsecBroker, mqtt_connect: Any
) -> None:
    out = StringIO()
    call_command("sensors", "broker-config", "--dir", str(tmp_path / "broker"), "--port", "18999", stdout=out)
    assert "mosquitto -c" in out.getvalue()
    assert (tmp_path / "broker" / "mosquitto.conf").is_file()

    device = make_device(device_id=_unique())
    out = StringIO()
    call_command("sensors", "provision", device.device_id, stdout=out)
    password = next(line.split()[-1] for line in out.getvalue().splitlines() if "MQTT password" in line)
    client = mqtt_connect(device.device_id, password, client_id=device.device_id)
    assert not client.connack.is_failure

    call_command("sensors", "rotate", device.device_id, stdout=StringIO())
    assert client.wait_for(lambda: bool(client.disconnects))
    call_command("sensors", "revoke", device.device_id, stdout=StringIO())
    device.refresh_from_db()
    assert device.status == Device.Status.REVOKED
    with pytest.raises(CommandError):
        call_command("sensors", "revoke", device.device_id, stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("sensors", "provision", "no-such-device", stdout=StringIO())
