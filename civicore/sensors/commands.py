"""Commands to actuators: sending, acknowledgements, retries, time-outs and the interlock.

A command is a row first and a message second: it is published (QoS 1, with an expiry) only
after the transaction that recorded it commits. A command to an offline or revoked device, or
one its type does not define, is refused and kept as REFUSED with the reason. A device that does
not acknowledge in time is asked again up to its type's retries, then the command TIMES OUT with
an alarm and a case. An actuator with a maximum run time gets its stop command as a row due at
the start plus that time (the interlock), sent by `supervise` whatever else happens: no timer
lives in a process. Several processes may supervise at once; each locks the rows it handles.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter, deque
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.audit import services as audit
from civicore.core.errors import Conflict, PermissionDenied, ValidationFailed
from civicore.sensors import ruledef
from civicore.sensors.models import Alarm, Command, Device, RuleFiring

logger = logging.getLogger(__name__)

TOPIC = "civicore/v1/devices/{device_id}/commands"
START_COMMANDS = ("open", "start", "on")
STOP_COMMANDS = ("close", "stop", "off")
ACK_MAX_BYTES = 4096
SUPERVISE_BATCH = 200

# What this process did, for logs and the benchmark: refused commands, ignored acknowledgements,
# failed publications.
stats: Counter[str] = Counter()
# Seconds from a rule firing to its command being handed to the broker, most recent last.
publish_latencies: deque[float] = deque(maxlen=20_000)


class DeviceOffline(Conflict):
    """The device is offline or revoked; the command was not sent."""

    code = "sensors.device_offline"


class UnknownCommand(ValidationFailed):
    """The device's type has no such command."""

    code = "sensors.unknown_command"


class InvalidParams(ValidationFailed):
    """The command's parameters are not valid."""

    code = "sensors.invalid_params"


def command_topic(device_id: str) -> str:
    return TOPIC.format(device_id=device_id)


def _officer(actor: Any) -> Officer | None:
    if actor is None or isinstance(actor, Officer):
        return actor
    # A user: their officer membership (none raises the related-object error, an AttributeError).
    return getattr(actor, "officer", None)


def _lockable(queryset: QuerySet[Command]) -> QuerySet[Command]:
    """Lock the rows read, skipping those another process holds (PostgreSQL); on SQLite a write
    transaction already excludes every other."""
    if transaction.get_connection().features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset


def _definition(device: Device, name: str) -> dict[str, Any] | None:
    for item in device.device_type.commands or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


