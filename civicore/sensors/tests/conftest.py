"""Fixtures for sensor tests: a real Mosquitto with the dynamic-security plugin, MQTT clients that
clean up after themselves, and a fresh in-memory broker for every test.

    def test_x(mosquitto, dynsec, mqtt_connect):   # dynsec: settings pointed at the real broker
        device, credentials = make_provisioned_device()
        client = mqtt_connect(credentials.mqtt_username, credentials.mqtt_password,
                              client_id=credentials.device_id)
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from civicore.sensors import broker as broker_module
from civicore.sensors.mosquitto import broker_config_write

MOSQUITTO = "/usr/sbin/mosquitto"
ADMIN_USERNAME = "civicore-admin"
ADMIN_PASSWORD = "test-admin-password-0123456789"
PLATFORM_USERNAME = "civicore-platform"
PLATFORM_PASSWORD = "test-platform-password-0123456789"
START_TIMEOUT_S = 15.0


@dataclass
class Mosquitto:
    """A running broker of this test session."""

    host: str
    port: int
    admin_username: str
    admin_password: str
    platform_username: str
    platform_password: str
    directory: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    log: Path = field(repr=False)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def control(self, commands: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
        """Send dynamic-security commands as the admin."""
        admin = broker_module.DynsecBroker(
            self.url, admin_username=self.admin_username, admin_password=self.admin_password
        )
        return admin.control(commands, **kwargs)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(directory: Path) -> Mosquitto:
    port = _free_port()
    config = broker_config_write(
        directory=directory,
        port=port,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        # As root, Mosquitto would switch to its own account, which cannot write this directory.
        user=getpass.getuser() if os.geteuid() == 0 else None,
    )
    log = directory / "mosquitto.log"
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - the test's own broker
            [MOSQUITTO, "-c", str(config.conf)], stdout=out, stderr=subprocess.STDOUT
        )
    broker = Mosquitto(
        host="127.0.0.1",
        port=port,
        admin_username=ADMIN_USERNAME,
        admin_password=ADMIN_PASSWORD,
        platform_username=PLATFORM_USERNAME,
        platform_password=PLATFORM_PASSWORD,
        directory=directory,
        process=process,
        log=log,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            broker.control([{"command": "getDefaultACLAccess"}])
            return broker
        except broker_module.BrokerError:
            time.sleep(0.1)
    _stop(process)
    raise RuntimeError(f"Mosquitto did not start on port {port}:\n{broker.log_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A real Mosquitto 2 with the dynamic-security plugin on a free port of 127.0.0.1, set up
    as `civicore sensors broker-config` sets one up, plus a `civicore-platform` client."""
    if not Path(MOSQUITTO).is_file():
        pytest.skip(f"{MOSQUITTO} is not installed (apt-get install mosquitto mosquitto-clients)")
    if shutil.which("mosquitto_ctrl") is None:
        pytest.skip("mosquitto_ctrl is not installed (apt-get install mosquitto-clients)")
    broker = None
    for attempt in range(3):  # another process may take the free port before the broker does
        directory = tmp_path_factory.mktemp(f"mosquitto-{attempt}")
        try:
            broker = _start(directory)
            break
        except RuntimeError:
            if attempt == 2:
                raise
    assert broker is not None
    try:
        broker.control(
            [
                {
                    "command": "createClient",
                    "username": PLATFORM_USERNAME,
                    "password": PLATFORM_PASSWORD,
                    "roles": [{"rolename": broker_module.PLATFORM_ROLE, "priority": 1}],
                }
            ]
        )
        yield broker
    finally:
        _stop(broker.process)


