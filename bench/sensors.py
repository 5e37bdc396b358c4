"""Sensor ingestion through a real Mosquitto: readings per second stored and run through the rules,
beside a raw paho subscriber that only counts messages, in the same run.

Each round, for single-reading messages and for SenML packs of 100 readings: a loader process
publishes the messages at QoS 1 to `civicore/v1/devices/{id}/senml` while the subscriber's
persistent session is offline, so the broker holds them; then the subscriber connects and drains
its queue, and the time from its connection to the last message (raw) or the last reading
committed (ingest) gives the rate. The raw subscriber is paho with automatic acknowledgements and
nothing else; ingest is `civicore sensors ingest` (IngestProcess) in its own process: decode,
check against the device type, store with rollups and counters in PostgreSQL, run the rules,
acknowledge. A last phase measures the time from a rule firing to the command being published to
the valve: a loader reports dry soil for many parks at once while ingest runs live.

Proof of work: readings stored = readings sent, every phase. Prints a table and medians, writes
bench/results/sensors.json. Asserts no target.

    python bench/sensors.py [--devices 1000] [--singles 100000] [--packs 2000] [--runs 3]
                             [--ingest-processes 1]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from submission import (  # noqa: E402
    REPO,
    child_env,
    database_urls,
    facts,
    median,
    percentile,
    ratio,
    recreate_database,
    run,
    write_report,
)

RESULTS = REPO / "bench" / "results" / "sensors.json"
DB_NAME = "civicore_bench_sensors"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
SENML = "civicore/v1/devices/{}/senml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_broker(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A Mosquitto for the benchmark: anonymous on loopback, no limit on queued or in-flight messages."""
    port = free_port()
    conf = directory / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_queued_bytes 0\n"
        "max_inflight_messages 0\npersistence false\nlog_dest none\n"
    )
    broker = subprocess.Popen([MOSQUITTO, "-c", str(conf)])  # noqa: S603
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return broker, port
        except OSError:
            time.sleep(0.05)
    broker.kill()
    raise RuntimeError("mosquitto did not start")


# --- loader -----------------------------------------------------------------------------------


def single_messages(device_ids: list[str], count: int, *, start: float) -> list[tuple[str, bytes]]:
    """One reading per message; each device reports once a minute from `start`."""
    messages = []
    for index in range(count):
        device_id = device_ids[index % len(device_ids)]
        when = start + (index // len(device_ids)) * 60
        value = 20 + (index % 600) / 10
        body = f'[{{"n":"soil_moisture","u":"%","v":{value},"t":{when:.3f}}}]'
        messages.append((SENML.format(device_id), body.encode()))
    return messages


def pack_messages(device_ids: list[str], count: int, size: int, *, start: float) -> list[tuple[str, bytes]]:
    """Packs of `size` readings a minute apart (a device sending what it buffered), base fields first."""
    messages = []
    for index in range(count):
        device_id = device_ids[index % len(device_ids)]
        first = start + (index // len(device_ids)) * size * 60
        records = [f'{{"bn":"{device_id}:","bt":{first:.3f},"bu":"%","n":"soil_moisture","v":30}}']
        records += [f'{{"n":"soil_moisture","t":{k * 60},"v":{20 + (k % 60) / 2}}}' for k in range(1, size)]
        messages.append((SENML.format(device_id), ("[" + ",".join(records) + "]").encode()))
    return messages


def loader(port: int, messages: list[tuple[str, bytes]], done: Any) -> None:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="bench-loader")
    client.max_inflight_messages_set(2000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    started = time.perf_counter()
    # Message ids wrap at 65,535: wait for the oldest once 30,000 are outstanding, so that an id
    # is never reused while its first message is still unacknowledged.
    outstanding: deque[Any] = deque()
    for topic, payload in messages:
        outstanding.append(client.publish(topic, payload, qos=1))
        if len(outstanding) > 30_000:
            outstanding.popleft().wait_for_publish(timeout=600)
    while outstanding:
        outstanding.popleft().wait_for_publish(timeout=600)
    done.put(time.perf_counter() - started)
    client.disconnect()
    client.loop_stop()


def publish(port: int, messages: list[tuple[str, bytes]]) -> float:
    queue: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=loader, args=(port, messages, queue))
    process.start()
    elapsed = queue.get(timeout=900)
    process.join()
    return float(elapsed)


# --- raw subscriber ---------------------------------------------------------------------------


def raw_subscriber(port: int, group: str, expected: int, go: Any, out: Any) -> None:
    """Counts messages and nothing else (paho acknowledges each on return from the callback)."""
    import paho.mqtt.client as mqtt

    state = {"n": 0, "first": 0.0, "last": 0.0}
    finished = threading.Event()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        state["n"] += 1
        if state["n"] >= expected:
            state["last"] = time.perf_counter()
            finished.set()

    def session(clean: bool) -> Any:
        # MQTT 3.1.1 with a persistent session, as the ingest processes use.
        client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"bench-raw-{group}",
            protocol=mqtt.MQTTv311,
            clean_session=clean,
        )
        client.on_message = on_message
        client.connect("127.0.0.1", port)
        return client

    client = session(False)
    client.subscribe(f"$share/{group}/civicore/v1/devices/+/senml", qos=1)
    client.loop(1.0)
    client.disconnect()
    out.put("ready")
    go.get(timeout=900)  # the loader has published
    client = session(False)
    client.loop_start()
    connected = time.perf_counter()
    finished.wait(900)
    client.unsubscribe(f"$share/{group}/civicore/v1/devices/+/senml")
    client.disconnect()
    client.loop_stop()
    out.put({"received": state["n"], "seconds": state["last"] - connected})


