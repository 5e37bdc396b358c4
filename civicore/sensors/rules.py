"""The rules engine: readings in, firings and their actions out.

Rules are edge-triggered per device: when a rule's condition starts to hold (after its minimum
durations) the rule FIRES once for that device and runs its actions; it CLEARS when the
condition stops holding (thresholds with hysteresis) and may run clear actions; while active it
does not fire again. Where a rule stands for a device is a RuleState row, so any ingest process
carries on where another stopped; firing and clearing claim the row with a conditional update,
so two processes never both fire. In memory there is only what can be rebuilt: the enabled rules,
parsed and indexed by the quantities they read (re-read when a rule changes, looked at no more
than once a second), and device attributes for a few seconds. A reading of a quantity no rule
reads costs one dictionary lookup; the database is written only when a state changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import translation
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Agency, Officer
from civicore.audit import services as audit
from civicore.core.errors import Conflict, PermissionDenied
from civicore.sensors import ruledef
from civicore.sensors.models import (
    Device,
    DeviceType,
    Reading,
    Rollup,
    Rule,
    RuleFiring,
    RuleState,
    RuleVersion,
)
from civicore.sensors.ruledef import (
    Action,
    AlarmAction,
    AllOf,
    AnyOf,
    CaseAction,
    ClearAlarmAction,
    CommandAction,
    Condition,
    GroupAggregate,
    Missing,
    Not,
    NotifyAction,
    RateOfChange,
    RuleDef,
    RuleInvalid,
    Schedule,
    Threshold,
)
from civicore.sensors.types import StoredReading

logger = logging.getLogger(__name__)

RULES_CHECK_SECONDS = 1.0
DEVICES_TTL_SECONDS = 10.0
# Group aggregates over windows up to this long read the readings; longer ones the 5-minute rollups.
RAW_WINDOW_MAX_S = 2 * 3600
OFFLINE_BATCH = 200
NEVER = datetime(1970, 1, 1, tzinfo=UTC)

# --- the in-memory picture (rebuildable from the database at any time) -------------------------


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    pk: int
    device_id: str
    type_code: str
    agency_id: int
    group: str


@dataclass(slots=True)
class Compiled:
    rule: Rule
    version: RuleVersion
    agency: Agency
    definition: RuleDef
    # Children of each all/any node in evaluation order (cheap first, duration-tracking first).
    order: dict[str, tuple[Condition, ...]]
    # Nodes that keep a duration (a threshold, or a node holding one): never skipped.
    tracking: frozenset[str]

    def applies_to(self, info: DeviceInfo) -> bool:
        if info.agency_id != self.rule.agency_id:
            return False
        target = self.definition.target
        if target.devices and info.device_id not in target.devices:
            return False
        if target.device_types and info.type_code not in target.device_types:
            return False
        return not target.groups or info.group in target.groups


@dataclass(slots=True)
class RuleSet:
    stamp: tuple[Any, ...]
    by_quantity: dict[str, tuple[Compiled, ...]]
    offline: tuple[Compiled, ...]
    by_id: dict[int, Compiled]


@dataclass
class _Memory:
    lock: threading.Lock = field(default_factory=threading.Lock)
    rules: RuleSet | None = None
    checked: float = 0.0
    devices: dict[int, DeviceInfo] = field(default_factory=dict)
    groups: dict[tuple[int, str, str], tuple[int, ...]] = field(default_factory=dict)
    devices_loaded: float = 0.0


_memory = _Memory()


def forget_cache() -> None:
    """Drop the cached rules and devices; the next call reads them again."""
    with _memory.lock:
        _memory.rules = None
        _memory.checked = 0.0
        _memory.devices = {}
        _memory.groups = {}
        _memory.devices_loaded = 0.0


_COST = {Threshold: 0, Schedule: 1, Missing: 1, RateOfChange: 2, GroupAggregate: 3}


def _plan(node: Condition, order: dict[str, tuple[Condition, ...]], tracking: set[str]) -> int:
    """Fill the evaluation order under `node`; return its cost."""
    if isinstance(node, AllOf | AnyOf):
        costs = {child.key: _plan(child, order, tracking) for child in node.children}
        if any(child.key in tracking for child in node.children):
            tracking.add(node.key)
        order[node.key] = tuple(
            sorted(node.children, key=lambda child: (child.key not in tracking, costs[child.key]))
        )
        return max(costs.values())
    if isinstance(node, Not):
        cost = _plan(node.child, order, tracking)
        if node.child.key in tracking:
            tracking.add(node.key)
        return cost
    if isinstance(node, Threshold):
        tracking.add(node.key)
    return _COST.get(type(node), 3)


def _compile(rule: Rule) -> Compiled | None:
    version = rule.current_version
    if version is None:
        return None
    try:
        definition = ruledef.parse(version.definition)
    except RuleInvalid as exc:  # saved by an older release, or edited in the database
        logger.error("rule %s version %s is not valid and is skipped: %s", rule.code, version.number, exc)
        return None
    order: dict[str, tuple[Condition, ...]] = {}
    tracking: set[str] = set()
    _plan(definition.when, order, tracking)
    return Compiled(
        rule=rule,
        version=version,
        agency=rule.agency,
        definition=definition,
        order=order,
        tracking=frozenset(tracking),
    )


def _stamp() -> tuple[Any, ...]:
    found = Rule.objects.aggregate(
        latest=Max("updated_at"), count=Count("id"), versions=Max("current_version")
    )
    return (found["latest"], found["count"], found["versions"])


def rule_set() -> RuleSet:
    """The enabled rules, re-read when any rule changed (checked at most once a second)."""
    current = _memory.rules
    moment = time.monotonic()
    if current is not None and moment - _memory.checked < RULES_CHECK_SECONDS:
        return current
    with _memory.lock:
        current = _memory.rules
        if current is not None and time.monotonic() - _memory.checked < RULES_CHECK_SECONDS:
            return current
        stamp = _stamp()
        if current is None or current.stamp != stamp:
            current = _load(stamp)
            _memory.rules = current
        _memory.checked = time.monotonic()
        return current


def _load(stamp: tuple[Any, ...]) -> RuleSet:
    by_quantity: dict[str, list[Compiled]] = {}
    offline: list[Compiled] = []
    by_id: dict[int, Compiled] = {}
    rules = Rule.objects.filter(enabled=True, current_version__isnull=False).select_related(
        "current_version", "agency"
    )
    for rule in rules:
        compiled = _compile(rule)
        if compiled is None:
            continue
        by_id[rule.pk] = compiled
        if compiled.definition.offline:
            offline.append(compiled)
        for quantity in compiled.definition.quantities:
            by_quantity.setdefault(quantity, []).append(compiled)
    return RuleSet(
        stamp=stamp,
        by_quantity={quantity: tuple(items) for quantity, items in by_quantity.items()},
        offline=tuple(offline),
        by_id=by_id,
    )


def watched_quantities() -> frozenset[str]:
    """The quantities some enabled rule reads; ingestion passes only their readings."""
    return frozenset(rule_set().by_quantity)


def _device_infos(pks: Iterable[int]) -> dict[int, DeviceInfo]:
    moment = time.monotonic()
    if moment - _memory.devices_loaded > DEVICES_TTL_SECONDS:
        _memory.devices = {}
        _memory.groups = {}
        _memory.devices_loaded = moment
    known = _memory.devices
    missing = [pk for pk in pks if pk not in known]
    if missing:
        rows = Device.objects.filter(pk__in=missing).values_list(
            "pk", "device_id", "device_type__code", "agency_id", "group"
        )
        fresh = dict(known)
        for pk, device_id, type_code, agency_id, group in rows:
            fresh[pk] = DeviceInfo(pk, device_id, type_code, agency_id, group)
        _memory.devices = known = fresh
    return known


def _group_devices(agency_id: int, group: str, type_code: str) -> tuple[int, ...]:
    key = (agency_id, group, type_code)
    found = _memory.groups.get(key)
    if found is None:
        found = tuple(
            Device.objects.filter(agency_id=agency_id, group=group, device_type__code=type_code)
            .exclude(status=Device.Status.REGISTERED)
            .values_list("pk", flat=True)
        )
        _memory.groups[key] = found
    return found


# --- evaluation --------------------------------------------------------------------------------


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _reading(device_id: str, quantity: str, epoch: float, value: float) -> dict[str, Any]:
    return {"device": device_id, "quantity": quantity, "time": _iso(epoch), "value": value}


class _Batch:
    """What one call of the engine shares across rules and devices: a logical clock, and the
    answers of the queries it made (each asked once per call)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.started = time.perf_counter()
        self.aggregates: dict[tuple[Any, ...], tuple[float | None, list[int]]] = {}
        self.rate_refs: dict[tuple[int, str, float, int], tuple[float, float] | None] = {}
        self.last_values: dict[int, dict[str, tuple[float, float]]] = {}
        self.offline: set[int] = set()
        self.seen: dict[int, datetime | None] = {}
        self.devices: dict[int, Device] = {}
        self.zone = ZoneInfo(settings.TIME_ZONE)

    def clock(self) -> datetime:
        """`now` moved on by the time this call has taken: firings and their commands are
        stamped on the caller's clock, and their distance is the engine's own latency."""
        return self.now + timedelta(seconds=time.perf_counter() - self.started)

    def device(self, pk: int) -> Device:
        found = self.devices.get(pk)
        if found is None:
            found = Device.objects.select_related("device_type", "agency").get(pk=pk)
            self.devices[pk] = found
        return found

    def stored_last_values(self, pk: int) -> dict[str, tuple[float, float]]:
        found = self.last_values.get(pk)
        if found is None:
            raw = Device.objects.filter(pk=pk).values_list("last_values", flat=True).first() or {}
            found = {}
            for quantity, pair in raw.items():
                try:
                    found[quantity] = (float(pair[0]), datetime.fromisoformat(pair[1]).timestamp())
                except (TypeError, ValueError, IndexError):
                    continue
            self.last_values[pk] = found
        return found

    def rate_reference(
        self, pk: int, quantity: str, epoch: float, window_s: int
    ) -> tuple[float, float] | None:
        key = (pk, quantity, epoch, window_s)
        if key not in self.rate_refs:
            end = datetime.fromtimestamp(epoch, UTC)
            row = (
                Reading.objects.filter(
                    device_id=pk, quantity=quantity, time__gte=end - timedelta(seconds=window_s), time__lt=end
                )
                .order_by("time")
                .values_list("time", "value")
                .first()
            )
            self.rate_refs[key] = (row[0].timestamp(), float(row[1])) if row else None
        return self.rate_refs[key]

    def aggregate(
        self, info: DeviceInfo, node: GroupAggregate, epoch: float
    ) -> tuple[float | None, list[int]]:
        key = (
            info.agency_id,
            info.group,
            node.device_type,
            node.quantity,
            node.aggregate,
            node.window_s,
            int(epoch),
        )
        found = self.aggregates.get(key)
        if found is None:
            found = self.aggregates[key] = _aggregate(info, node, epoch)
        return found


