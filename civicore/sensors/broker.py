"""Devices' credentials and permissions in the MQTT broker, and the platform publishing commands.

Each device is a broker client named by its device id, bound to that client id, with a role of its
own: publish only to its `senml` and `acks` topics, subscribe to and receive only its `commands`
topic. Revoking disables the client, which cuts a connected device off at once. The platform's
own connections hold the `civicore-platform` role (shared subscriptions to every device's readings
and acknowledgements, publishing commands), as the client MQTT_PLATFORM_USERNAME when
MQTT_PLATFORM_PASSWORD is set, otherwise as the admin, to whom the role is also granted.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from paho.mqtt.enums import CallbackAPIVersion

from civicore.core.errors import ApplicationError

logger = logging.getLogger(__name__)

TOPIC_ROOT = "civicore/v1/devices"
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = "$CONTROL/dynamic-security/v1/response"
PLATFORM_ROLE = "civicore-platform"
DEVICE_ROLE_PREFIX = "civicore-device-"
# Allow rules are looked at before the catch-all denials (dynsec: higher priority first).
_ALLOW, _DENY = 10, 0
# What the broker allows when no rule of a client's roles matches (Mosquitto's own defaults,
# which `mosquitto_ctrl dynsec init` writes): sending and subscribing are closed.
DEFAULT_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": True,
    "subscribe": False,
    "unsubscribe": True,
}
PUBLISH_TIMEOUT_S = 5.0
CONTROL_TIMEOUT_S = 10.0


def senml_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/{device_id}/senml"


def acks_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/{device_id}/acks"


def commands_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/{device_id}/commands"


def device_role(device_id: str) -> str:
    return f"{DEVICE_ROLE_PREFIX}{device_id}"


def device_acls(device_id: str) -> list[dict[str, Any]]:
    """A device's whole permission: its own three topics, and an explicit denial of the rest
    (so the device stays shut in even if the broker's default access is ever opened)."""
    return [
        _acl("publishClientSend", senml_topic(device_id), True),
        _acl("publishClientSend", acks_topic(device_id), True),
        # Literal: the exact topic only, never a filter with wildcards that covers it.
        _acl("subscribeLiteral", commands_topic(device_id), True),
        _acl("publishClientReceive", commands_topic(device_id), True),
        _acl("publishClientSend", "#", False),
        _acl("subscribePattern", "#", False),
        _acl("publishClientReceive", "#", False),
    ]


def platform_acls() -> list[dict[str, Any]]:
    readings, acks, commands = senml_topic("+"), acks_topic("+"), commands_topic("+")
    return [
        _acl("subscribePattern", f"$share/+/{readings}", True),
        _acl("subscribePattern", f"$share/+/{acks}", True),
        _acl("subscribePattern", readings, True),
        _acl("subscribePattern", acks, True),
        _acl("publishClientReceive", readings, True),
        _acl("publishClientReceive", acks, True),
        _acl("publishClientSend", commands, True),
    ]


def _acl(acltype: str, topic: str, allow: bool) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "priority": _ALLOW if allow else _DENY, "allow": allow}


# --- errors ----------------------------------------------------------------------------------------


class BrokerError(ApplicationError):
    """The MQTT broker refused the request."""

    code = "sensors.broker_error"
    status = 502


class BrokerUnavailable(BrokerError):
    """The MQTT broker cannot be reached."""

    code = "sensors.broker_unavailable"
    status = 503


# --- where the broker is, and who the platform is there ----------------------------------------------


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool


def broker_address(url: str | None = None) -> BrokerAddress:
    """Host, port and TLS from MQTT_URL (`mqtt://host:1883` or `mqtts://host:8883`)."""
    parts = urlsplit(url if url is not None else settings.MQTT_URL)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise BrokerUnavailable(
            _("MQTT_URL must look like mqtt://host:1883 or mqtts://host:8883."), code="sensors.broker_url"
        )
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise BrokerUnavailable(_("MQTT_URL has an invalid port."), code="sensors.broker_url") from exc
    return BrokerAddress(parts.hostname, port, tls)