def raw_phase(port: int, messages: list[tuple[str, bytes]], group: str) -> dict[str, Any]:
    go: Any = multiprocessing.Queue()
    out: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=raw_subscriber, args=(port, group, len(messages), go, out))
    process.start()
    assert out.get(timeout=60) == "ready"
    publish_seconds = publish(port, messages)
    go.put("go")
    result = out.get(timeout=900)
    process.join()
    return {**result, "published_in": publish_seconds}


# --- ingest -----------------------------------------------------------------------------------


def _django(env: dict[str, str]) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def ingest_worker(
    env: dict[str, str], port: int, client_id: str, target: int, go: Any, out: Any, counted: Any
) -> None:
    """One ingest process; with several, `counted` (shared) tells when all of them together are done."""
    _django(env)
    from civicore.sensors.ingest import ACKS_FILTER, SENML_FILTER, BrokerAddress, IngestProcess

    address = BrokerAddress("127.0.0.1", port, "bench", "", False)
    # First connection: the persistent session and its subscription exist before the loader publishes.
    process = IngestProcess(address, client_id=client_id, group="bench-ingest")
    process.start()
    process.connected.wait(30)
    time.sleep(0.5)
    process.client.disconnect()
    process.client.loop_stop()
    out.put("ready")
    go.get(timeout=900)
    process = IngestProcess(address, client_id=client_id, group="bench-ingest")
    thread = threading.Thread(target=process.run, daemon=True)
    started = time.perf_counter()
    thread.start()
    process.connected.wait(30)
    connected = time.perf_counter()
    mine = 0
    while True:
        stats = process.ingestor.stats
        now_mine = stats["accepted"] + stats["duplicates"] + stats["rejected"]
        with counted.get_lock():
            counted.value += now_mine - mine
            total = counted.value
        if now_mine != mine:
            done = time.perf_counter()
        mine = now_mine
        if total >= target or time.perf_counter() - started > 900:
            break
        time.sleep(0.01)
    # Leave no subscription behind that would queue the next phase's messages for this session.
    process.client.unsubscribe([f"$share/bench-ingest/{f}" for f in (SENML_FILTER, ACKS_FILTER)])
    time.sleep(0.2)
    process.stop_event.set()
    thread.join(30)
    # CLOCK_MONOTONIC is shared by the processes: the phase runs from the first connection to
    # the last reading stored by any of them.
    out.put({"connected": connected, "done": done if mine else connected, **process.ingestor.stats})