def _aggregate(info: DeviceInfo, node: GroupAggregate, epoch: float) -> tuple[float | None, list[int]]:
    pks = list(_group_devices(info.agency_id, info.group, node.device_type)) if info.group else []
    if not pks:
        return None, pks
    end = datetime.fromtimestamp(epoch, UTC)
    start = end - timedelta(seconds=node.window_s)
    if node.window_s <= RAW_WINDOW_MAX_S:
        row = Reading.objects.filter(
            device_id__in=pks, quantity=node.quantity, time__gt=start, time__lte=end
        ).aggregate(count=Count("value"), total=Sum("value"), low=Min("value"), high=Max("value"))
    else:
        row = Rollup.objects.filter(
            device_id__in=pks,
            quantity=node.quantity,
            period=Rollup.Period.FIVE_MINUTES,
            bucket__gte=start,
            bucket__lte=end,
        ).aggregate(count=Sum("count"), total=Sum("total"), low=Min("minimum"), high=Max("maximum"))
    count = int(row["count"] or 0)
    if node.aggregate == "count":
        return float(count), pks
    if node.aggregate == "sum":
        return float(row["total"] or 0.0), pks
    if not count:
        return None, pks
    if node.aggregate == "max":
        return float(row["high"]), pks
    if node.aggregate == "min":
        return float(row["low"]), pks
    return float(row["total"]) / count, pks


