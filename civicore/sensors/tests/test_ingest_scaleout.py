"""Several ingest processes on one broker share the devices' messages through a shared
subscription: each takes part of the stream, and together they store every reading once."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from django.db import connection

from civicore.sensors import ingest
from civicore.sensors.models import Reading
from civicore.sensors.tests.factories import make_provisioned_device, soil_moisture_type

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "connection.vendor != 'postgresql'", reason="ingest threads need their own connections"
    ),
]

MESSAGES = 300


def test_two_ingest_processes_share_the_stream_and_store_each_reading_once(
    mosquitto: Any, dynsec: Any
) -> None:
    kind = soil_moisture_type(rate_per_minute=60_000)
    device, credentials = make_provisioned_device(kind, device_id="shared-soil-1")
    address = ingest.broker_address()
    workers = [
        ingest.IngestProcess(address, client_id=f"scaleout-{n}", group="scaleout", batch_ms=10)
        for n in range(2)
    ]

    def serve(worker: ingest.IngestProcess) -> None:
        try:
            worker.run()
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=serve, args=(worker,), daemon=True) for worker in workers]
    for thread in threads:
        thread.start()
    try:
        assert all(worker.connected.wait(20) for worker in workers)
        time.sleep(0.5)  # both subscriptions are in place
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=device.device_id
        )
        client.username_pw_set(credentials.mqtt_username, credentials.mqtt_password)
        client.connect(mosquitto.host, mosquitto.port)
        client.loop_start()
        start = time.time() - 3600
        info = None
        for n in range(MESSAGES):
            body = f'[{{"n":"soil_moisture","u":"%","v":{30 + n % 10},"t":{start + n}}}]'
            info = client.publish(f"civicore/v1/devices/{device.device_id}/senml", body.encode(), qos=1)
        assert info is not None
        info.wait_for_publish(timeout=30)
        client.disconnect()
        client.loop_stop()
        deadline = time.monotonic() + 30
        while Reading.objects.count() < MESSAGES and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for worker in workers:
            worker.stop_event.set()
        for thread in threads:
            thread.join(30)
    shares = [worker.ingestor.stats["messages"] for worker in workers]
    assert Reading.objects.count() == MESSAGES
    assert sum(shares) == MESSAGES
    assert min(shares) > 0, shares  # the broker gave each process part of the stream