def platform_credentials(url: str | None = None) -> tuple[str, str]:
    """Who the platform's own connections log in as: the user named in MQTT_URL, else
    MQTT_PLATFORM_USERNAME when MQTT_PLATFORM_PASSWORD is set, else the admin."""
    parts = urlsplit(url if url is not None else settings.MQTT_URL)
    if parts.username:
        return unquote(parts.username), unquote(parts.password or "")
    if settings.MQTT_PLATFORM_PASSWORD:
        return settings.MQTT_PLATFORM_USERNAME, settings.MQTT_PLATFORM_PASSWORD
    return settings.MQTT_ADMIN_USERNAME, settings.MQTT_ADMIN_PASSWORD


# --- the interface ------------------------------------------------------------------------------


@runtime_checkable
class DeviceBroker(Protocol):
    def provision(self, *, device_id: str, password: str) -> None:
        """Create, or replace, the device's client and role."""

    def set_password(self, *, device_id: str, password: str) -> None:
        """A new password; a device connected with the old one is cut off."""

    def revoke(self, *, device_id: str) -> None:
        """Disable the device's client: cut off now, refused from now on."""

    def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        """Publish as the platform; returns once the broker has taken the message."""

    def ping(self) -> bool:
        """Whether the broker answers and accepts the admin."""


# --- ACL evaluation (the fake uses it the way Mosquitto's plugin does) -------------------------------


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching; `+` and `#` in `topic` itself are plain characters. As in MQTT, a
    wildcard at the first level never matches a topic that starts with `$`."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    wanted, levels = topic_filter.split("/"), topic.split("/")
    for index, part in enumerate(wanted):
        if part == "#":
            return True
        if index >= len(levels):
            return False
        if part != "+" and part != levels[index]:
            return False
    return len(wanted) == len(levels)


def acl_allows(roles: Iterable[Sequence[dict[str, Any]]], action: str, topic: str) -> bool:
    """Whether a client holding these roles' ACLs may do `action` (publishClientSend,
    publishClientReceive, subscribe, unsubscribe) on `topic`: the first matching rule by
    priority decides, else the broker's default."""
    if action in ("subscribe", "unsubscribe"):
        kinds = {f"{action}Literal": "literal", f"{action}Pattern": "pattern"}
    else:
        kinds = {action: "pattern"}
    rules = sorted(
        (acl for acls in roles for acl in acls if acl["acltype"] in kinds),
        key=lambda acl: -int(acl.get("priority", 0)),
    )
    for acl in rules:
        literal = kinds[acl["acltype"]] == "literal"
        if (acl["topic"] == topic) if literal else topic_matches(acl["topic"], topic):
            return bool(acl["allow"])
    return DEFAULT_ACCESS[action]


# --- the in-process fake --------------------------------------------------------------------------


@dataclass
class FakeClient:
    username: str
    password: str
    client_id: str
    roles: list[str]
    enabled: bool = True


@dataclass(frozen=True)
class Published:
    topic: str
    payload: bytes
    qos: int


@dataclass
class InMemoryBroker:
    """The broker kept in memory: what a test provisions, rotates, revokes and publishes can be
    read back, and `authenticate` / `allows` answer as Mosquitto with these clients would."""

    clients: dict[str, FakeClient] = field(default_factory=dict)
    roles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)
    # Set to make every call fail as an unreachable broker does.
    unavailable: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _check(self) -> None:
        if self.unavailable:
            raise BrokerUnavailable(_("The MQTT broker cannot be reached."))

    def provision(self, *, device_id: str, password: str) -> None:
        with self._lock:
            self._check()
            self.roles[device_role(device_id)] = device_acls(device_id)
            self.clients[device_id] = FakeClient(device_id, password, device_id, [device_role(device_id)])

    def set_password(self, *, device_id: str, password: str) -> None:
        with self._lock:
            self._check()
            client = self.clients.get(device_id)
            if client is None:
                raise BrokerError(_("The broker has no client %(name)s.") % {"name": device_id})
            client.password = password

    def revoke(self, *, device_id: str) -> None:
        with self._lock:
            self._check()
            client = self.clients.get(device_id)
            if client is not None:
                client.enabled = False
            self.revoked.append(device_id)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        with self._lock:
            self._check()
            if not acl_allows([platform_acls()], "publishClientSend", topic):
                raise BrokerError(_("The broker refused the message: not authorized."))
            self.published.append(Published(topic, bytes(payload), qos))

    def ping(self) -> bool:
        return not self.unavailable

    def ensure_platform(self) -> None:
        with self._lock:
            self._check()
            self.roles[PLATFORM_ROLE] = platform_acls()

    # -- what tests ask --------------------------------------------------------------------------

    def authenticate(self, username: str, password: str, client_id: str | None = None) -> bool:
        client = self.clients.get(username)
        return (
            client is not None
            and client.enabled
            and client.password == password
            and (client_id is None or client_id == client.client_id)
        )

    def allows(self, username: str, action: str, topic: str) -> bool:
        client = self.clients.get(username)
        if client is None or not client.enabled:
            return False
        return acl_allows([self.roles.get(role, []) for role in client.roles], action, topic)

    def messages_to(self, device_id: str) -> list[dict[str, Any]]:
        """The commands published to a device, decoded."""
        topic = commands_topic(device_id)
        return [json.loads(item.payload) for item in self.published if item.topic == topic]