def _clean_params(params: Any, definition: dict[str, Any] | None) -> dict[str, Any]:
    def invalid(message: str) -> InvalidParams:
        return InvalidParams(message, details={"params": message})

    if params is None:
        return {}
    if not isinstance(params, dict) or any(not isinstance(key, str) for key in params):
        raise invalid(_("The parameters must be an object."))
    try:
        encoded = json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise invalid(_("The parameters must be plain JSON values.")) from exc
    if len(encoded) > ruledef.MAX_PARAMS_CHARS:
        raise invalid(_("The parameters are too large."))
    allowed = definition.get("params") if definition else None
    if isinstance(allowed, dict) and allowed:
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise invalid(_("Unknown parameter %(name)s.") % {"name": unknown[0]})
    for key in ruledef.DURATION_PARAMS:
        if key in params:
            value = params[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 86400:
                raise invalid(
                    _("%(name)s must be a whole number of seconds from 1 to 86400.") % {"name": key}
                )
    return json.loads(encoded)


def _payload(command: Command, device_id: str) -> bytes:
    assert command.deadline is not None  # noqa: S101 - a sent command always has one
    body = {
        "id": str(command.public_id),
        "name": command.name,
        "params": command.params,
        "expires": int(command.deadline.timestamp()),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _publish_on_commit(command: Command, device_id: str, firing: RuleFiring | None = None) -> None:
    """Hand the command to the broker once the transaction that records it has committed."""
    topic = command_topic(device_id)
    payload = _payload(command, device_id)
    fired = getattr(firing, "fired_perf", None) if firing is not None else None

    def publish() -> None:
        from civicore.sensors.broker import broker

        try:
            broker().publish(topic, payload, qos=1)
        except Exception:  # the broker is away: the deadline passes and supervise sends it again
            stats["publish_failed"] += 1
            logger.exception("publishing command %s to %s failed", command.public_id, topic)
            return
        stats["published"] += 1
        if isinstance(fired, float):
            publish_latencies.append(time.perf_counter() - fired)

    transaction.on_commit(publish)


def _refuse(
    *,
    device: Device,
    name: str,
    params: dict[str, Any],
    reason: str,
    officer: Officer | None,
    firing: RuleFiring | None,
    now: datetime,
) -> Command:
    command = Command.objects.create(
        device=device,
        name=name[:40],
        params=params,
        status=Command.Status.REFUSED,
        reason=reason[:300],
        firing=firing,
        issued_by=officer.user if officer else None,
        created_at=now,
    )
    stats["refused"] += 1
    logger.info("command %s to %s refused: %s", name, device.device_id, reason)
    if officer is not None:
        audit.record(
            actor=officer.user,
            action="sensor.command.refuse",
            subject=command,
            agency=officer.agency,
            details={"device": device.device_id, "name": name, "reason": reason},
        )
    return command


def _run_seconds(params: dict[str, Any], max_run_s: int) -> int:
    for key in ruledef.DURATION_PARAMS:
        value = params.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return min(value, max_run_s)
    return max_run_s


def _stop_name(device: Device) -> str | None:
    names = device.device_type.command_names()
    return next((name for name in STOP_COMMANDS if name in names), None)


def command_send(
    *,
    device: Device,
    name: str,
    params: dict[str, Any] | None = None,
    actor: Any = None,
    firing: RuleFiring | None = None,
    interlock: bool = False,
    now: datetime | None = None,
) -> Command:
    """Send a command to a device, or refuse it (kept as REFUSED). `actor` is the officer (or
    their user) sending it by hand: they need sensor.operate in the device's agency, and a
    refusal is an error for them. A rule's commands come with their `firing` instead."""
    now = now or timezone.now()
    officer = None
    if actor is not None:
        officer = permissions.require(_officer(actor), permissions.SENSOR_OPERATE)
        if officer.agency_id != device.agency_id:
            raise PermissionDenied(_("This device belongs to another agency."), code="other_agency")
    name = str(name or "")
    definition = _definition(device, name)
    params = _clean_params(params, definition)
    refusal = None
    if definition is None:
        refusal = _("The device type has no command %(name)s.") % {"name": name}
    elif device.status == Device.Status.REVOKED:
        refusal = _("The device is revoked.")
    elif device.status != Device.Status.ACTIVE:
        refusal = _("The device is not provisioned yet.")
    elif not interlock and not device.is_online(now):
        refusal = _("The device is offline (last seen %(seen)s).") % {
            "seen": device.last_seen_at.isoformat() if device.last_seen_at else _("never")
        }
    if refusal is not None:
        command = _refuse(
            device=device, name=name, params=params, reason=refusal, officer=officer, firing=firing, now=now
        )
        if officer is not None:
            error = UnknownCommand if definition is None else DeviceOffline
            raise error(refusal, details={"command": str(command.public_id), "reason": refusal})
        return command
    kind = device.device_type
    with transaction.atomic():
        command = Command.objects.create(
            device=device,
            name=name,
            params=params,
            status=Command.Status.SENT,
            attempts=1,
            firing=firing,
            issued_by=officer.user if officer else None,
            interlock=interlock,
            created_at=now,
            sent_at=now,
            deadline=now + timedelta(seconds=kind.command_timeout_s),
        )
        interlock_row = None
        if not interlock and name in START_COMMANDS and kind.max_run_s:
            interlock_row = _schedule_interlock(device, command, params, kind.max_run_s, firing, now)
        audit.record(
            actor=officer.user if officer else None,
            action="sensor.command.send",
            subject=command,
            agency=device.agency,
            details={
                "device": device.device_id,
                "name": name,
                "params": params,
                "rule_firing": firing.pk if firing else None,
                "interlock_at": interlock_row.deadline.isoformat()
                if interlock_row and interlock_row.deadline
                else None,
            },
        )
        _publish_on_commit(command, device.device_id, firing)
    return command


def _schedule_interlock(
    device: Device,
    command: Command,
    params: dict[str, Any],
    max_run_s: int,
    firing: RuleFiring | None,
    now: datetime,
) -> Command | None:
    stop = _stop_name(device)
    if stop is None:
        logger.warning("device type %s has a maximum run time but no stop command", device.device_type.code)
        return None
    # For a PENDING interlock, `deadline` is when it is due.
    return Command.objects.create(
        device=device,
        name=stop,
        params={},
        status=Command.Status.PENDING,
        interlock=True,
        firing=firing,
        created_at=now,
        deadline=now + timedelta(seconds=_run_seconds(params, max_run_s)),
        result={"interlock_for": str(command.public_id)},
    )


# --- acknowledgements ----------------------------------------------------------------------------


def _ignore(reason: str, device_id: str) -> None:
    stats[f"ack_{reason}"] += 1
    logger.info("acknowledgement from %s ignored: %s", device_id, reason)


def acknowledge(device_id: str, payload: bytes, *, now: datetime) -> None:
    """Record a device's acknowledgement of a command. Anything that is not a well-formed
    acknowledgement of this device's command waiting for one is counted and dropped."""
    if len(payload) > ACK_MAX_BYTES:
        return _ignore("too_large", device_id)
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return _ignore("malformed", device_id)
    if not isinstance(data, dict):
        return _ignore("malformed", device_id)
    try:
        public_id = uuid.UUID(str(data.get("id", "")))
    except ValueError:
        return _ignore("malformed", device_id)
    status = data.get("status")
    if status not in ("ok", "error"):
        return _ignore("malformed", device_id)
    detail = data.get("detail", "")
    detail = " ".join(detail.split())[:300] if isinstance(detail, str) else ""
    new_status = Command.Status.ACKNOWLEDGED if status == "ok" else Command.Status.FAILED
    with transaction.atomic():
        command = (
            Command.objects.select_for_update(of=("self",))
            .select_related("device__device_type", "device__agency", "firing__rule_version__rule")
            .filter(public_id=public_id, device__device_id=device_id)
            .first()
        )
        if command is None:
            return _ignore("unknown_command", device_id)
        if command.status != Command.Status.SENT:
            return _ignore("not_waiting", device_id)
        command.status = new_status
        command.acknowledged_at = now
        command.result = {**(command.result or {}), "status": status, "detail": detail}
        if new_status == Command.Status.FAILED:
            command.reason = detail or _("The device reported an error.")
        command.save(update_fields=["status", "acknowledged_at", "result", "reason"])
        stats["ack_" + status] += 1
        if new_status == Command.Status.FAILED:
            _raise_alarm(
                command,
                now,
                _("%(device)s could not carry out %(name)s: %(detail)s")
                % {"device": command.device.name, "name": command.name, "detail": detail or "-"},
                severity=Alarm.Severity.WARNING,
            )
    return None


# --- supervision ---------------------------------------------------------------------------------


def _raise_alarm(command: Command, now: datetime, message: str, *, severity: str) -> bool:
    from civicore.sensors.alarms import alarm_raise

    rule = command.firing.rule_version.rule if command.firing_id and command.firing else None
    _alarm, created = alarm_raise(
        device=command.device, severity=severity, message=message, rule=rule, firing=command.firing, now=now
    )
    return created


def _time_out(command: Command, now: datetime) -> None:
    device = command.device
    command.status = Command.Status.TIMED_OUT
    command.reason = _("No acknowledgement after %(attempts)d attempts.") % {"attempts": command.attempts}
    command.save(update_fields=["status", "reason"])
    stats["timed_out"] += 1
    audit.record(
        actor=None,
        action="sensor.command.time_out",
        subject=command,
        agency=device.agency,
        details={"device": device.device_id, "name": command.name, "attempts": command.attempts},
    )
    language = settings.LANGUAGE_CODE
    with translation.override(language):
        message = _("%(device)s does not acknowledge the command %(name)s") % {
            "device": device.name,
            "name": command.name,
        }
        description = _(
            "The device %(device)s (%(id)s) did not acknowledge the command %(name)s after %(attempts)d "
            "attempts. Check the device on site."
        ) % {
            "device": device.name,
            "id": device.device_id,
            "name": command.name,
            "attempts": command.attempts,
        }
    if not _raise_alarm(command, now, message, severity=Alarm.Severity.CRITICAL):
        return  # the open alarm already stands for this problem, with its case
    from civicore.reports.services import report_open_for_device

    try:
        with transaction.atomic():
            report = report_open_for_device(
                agency=device.agency,
                latitude=device.latitude,
                longitude=device.longitude,
                description=description,
                language=language,
            )
        command.result = {**(command.result or {}), "case": report.reference}
        command.save(update_fields=["result"])
    except Exception:  # the time-out and its alarm stand even if the case cannot be filed
        logger.exception("could not open a case for command %s", command.public_id)


def _send_due_interlocks(now: datetime) -> int:
    with transaction.atomic():
        due = list(
            _lockable(
                Command.objects.filter(status=Command.Status.PENDING, interlock=True, deadline__lte=now)
                .select_related("device__device_type", "firing")
                .order_by("deadline")
            )[:SUPERVISE_BATCH]
        )
        for command in due:
            timeout = command.device.device_type.command_timeout_s
            command.status = Command.Status.SENT
            command.attempts = 1
            command.sent_at = now
            command.deadline = now + timedelta(seconds=timeout)
            command.save(update_fields=["status", "attempts", "sent_at", "deadline"])
            _publish_on_commit(command, command.device.device_id)
    return len(due)


def _retry_or_time_out(now: datetime) -> tuple[int, int]:
    retried = timed_out = 0
    with transaction.atomic():
        overdue = list(
            _lockable(
                Command.objects.filter(status=Command.Status.SENT, deadline__lte=now)
                .select_related("device__device_type", "device__agency", "firing__rule_version__rule")
                .order_by("deadline")
            )[:SUPERVISE_BATCH]
        )
        for command in overdue:
            kind = command.device.device_type
            if command.attempts <= kind.command_retries:
                command.attempts += 1
                command.deadline = now + timedelta(seconds=kind.command_timeout_s)
                command.save(update_fields=["attempts", "deadline"])
                _publish_on_commit(command, command.device.device_id)
                stats["retried"] += 1
                retried += 1
            else:
                _time_out(command, now)
                timed_out += 1
    return retried, timed_out


def supervise(*, now: datetime) -> dict[str, int]:
    """Send the interlock commands that are due, ask again the devices that did not acknowledge
    in time, and time out those that used up their retries."""
    interlocks = _send_due_interlocks(now)
    retried, timed_out = _retry_or_time_out(now)
    return {"interlocks": interlocks, "retried": retried, "timed_out": timed_out}