class _Context:
    """One rule, one device, one moment: what the condition nodes look at and what they leave."""

    def __init__(self, compiled: Compiled, info: DeviceInfo, state: _State, batch: _Batch) -> None:
        self.compiled = compiled
        self.info = info
        self.state = state
        self.batch = batch
        self.moment = 0.0
        self.reading: StoredReading | None = None
        self.latest: dict[str, tuple[float, float]] = {}
        self.evidence: list[dict[str, Any]] = []
        self.dirty = False

    def observe(self, quantity: str) -> tuple[float, float] | None:
        """The device's newest value of `quantity` at this moment, and its time."""
        found = self.latest.get(quantity)
        if found is None:
            stored = self.batch.stored_last_values(self.info.pk).get(quantity)
            if stored is not None and stored[1] <= self.moment:
                found = stored
        return found

    def since(self, key: str) -> list[float] | None:
        return (self.state.data.get("since") or {}).get(key)

    def start(self, key: str, epoch: float, value: float) -> list[float]:
        started = [epoch, value]
        self.state.data = {**self.state.data, "since": {**(self.state.data.get("since") or {}), key: started}}
        self.dirty = True
        return started

    def drop(self, key: str) -> None:
        since = self.state.data.get("since") or {}
        if key in since:
            rest = {name: value for name, value in since.items() if name != key}
            self.state.data = {**self.state.data, "since": rest}
            self.dirty = True


Evaluator = Callable[[Any, _Context], bool]
EVALUATORS: dict[type[Condition], Evaluator] = {}


def evaluator(kind: type[Condition]) -> Callable[[Evaluator], Evaluator]:
    """Register how a condition kind of ruledef is evaluated."""

    def register(func: Evaluator) -> Evaluator:
        EVALUATORS[kind] = func
        return func

    return register


def _holds(node: Condition, ctx: _Context) -> bool:
    return EVALUATORS[type(node)](node, ctx)


@evaluator(AllOf)
def _eval_all(node: AllOf, ctx: _Context) -> bool:
    result = True
    for child in ctx.compiled.order[node.key]:
        if not result and child.key not in ctx.compiled.tracking:
            break
        if not _holds(child, ctx):
            result = False
    return result


@evaluator(AnyOf)
def _eval_any(node: AnyOf, ctx: _Context) -> bool:
    result = False
    for child in ctx.compiled.order[node.key]:
        if result and child.key not in ctx.compiled.tracking:
            break
        if _holds(child, ctx):
            result = True
    return result


@evaluator(Not)
def _eval_not(node: Not, ctx: _Context) -> bool:
    return not _holds(node.child, ctx)


