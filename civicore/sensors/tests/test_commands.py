"""Commands to actuators: what is published, acknowledgements, retries and time-outs, the
interlock, and refusals, with the in-memory broker (and real concurrent supervisors on PostgreSQL)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, connections

from civicore.agencies.permissions import MissingPermission
from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.audit.models import AuditEntry
from civicore.core.errors import PermissionDenied
from civicore.reports.models import Report
from civicore.sensors import commands, tasks
from civicore.sensors.broker import broker, reset_broker
from civicore.sensors.models import Alarm, Command, Device, DeviceType
from civicore.sensors.tests.factories import (
    make_provisioned_device,
    sensor_operator,
    soil_moisture_type,
    valve_type,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 10, 19, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_broker() -> Iterator[None]:
    reset_broker()
    commands.stats.clear()
    yield
    reset_broker()


@pytest.fixture
def valve() -> Device:
    kind = valve_type(AgencyFactory(), max_run_s=900, command_timeout_s=10, command_retries=2)
    device, _ = make_provisioned_device(kind, group="tao-dan")
    Device.objects.filter(pk=device.pk).update(last_seen_at=T0)
    device.refresh_from_db()
    return device


@pytest.fixture
def committing(django_capture_on_commit_callbacks: Any) -> Any:
    """Run a call and what it leaves for after its commit (the publications)."""

    def run(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return func(*args, **kwargs)

    return run


def published() -> list[tuple[str, dict[str, Any], int]]:
    return [(m.topic, json.loads(m.payload), m.qos) for m in broker().published]  # type: ignore[attr-defined]


def ack(device: Device, command: Command, status: str = "ok", detail: str = "") -> None:
    body = {"id": str(command.public_id), "status": status, "detail": detail}
    commands.acknowledge(device.device_id, json.dumps(body).encode(), now=T0 + timedelta(seconds=2))


def test_an_officer_opens_a_valve_the_command_is_published_with_its_expiry(
    valve: Device, committing: Any
) -> None:
    officer = sensor_operator(valve.agency)
    command = committing(
        commands.command_send,
        device=valve,
        name="open",
        params={"duration_s": 300},
        actor=officer.user,
        now=T0,
    )
    ((topic, body, qos),) = published()
    assert topic == f"civicore/v1/devices/{valve.device_id}/commands" and qos == 1
    assert body == {
        "id": str(command.public_id),
        "name": "open",
        "params": {"duration_s": 300},
        "expires": int((T0 + timedelta(seconds=10)).timestamp()),
    }
    assert (command.status, command.attempts, command.sent_at) == (Command.Status.SENT, 1, T0)
    assert command.deadline == T0 + timedelta(seconds=10) and command.issued_by == officer.user
    assert AuditEntry.objects.filter(action="sensor.command.send", actor=officer.user).exists()
    # The interlock: a close due after the asked duration (under the type's maximum run).
    interlock = Command.objects.get(interlock=True)
    assert (interlock.name, interlock.status, interlock.deadline) == (
        "close",
        Command.Status.PENDING,
        T0 + timedelta(seconds=300),
    )


def test_nothing_is_published_when_the_transaction_is_rolled_back(valve: Device, committing: Any) -> None:
    from django.db import transaction

    class Undo(Exception):
        pass

    def send_then_fail() -> None:
        with transaction.atomic():
            commands.command_send(device=valve, name="open", params={"duration_s": 60}, now=T0)
            raise Undo

    with pytest.raises(Undo):
        committing(send_then_fail)
    assert published() == [] and not Command.objects.exists()


def test_acknowledgements_mark_the_command_and_anything_else_is_ignored(
    valve: Device, committing: Any
) -> None:
    first = committing(commands.command_send, device=valve, name="open", params={"duration_s": 60}, now=T0)
    second = committing(commands.command_send, device=valve, name="close", now=T0)
    other, _ = make_provisioned_device(valve.device_type, group="tao-dan")

    for junk in [
        b"not json",
        b"[1, 2]",
        b'{"id": "not-a-uuid", "status": "ok"}',
        json.dumps({"id": str(first.public_id), "status": "maybe"}).encode(),
        json.dumps({"id": "00000000-0000-0000-0000-000000000000", "status": "ok"}).encode(),
        b"[" * 5000,
        b"{" + b" " * 5000 + b"}",
    ]:
        commands.acknowledge(valve.device_id, junk, now=T0)
    ack(other, first)  # another device cannot acknowledge this valve's command
    assert Command.objects.get(pk=first.pk).status == Command.Status.SENT
    assert sum(count for key, count in commands.stats.items() if key.startswith("ack_")) == 8

    ack(valve, first, "ok", "opened")
    ack(valve, second, "error", "motor stalled")
    ack(valve, first, "error")  # a late second answer changes nothing

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Command.Status.ACKNOWLEDGED
    assert first.acknowledged_at == T0 + timedelta(seconds=2)
    assert first.result["detail"] == "opened"
    assert second.status == Command.Status.FAILED and second.reason == "motor stalled"
    alarm = Alarm.objects.get(device=valve)
    assert "motor stalled" in alarm.message


def test_a_silent_valve_is_asked_again_then_times_out_with_an_alarm_and_a_case(
    valve: Device, committing: Any
) -> None:
    command = committing(commands.command_send, device=valve, name="open", params={"duration_s": 60}, now=T0)
    committing(commands.supervise, now=T0 + timedelta(seconds=9))
    assert len(published()) == 1

    committing(commands.supervise, now=T0 + timedelta(seconds=10))
    committing(commands.supervise, now=T0 + timedelta(seconds=20))
    sends = [body for _topic, body, _qos in published() if body["name"] == "open"]
    assert [body["id"] for body in sends] == [str(command.public_id)] * 3
    assert sends[-1]["expires"] == int((T0 + timedelta(seconds=30)).timestamp())  # renewed each time
    command.refresh_from_db()
    assert (command.status, command.attempts) == (Command.Status.SENT, 3)

    committing(commands.supervise, now=T0 + timedelta(seconds=30))

    command.refresh_from_db()
    assert command.status == Command.Status.TIMED_OUT and "3" in command.reason
    assert len([body for _t, body, _q in published() if body["name"] == "open"]) == 3
    alarm = Alarm.objects.get(device=valve)
    assert alarm.severity == Alarm.Severity.CRITICAL and alarm.status == Alarm.Status.ACTIVE
    report = Report.objects.get()
    assert (report.source, report.status, report.agency_id) == ("sensor", "open", valve.agency_id)
    assert valve.device_id in report.description
    assert command.result["case"] == report.reference
    # A second silent command while the alarm is open: no second alarm, no second case.
    again = committing(commands.command_send, device=valve, name="close", now=T0 + timedelta(seconds=40))
    for seconds in (50, 60, 70):
        committing(commands.supervise, now=T0 + timedelta(seconds=seconds))
    again.refresh_from_db()
    assert again.status == Command.Status.TIMED_OUT
    assert Alarm.objects.count() == 1 and Report.objects.count() == 1


def test_the_interlock_stops_the_valve_after_its_maximum_run(valve: Device, committing: Any) -> None:
    opened = committing(commands.command_send, device=valve, name="open", params={"duration_s": 5000}, now=T0)
    ack(valve, opened)
    committing(commands.supervise, now=T0 + timedelta(seconds=899))
    assert [body["name"] for _t, body, _q in published()] == ["open"]

    committing(commands.supervise, now=T0 + timedelta(seconds=900))

    (_, close, _), *_ = [item for item in published() if item[1]["name"] == "close"]
    stop = Command.objects.get(public_id=close["id"])
    assert (
        stop.interlock and stop.status == Command.Status.SENT and stop.sent_at == T0 + timedelta(seconds=900)
    )
    committing(commands.supervise, now=T0 + timedelta(seconds=901))
    assert len(published()) == 2  # sent once


def test_the_interlock_is_sent_even_to_a_valve_that_looks_offline(valve: Device, committing: Any) -> None:
    committing(commands.command_send, device=valve, name="open", params={"duration_s": 60}, now=T0)
    Device.objects.filter(pk=valve.pk).update(last_seen_at=T0 - timedelta(days=1))
    committing(commands.supervise, now=T0 + timedelta(seconds=61))
    assert "close" in [body["name"] for _t, body, _q in published()]


def test_commands_to_offline_or_revoked_devices_are_refused_and_kept(valve: Device, committing: Any) -> None:
    from civicore.sensors import services

    officer = sensor_operator(valve.agency)
    later = T0 + timedelta(hours=4)  # the valve last reported at T0: offline after 3 minutes
    with pytest.raises(commands.DeviceOffline) as caught:
        committing(
            commands.command_send,
            device=valve,
            name="open",
            params={"duration_s": 60},
            actor=officer,
            now=later,
        )
    assert caught.value.code == "sensors.device_offline"
    refused = Command.objects.get()
    assert refused.status == Command.Status.REFUSED and "offline" in refused.reason
    assert caught.value.details["command"] == str(refused.public_id)
    # From a rule (no officer): refused the same way, without an error.
    by_rule = committing(
        commands.command_send, device=valve, name="open", params={"duration_s": 60}, now=later
    )
    assert by_rule.status == Command.Status.REFUSED
    services.device_revoke(device=valve)
    valve.refresh_from_db()
    revoked = commands.command_send(device=valve, name="close", now=T0)
    assert revoked.status == Command.Status.REFUSED and "revoked" in revoked.reason
    with pytest.raises(commands.UnknownCommand):
        commands.command_send(device=valve, name="explode", actor=officer, now=T0)
    assert published() == []
    assert commands.stats["refused"] == 4
    assert Command.objects.filter(status=Command.Status.REFUSED).count() == 4
    assert not Command.objects.filter(interlock=True).exists()


def test_only_operators_of_the_devices_agency_send_commands(valve: Device) -> None:
    with pytest.raises(MissingPermission):
        commands.command_send(device=valve, name="close", actor=make_officer(agency=valve.agency), now=T0)
    with pytest.raises(PermissionDenied) as caught:
        commands.command_send(device=valve, name="close", actor=sensor_operator(AgencyFactory()), now=T0)
    assert caught.value.code == "other_agency"
    with pytest.raises(commands.InvalidParams):
        commands.command_send(
            device=valve,
            name="open",
            params={"duration_s": "forever"},
            actor=sensor_operator(valve.agency),
            now=T0,
        )
    with pytest.raises(commands.InvalidParams):
        commands.command_send(
            device=valve, name="open", params={"flood": True}, actor=sensor_operator(valve.agency), now=T0
        )
    assert not Command.objects.exists()


def test_a_sensor_type_without_commands_refuses_them() -> None:
    kind: DeviceType = soil_moisture_type(AgencyFactory())
    sensor, _ = make_provisioned_device(kind)
    Device.objects.filter(pk=sensor.pk).update(last_seen_at=T0)
    sensor.refresh_from_db()
    assert commands.command_send(device=sensor, name="open", now=T0).status == Command.Status.REFUSED


def test_the_workers_periodic_job_supervises_commands(valve: Device, committing: Any) -> None:
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    Device.objects.filter(pk=valve.pk).update(last_seen_at=earlier)
    valve.refresh_from_db()
    command = committing(commands.command_send, device=valve, name="close", now=earlier)
    committing(tasks.sensors_supervise_commands)
    command.refresh_from_db()
    assert command.attempts == 2


@pytest.mark.django_db(transaction=True)
def test_supervisors_running_at_once_send_each_retry_once(valve: Device) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED: PostgreSQL only (SQLite serialises writers)")
    sent = [commands.command_send(device=valve, name="close", now=T0) for _ in range(40)]
    Command.objects.filter(pk__in=[c.pk for c in sent]).update(deadline=T0)
    broker().published.clear()  # type: ignore[attr-defined]
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def supervise() -> None:
        try:
            start.wait()
            commands.supervise(now=T0 + timedelta(seconds=1))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=supervise) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(Command.objects.filter(interlock=False).values_list("attempts", flat=True)) == [2] * 40
    assert len(broker().published) == 40  # type: ignore[attr-defined]
