"""A Mosquitto configuration for city sensors: one listener, no anonymous clients, every client
and permission in the dynamic-security plugin, persistent sessions kept on disk.

`broker_config_write` writes `mosquitto.conf` and, when missing, creates `dynamic-security.json`
with `mosquitto_ctrl dynsec init` (the admin) plus the platform role granted to the admin, so the
platform can ingest and send commands as soon as the broker starts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # noqa: S404 - runs mosquitto_ctrl with an argument list, never a shell
from dataclasses import dataclass
from pathlib import Path

from civicore.sensors.broker import PLATFORM_ROLE, platform_acls

CONF_NAME = "mosquitto.conf"
DYNSEC_NAME = "dynamic-security.json"
# Where Debian, Ubuntu, Fedora and source builds put the plugin.
PLUGIN_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib64/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
# The whole MQTT packet; readings over SENSOR_MAX_PAYLOAD_BYTES (64 KB) still reach ingestion,
# which refuses and counts them, while anything larger is cut off by the broker itself.
MAX_PACKET_SIZE = 262_144
# Messages kept per client while it is offline (an ingest process restarting, a device asleep
# with commands waiting): about an hour of readings from ten thousand devices.
MAX_QUEUED_MESSAGES = 500_000
# Unacknowledged QoS 1 messages per connection: ingestion acknowledges a batch only after storing
# it, so this must cover a batch (MQTT v5 clients announce their own receive maximum instead).
MAX_INFLIGHT_MESSAGES = 10_000


class BrokerConfigError(Exception):
    """The configuration cannot be written (no plugin, no mosquitto_ctrl, no admin password)."""


@dataclass(frozen=True)
class BrokerConfig:
    directory: Path
    conf: Path
    dynsec: Path
    bind: str
    port: int
    dynsec_created: bool

    @property
    def url(self) -> str:
        return f"mqtt://{self.bind}:{self.port}"

    def start_command(self) -> list[str]:
        return ["mosquitto", "-c", str(self.conf)]


def find_plugin() -> str:
    for candidate in PLUGIN_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    raise BrokerConfigError(
        "Mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) was not found; "
        "install Mosquitto 2.0 or give its path with --plugin."
    )


def render_config(
    *, directory: Path, port: int, bind: str = "127.0.0.1", plugin: str, user: str | None = None
) -> str:
    lines = [
        "# Written by `civicore sensors broker-config`; the platform depends on these settings.",
        "per_listener_settings false",
        f"listener {port} {bind}",
        "allow_anonymous false",
        "",
        "# Every client (devices, the platform, the admin) and its permissions.",
        f"plugin {plugin}",
        f"plugin_opt_config_file {directory / DYNSEC_NAME}",
        "",
        "# Sizes and queues (see civicore/sensors/mosquitto.py for the reasons).",
        f"max_packet_size {MAX_PACKET_SIZE}",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        "set_tcp_nodelay true",
        "",
        "# Persistent sessions and queued messages survive a restart.",
        "persistence true",
        f"persistence_location {directory}",
        "autosave_interval 60",
        "persistent_client_expiration 30d",
    ]
    if user:
        lines += ["", "# The account the broker runs as (it must own this directory).", f"user {user}"]
    return "\n".join(lines) + "\n"


def dynsec_init(
    path: Path, *, admin_username: str, admin_password: str, mosquitto_ctrl: str = "mosquitto_ctrl"
) -> None:
    """Create the plugin's file with the admin, then add the platform role and grant it to the
    admin (the platform's connections fall back to the admin's credentials)."""
    ctrl = shutil.which(mosquitto_ctrl)
    if ctrl is None:
        raise BrokerConfigError("mosquitto_ctrl was not found; install the Mosquitto clients.")
    result = subprocess.run(  # noqa: S603 - fixed program, argument list
        [ctrl, "dynsec", "init", str(path), admin_username, admin_password],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0 or not path.is_file():
        raise BrokerConfigError(
            f"mosquitto_ctrl dynsec init failed: {(result.stderr or result.stdout).strip()[:500]}"
        )
    data = json.loads(path.read_text())
    data.setdefault("roles", []).append({"rolename": PLATFORM_ROLE, "acls": platform_acls()})
    for client in data.get("clients", []):
        if client.get("username") == admin_username:
            client.setdefault("roles", []).append({"rolename": PLATFORM_ROLE, "priority": 1})
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent="\t"))
    os.chmod(temporary, 0o600)  # password hashes
    temporary.replace(path)


def broker_config_write(
    *,
    directory: Path | str,
    port: int = 1883,
    bind: str = "127.0.0.1",
    admin_username: str,
    admin_password: str,
    plugin: str | None = None,
    user: str | None = None,
) -> BrokerConfig:
    """Write `mosquitto.conf` into `directory` (always) and `dynamic-security.json` (only when
    missing: it holds every device's credentials once the broker runs)."""
    if not admin_password:
        raise BrokerConfigError("Set MQTT_ADMIN_PASSWORD: the broker's admin needs a password.")
    if not 0 < port < 65536:
        raise BrokerConfigError(f"{port} is not a TCP port.")
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    plugin = plugin or find_plugin()
    conf = directory / CONF_NAME
    dynsec = directory / DYNSEC_NAME
    created = False
    if not dynsec.exists():
        dynsec_init(dynsec, admin_username=admin_username, admin_password=admin_password)
        created = True
    conf.write_text(render_config(directory=directory, port=port, bind=bind, plugin=plugin, user=user))
    return BrokerConfig(
        directory=directory, conf=conf, dynsec=dynsec, bind=bind, port=port, dynsec_created=created
    )
