"""The ingest process killed with SIGKILL while devices publish at QoS 1: after a restart on the
same persistent session, every reading is stored exactly once (PostgreSQL, a real Mosquitto,
`civicore sensors ingest` as its own process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from django.db import connection

from civicore.sensors.models import Device, Reading, Rollup
from civicore.sensors.tests.factories import make_provisioned_device, soil_moisture_type

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "connection.vendor != 'postgresql'", reason="needs a database another process can open"
    ),
]

REPO = Path(__file__).resolve().parents[3]
DEVICES = 4
PER_DEVICE = 1500


def _ingest(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - fixed argument list
            [sys.executable, "-m", "civicore", "sensors", "ingest", "--client-id", "fault-ingest"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _publish(mosquitto: Any, credentials: Any, start: float, sent: list[int]) -> None:
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=credentials.device_id,
        clean_session=False,
    )
    client.username_pw_set(credentials.mqtt_username, credentials.mqtt_password)
    client.max_inflight_messages_set(50)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    topic = f"civicore/v1/devices/{credentials.device_id}/senml"
    info = None
    for n in range(PER_DEVICE):
        body = f'[{{"n":"soil_moisture","u":"%","v":{20 + n % 50},"t":{start + n:.3f}}}]'
        info = client.publish(topic, body.encode(), qos=1)
        if n % 100 == 0:
            time.sleep(0.05)  # a steady stream, so the kill lands in the middle of it
    assert info is not None
    info.wait_for_publish(timeout=60)
    sent.append(PER_DEVICE)
    client.disconnect()
    client.loop_stop()


def test_a_killed_ingest_process_loses_nothing_and_stores_nothing_twice(
    mosquitto: Any, dynsec: Any, tmp_path: Path
) -> None:
    kind = soil_moisture_type(rate_per_minute=60_000)
    devices = [make_provisioned_device(kind, device_id=f"fault-soil-{n}") for n in range(DEVICES)]
    db = connection.settings_dict
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}",
        "MQTT_URL": mosquitto.url,
        "MQTT_ADMIN_USERNAME": mosquitto.admin_username,
        "MQTT_ADMIN_PASSWORD": mosquitto.admin_password,
        "MQTT_PLATFORM_USERNAME": mosquitto.platform_username,
        "MQTT_PLATFORM_PASSWORD": mosquitto.platform_password,
        "SENSOR_BATCH_MS": "20",
    }
    log = tmp_path / "ingest.log"
    first = _ingest(env, log)
    deadline = time.monotonic() + 60
    while "connected" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    start = time.time() - 3 * 3600
    sent: list[int] = []
    loaders = [
        threading.Thread(target=_publish, args=(mosquitto, credentials, start, sent))
        for _, credentials in devices
    ]
    for loader in loaders:
        loader.start()
    # Kill it mid-stream: some batches are stored and acknowledged, one may be stored and not yet
    # acknowledged, the rest are still at the broker.
    deadline = time.monotonic() + 60
    while Reading.objects.count() < DEVICES * PER_DEVICE // 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    stored_at_kill = Reading.objects.count()
    time.sleep(1.0)
    second = _ingest(env, log)
    try:
        for loader in loaders:
            loader.join(120)
        total = DEVICES * PER_DEVICE
        deadline = time.monotonic() + 120
        while Reading.objects.count() < total and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # anything delivered twice has had time to arrive
    finally:
        second.terminate()
        second.wait(30)
    assert sum(sent) == total
    assert 0 < stored_at_kill < total
    assert Reading.objects.count() == total, log.read_text()[-3000:]
    for device, _ in devices:
        assert Reading.objects.filter(device=device).count() == PER_DEVICE
        device.refresh_from_db()
        assert device.accepted_count == PER_DEVICE  # counted once, even for what came twice
    daily = sum(Rollup.objects.filter(period="1d").values_list("count", flat=True))
    assert daily == total
    assert Device.objects.filter(rejected_count__gt=0).count() == 0