def ingest_phase(
    env: dict[str, str], port: int, messages: list[tuple[str, bytes]], readings: int, processes: int = 1
) -> dict[str, Any]:
    go: Any = multiprocessing.Queue()
    out: Any = multiprocessing.Queue()
    counted: Any = multiprocessing.Value("q", 0)
    workers = [
        multiprocessing.Process(
            target=ingest_worker, args=(env, port, f"bench-ingest-{n}", readings, go, out, counted)
        )
        for n in range(1, processes + 1)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        assert out.get(timeout=120) == "ready"
    publish_seconds = publish(port, messages)
    for _ in workers:
        go.put("go")
    results = [out.get(timeout=900) for _ in workers]
    for worker in workers:
        worker.join()
    totals = {k: sum(r[k] for r in results) for k in ("messages", "accepted", "duplicates", "rejected")}
    seconds = max(r["done"] for r in results) - min(r["connected"] for r in results)
    return {"seconds": seconds, **totals, "published_in": publish_seconds}


def live_worker(env: dict[str, str], port: int, target: int, commands: int, out: Any) -> None:
    """Ingest running live while dry readings arrive: the time from each rule firing to its
    command being handed to the broker (published at QoS 1 and acknowledged by it)."""
    env = {
        **env,
        "MQTT_URL": f"mqtt://127.0.0.1:{port}",
        "SENSOR_BROKER": "civicore.sensors.broker.DynsecBroker",
    }
    _django(env)
    from civicore.sensors import commands as sensor_commands
    from civicore.sensors.broker import broker
    from civicore.sensors.ingest import BrokerAddress, IngestProcess

    # The benchmark's broker is anonymous, without the dynamic-security plugin: nothing to set up.
    broker()._platform_ready = True  # type: ignore[attr-defined]

    process = IngestProcess(BrokerAddress("127.0.0.1", port, "bench", "", False), client_id="bench-live")
    thread = threading.Thread(target=process.run, daemon=True)
    thread.start()
    process.connected.wait(30)
    time.sleep(0.5)
    out.put("ready")
    deadline = time.perf_counter() + 300
    while time.perf_counter() < deadline:
        if process.ingestor.stats["messages"] >= target and sensor_commands.stats["published"] >= commands:
            break
        time.sleep(0.01)
    process.stop_event.set()
    thread.join(30)
    out.put(
        {
            "latencies": list(sensor_commands.publish_latencies),
            "published": sensor_commands.stats["published"],
        }
    )


def latency_phase(env: dict[str, str], port: int, device_ids: list[str]) -> dict[str, Any]:
    out: Any = multiprocessing.Queue()
    parks = (len(device_ids) + 9) // 10
    process = multiprocessing.Process(target=live_worker, args=(env, port, len(device_ids), parks, out))
    process.start()
    assert out.get(timeout=120) == "ready"
    now = time.time()
    # One dry reading from the first sensor of each park, then from the rest: each park's rule
    # fires once (the others find it already active) and commands the park's valve.
    first = [device_ids[p * 10] for p in range(parks)]
    rest = [device_id for device_id in device_ids if device_id not in set(first)]
    messages = [
        (SENML.format(device_id), f'[{{"n":"soil_moisture","u":"%","v":5,"t":{now - 1:.3f}}}]'.encode())
        for device_id in first + rest
    ]
    publish(port, messages)
    result = out.get(timeout=400)
    process.join()
    latencies = sorted(result["latencies"])
    return {
        "commands_published": result["published"],
        "p50_ms": (percentile(latencies, 0.5) or 0) * 1000,
        "p99_ms": (percentile(latencies, 0.99) or 0) * 1000,
    }


def count_readings(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return int(conn.execute("SELECT count(*) FROM sensors_reading").fetchone()[0])


def setup_data(env: dict[str, str], devices: int) -> list[str]:
    script = f"""
from civicore.agencies.models import Agency
from civicore.sensors.models import Device, DeviceType
agency = Agency.objects.create(code="parks", name_vi="Công viên", name_en="Parks")
kind = DeviceType.objects.create(code="soil", agency=agency, name_vi="Độ ẩm đất", name_en="Soil moisture",
    quantities=[{{"name": "soil_moisture", "unit": "%", "min": 0, "max": 100}}], expected_interval_s=60,
    rate_per_minute=1_000_000)
Device.objects.bulk_create([Device(device_id=f"soil-{{i:05d}}", name=f"soil {{i}}", device_type=kind,
    agency=agency, group=f"park-{{i // 10}}", latitude=10.77, longitude=106.69, status="active")
    for i in range({devices})])
from django.utils import timezone
from civicore.sensors import rules
valve = DeviceType.objects.create(code="valve", agency=agency, name_vi="Van tưới", name_en="Valve",
    role="actuator", quantities=[{{"name": "valve_open", "unit": "", "min": 0, "max": 1}}],
    commands=[{{"name": "open", "params": {{"duration_s": "int"}}}}, {{"name": "close"}}],
    expected_interval_s=3600, max_run_s=900)
Device.objects.bulk_create([Device(device_id=f"valve-{{p:04d}}", name=f"valve {{p}}", device_type=valve,
    agency=agency, group=f"park-{{p}}", latitude=10.77, longitude=106.69, status="active",
    last_seen_at=timezone.now()) for p in range(({devices} + 9) // 10)])
rules.rule_save(rule_or_none=None, agency=agency, code="water-dry-parks", name="Water dry parks",
    definition={{"target": {{"device_type": "soil"}},
        "when": {{"threshold": {{"quantity": "soil_moisture", "op": "below", "value": 15, "clear": 35}}}},
        "on_fire": [{{"command": {{"to": {{"device_type": "valve"}}, "name": "open",
            "params": {{"duration_s": 600}}}}}}]}})
"""
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "civicore", "shell", "-c", script],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(result.stderr)
    return [f"soil-{i:05d}" for i in range(devices)]


def benchmark(args: argparse.Namespace) -> int:
    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    admin, database_url = database_urls(admin_url, DB_NAME)
    recreate_database(admin, DB_NAME)
    workdir = Path(tempfile.mkdtemp(prefix="civicore-bench-sensors-"))
    env = child_env(workdir, database_url, conn_max_age=60)
    env["MQTT_URL"] = ""
    result = run([sys.executable, "-m", "civicore", "migrate", "--no-input"], env)
    if result.returncode:
        print(result.stderr)
        return 1
    device_ids = setup_data(env, args.devices)
    broker, port = start_broker(workdir)
    rounds = []
    sent = 0
    try:
        for number in range(1, args.runs + 1):
            # Each round reports its own hours of the last few days, so every reading is new.
            start = time.time() - 3 * 86400 + (number - 1) * 3600 * 8
            singles = single_messages(device_ids, args.singles, start=start)
            packs = pack_messages(device_ids, args.packs, args.pack_size, start=start + 3600 * 2)
            outcome: dict[str, Any] = {"round": number}
            raw = raw_phase(port, singles, f"raw-single-{number}")
            outcome["raw_single_msgs_per_s"] = raw["received"] / raw["seconds"]
            ing = ingest_phase(env, port, singles, len(singles), args.ingest_processes)
            outcome["ingest_single_msgs_per_s"] = len(singles) / ing["seconds"]
            outcome["ingest_single_stats"] = {
                k: ing[k] for k in ("messages", "accepted", "duplicates", "rejected")
            }
            sent += len(singles)
            raw = raw_phase(port, packs, f"raw-pack-{number}")
            outcome["raw_pack_msgs_per_s"] = raw["received"] / raw["seconds"]
            readings = len(packs) * args.pack_size
            ing = ingest_phase(env, port, packs, readings, args.ingest_processes)
            outcome["ingest_pack_readings_per_s"] = readings / ing["seconds"]
            outcome["ingest_pack_msgs_per_s"] = len(packs) / ing["seconds"]
            outcome["ingest_pack_stats"] = {
                k: ing[k] for k in ("messages", "accepted", "duplicates", "rejected")
            }
            sent += readings
            outcome["stored_total"] = count_readings(database_url)
            outcome["sent_total"] = sent
            rounds.append(outcome)
            print(
                f"round {number}: singles {outcome['ingest_single_msgs_per_s']:,.0f}/s "
                f"(raw {outcome['raw_single_msgs_per_s']:,.0f}/s), packs "
                f"{outcome['ingest_pack_readings_per_s']:,.0f} readings/s = "
                f"{outcome['ingest_pack_msgs_per_s']:,.0f} msgs/s "
                f"(raw {outcome['raw_pack_msgs_per_s']:,.0f} msgs/s); "
                f"stored {outcome['stored_total']:,} of {sent:,} sent",
                flush=True,
            )
        latency = latency_phase(env, port, device_ids)
        print(
            f"rule firing to command published: p50 {latency['p50_ms']:.1f} ms, "
            f"p99 {latency['p99_ms']:.1f} ms "
            f"({latency['commands_published']} commands)",
            flush=True,
        )
    finally:
        broker.terminate()
        broker.wait(10)
    medians = {
        key: median([r[key] for r in rounds])
        for key in (
            "raw_single_msgs_per_s",
            "ingest_single_msgs_per_s",
            "raw_pack_msgs_per_s",
            "ingest_pack_readings_per_s",
            "ingest_pack_msgs_per_s",
        )
    }
    medians["single_ratio"] = ratio(medians["ingest_single_msgs_per_s"], medians["raw_single_msgs_per_s"])
    medians["pack_ratio"] = ratio(medians["ingest_pack_msgs_per_s"], medians["raw_pack_msgs_per_s"])
    print()
    print(
        f"single-reading messages: {medians['ingest_single_msgs_per_s']:,.0f}/s beside raw subscriber "
        f"{medians['raw_single_msgs_per_s']:,.0f}/s, ratio {medians['single_ratio']:.3f}"
    )
    print(
        f"packs of {args.pack_size}: {medians['ingest_pack_readings_per_s']:,.0f} readings/s "
        f"({medians['ingest_pack_msgs_per_s']:,.0f} msgs/s) "
        f"beside raw {medians['raw_pack_msgs_per_s']:,.0f} msgs/s, "
        f"ratio {medians['pack_ratio']:.3f}"
    )
    proof = rounds[-1]["stored_total"] == rounds[-1]["sent_total"]
    print(
        f"proof of work: {rounds[-1]['stored_total']:,} readings stored, {rounds[-1]['sent_total']:,} sent: "
        f"{'equal' if proof else 'NOT EQUAL'}"
    )
    write_report(
        RESULTS
        if args.ingest_processes == 1
        else RESULTS.with_name(f"sensors-{args.ingest_processes}-processes.json"),
        {
            "facts": facts(database_url),
            "args": vars(args),
            "rounds": rounds,
            "medians": medians,
            "rule_to_command": latency,
        },
    )
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if proof else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=100_000, help="single-reading messages per round")
    parser.add_argument("--packs", type=int, default=2000, help="SenML packs per round")
    parser.add_argument("--pack-size", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--ingest-processes",
        type=int,
        default=1,
        help="ingest processes sharing the subscription (figures go to sensors-N-processes.json)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    sys.exit(benchmark(parse_args()))