# --- Mosquitto's dynamic-security plugin ------------------------------------------------------------


def _new_client(client_id: str, address: BrokerAddress, username: str, password: str) -> Any:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    if address.tls:
        client.tls_set_context(ssl.create_default_context())
    return client


def _client_id(kind: str) -> str:
    return f"civicore-{kind}-{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class _ControlCall:
    """One exchange with the plugin: connect as the admin, send the commands in one message,
    wait for the response naming each command's correlation data, disconnect."""

    def __init__(self, address: BrokerAddress, username: str, password: str, timeout: float) -> None:
        self.address = address
        self.username = username
        self.password = password
        self.timeout = timeout

    def run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        tag = uuid.uuid4().hex
        for index, command in enumerate(commands):
            command["correlationData"] = f"{tag}-{index}"
        state: dict[str, Any] = {"connack": None, "subscribed": False, "responses": {}}

        def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            state["connack"] = reason
            if not reason.is_failure:
                client.subscribe(RESPONSE_TOPIC, qos=1)

        def on_subscribe(client: Any, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
            if reasons and not reasons[0].is_failure:
                state["subscribed"] = True
                client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)
            else:
                state["refused"] = str(reasons[0]) if reasons else "refused"

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            try:
                body = json.loads(message.payload)
            except ValueError:
                return
            for response in body.get("responses", []) if isinstance(body, dict) else []:
                correlation = response.get("correlationData")
                if isinstance(correlation, str) and correlation.startswith(tag):
                    state["responses"][correlation] = response

        def on_disconnect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            state["closed"] = reason

        client = _new_client(_client_id("admin"), self.address, self.username, self.password)
        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        try:
            client.connect(self.address.host, self.address.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerUnavailable(
                _("The MQTT broker cannot be reached: %(error)s") % {"error": exc}
            ) from exc
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                client.loop(timeout=0.05)
                connack = state["connack"]
                if connack is not None and connack.is_failure:
                    raise BrokerError(
                        _("The MQTT broker refused the admin login: %(reason)s") % {"reason": connack},
                        code="sensors.broker_admin_refused",
                    )
                if "refused" in state:
                    raise BrokerError(
                        _("The MQTT broker refused the admin's subscription: %(reason)s")
                        % {"reason": state["refused"]},
                        code="sensors.broker_admin_refused",
                    )
                if len(state["responses"]) == len(commands):
                    break
                if "closed" in state:
                    raise BrokerUnavailable(
                        _("The MQTT broker closed the admin's connection: %(reason)s")
                        % {"reason": state["closed"]}
                    )
            else:
                raise BrokerUnavailable(_("The MQTT broker did not answer in time."))
        finally:
            try:
                client.disconnect()
                client.loop(timeout=0.01)
            except Exception:  # noqa: S110 - closing a connection that may already be gone
                pass
        return [state["responses"][command["correlationData"]] for command in commands]


class _Publisher:
    """The platform's one connection per process for commands: thread-safe, reconnecting, and
    rebuilt after a fork (a forked child does not inherit the network thread)."""

    def __init__(self, owner: DynsecBroker) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        self._client: Any = None
        self._pid = 0
        self._connected = threading.Event()
        self._refused: Any = None
        self._acks_lock = threading.Condition()
        self._acks: dict[int, Any] = {}
        self._abandoned: set[int] = set()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._refused = reason
            logger.error("the MQTT broker refused the platform's connection: %s", reason)
            return
        self._refused = None
        self._connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()
        if reason.is_failure:
            logger.warning("the platform lost the MQTT broker (%s); reconnecting", reason)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._acks_lock:
            if mid in self._abandoned:
                self._abandoned.discard(mid)
                return
            self._acks[mid] = reason
            self._acks_lock.notify_all()

    def _ensure(self) -> Any:
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                return self._client
            owner = self._owner
            owner.ensure_platform()
            username, password = platform_credentials(owner.url)
            client = _new_client(_client_id("platform"), owner.address, username, password)
            client.on_connect = self._on_connect
            client.on_disconnect = self._on_disconnect
            client.on_publish = self._on_publish
            client.reconnect_delay_set(min_delay=1, max_delay=30)
            self._connected.clear()
            self._refused = None
            self._acks.clear()
            self._abandoned.clear()
            client.connect_async(owner.address.host, owner.address.port, keepalive=30)
            client.loop_start()
            self._client, self._pid = client, os.getpid()
            return client

    def publish(self, topic: str, payload: bytes, qos: int, timeout: float) -> None:
        client = self._ensure()
        if not self._connected.wait(timeout):
            refused = self._refused
            if refused is not None:
                raise BrokerError(
                    _("The MQTT broker refused the platform's login: %(reason)s") % {"reason": refused},
                    code="sensors.broker_platform_refused",
                )
            raise BrokerUnavailable(_("The MQTT broker cannot be reached."))
        info = client.publish(topic, payload, qos=qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            with self._acks_lock:
                self._abandoned.add(info.mid)
            raise BrokerUnavailable(
                _("The message could not be sent to the MQTT broker: %(error)s")
                % {"error": mqtt.error_string(info.rc)}
            )
        if qos == 0:
            return
        with self._acks_lock:
            if not self._acks_lock.wait_for(lambda: info.mid in self._acks, timeout=timeout):
                self._abandoned.add(info.mid)
                raise BrokerUnavailable(_("The MQTT broker did not acknowledge the message in time."))
            reason = self._acks.pop(info.mid)
        if reason is not None and getattr(reason, "is_failure", False):
            raise BrokerError(_("The MQTT broker refused the message: %(reason)s") % {"reason": reason})

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            if client is not None and self._pid == os.getpid():
                try:
                    client.disconnect()
                finally:
                    client.loop_stop()


class DynsecBroker:
    """Mosquitto with the dynamic-security plugin, administered over `$CONTROL` as
    MQTT_ADMIN_USERNAME; commands are published as the platform (see `platform_credentials`)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        admin_username: str | None = None,
        admin_password: str | None = None,
        timeout: float = CONTROL_TIMEOUT_S,
    ) -> None:
        self.url = url if url is not None else settings.MQTT_URL
        self.address = broker_address(self.url)
        self.admin_username = admin_username if admin_username is not None else settings.MQTT_ADMIN_USERNAME
        self.admin_password = admin_password if admin_password is not None else settings.MQTT_ADMIN_PASSWORD
        self.timeout = timeout
        self._publisher = _Publisher(self)
        self._platform_ready = False

    def control(
        self, commands: list[dict[str, Any]], *, tolerate: Iterable[str] = ()
    ) -> list[dict[str, Any]]:
        """Send plugin commands in one message; a response with an error not in `tolerate`
        raises BrokerError with the broker's own words."""
        responses = _ControlCall(self.address, self.admin_username, self.admin_password, self.timeout).run(
            commands
        )
        allowed = set(tolerate)
        for response in responses:
            error = response.get("error")
            if error and error not in allowed:
                raise BrokerError(
                    _("The MQTT broker refused %(command)s: %(error)s")
                    % {"command": response.get("command", "?"), "error": error},
                    details={"command": response.get("command"), "error": error},
                )
        return responses

    def provision(self, *, device_id: str, password: str) -> None:
        role = device_role(device_id)
        self.control(
            [
                # Deleting the client also disconnects a device still connected as it.
                {"command": "deleteClient", "username": device_id},
                {"command": "deleteRole", "rolename": role},
                {
                    "command": "createRole",
                    "rolename": role,
                    "textname": f"Device {device_id}",
                    "acls": device_acls(device_id),
                },
                {
                    "command": "createClient",
                    "username": device_id,
                    "password": password,
                    "clientid": device_id,
                    "textname": f"Device {device_id}",
                    "roles": [{"rolename": role, "priority": 1}],
                },
            ],
            tolerate=("Client not found", "Role not found"),
        )

    def set_password(self, *, device_id: str, password: str) -> None:
        # The plugin disconnects the client's current connections when its password changes.
        self.control([{"command": "setClientPassword", "username": device_id, "password": password}])

    def revoke(self, *, device_id: str) -> None:
        self.control([{"command": "disableClient", "username": device_id}], tolerate=("Client not found",))

    def ensure_platform(self) -> None:
        """Make sure the platform role exists, and the platform client when it is not the admin
        (once per process, before the first command is published)."""
        if self._platform_ready:
            return
        commands: list[dict[str, Any]] = [
            {
                "command": "createRole",
                "rolename": PLATFORM_ROLE,
                "textname": "Civicore platform",
                "acls": platform_acls(),
            }
        ]
        username, password = platform_credentials(self.url)
        if username == self.admin_username:
            commands.append({"command": "getClient", "username": username})
        else:
            # An existing platform client keeps its password: changing it here would disconnect
            # every other process connected as the platform.
            commands.append(
                {
                    "command": "createClient",
                    "username": username,
                    "password": password,
                    "textname": "Civicore platform",
                    "roles": [{"rolename": PLATFORM_ROLE, "priority": 1}],
                }
            )
        responses = self.control(commands, tolerate=("Role already exists", "Client already exists"))
        if username == self.admin_username and not _has_role(responses[-1], PLATFORM_ROLE):
            self._grant_platform_role_to_admin()
        self._platform_ready = True

    def _grant_platform_role_to_admin(self) -> None:
        # Changing a client's roles disconnects its connections, this one included, so the
        # plugin's answer may never arrive: ask again on a new connection whether it took.
        grant = {"command": "addClientRole", "username": self.admin_username, "rolename": PLATFORM_ROLE}
        try:
            self.control([{**grant, "priority": 1}])
        except BrokerUnavailable:
            pass
        check = self.control([{"command": "getClient", "username": self.admin_username}])
        if not _has_role(check[0], PLATFORM_ROLE):
            raise BrokerError(
                _("The MQTT admin %(name)s could not be given the platform role.")
                % {"name": self.admin_username}
            )

    def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> None:
        self._publisher.publish(topic, payload, qos, PUBLISH_TIMEOUT_S)

    def ping(self) -> bool:
        try:
            self.control([{"command": "getDefaultACLAccess"}])
        except BrokerError:
            return False
        return True

    def close(self) -> None:
        self._publisher.close()


def _has_role(response: dict[str, Any], rolename: str) -> bool:
    client = response.get("data", {}).get("client", {})
    return any(role.get("rolename") == rolename for role in client.get("roles", []))


# --- the configured broker ------------------------------------------------------------------------

_configured: DeviceBroker | None = None
_configured_lock = threading.Lock()
_SETTINGS = {
    "SENSOR_BROKER",
    "MQTT_URL",
    "MQTT_ADMIN_USERNAME",
    "MQTT_ADMIN_PASSWORD",
    "MQTT_PLATFORM_USERNAME",
    "MQTT_PLATFORM_PASSWORD",
}


def broker() -> DeviceBroker:
    """The broker SENSOR_BROKER names, made once per process."""
    global _configured
    current = _configured
    if current is not None:
        return current
    with _configured_lock:
        if _configured is None:
            _configured = import_string(settings.SENSOR_BROKER)()
        return _configured


def reset_broker() -> None:
    """Forget (and disconnect) the configured broker: after its settings change, and in tests."""
    global _configured
    with _configured_lock:
        current, _configured = _configured, None
    close = getattr(current, "close", None)
    if close is not None:
        close()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in _SETTINGS:
        reset_broker()


setting_changed.connect(_on_setting_changed, dispatch_uid="civicore.sensors.broker.settings")