@evaluator(Threshold)
def _eval_threshold(node: Threshold, ctx: _Context) -> bool:
    seen = ctx.observe(node.quantity)
    if seen is None:
        ctx.drop(node.key)
        return False
    value, when = seen
    device_id = ctx.info.device_id
    if ctx.state.active:
        # Hysteresis: an active rule holds until the value passes the clear value.
        holds = value <= node.clear if node.op in ("below", "at_most") else value >= node.clear
        if holds:
            ctx.evidence.append(_reading(device_id, node.quantity, when, value))
        return holds
    if not ruledef.compare(node.op, value, node.value):
        ctx.drop(node.key)
        return False
    started = ctx.since(node.key) or ctx.start(node.key, when, value)
    if when - started[0] < node.for_s:
        return False
    if started[0] != when:
        ctx.evidence.append(_reading(device_id, node.quantity, started[0], started[1]))
    ctx.evidence.append(_reading(device_id, node.quantity, when, value))
    return True


@evaluator(RateOfChange)
def _eval_rate(node: RateOfChange, ctx: _Context) -> bool:
    seen = ctx.observe(node.quantity)
    if seen is None:
        return False
    value, when = seen
    reference = ctx.batch.rate_reference(ctx.info.pk, node.quantity, when, node.window_s)
    # Too short a span says nothing about a rate over the window.
    if reference is None or when - reference[0] < node.window_s / 2:
        return False
    rate = (value - reference[1]) / ((when - reference[0]) / 60.0)
    holds = ruledef.compare(node.op, rate, node.per_minute)
    if holds:
        device_id = ctx.info.device_id
        ctx.evidence.append(_reading(device_id, node.quantity, reference[0], reference[1]))
        ctx.evidence.append({**_reading(device_id, node.quantity, when, value), "per_minute": round(rate, 6)})
    return holds


@evaluator(Schedule)
def _eval_schedule(node: Schedule, ctx: _Context) -> bool:
    local = datetime.fromtimestamp(ctx.moment, ctx.batch.zone)
    minute = local.hour * 60 + local.minute
    if node.start_minute < node.end_minute:
        inside = node.start_minute <= minute < node.end_minute
    else:  # a window across midnight, such as 22:00-06:00
        inside = minute >= node.start_minute or minute < node.end_minute
    return local.weekday() in node.days and inside == node.inside


@evaluator(GroupAggregate)
def _eval_group(node: GroupAggregate, ctx: _Context) -> bool:
    value, pks = ctx.batch.aggregate(ctx.info, node, ctx.moment)
    holds = node.if_no_data if value is None else ruledef.compare(node.op, value, node.value)
    ctx.evidence.append(
        {
            "group": ctx.info.group,
            "device_type": node.device_type,
            "quantity": node.quantity,
            "aggregate": node.aggregate,
            "window_s": node.window_s,
            "value": value,
            "devices": len(pks),
            "time": _iso(ctx.moment),
        }
    )
    return holds


@evaluator(Missing)
def _eval_missing(node: Missing, ctx: _Context) -> bool:
    return ctx.info.pk in ctx.batch.offline


# --- state changes -----------------------------------------------------------------------------


def _ensure_row(state: _State, at: datetime) -> None:
    if state.pk is None:
        RuleState.objects.bulk_create(
            [
                RuleState(
                    rule_id=state.rule_id,
                    device_id=state.device_id,
                    active=False,
                    changed_at=at,
                    data={},
                )
            ],
            ignore_conflicts=True,
        )
        state.pk = (
            RuleState.objects.filter(rule_id=state.rule_id, device_id=state.device_id)
            .values_list("pk", flat=True)
            .first()
        )


def _claim(state: _State, *, active: bool, at: datetime) -> bool:
    """Move the state to active (or back) if nobody else did; False when another process did."""
    _ensure_row(state, at)
    moved = RuleState.objects.filter(pk=state.pk or 0, active=not active).update(
        active=active, pending_since=None, data={}, changed_at=at
    )
    state.active = active
    state.data = {}
    state.pending_since = None
    state.changed_at = at
    return moved == 1


def _save_pending(state: _State, at: datetime) -> None:
    since = state.data.get("since") or {}
    starts = [float(value[0]) for value in since.values()]
    state.pending_since = datetime.fromtimestamp(min(starts), UTC) if starts else None
    state.changed_at = at
    if state.pk is None and not since:
        return
    if state.pk is None:
        RuleState.objects.bulk_create(
            [
                RuleState(
                    rule_id=state.rule_id,
                    device_id=state.device_id,
                    active=state.active,
                    pending_since=state.pending_since,
                    changed_at=at,
                    data=state.data,
                )
            ],
            ignore_conflicts=True,
        )
        return
    RuleState.objects.filter(pk=state.pk, active=state.active).update(
        data=state.data, pending_since=state.pending_since, changed_at=at
    )


@dataclass
class _Act:
    """What an action handler gets: the rule, the device, the firing and the clock."""

    compiled: Compiled
    info: DeviceInfo
    batch: _Batch
    firing: RuleFiring
    kind: str


ActionHandler = Callable[[Any, _Act], dict[str, Any]]
ACTION_HANDLERS: dict[type[Action], ActionHandler] = {}


