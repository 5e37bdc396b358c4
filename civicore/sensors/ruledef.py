"""Rule definitions: the JSON an engineer writes (stored in RuleVersion.definition), checked and
turned into plain frozen values the engine evaluates.

Every problem is reported as `sensors.invalid_rule` with the path of the offending field
("when.all[1].threshold.op"), so an editor can point at it. Sizes, nesting and numbers are
bounded, so a hostile definition costs nothing to refuse. Condition and action kinds are
registries: adding one is registering its parser here and its evaluator in the engine.

A definition::

    {
      "target": {"device_type": "soil-moisture", "groups": ["tao-dan"], "devices": ["..."]},
      "when": {"all": [
        {"threshold": {"quantity": "soil_moisture", "op": "below", "value": 20, "clear": 35, "for_s": 1800}},
        {"schedule": {"not_between": ["10:00", "16:00"]}},
        {"group": {"device_type": "rain-gauge", "quantity": "rain", "aggregate": "sum",
                   "window_s": 3600, "op": "at_most", "value": 0}}
      ]},
      "on_fire": [{"command": {"to": {"device_type": "valve"}, "name": "open",
                               "params": {"duration_s": 600}}}],
      "on_clear": [{"command": {"to": {"device_type": "valve"}, "name": "close"}}]
    }

Conditions: `threshold` (quantity, op, value, optional hysteresis `clear` value and minimum
duration `for_s`), `rate_of_change` (change of a quantity per minute over `window_s`),
`missing` (the device silent for `after_s` seconds or `intervals` expected intervals; such a rule
is checked by the clock, not by readings), `schedule` (alias `time_window`: `between` or
`not_between` two HH:MM times in the agency's time zone, on `days`), `group` (an aggregate of a
quantity over the devices of a type in the same group), combined with `all`, `any` and `not`.
Actions: `command`, `alarm`, `notify`, `case`, and on clear `clear_alarm`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from civicore.core.errors import ValidationFailed

MAX_JSON_CHARS = 16_000
MAX_DEPTH = 6  # nesting of all/any/not
MAX_CONDITIONS = 32
MAX_ACTIONS = 10
MAX_LIST = 50
MAX_NAME = 80
MAX_MESSAGE = 300
MAX_NUMBER = 1e9
MAX_WINDOW_S = 7 * 86400
MAX_MISSING_S = 90 * 86400
MAX_PARAMS_CHARS = 1000
# Raw structure bounds, checked before anything else looks at the value.
MAX_RAW_DEPTH = 24
MAX_RAW_ITEMS = 2000

OPS = ("below", "above", "at_most", "at_least")
AGGREGATES = ("sum", "max", "min", "mean", "count")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SEVERITIES = ("info", "warning", "critical")
# Parameter names that give how long an actuator should run, in seconds.
DURATION_PARAMS = ("duration_s", "duration", "seconds")

_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
_QUANTITY = re.compile(r"^[a-zA-Z0-9_.:-]+$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class RuleInvalid(ValidationFailed):
    """The rule definition is not valid."""

    code = "sensors.invalid_rule"


def _invalid(path: str, message: str) -> RuleInvalid:
    text = f"{path}: {message}" if path else message
    return RuleInvalid(text, details={path or "definition": message})


# --- the parsed form ---------------------------------------------------------------------------


def compare(op: str, left: float, right: float) -> bool:
    if op == "below":
        return left < right
    if op == "above":
        return left > right
    if op == "at_most":
        return left <= right
    return left >= right


@dataclass(frozen=True, slots=True)
class Target:
    device_types: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Condition:
    """Base of all condition nodes; `key` is the node's path, naming its state in RuleState.data."""

    key: str


@dataclass(frozen=True, slots=True)
class Threshold(Condition):
    quantity: str
    op: str
    value: float
    # While the rule is active it stays so until the value passes `clear` (hysteresis).
    clear: float
    for_s: int


@dataclass(frozen=True, slots=True)
class RateOfChange(Condition):
    quantity: str
    op: str
    per_minute: float
    window_s: int


@dataclass(frozen=True, slots=True)
class Missing(Condition):
    after_s: int | None
    intervals: int | None