@pytest.fixture
def dynsec(mosquitto: Mosquitto, settings: Any) -> Iterator[broker_module.DynsecBroker]:
    """Settings pointed at the real broker: `broker()` is a DynsecBroker for this test, and the
    platform connects as the `civicore-platform` client."""
    settings.MQTT_URL = mosquitto.url
    settings.MQTT_ADMIN_USERNAME = mosquitto.admin_username
    settings.MQTT_ADMIN_PASSWORD = mosquitto.admin_password
    settings.MQTT_PLATFORM_USERNAME = mosquitto.platform_username
    settings.MQTT_PLATFORM_PASSWORD = mosquitto.platform_password
    settings.SENSOR_BROKER = "civicore.sensors.broker.DynsecBroker"
    broker_module.reset_broker()
    configured = broker_module.broker()
    assert isinstance(configured, broker_module.DynsecBroker)
    yield configured
    broker_module.reset_broker()


@pytest.fixture(autouse=True)
def _fresh_broker() -> Iterator[None]:
    """Each test starts with the broker its settings name, made anew (an empty in-memory one by
    default)."""
    broker_module.reset_broker()
    yield
    broker_module.reset_broker()


@pytest.fixture(autouse=True)
def _fresh_partitions() -> None:
    """Daily partitions created in an earlier test's transaction were rolled back with it."""
    from civicore.sensors import storage

    storage.forget_partitions()


# --- MQTT clients -----------------------------------------------------------------------------------


@dataclass
class TestClient:
    """A paho MQTT v5 client with its network thread running and everything it heard kept."""

    client: Any
    connack: Any = None
    messages: list[Any] = field(default_factory=list)
    published: dict[int, Any] = field(default_factory=dict)
    subscribed: dict[int, list[Any]] = field(default_factory=dict)
    disconnects: list[Any] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    __test__ = False  # not a test class, whatever its name

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 5.0) -> Any:
        """Publish and return the broker's reason code (PUBACK for QoS 1)."""
        info = self.client.publish(topic, payload, qos=qos)
        assert self.wait_for(lambda: info.mid in self.published, timeout), "no PUBACK"
        return self.published[info.mid]

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> Any:
        """Subscribe and return the broker's reason code (SUBACK)."""
        _result, mid = self.client.subscribe(topic, qos=qos)
        assert self.wait_for(lambda: mid in self.subscribed, timeout), "no SUBACK"
        return self.subscribed[mid][0]

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected())


@pytest.fixture
def mqtt_connect(mosquitto: Mosquitto) -> Iterator[Callable[..., TestClient]]:
    """`mqtt_connect(username, password, client_id=...)` connects to the session's broker and
    waits for CONNACK (`.connack` says whether it was accepted); all are closed afterwards."""
    made: list[TestClient] = []

    def connect(
        username: str, password: str, *, client_id: str | None = None, clean_start: bool = True
    ) -> TestClient:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{os.urandom(4).hex()}",
            protocol=mqtt.MQTTv5,
        )
        client.username_pw_set(username, password)
        state = TestClient(client=client)

        def notify(update: Callable[[], None]) -> None:
            with state.changed:
                update()
                state.changed.notify_all()

        client.on_connect = lambda c, u, flags, reason, props: notify(
            lambda: setattr(state, "connack", reason)
        )
        client.on_message = lambda c, u, message: notify(lambda: state.messages.append(message))
        client.on_publish = lambda c, u, mid, reason, props: notify(
            lambda: state.published.__setitem__(mid, reason)
        )
        client.on_subscribe = lambda c, u, mid, reasons, props: notify(
            lambda: state.subscribed.__setitem__(mid, list(reasons))
        )
        client.on_disconnect = lambda c, u, flags, reason, props: notify(
            lambda: state.disconnects.append(reason)
        )
        client.connect(mosquitto.host, mosquitto.port, keepalive=30, clean_start=clean_start)
        client.loop_start()
        made.append(state)
        assert state.wait_for(lambda: state.connack is not None), "no CONNACK"
        if state.connack.is_failure:
            client.loop_stop()  # a refused client would otherwise keep retrying
        return state

    yield connect
    for state in made:
        try:
            state.client.disconnect()
        finally:
            state.client.loop_stop()