def action_handler(kind: type[Action]) -> Callable[[ActionHandler], ActionHandler]:
    """Register how an action kind of ruledef is carried out."""

    def register(func: ActionHandler) -> ActionHandler:
        ACTION_HANDLERS[kind] = func
        return func

    return register


@action_handler(CommandAction)
def _act_command(action: CommandAction, act: _Act) -> dict[str, Any]:
    from civicore.sensors.commands import command_send

    if action.device_type is None:
        devices = [act.batch.device(act.info.pk)]
    elif not act.info.group:
        devices = []
    else:
        devices = list(
            Device.objects.filter(
                agency_id=act.info.agency_id, group=act.info.group, device_type__code=action.device_type
            )
            .select_related("device_type", "agency")
            .order_by("device_id")
        )
    sent = []
    for device in devices:
        command = command_send(
            device=device,
            name=action.name,
            params=dict(action.params),
            firing=act.firing,
            now=act.batch.clock(),
        )
        sent.append(
            {
                "device": device.device_id,
                "command": str(command.public_id),
                "status": command.status,
                "reason": command.reason,
            }
        )
    return {"type": "command", "name": action.name, "params": action.params, "commands": sent}


@action_handler(AlarmAction)
def _act_alarm(action: AlarmAction, act: _Act) -> dict[str, Any]:
    from civicore.sensors.alarms import alarm_raise

    alarm, created = alarm_raise(
        device=act.batch.device(act.info.pk),
        severity=action.severity,
        message=action.message.get(settings.LANGUAGE_CODE),
        rule=act.compiled.rule,
        firing=act.firing,
        now=act.batch.clock(),
    )
    return {
        "type": "alarm",
        "alarm": alarm.pk,
        "new": created,
        "severity": alarm.severity,
        "message": action.message.as_dict(),
    }


def _default_subject(act: _Act) -> str:
    rule = act.compiled.rule
    if act.kind == RuleFiring.Kind.CLEARED:
        return _("Rule %(rule)s cleared on %(device)s") % {"rule": rule.name, "device": act.info.device_id}
    return _("Rule %(rule)s fired on %(device)s") % {"rule": rule.name, "device": act.info.device_id}


def _evidence_text(firing: RuleFiring) -> str:
    lines = []
    for item in firing.readings[:10]:
        if "quantity" in item and "device" in item:
            lines.append(
                f"{item['device']} {item['quantity']} = {item.get('value')} ({item.get('time', '')})"
            )
        elif "aggregate" in item:
            lines.append(
                f"{item.get('group')} {item.get('device_type')} {item.get('quantity')} "
                f"{item.get('aggregate')}/{item.get('window_s')}s = {item.get('value')}"
            )
    return "\n".join(lines)


@action_handler(NotifyAction)
def _act_notify(action: NotifyAction, act: _Act) -> dict[str, Any]:
    from civicore.notify.services import notification_send

    officers = Officer.objects.filter(agency_id=act.info.agency_id, active=True).select_related("user")
    told = 0
    for officer in officers:
        if not permissions.has_perm(officer, permissions.SENSOR_OPERATE):
            continue
        language = getattr(officer.user, "preferred_language", "") or settings.LANGUAGE_CODE
        with translation.override(language):
            subject = action.subject.get(language) if action.subject else _default_subject(act)
            body = action.body.get(language) if action.body else _evidence_text(act.firing) or subject
            notification_send(
                user=officer.user,
                subject=subject,
                body=body,
                link=f"/office/sensors/devices/{act.info.device_id}/",
            )
        told += 1
    return {"type": "notify", "officers": told}


@action_handler(CaseAction)
def _act_case(action: CaseAction, act: _Act) -> dict[str, Any]:
    from civicore.reports.services import report_open_for_device

    device = act.batch.device(act.info.pk)
    language = settings.LANGUAGE_CODE
    with translation.override(language):
        if action.description is not None:
            description = action.description.get(language)
        else:
            description = _("The sensor rule %(rule)s found a problem at device %(device)s (%(id)s).") % {
                "rule": act.compiled.rule.name,
                "device": device.name,
                "id": device.device_id,
            }
    report = report_open_for_device(
        agency=act.compiled.agency,
        latitude=device.latitude,
        longitude=device.longitude,
        description=description,
        language=language,
    )
    return {"type": "case", "report": report.reference}


@action_handler(ClearAlarmAction)
def _act_clear_alarm(action: ClearAlarmAction, act: _Act) -> dict[str, Any]:
    from civicore.sensors.alarms import alarms_clear_for

    cleared = alarms_clear_for(
        rule=act.compiled.rule,
        device=act.batch.device(act.info.pk),
        now=act.batch.clock(),
        note=_("Cleared by its rule."),
    )
    return {"type": "clear_alarm", "cleared": cleared}


