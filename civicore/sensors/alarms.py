"""Alarms: what a rule or a silent actuator wants an officer to look at.

There is at most one open (active or acknowledged) alarm per rule and device: a condition that
keeps holding, or fires again before an officer cleared the last alarm, does not pile up new
ones. Officers of the device's agency holding sensor.operate acknowledge and clear alarms; both
are audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.audit import services as audit
from civicore.core.errors import Conflict, PermissionDenied, ValidationFailed
from civicore.sensors.models import Alarm, Device, Rule, RuleFiring

NOTE_MAX = 300
OPEN_STATUSES = (Alarm.Status.ACTIVE, Alarm.Status.ACKNOWLEDGED)


class AlarmNotOpen(Conflict):
    """This alarm is no longer in a state that allows this."""

    code = "sensors.alarm_not_open"


def alarm_raise(
    *,
    device: Device,
    severity: str,
    message: str,
    rule: Rule | None = None,
    firing: RuleFiring | None = None,
    now: datetime | None = None,
) -> tuple[Alarm, bool]:
    """The open alarm of this rule on this device, or a new one; True when it is new."""
    with transaction.atomic():
        # The device row serialises two processes raising the same alarm at the same moment.
        Device.objects.select_for_update().filter(pk=device.pk).values_list("pk", flat=True).first()
        existing = (
            Alarm.objects.filter(device=device, rule=rule, status__in=OPEN_STATUSES)
            .order_by("-raised_at")
            .first()
        )
        if existing is not None:
            return existing, False
        alarm = Alarm.objects.create(
            rule=rule,
            device=device,
            agency_id=device.agency_id,
            severity=severity if severity in Alarm.Severity.values else Alarm.Severity.WARNING,
            message=" ".join(message.split())[:300],
            firing=firing,
            raised_at=now or timezone.now(),
        )
        audit.record(
            actor=None,
            action="sensor.alarm.raise",
            subject=alarm,
            agency=device.agency,
            details={
                "device": device.device_id,
                "rule": rule.code if rule else "",
                "severity": alarm.severity,
                "message": alarm.message,
            },
        )
    return alarm, True


def alarms_clear_for(*, rule: Rule, device: Device, now: datetime, note: str = "") -> int:
    """Clear the rule's open alarm on the device (when its rule clears, if the rule says so)."""
    open_alarms = list(
        Alarm.objects.select_for_update().filter(rule=rule, device=device, status__in=OPEN_STATUSES)
    )
    for alarm in open_alarms:
        alarm.status = Alarm.Status.CLEARED
        alarm.cleared_at = now
        alarm.note = note[:NOTE_MAX]
        alarm.save(update_fields=["status", "cleared_at", "note"])
        audit.record(
            actor=None,
            action="sensor.alarm.clear",
            subject=alarm,
            agency=device.agency,
            details={"device": device.device_id, "rule": rule.code, "by": "rule"},
        )
    return len(open_alarms)


def alarm_text(alarm: Alarm, language: str | None = None) -> str:
    """The alarm's message in the language asked for (the active one by default): a rule's alarm
    carries both its Vietnamese and English text in the firing that raised it."""
    language = language or translation.get_language() or "vi"
    firing = alarm.firing if alarm.firing_id is not None else None
    if firing is not None:
        for outcome in firing.actions or []:
            if isinstance(outcome, dict) and outcome.get("alarm") == alarm.pk:
                texts = outcome.get("message") or {}
                wanted = texts.get("en") if language.startswith("en") else texts.get("vi")
                if wanted:
                    return str(wanted)
    return alarm.message


def _note(note: Any) -> str:
    text = " ".join(str(note or "").split())
    if len(text) > NOTE_MAX:
        message = _("The note is too long: at most %(max)d characters.") % {"max": NOTE_MAX}
        raise ValidationFailed(message, code="sensors.invalid_note", details={"note": message})
    return text


def _operator(officer: Officer | None, alarm: Alarm) -> Officer:
    officer = permissions.require(officer, permissions.SENSOR_OPERATE)
    if officer.agency_id != alarm.agency_id:
        raise PermissionDenied(_("This alarm belongs to another agency."), code="other_agency")
    return officer


def _locked(alarm: Alarm) -> Alarm:
    return Alarm.objects.select_for_update(of=("self",)).select_related("device", "agency").get(pk=alarm.pk)


@transaction.atomic
def alarm_acknowledge(*, alarm: Alarm, officer: Officer, note: str = "") -> Alarm:
    """An officer has seen the alarm and is on it; it stays open until cleared."""
    _operator(officer, alarm)
    note = _note(note)
    alarm = _locked(alarm)
    if alarm.status != Alarm.Status.ACTIVE:
        raise AlarmNotOpen(_("Only an active alarm can be acknowledged."))
    alarm.status = Alarm.Status.ACKNOWLEDGED
    alarm.acknowledged_at = timezone.now()
    alarm.acknowledged_by = officer.user
    if note:
        alarm.note = note
    alarm.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "note"])
    audit.record(
        actor=officer.user,
        action="sensor.alarm.acknowledge",
        subject=alarm,
        agency=officer.agency,
        details={"device": alarm.device.device_id, "note": note},
    )
    return alarm


@transaction.atomic
def alarm_clear(*, alarm: Alarm, officer: Officer, note: str = "") -> Alarm:
    """The officer closes the alarm (the problem is handled or was not one)."""
    _operator(officer, alarm)
    note = _note(note)
    alarm = _locked(alarm)
    if alarm.status not in OPEN_STATUSES:
        raise AlarmNotOpen(_("This alarm is already cleared."))
    now = timezone.now()
    alarm.status = Alarm.Status.CLEARED
    alarm.cleared_at = now
    alarm.cleared_by = officer.user
    if alarm.acknowledged_at is None:
        alarm.acknowledged_at = now
        alarm.acknowledged_by = officer.user
    if note:
        alarm.note = note
    alarm.save(
        update_fields=["status", "cleared_at", "cleared_by", "acknowledged_at", "acknowledged_by", "note"]
    )
    audit.record(
        actor=officer.user,
        action="sensor.alarm.clear",
        subject=alarm,
        agency=officer.agency,
        details={"device": alarm.device.device_id, "note": note},
    )
    return alarm