@dataclass(frozen=True, slots=True)
class Schedule(Condition):
    start_minute: int
    end_minute: int
    inside: bool
    days: frozenset[int]


@dataclass(frozen=True, slots=True)
class GroupAggregate(Condition):
    device_type: str
    quantity: str
    aggregate: str
    window_s: int
    op: str
    value: float
    if_no_data: bool


@dataclass(frozen=True, slots=True)
class AllOf(Condition):
    children: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf(Condition):
    children: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not(Condition):
    child: Condition


@dataclass(frozen=True, slots=True)
class Text:
    vi: str
    en: str

    def get(self, language: str | None) -> str:
        return self.en if (language or "vi").startswith("en") and self.en else self.vi

    def as_dict(self) -> dict[str, str]:
        return {"vi": self.vi, "en": self.en}


@dataclass(frozen=True, slots=True)
class Action:
    kind: str


@dataclass(frozen=True, slots=True)
class CommandAction(Action):
    name: str
    params: dict[str, Any]
    # None: the device itself; otherwise the devices of this type in the device's group.
    device_type: str | None


@dataclass(frozen=True, slots=True)
class AlarmAction(Action):
    severity: str
    message: Text


@dataclass(frozen=True, slots=True)
class NotifyAction(Action):
    subject: Text | None
    body: Text | None


@dataclass(frozen=True, slots=True)
class CaseAction(Action):
    description: Text | None


@dataclass(frozen=True, slots=True)
class ClearAlarmAction(Action):
    pass


@dataclass(frozen=True, slots=True)
class RuleDef:
    target: Target
    when: Condition
    on_fire: tuple[Action, ...]
    on_clear: tuple[Action, ...]
    # Quantities of the device itself whose readings make the rule evaluate.
    quantities: frozenset[str]
    # A rule on silence (`missing`): evaluated by the clock (check_offline), not by readings.
    offline: bool
    # For a clock rule: its `missing` node.
    missing: Missing | None = None
    device_types: frozenset[str] = field(default_factory=frozenset)


# --- checking helpers --------------------------------------------------------------------------