def _run_actions(actions: Sequence[Action], act: _Act) -> list[dict[str, Any]]:
    outcomes = []
    for each in actions:
        try:
            # Each action in its own savepoint: one that fails leaves the others and the firing.
            with transaction.atomic():
                outcomes.append(ACTION_HANDLERS[type(each)](each, act))
        except Exception as exc:
            logger.exception("rule %s: action %s failed", act.compiled.rule.code, each.kind)
            outcomes.append(
                {
                    "type": each.kind,
                    "error": getattr(exc, "code", type(exc).__name__),
                    "detail": str(exc)[:300],
                }
            )
    return outcomes


def _transition(
    compiled: Compiled,
    info: DeviceInfo,
    state: _State,
    batch: _Batch,
    *,
    fire: bool,
    evidence: list[dict[str, Any]],
    changed_at: datetime,
) -> RuleFiring | None:
    kind = RuleFiring.Kind.FIRED if fire else RuleFiring.Kind.CLEARED
    with transaction.atomic():
        if not _claim(state, active=fire, at=changed_at):
            return None  # another process got there first
        firing = RuleFiring.objects.create(
            rule_version=compiled.version, device_id=info.pk, kind=kind, at=batch.clock(), readings=evidence
        )
        firing.fired_perf = time.perf_counter()  # type: ignore[attr-defined]
        act = _Act(compiled=compiled, info=info, batch=batch, firing=firing, kind=kind)
        actions = compiled.definition.on_fire if fire else compiled.definition.on_clear
        firing.actions = _run_actions(actions, act)
        if firing.actions:
            firing.save(update_fields=["actions"])
        audit.record(
            actor=None,
            action="sensor.rule.fire" if fire else "sensor.rule.clear",
            subject=firing,
            agency=compiled.agency,
            details={
                "rule": compiled.rule.code,
                "version": compiled.version.number,
                "device": info.device_id,
                "readings": evidence,
                "actions": firing.actions,
            },
        )
    return firing


@dataclass(slots=True)
class _State:
    """A RuleState row as this batch read it: plain values, since a batch reads one per device
    and building model instances cost more than the rules themselves."""

    rule_id: int
    device_id: int
    active: bool
    changed_at: datetime
    data: dict[str, Any]
    pending_since: datetime | None = None
    pk: int | None = None


_STATE_COLUMNS = ("rule_id", "device_id", "active", "changed_at", "data", "pending_since", "pk")


def _load_states(**lookup: Any) -> list[_State]:
    return [_State(*row) for row in RuleState.objects.filter(**lookup).values_list(*_STATE_COLUMNS)]


def _new_state(rule_id: int, device_pk: int) -> _State:
    # Not in the database yet: it reflects no reading so far.
    return _State(rule_id=rule_id, device_id=device_pk, active=False, changed_at=NEVER, data={})


def evaluate(readings: Sequence[StoredReading], *, now: datetime) -> list[RuleFiring]:
    """Run the enabled rules over readings just stored (in time order per device); returns the
    firings and clearings it caused."""
    rules = rule_set()
    index = rules.by_quantity
    if not index:
        return []
    relevant = [reading for reading in readings if reading.quantity in index]
    if not relevant:
        return []
    infos = _device_infos({reading.device_pk for reading in relevant})
    pairs: dict[tuple[int, int], list[StoredReading]] = {}
    for reading in relevant:
        info = infos.get(reading.device_pk)
        if info is None:
            continue
        for compiled in index[reading.quantity]:
            if compiled.applies_to(info):
                pairs.setdefault((compiled.rule.pk, reading.device_pk), []).append(reading)
    if not pairs:
        return []
    states = {
        (state.rule_id, state.device_id): state
        for state in _load_states(
            rule_id__in={rule_id for rule_id, _ in pairs}, device_id__in={pk for _, pk in pairs}
        )
    }
    batch = _Batch(now)
    firings: list[RuleFiring] = []
    for (rule_id, device_pk), items in pairs.items():
        state = states.get((rule_id, device_pk)) or _new_state(rule_id, device_pk)
        firings.extend(_run_pair(rules.by_id[rule_id], infos[device_pk], state, items, batch))
    return firings


def _run_pair(
    compiled: Compiled, info: DeviceInfo, state: _State, items: list[StoredReading], batch: _Batch
) -> list[RuleFiring]:
    ctx = _Context(compiled, info, state, batch)
    firings = []
    last_change: datetime | None = None
    items.sort(key=lambda reading: reading.time)
    for reading in items:
        if reading.time < state.changed_at:
            continue  # older than what the state already reflects
        epoch = reading.time.timestamp()
        ctx.moment = epoch
        ctx.reading = reading
        ctx.latest[reading.quantity] = (reading.value, epoch)
        ctx.evidence = []
        holds = _holds(compiled.definition.when, ctx)
        if holds != state.active:
            evidence = ctx.evidence
            if not holds:  # what made it stop holding
                current = _reading(info.device_id, reading.quantity, epoch, reading.value)
                evidence = [current, *(item for item in evidence if item != current)]
            firing = _transition(
                compiled, info, state, batch, fire=holds, evidence=evidence, changed_at=reading.time
            )
            ctx.dirty = False
            last_change = None
            if firing is not None:
                firings.append(firing)
        elif ctx.dirty:
            last_change = reading.time
    if ctx.dirty and last_change is not None:
        _save_pending(state, last_change)
    return firings