def _object(value: Any, path: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(path, _("Expected an object."))
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise _invalid(f"{path}.{unknown[0]}" if path else unknown[0], _("Unknown field."))
    for name in required:
        if name not in value:
            raise _invalid(f"{path}.{name}" if path else name, _("This field is required."))
    return value


def _number(value: Any, path: str, *, minimum: float = -MAX_NUMBER, maximum: float = MAX_NUMBER) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(path, _("Expected a number."))
    if isinstance(value, float) and not math.isfinite(value):
        raise _invalid(path, _("Expected a finite number."))
    if not minimum <= value <= maximum:
        raise _invalid(
            path,
            _("Expected a number from %(min)s to %(max)s.") % {"min": _fmt(minimum), "max": _fmt(maximum)},
        )
    return float(value)


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def _seconds(value: Any, path: str, *, minimum: int = 0, maximum: int = MAX_WINDOW_S) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(path, _("Expected a whole number of seconds."))
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise _invalid(path, _("Expected a whole number of seconds."))
    if not minimum <= value <= maximum:
        raise _invalid(
            path, _("Expected from %(min)d to %(max)d seconds.") % {"min": minimum, "max": maximum}
        )
    return int(value)


def _choice(value: Any, path: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _invalid(path, _("Expected one of: %(choices)s.") % {"choices": ", ".join(choices)})
    return value


def _name(value: Any, path: str, pattern: re.Pattern[str] = _SLUG) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME or not pattern.match(value):
        raise _invalid(
            path, _("Expected a code of letters, digits, '-' or '_' (at most %(max)d).") % {"max": MAX_NAME}
        )
    return value


def _names(value: Any, path: str, pattern: re.Pattern[str] = _SLUG) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _invalid(path, _("Expected a list of codes."))
    if len(value) > MAX_LIST:
        raise _invalid(path, _("At most %(max)d items.") % {"max": MAX_LIST})
    return tuple(dict.fromkeys(_name(item, f"{path}[{index}]", pattern) for index, item in enumerate(value)))


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _invalid(path, _("Expected true or false."))
    return value


def _text(value: Any, path: str, *, required: bool = True) -> Text | None:
    if value is None and not required:
        return None
    if isinstance(value, str):
        value = {"vi": value}
    body = _object(value, path, {"vi", "en"}, ("vi",))
    parts = []
    for language in ("vi", "en"):
        item = body.get(language, "")
        if not isinstance(item, str) or len(item) > MAX_MESSAGE:
            raise _invalid(
                f"{path}.{language}",
                _("Expected a text of at most %(max)d characters.") % {"max": MAX_MESSAGE},
            )
        parts.append(" ".join(item.split()))
    if not parts[0]:
        raise _invalid(f"{path}.vi", _("This field is required."))
    return Text(vi=parts[0], en=parts[1])


def _hhmm(value: Any, path: str) -> int:
    match = _HHMM.match(value) if isinstance(value, str) else None
    if match is None:
        raise _invalid(path, _("Expected a time as HH:MM."))
    return int(match.group(1)) * 60 + int(match.group(2))


def _check_raw(value: Any) -> None:
    """Bound the depth and size of the raw structure without recursion."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if depth > MAX_RAW_DEPTH:
            raise _invalid("", _("The definition is nested too deeply."))
        if seen > MAX_RAW_ITEMS:
            raise _invalid("", _("The definition is too large."))
        if isinstance(item, dict):
            if any(not isinstance(key, str) for key in item):
                raise _invalid("", _("Field names must be text."))
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif item is not None and not isinstance(item, str | int | float | bool):
            raise _invalid("", _("The definition may hold only JSON values."))


# --- conditions --------------------------------------------------------------------------------


@dataclass
class _Budget:
    conditions: int = 0


ConditionParser = Callable[[Any, str, int, _Budget], Condition]
CONDITIONS: dict[str, ConditionParser] = {}


def condition(*names: str) -> Callable[[ConditionParser], ConditionParser]:
    """Register the parser of a condition kind under its name(s)."""

    def register(func: ConditionParser) -> ConditionParser:
        for name in names:
            CONDITIONS[name] = func
        return func

    return register


def _condition(value: Any, path: str, depth: int, budget: _Budget) -> Condition:
    if depth > MAX_DEPTH:
        raise _invalid(
            path, _("Conditions are nested too deeply (at most %(max)d levels).") % {"max": MAX_DEPTH}
        )
    budget.conditions += 1
    if budget.conditions > MAX_CONDITIONS:
        raise _invalid(path, _("Too many conditions (at most %(max)d).") % {"max": MAX_CONDITIONS})
    if not isinstance(value, dict) or len(value) != 1:
        raise _invalid(
            path, _('Expected an object with exactly one condition, such as {"threshold": {...}}.')
        )
    ((kind, body),) = value.items()
    parser = CONDITIONS.get(kind)
    if parser is None:
        raise _invalid(
            f"{path}.{kind}",
            _("Unknown condition. Known: %(known)s.") % {"known": ", ".join(sorted(CONDITIONS))},
        )
    return parser(body, f"{path}.{kind}", depth, budget)


def _children(body: Any, path: str, depth: int, budget: _Budget) -> tuple[Condition, ...]:
    if not isinstance(body, list) or not body:
        raise _invalid(path, _("Expected a non-empty list of conditions."))
    if len(body) > MAX_CONDITIONS:
        raise _invalid(path, _("Too many conditions (at most %(max)d).") % {"max": MAX_CONDITIONS})
    return tuple(_condition(item, f"{path}[{index}]", depth + 1, budget) for index, item in enumerate(body))


@condition("all")
def _all(body: Any, path: str, depth: int, budget: _Budget) -> Condition:
    return AllOf(key=path, children=_children(body, path, depth, budget))


@condition("any")
def _any(body: Any, path: str, depth: int, budget: _Budget) -> Condition:
    return AnyOf(key=path, children=_children(body, path, depth, budget))


@condition("not")
def _not(body: Any, path: str, depth: int, budget: _Budget) -> Condition:
    return Not(key=path, child=_condition(body, path, depth + 1, budget))


@condition("threshold")
def _threshold(body: Any, path: str, depth: int, budget: _Budget) -> Condition:
    body = _object(body, path, {"quantity", "op", "value", "clear", "for_s"}, ("quantity", "op", "value"))
    quantity = _name(body["quantity"], f"{path}.quantity", _QUANTITY)
    op = _choice(body["op"], f"{path}.op", OPS)
    value = _number(body["value"], f"{path}.value")
    clear = _number(body["clear"], f"{path}.clear") if "clear" in body else value
    # The clear value lies on the far side of the threshold: below 20, clear above 35.
    if op in ("below", "at_most") and clear < value:
        raise _invalid(f"{path}.clear", _("For 'below', the clear value must not be under the threshold."))
    if op in ("above", "at_least") and clear > value:
        raise _invalid(f"{path}.clear", _("For 'above', the clear value must not be over the threshold."))
    for_s = _seconds(body.get("for_s", 0), f"{path}.for_s")
    return Threshold(key=path, quantity=quantity, op=op, value=value, clear=clear, for_s=for_s)


@condition("rate_of_change")
def _rate(body: Any, path: str, depth: int, budget: _Budget) -> Condition:
    body = _object(body, path, {"quantity", "op", "per_minute", "window_s"}, ("quantity", "op", "per_minute"))
    return RateOfChange(
        key=path,
        quantity=_name(body["quantity"], f"{path}.quantity", _QUANTITY),
        op=_choice(body["op"], f"{path}.op", OPS),
        per_minute=_number(body["per_minute"], f"{path}.per_minute"),
        window_s=_seconds(body.get("window_s", 600), f"{path}.window_s", minimum=60),
    )


@condition("missing")
def _missing(body: Any, path: str, depth: int, budget: _Budget) -> Condition:
    body = _object(body if body is not None else {}, path, {"after_s", "intervals"})
    if "after_s" in body and "intervals" in body:
        raise _invalid(path, _("Give either after_s or intervals, not both."))
    after = (
        _seconds(body["after_s"], f"{path}.after_s", minimum=60, maximum=MAX_MISSING_S)
        if "after_s" in body
        else None
    )
    intervals = None
    if "intervals" in body:
        intervals = _seconds(body["intervals"], f"{path}.intervals", minimum=1, maximum=100_000)
    return Missing(key=path, after_s=after, intervals=intervals)


@condition("schedule", "time_window")
def _schedule(body: Any, path: str, depth: int, budget: _Budget) -> Condition:
    body = _object(body, path, {"between", "not_between", "days"})
    if ("between" in body) == ("not_between" in body):
        raise _invalid(path, _("Give either between or not_between."))
    inside = "between" in body
    name = "between" if inside else "not_between"
    window = body[name]
    if not isinstance(window, list) or len(window) != 2:
        raise _invalid(f"{path}.{name}", _('Expected two times, such as ["10:00", "16:00"].'))
    start = _hhmm(window[0], f"{path}.{name}[0]")
    end = _hhmm(window[1], f"{path}.{name}[1]")
    if start == end:
        raise _invalid(f"{path}.{name}", _("The two times must differ."))
    days = frozenset(range(7))
    if "days" in body:
        raw = body["days"]
        if not isinstance(raw, list) or not raw or len(raw) > 7:
            raise _invalid(f"{path}.days", _("Expected a list of days: mon, tue, wed, thu, fri, sat, sun."))
        days = frozenset(
            DAYS.index(_choice(item, f"{path}.days[{index}]", DAYS)) for index, item in enumerate(raw)
        )
    return Schedule(key=path, start_minute=start, end_minute=end, inside=inside, days=days)


@condition("group")
def _group(body: Any, path: str, depth: int, budget: _Budget) -> Condition:
    body = _object(
        body,
        path,
        {"device_type", "quantity", "aggregate", "window_s", "op", "value", "if_no_data"},
        ("device_type", "quantity", "aggregate", "window_s", "op", "value"),
    )
    return GroupAggregate(
        key=path,
        device_type=_name(body["device_type"], f"{path}.device_type"),
        quantity=_name(body["quantity"], f"{path}.quantity", _QUANTITY),
        aggregate=_choice(body["aggregate"], f"{path}.aggregate", AGGREGATES),
        window_s=_seconds(body["window_s"], f"{path}.window_s", minimum=60),
        op=_choice(body["op"], f"{path}.op", OPS),
        value=_number(body["value"], f"{path}.value"),
        if_no_data=_bool(body.get("if_no_data", False), f"{path}.if_no_data"),
    )


def walk(node: Condition) -> list[Condition]:
    """The node and all nodes under it."""
    found: list[Condition] = []
    stack = [node]
    while stack:
        item = stack.pop()
        found.append(item)
        if isinstance(item, AllOf | AnyOf):
            stack.extend(item.children)
        elif isinstance(item, Not):
            stack.append(item.child)
    return found


# --- actions -----------------------------------------------------------------------------------

ActionParser = Callable[[Any, str, bool], Action]
ACTIONS: dict[str, ActionParser] = {}


def action(name: str) -> Callable[[ActionParser], ActionParser]:
    """Register the parser of an action kind."""

    def register(func: ActionParser) -> ActionParser:
        ACTIONS[name] = func
        return func

    return register


@action("command")
def _command(body: Any, path: str, on_clear: bool) -> Action:
    body = _object(body, path, {"name", "params", "to"}, ("name",))
    name = _name(body["name"], f"{path}.name")
    params = body.get("params", {})
    if not isinstance(params, dict):
        raise _invalid(f"{path}.params", _("Expected an object."))
    if len(json.dumps(params)) > MAX_PARAMS_CHARS:
        raise _invalid(f"{path}.params", _("The parameters are too large."))
    for key in DURATION_PARAMS:
        if key in params:
            _seconds(params[key], f"{path}.params.{key}", minimum=1, maximum=86400)
    to = body.get("to", "self")
    device_type = None
    if to != "self":
        to = _object(to, f"{path}.to", {"device_type"}, ("device_type",))
        device_type = _name(to["device_type"], f"{path}.to.device_type")
    return CommandAction(kind="command", name=name, params=params, device_type=device_type)


@action("alarm")
def _alarm(body: Any, path: str, on_clear: bool) -> Action:
    body = _object(body, path, {"severity", "message"}, ("message",))
    message = _text(body["message"], f"{path}.message")
    assert message is not None  # noqa: S101 - required above
    return AlarmAction(
        kind="alarm",
        severity=_choice(body.get("severity", "warning"), f"{path}.severity", SEVERITIES),
        message=message,
    )


@action("notify")
def _notify(body: Any, path: str, on_clear: bool) -> Action:
    body = _object(body if body is not None else {}, path, {"subject", "body"})
    return NotifyAction(
        kind="notify",
        subject=_text(body.get("subject"), f"{path}.subject", required=False),
        body=_text(body.get("body"), f"{path}.body", required=False),
    )


@action("case")
def _case(body: Any, path: str, on_clear: bool) -> Action:
    body = _object(body if body is not None else {}, path, {"description"})
    description = _text(body.get("description"), f"{path}.description", required=False)
    if description is not None and len(description.vi) < 10:
        raise _invalid(f"{path}.description.vi", _("Describe the problem in at least 10 characters."))
    return CaseAction(kind="case", description=description)


@action("clear_alarm")
def _clear_alarm(body: Any, path: str, on_clear: bool) -> Action:
    _object(body if body is not None else {}, path, set())
    if not on_clear:
        raise _invalid(path, _("clear_alarm is an action for on_clear only."))
    return ClearAlarmAction(kind="clear_alarm")


def _actions(value: Any, path: str, *, on_clear: bool) -> tuple[Action, ...]:
    if not isinstance(value, list):
        raise _invalid(path, _("Expected a list of actions."))
    if len(value) > MAX_ACTIONS:
        raise _invalid(path, _("At most %(max)d actions.") % {"max": MAX_ACTIONS})
    parsed = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise _invalid(where, _('Expected an object with exactly one action, such as {"alarm": {...}}.'))
        ((kind, body),) = item.items()
        parser = ACTIONS.get(kind)
        if parser is None:
            raise _invalid(
                f"{where}.{kind}",
                _("Unknown action. Known: %(known)s.") % {"known": ", ".join(sorted(ACTIONS))},
            )
        parsed.append(parser(body, f"{where}.{kind}", on_clear))
    return tuple(parsed)


# --- the whole definition ----------------------------------------------------------------------


def _target(value: Any) -> Target:
    body = _object(value, "target", {"device_type", "groups", "devices"})
    if not body:
        raise _invalid("target", _("Name a device type, groups or devices."))
    return Target(
        device_types=_names(body["device_type"], "target.device_type") if "device_type" in body else (),
        groups=_names(body["groups"], "target.groups") if "groups" in body else (),
        devices=_names(body["devices"], "target.devices") if "devices" in body else (),
    )


def _check_missing_shape(when: Condition) -> Missing | None:
    """A `missing` condition stands alone or as a direct part of a top-level `all`, beside
    conditions that need no reading of the device (schedule, group)."""
    nodes = walk(when)
    missing = [node for node in nodes if isinstance(node, Missing)]
    if not missing:
        return None
    if len(missing) > 1:
        raise _invalid(missing[1].key, _("A rule may have one missing condition."))
    node = missing[0]
    top_level = when is node or (isinstance(when, AllOf) and node in when.children)
    if not top_level:
        raise _invalid(
            node.key, _("A missing condition must stand alone or directly inside the top-level all.")
        )
    for other in nodes:
        if isinstance(other, Threshold | RateOfChange):
            raise _invalid(other.key, _("A rule on missing data cannot also test the device's readings."))
    return node


def parse(definition: Any) -> RuleDef:
    """Check a definition (already decoded JSON) and return its parsed form."""
    _check_raw(definition)
    try:
        size = len(json.dumps(definition, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise _invalid("", _("The definition may hold only finite JSON values.")) from exc
    if size > MAX_JSON_CHARS:
        raise _invalid(
            "", _("The definition is too large (at most %(max)d characters).") % {"max": MAX_JSON_CHARS}
        )
    body = _object(
        definition,
        "",
        {"target", "when", "on_fire", "on_clear", "description"},
        ("target", "when", "on_fire"),
    )
    if "description" in body and (
        not isinstance(body["description"], str) or len(body["description"]) > 1000
    ):
        raise _invalid("description", _("Expected a text of at most %(max)d characters.") % {"max": 1000})
    target = _target(body["target"])
    when = _condition(body["when"], "when", 1, _Budget())
    on_fire = _actions(body["on_fire"], "on_fire", on_clear=False)
    if not on_fire:
        raise _invalid("on_fire", _("Give at least one action."))
    on_clear = _actions(body.get("on_clear", []), "on_clear", on_clear=True)
    nodes = walk(when)
    missing = _check_missing_shape(when)
    quantities = frozenset(node.quantity for node in nodes if isinstance(node, Threshold | RateOfChange))
    if missing is None and not quantities:
        raise _invalid(
            "when",
            _("The rule must test a reading of the device (threshold or rate_of_change), or missing data."),
        )
    device_types = {node.device_type for node in nodes if isinstance(node, GroupAggregate)}
    device_types.update(target.device_types)
    for each in (*on_fire, *on_clear):
        if isinstance(each, CommandAction) and each.device_type:
            device_types.add(each.device_type)
    return RuleDef(
        target=target,
        when=when,
        on_fire=on_fire,
        on_clear=on_clear,
        quantities=quantities,
        offline=missing is not None,
        missing=missing,
        device_types=frozenset(device_types),
    )


def parse_text(text: str) -> Any:
    """Decode a definition typed in a form, with a clear error for anything that is not JSON."""
    if not isinstance(text, str) or not text.strip():
        raise _invalid("", _("Enter the rule definition as JSON."))
    if len(text) > MAX_JSON_CHARS * 2:
        raise _invalid(
            "", _("The definition is too large (at most %(max)d characters).") % {"max": MAX_JSON_CHARS}
        )
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError as exc:
        raise _invalid("", _("The definition is nested too deeply.")) from exc
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise _invalid(
                "",
                _("Not valid JSON (line %(line)d, column %(column)d): %(problem)s")
                % {"line": exc.lineno, "column": exc.colno, "problem": exc.msg},
            ) from exc
        raise _invalid("", str(exc)) from exc


def _no_constant(name: str) -> Any:
    raise ValueError(_("%(name)s is not a number JSON allows.") % {"name": name})