# --- silence -----------------------------------------------------------------------------------


def _silence_q(node: Missing, now: datetime, kinds: dict[int, tuple[int, int]]) -> Q:
    """Devices silent for longer than the node allows (`seen` annotated on the device): after
    `after_s`, or after `intervals` (by default the type's own count) of the type's interval."""
    if node.after_s is not None:
        return Q(seen__lt=now - timedelta(seconds=node.after_s))
    silent = Q(pk__in=[])
    for kind_pk, (interval, after_intervals) in kinds.items():
        limit = interval * (node.intervals or after_intervals)
        silent |= Q(device_type_id=kind_pk, seen__lt=now - timedelta(seconds=limit))
    return silent


def _targeted(compiled: Compiled) -> Any:
    target = compiled.definition.target
    devices = Device.objects.filter(agency_id=compiled.rule.agency_id, status=Device.Status.ACTIVE)
    if target.devices:
        devices = devices.filter(device_id__in=target.devices)
    if target.device_types:
        devices = devices.filter(device_type__code__in=target.device_types)
    if target.groups:
        devices = devices.filter(group__in=target.groups)
    return devices.annotate(seen=Coalesce(F("last_seen_at"), F("credential_issued_at"), F("created_at")))


def check_offline(*, now: datetime) -> list[RuleFiring]:
    """Fire missing-data rules for devices silent for longer than their rule allows, and clear
    them for devices heard from again."""
    rules = rule_set()
    if not rules.offline:
        return []
    kinds = {
        pk: (interval, after)
        for pk, interval, after in DeviceType.objects.values_list(
            "pk", "expected_interval_s", "offline_after_intervals"
        )
    }
    batch = _Batch(now)
    firings: list[RuleFiring] = []
    for compiled in rules.offline:
        node = compiled.definition.missing
        assert node is not None  # noqa: S101 - an offline rule has its missing node
        silent = _silence_q(node, now, kinds)
        active = RuleState.objects.filter(rule=compiled.rule, active=True).values("device_id")
        targeted = _targeted(compiled)
        gone = list(targeted.filter(silent).exclude(pk__in=active).order_by("pk")[:OFFLINE_BATCH])
        back = list(targeted.filter(pk__in=active).exclude(silent).order_by("pk")[:OFFLINE_BATCH])
        batch.offline = {device.pk for device in gone}
        for device in [*gone, *back]:
            batch.devices[device.pk] = device
            info = DeviceInfo(device.pk, device.device_id, "", device.agency_id, device.group)
            firing = _check_device(compiled, info, device, batch, now)
            if firing is not None:
                firings.append(firing)
    return firings


def _check_device(
    compiled: Compiled, info: DeviceInfo, device: Device, batch: _Batch, now: datetime
) -> RuleFiring | None:
    found = _load_states(rule=compiled.rule, device=device)
    state = found[0] if found else _new_state(compiled.rule.pk, device.pk)
    ctx = _Context(compiled, info, state, batch)
    ctx.moment = now.timestamp()
    holds = _holds(compiled.definition.when, ctx)
    if holds == state.active:
        return None
    seen = getattr(device, "seen", None)
    evidence = [
        {
            "device": device.device_id,
            "last_seen": device.last_seen_at.isoformat() if device.last_seen_at else None,
            "silent_s": int((now - seen).total_seconds()) if seen else None,
        },
        *ctx.evidence,
    ]
    return _transition(compiled, info, state, batch, fire=holds, evidence=evidence, changed_at=now)


# --- rules as data: saving versions, enabling, disabling ---------------------------------------


def _manager(actor: Any, agency_id: int) -> Officer | None:
    """The officer editing rules of `agency_id`; None when the platform itself acts (loaders)."""
    if actor is None:
        return None
    from civicore.sensors.commands import _officer

    officer = permissions.require(_officer(actor), permissions.SENSOR_MANAGE)
    if officer.agency_id != agency_id:
        raise PermissionDenied(_("This rule belongs to another agency."), code="other_agency")
    return officer


def _references(parsed: RuleDef, definition: dict[str, Any]) -> None:
    """The device types, quantities and commands a definition names exist."""
    kinds = {kind.code: kind for kind in DeviceType.objects.filter(code__in=parsed.device_types)}
    for code in parsed.target.device_types:
        if code not in kinds:
            raise RuleInvalid(
                _("Unknown device type %(code)s.") % {"code": code},
                details={"target.device_type": _("Unknown device type %(code)s.") % {"code": code}},
            )
    targets = [kinds[code] for code in parsed.target.device_types]
    for node in ruledef.walk(parsed.when):
        if isinstance(node, Threshold | RateOfChange) and targets:
            if not any(kind.quantity(node.quantity) for kind in targets):
                message = _("No targeted device type measures %(quantity)s.") % {"quantity": node.quantity}
                raise RuleInvalid(message, details={f"{node.key}.quantity": message})
        if isinstance(node, GroupAggregate):
            kind = kinds.get(node.device_type)
            if kind is None:
                message = _("Unknown device type %(code)s.") % {"code": node.device_type}
                raise RuleInvalid(message, details={f"{node.key}.device_type": message})
            if not kind.quantity(node.quantity):
                message = _("Device type %(code)s does not measure %(quantity)s.") % {
                    "code": node.device_type,
                    "quantity": node.quantity,
                }
                raise RuleInvalid(message, details={f"{node.key}.quantity": message})
    for where, actions in (("on_fire", parsed.on_fire), ("on_clear", parsed.on_clear)):
        for index, each in enumerate(actions):
            if not isinstance(each, CommandAction):
                continue
            path = f"{where}[{index}].command"
            if each.device_type is not None:
                kind = kinds.get(each.device_type)
                if kind is None:
                    message = _("Unknown device type %(code)s.") % {"code": each.device_type}
                    raise RuleInvalid(message, details={f"{path}.to.device_type": message})
                destinations = [kind]
            else:
                destinations = targets
            for kind in destinations:
                if each.name not in kind.command_names():
                    message = _("Device type %(code)s has no command %(name)s.") % {
                        "code": kind.code,
                        "name": each.name,
                    }
                    raise RuleInvalid(message, details={f"{path}.name": message})


def _field(value: Any, name: str, limit: int, *, required: bool = True) -> str:
    text = " ".join(str(value or "").split())
    if required and not text:
        raise RuleInvalid(_("This field is required."), details={name: _("This field is required.")})
    if len(text) > limit:
        message = _("At most %(max)d characters.") % {"max": limit}
        raise RuleInvalid(message, details={name: message})
    return text


def rule_save(
    *,
    rule_or_none: Rule | None,
    agency: Agency,
    code: str,
    name: str,
    definition: Any,
    note: str = "",
    actor: Any = None,
) -> RuleVersion:
    """Save a definition as the rule's new version (creating the rule if it is new); an old
    version is never edited. `definition` is decoded JSON or the JSON text of a form."""
    officer = _manager(actor, agency.pk)
    if isinstance(definition, str):
        definition = ruledef.parse_text(definition)
    parsed = ruledef.parse(definition)
    name = _field(name, "name", 200)
    note = _field(note, "note", 300, required=False)
    code = str(code or "").strip()
    with transaction.atomic():
        if rule_or_none is None:
            rule = Rule(code=code, name=name, agency=agency)
            try:
                rule.full_clean(exclude=["current_version", "agency"], validate_unique=False)
            except ValidationError as exc:
                details = {
                    key: " ".join(str(m) for m in messages) for key, messages in exc.message_dict.items()
                }
                raise RuleInvalid(next(iter(details.values())), details=details) from exc
            if Rule.objects.filter(code=code).exists():
                raise Conflict(
                    _("A rule with this code exists already."),
                    code="sensors.rule_code_taken",
                    details={"code": code},
                )
        else:
            rule = Rule.objects.select_for_update().get(pk=rule_or_none.pk)
            if rule.agency_id != agency.pk:
                raise PermissionDenied(_("This rule belongs to another agency."), code="other_agency")
            if code and code != rule.code:
                message = _("A rule's code cannot change.")
                raise RuleInvalid(message, details={"code": message})
            rule.name = name
        _references(parsed, definition)
        try:
            with transaction.atomic():
                rule.save()
        except IntegrityError as exc:
            raise Conflict(
                _("A rule with this code exists already."), code="sensors.rule_code_taken"
            ) from exc
        number = (rule.versions.aggregate(top=Max("number"))["top"] or 0) + 1
        version = RuleVersion.objects.create(
            rule=rule,
            number=number,
            definition=definition,
            note=note,
            created_by=officer.user if officer else None,
        )
        rule.current_version = version
        rule.save(update_fields=["current_version", "name", "updated_at"])
        audit.record(
            actor=officer.user if officer else None,
            action="sensor.rule.save",
            subject=rule,
            agency=agency,
            details={"code": rule.code, "version": number, "note": note, "definition": definition},
        )
        transaction.on_commit(forget_cache)
    forget_cache()
    return version


def _set_enabled(rule: Rule, enabled: bool, actor: Any) -> Rule:
    officer = _manager(actor, rule.agency_id)
    with transaction.atomic():
        rule = Rule.objects.select_for_update().select_related("agency").get(pk=rule.pk)
        if rule.enabled == enabled:
            return rule
        rule.enabled = enabled
        rule.save(update_fields=["enabled", "updated_at"])
        if not enabled:
            # A disabled rule starts afresh when enabled again (its actuators have their interlocks).
            RuleState.objects.filter(rule=rule).delete()
        audit.record(
            actor=officer.user if officer else None,
            action="sensor.rule.enable" if enabled else "sensor.rule.disable",
            subject=rule,
            agency=rule.agency,
            details={"code": rule.code},
        )
        transaction.on_commit(forget_cache)
    forget_cache()
    return rule


def rule_enable(*, rule: Rule, actor: Any = None) -> Rule:
    return _set_enabled(rule, True, actor)


def rule_disable(*, rule: Rule, actor: Any = None) -> Rule:
    return _set_enabled(rule, False, actor)
