"""Back-office pages for city sensors: the devices on a map and in a list, a device's charts,
rejections and commands, alarms, the command history, rules and their versions, rejected messages,
and the registration forms. Thin: they parse input, call one service or selector, render.

Every page needs sensor.operate and shows the officer's own agency only; registering and
provisioning devices and editing rules need sensor.manage. Device credentials are shown once, in
the response to the request that made them, and never stored where a later page could show them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.core.errors import ApplicationError, NotFound, PermissionDenied
from civicore.core.pagination import paginate
from civicore.reports import maps
from civicore.sensors import charts, ruledef, selectors
from civicore.sensors.models import Alarm, Command, Device, DeviceType, Rule

PAGE_SIZE = 50
JSON_MAX = 20_000
NOTE_MAX = 300
WINDOW_TITLES = {
    "24h": lambda: _("last 24 hours, 5-minute averages"),
    "7d": lambda: _("last 7 days, hourly averages"),
    "30d": lambda: _("last 30 days, daily averages"),
}
BUCKETS = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1), "1d": timedelta(days=1)}


# --- helpers -----------------------------------------------------------------------------------


def _officer(request: HttpRequest, permission: str = permissions.SENSOR_OPERATE) -> Officer:
    try:
        return permissions.officer_with_perm(request.user, permission)
    except PermissionDenied as exc:
        if permission == permissions.SENSOR_MANAGE:
            message = _("Only sensor engineers can register devices, provision them and edit rules.")
        else:
            message = _("Only officers who operate sensors can use this page.")
        raise DjangoPermissionDenied(message) from exc


def _device(officer: Officer, device_id: str) -> Device:
    try:
        return selectors.device_for_agency(agency_id=officer.agency_id, device_id=device_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


def _rule(officer: Officer, code: str) -> Rule:
    try:
        return selectors.rule_for_agency(agency_id=officer.agency_id, code=code)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


def _field_errors(
    exc: ApplicationError, fields: tuple[str, ...] = (), *, other: str = "form"
) -> dict[str, str]:
    """A service's error as messages per form field. A detail about something that is not a
    field of the form (a path inside a JSON definition, say) goes to `other`, with its path."""
    details = exc.details if isinstance(exc.details, dict) else {}
    errors: dict[str, str] = {}
    for key, value in details.items():
        if isinstance(value, list | tuple):
            text = " ".join(str(item) for item in value)
        elif isinstance(value, dict):
            text = "; ".join(f"{inner}: {item}" for inner, item in value.items())
        else:
            text = str(value)
        name = str(key)
        if fields and name not in fields:
            if other == "form":
                text = exc.message
            elif name and name not in (other, "__all__"):
                text = f"{name}: {text}"
            name = other
        if name in errors and text in errors[name]:
            continue
        name = "form" if name == "__all__" else name
        errors[name] = f"{errors[name]} {text}" if name in errors else text
    return errors or {other if fields else "form": exc.message}


def _filter_text(value: str, limit: int) -> str:
    return str(value or "").strip()[:limit]


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    return response


def _page_links(request: HttpRequest, next_cursor: str | None) -> str:
    if not next_cursor:
        return ""
    params = request.GET.copy()
    params["cursor"] = next_cursor
    return f"?{params.urlencode()}"


def _paged(request: HttpRequest, qs: Any, order: tuple[str, ...]) -> tuple[list[Any], str]:
    try:
        rows, next_cursor = paginate(qs, cursor=request.GET.get("cursor"), limit=PAGE_SIZE, order=order)
    except ApplicationError:
        rows, next_cursor = paginate(qs, cursor=None, limit=PAGE_SIZE, order=order)
    return rows, _page_links(request, next_cursor)


def _parse_json(text: str, field: str) -> tuple[Any, dict[str, str]]:
    """The JSON value of a form field, or an error for that field in the user's language."""
    if len(text) > JSON_MAX:
        return None, {field: _("This is too long: at most %(max)s characters.") % {"max": JSON_MAX}}
    try:
        return json.loads(text or "null"), {}
    except json.JSONDecodeError as exc:
        return None, {
            field: _("This is not valid JSON (line %(line)s, column %(column)s): %(problem)s.")
            % {"line": exc.lineno, "column": exc.colno, "problem": exc.msg}
        }


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False)


def _alarm_rows(alarms: Any) -> list[dict[str, Any]]:
    from civicore.sensors.alarms import alarm_text

    return [{"alarm": alarm, "text": alarm_text(alarm)} for alarm in alarms]


def _command_rows(commands: list[Command]) -> list[dict[str, Any]]:
    return [
        {
            "command": command,
            "params": json.dumps(command.params, ensure_ascii=False) if command.params else "",
        }
        for command in commands
    ]


# --- the dashboard -----------------------------------------------------------------------------


def _device_row(device: Device, now: Any) -> dict[str, Any]:
    state = selectors.connectivity(device, now)
    return {
        "device": device,
        "connectivity": state,
        "connectivity_label": selectors.Connectivity.label(state),
        "last_values": _last_values(device),
    }


def _last_values(device: Device) -> list[dict[str, Any]]:
    return [
        {
            "quantity": item.quantity,
            "label": item.label,
            "text": charts.with_unit(item.value, item.unit),
            "time": item.time,
        }
        for item in selectors.last_values(device)
    ]


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    filters = {
        "group": _filter_text(request.GET.get("group", ""), 80),
        "district": _filter_text(request.GET.get("district", ""), 120),
    }
    qs = selectors.devices_of_agency(agency_id=officer.agency_id, **filters)
    devices, next_url = _paged(request, qs, ("device_id",))
    now = timezone.now()
    rows = [_device_row(device, now) for device in devices]
    groups, districts = selectors.groups_and_districts(agency_id=officer.agency_id)
    features = [
        {
            "id": row["device"].device_id,
            "name": row["device"].name,
            "lat": row["device"].latitude,
            "lng": row["device"].longitude,
            "status": row["connectivity"],
            "status_label": str(row["connectivity_label"]),
            "url": reverse("sensors:device_detail", kwargs={"device_id": row["device"].device_id}),
        }
        for row in rows
    ]
    context = {
        "officer": officer,
        "rows": rows,
        "features": features,
        "filters": filters,
        "groups": groups,
        "districts": districts,
        "overview": selectors.overview(agency_id=officer.agency_id, devices=devices, now=now),
        "next_url": next_url,
        "map": maps.map_config(),
        "may_manage": permissions.has_perm(officer, permissions.SENSOR_MANAGE),
    }
    return _no_store(maps.allow_map(render(request, "sensors/office/dashboard.html", context)))


# --- a device ----------------------------------------------------------------------------------


def _charts_context(device: Device, *, live: bool) -> dict[str, Any]:
    quantities = []
    for name, label, unit, windows in selectors.device_charts(device):
        drawn = []
        for chart in windows:
            title = _("%(quantity)s, %(window)s") % {
                "quantity": label,
                "window": WINDOW_TITLES[chart.window](),
            }
            drawn.append(
                {
                    "chart": chart,
                    "title": title,
                    "id": f"chart-{name}-{chart.window}",
                    "svg": charts.line_chart(
                        chart_id=f"chart-{name}-{chart.window}",
                        title=title,
                        points=chart.points,
                        start=chart.start,
                        end=chart.end,
                        unit=unit,
                        bucket=BUCKETS[chart.period],
                    ),
                    "rows": [
                        {
                            "time": point.time,
                            "value": charts.number(point.value),
                            "minimum": charts.number(point.minimum),
                            "maximum": charts.number(point.maximum),
                            "count": point.count,
                        }
                        for point in reversed(chart.points)
                    ],
                }
            )
        quantities.append({"name": name, "label": label, "unit": unit, "charts": drawn})
    return {
        "device": device,
        "quantities": quantities,
        "live": live,
        "updated_at": timezone.now(),
        "last_values": _last_values(device),
    }


@login_required
@require_GET
def device_detail(request: HttpRequest, device_id: str) -> HttpResponse:
    officer = _officer(request)
    device = _device(officer, device_id)
    return _render_device(request, officer, device)


def _render_device(
    request: HttpRequest,
    officer: Officer,
    device: Device,
    *,
    command_values: dict[str, str] | None = None,
    command_errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    live = request.GET.get("live", "1") != "0"
    now = timezone.now()
    state = selectors.connectivity(device, now)
    context = {
        "officer": officer,
        **_charts_context(device, live=live),
        "connectivity": state,
        "connectivity_label": selectors.Connectivity.label(state),
        "rejections": selectors.recent_rejections(device=device),
        "commands": _command_rows(selectors.commands_of_device(device=device)),
        "alarms": _alarm_rows(selectors.active_alarms_of_device(device=device)),
        "command_names": device.device_type.command_names(),
        "command_values": command_values or {"name": "", "params": "{}"},
        "command_errors": command_errors or {},
        "may_manage": permissions.has_perm(officer, permissions.SENSOR_MANAGE),
    }
    return _no_store(render(request, "sensors/office/device.html", context, status=status))


@login_required
@require_GET
def device_charts(request: HttpRequest, device_id: str) -> HttpResponse:
    """htmx: the charts and their tables, polled while the device page is open."""
    officer = _officer(request)
    device = _device(officer, device_id)
    live = request.GET.get("live", "1") != "0"
    return _no_store(render(request, "sensors/office/_charts.html", _charts_context(device, live=live)))


@login_required
@require_POST
def device_command(request: HttpRequest, device_id: str) -> HttpResponse:
    from civicore.sensors import commands

    officer = _officer(request)
    device = _device(officer, device_id)
    values = {
        "name": str(request.POST.get("name", ""))[:40],
        "params": str(request.POST.get("params", "")).strip() or "{}",
    }
    params, errors = _parse_json(values["params"], "params")
    if not errors and not isinstance(params, dict):
        errors = {"params": _('The parameters must be a JSON object, e.g. {"duration_s": 60}.')}
    if not values["name"]:
        errors["name"] = _("Choose a command.")
    if not errors:
        try:
            command = commands.command_send(device=device, name=values["name"], params=params, actor=officer)
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(str(exc)) from exc
        except ApplicationError as exc:
            errors = _field_errors(exc, ("name", "params"), other="form")
        else:
            messages.success(
                request,
                _("Command %(name)s: %(status)s.")
                % {"name": command.name, "status": command.get_status_display()},
            )
            return redirect(
                reverse("sensors:device_detail", kwargs={"device_id": device.device_id}) + "#commands"
            )
    return _render_device(request, officer, device, command_values=values, command_errors=errors, status=422)


def _credential_rows(credentials: Any) -> list[tuple[str, str]]:
    """What a provisioning service returned, as (label, value) rows for the one-time page."""
    if dataclasses.is_dataclass(credentials) and not isinstance(credentials, type):
        items = dataclasses.asdict(credentials).items()
    elif isinstance(credentials, dict):
        items = credentials.items()
    else:
        items = vars(credentials).items()
    labels = {
        "device_id": _("Device identifier"),
        "username": _("MQTT user name"),
        "mqtt_username": _("MQTT user name"),
        "password": _("MQTT password"),
        "mqtt_password": _("MQTT password"),
        "http_token": _("HTTPS token"),
        "token": _("HTTPS token"),
        "broker_url": _("Broker address"),
        "mqtt_url": _("Broker address"),
        "version": _("Credential version"),
        "credential_version": _("Credential version"),
        "publish_topic": _("Topic for readings"),
        "ack_topic": _("Topic for acknowledgements"),
        "command_topic": _("Topic for commands"),
    }
    rows = []
    for key, value in items:
        if key.startswith("_") or value is None or value == "" or hasattr(value, "_meta"):
            continue
        rows.append((str(labels.get(key, key.replace("_", " ").capitalize())), str(value)))
    return rows


@login_required
@require_POST
def device_credentials(request: HttpRequest, device_id: str, action: str) -> HttpResponse:
    from civicore.sensors import services

    officer = _officer(request, permissions.SENSOR_MANAGE)
    device = _device(officer, device_id)
    operations: dict[str, Callable[..., Any]] = {
        "provision": services.device_provision,
        "rotate": services.device_rotate_credentials,
        "revoke": services.device_revoke,
    }
    operation = operations.get(action)
    if operation is None:
        raise Http404(_("Unknown action."))
    detail = reverse("sensors:device_detail", kwargs={"device_id": device.device_id})
    try:
        result = operation(device=device, actor=officer)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(str(exc)) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(detail)
    if action == "revoke":
        messages.success(request, _("The device was revoked: the broker no longer accepts its credentials."))
        return redirect(detail)
    context = {
        "officer": officer,
        "device": device,
        "action": action,
        "rows": _credential_rows(result),
        "topics": {
            "senml": f"civicore/v1/devices/{device.device_id}/senml",
            "acks": f"civicore/v1/devices/{device.device_id}/acks",
            "commands": f"civicore/v1/devices/{device.device_id}/commands",
        },
    }
    return _no_store(render(request, "sensors/office/credentials.html", context))


# --- registration ------------------------------------------------------------------------------

DEVICE_TYPE_FIELDS = (
    "code",
    "name_vi",
    "name_en",
    "role",
    "quantities",
    "commands",
    "expected_interval_s",
    "offline_after_intervals",
    "retention_days",
    "rate_per_minute",
    "max_run_s",
    "command_timeout_s",
    "command_retries",
)
DEVICE_TYPE_DEFAULTS = {
    "role": DeviceType.Role.SENSOR,
    "quantities": "[]",
    "commands": "[]",
    "expected_interval_s": "300",
    "offline_after_intervals": "3",
    "retention_days": "400",
    "rate_per_minute": "600",
    "command_timeout_s": "30",
    "command_retries": "2",
}
NUMBER_FIELDS = (
    "expected_interval_s",
    "offline_after_intervals",
    "retention_days",
    "rate_per_minute",
    "max_run_s",
    "command_timeout_s",
    "command_retries",
)


def _whole_numbers(values: dict[str, str], errors: dict[str, str]) -> dict[str, int | None]:
    numbers: dict[str, int | None] = {}
    for name in NUMBER_FIELDS:
        text = values.get(name, "").strip()
        if not text:
            numbers[name] = None
            continue
        try:
            numbers[name] = int(text)
        except ValueError:
            errors[name] = _("Enter a whole number.")
    return numbers


@login_required
@require_http_methods(["GET", "POST"])
def device_type_new(request: HttpRequest) -> HttpResponse:
    from civicore.sensors import services

    officer = _officer(request, permissions.SENSOR_MANAGE)
    values = {name: str(DEVICE_TYPE_DEFAULTS.get(name, "")) for name in DEVICE_TYPE_FIELDS}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {name: str(request.POST.get(name, "")).strip() for name in DEVICE_TYPE_FIELDS}
        quantities, quantity_errors = _parse_json(values["quantities"] or "[]", "quantities")
        kinds, command_errors = _parse_json(values["commands"] or "[]", "commands")
        errors = {**quantity_errors, **command_errors}
        numbers = _whole_numbers(values, errors)
        if not errors:
            optional = {name: value for name, value in numbers.items() if value is not None}
            try:
                kind = services.device_type_create(
                    agency=officer.agency,
                    actor=officer,
                    code=values["code"],
                    name_vi=values["name_vi"],
                    name_en=values["name_en"],
                    role=values["role"] or DeviceType.Role.SENSOR,
                    quantities=quantities,
                    commands=kinds,
                    **optional,
                )
            except PermissionDenied as exc:
                raise DjangoPermissionDenied(str(exc)) from exc
            except ApplicationError as exc:
                errors = _field_errors(exc, DEVICE_TYPE_FIELDS, other="form")
            else:
                messages.success(request, _("Device type %(code)s was added.") % {"code": kind.code})
                return redirect("sensors:device_new")
        status = 422
    context = {
        "officer": officer,
        "values": values,
        "errors": errors,
        "roles": DeviceType.Role.choices,
        "types": selectors.device_types_of_agency(agency_id=officer.agency_id),
    }
    return render(request, "sensors/office/device_type_form.html", context, status=status)


DEVICE_FIELDS = ("device_id", "name", "device_type", "group", "district", "latitude", "longitude")


@login_required
@require_http_methods(["GET", "POST"])
def device_new(request: HttpRequest) -> HttpResponse:
    from civicore.sensors import services

    officer = _officer(request, permissions.SENSOR_MANAGE)
    types = list(selectors.device_types_of_agency(agency_id=officer.agency_id))
    values = {name: "" for name in DEVICE_FIELDS}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {name: str(request.POST.get(name, "")).strip() for name in DEVICE_FIELDS}
        kind = next((item for item in types if item.code == values["device_type"]), None)
        if kind is None:
            errors["device_type"] = _("Choose a device type of your agency.")
        coordinates: dict[str, float] = {}
        for name in ("latitude", "longitude"):
            try:
                coordinates[name] = float(values[name].replace(",", "."))
            except ValueError:
                errors[name] = _("Enter a number in degrees, e.g. 21.0285.")
        if not errors:
            try:
                device = services.device_register(
                    agency=officer.agency,
                    actor=officer,
                    device_id=values["device_id"],
                    name=values["name"],
                    device_type=kind,
                    group=values["group"],
                    district=values["district"],
                    **coordinates,
                )
            except PermissionDenied as exc:
                raise DjangoPermissionDenied(str(exc)) from exc
            except ApplicationError as exc:
                errors = _field_errors(exc, DEVICE_FIELDS, other="form")
            else:
                messages.success(
                    request,
                    _("Device %(id)s was registered. Provision it to give it credentials.")
                    % {"id": device.device_id},
                )
                return redirect("sensors:device_detail", device_id=device.device_id)
        status = 422
    context = {
        "officer": officer,
        "values": values,
        "errors": errors,
        "types": [(item.code, f"{item.name} ({item.code})") for item in types],
    }
    return render(request, "sensors/office/device_form.html", context, status=status)


# --- alarms and commands -----------------------------------------------------------------------


def _alarms(officer: Officer, status: str) -> list[Alarm]:
    return list(selectors.alarms_of_agency(agency_id=officer.agency_id, statuses=(status,))[:200])


@login_required
@require_GET
def alarm_list(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    context = {
        "officer": officer,
        "active": _alarm_rows(_alarms(officer, Alarm.Status.ACTIVE)),
        "acknowledged": _alarm_rows(_alarms(officer, Alarm.Status.ACKNOWLEDGED)),
        "note_max": NOTE_MAX,
    }
    return _no_store(render(request, "sensors/office/alarms.html", context))


@login_required
@require_POST
def alarm_action(request: HttpRequest, alarm_id: int, action: str) -> HttpResponse:
    from civicore.sensors import alarms

    officer = _officer(request)
    operations: dict[str, Callable[..., Any]] = {
        "acknowledge": alarms.alarm_acknowledge,
        "clear": alarms.alarm_clear,
    }
    operation = operations.get(action)
    if operation is None:
        raise Http404(_("Unknown action."))
    try:
        alarm = selectors.alarm_for_agency(agency_id=officer.agency_id, alarm_id=alarm_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    note = str(request.POST.get("note", "")).strip()
    if len(note) > NOTE_MAX:
        messages.error(request, _("The note is too long: at most %(max)s characters.") % {"max": NOTE_MAX})
        return redirect("sensors:alarms")
    try:
        operation(alarm=alarm, officer=officer, note=note)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(str(exc)) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        if action == "acknowledge":
            messages.success(request, _("Alarm %(number)s acknowledged.") % {"number": alarm.pk})
        else:
            messages.success(request, _("Alarm %(number)s cleared.") % {"number": alarm.pk})
    return redirect("sensors:alarms")


@login_required
@require_GET
def command_list(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    status = request.GET.get("status", "")
    if status not in Command.Status.values:
        status = ""
    qs = selectors.commands_of_agency(agency_id=officer.agency_id, status=status)
    rows, next_url = _paged(request, qs, ("-created_at", "-id"))
    context = {
        "officer": officer,
        "commands": _command_rows(rows),
        "status": status,
        "statuses": Command.Status.choices,
        "next_url": next_url,
    }
    return _no_store(render(request, "sensors/office/commands.html", context))


@login_required
@require_GET
def rejection_list(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    rows = selectors.rejection_summary(agency_id=officer.agency_id)
    context = {
        "officer": officer,
        "rows": rows,
        "days": selectors.REJECTION_WINDOW_DAYS,
        "total": sum(row["count"] for row in rows),
    }
    return _no_store(render(request, "sensors/office/rejections.html", context))


# --- rules -------------------------------------------------------------------------------------


@login_required
@require_GET
def rule_list(request: HttpRequest) -> HttpResponse:
    officer = _officer(request)
    context = {
        "officer": officer,
        "rules": selectors.rules_of_agency(agency_id=officer.agency_id),
        "may_manage": permissions.has_perm(officer, permissions.SENSOR_MANAGE),
    }
    return _no_store(render(request, "sensors/office/rules.html", context))


@login_required
@require_GET
def rule_detail(request: HttpRequest, code: str) -> HttpResponse:
    officer = _officer(request)
    rule = _rule(officer, code)
    versions = selectors.rule_versions(rule=rule)
    context = {
        "officer": officer,
        "rule": rule,
        "versions": [{"version": version, "definition": _pretty(version.definition)} for version in versions],
        "firings": selectors.rule_firings(rule=rule),
        "may_manage": permissions.has_perm(officer, permissions.SENSOR_MANAGE),
    }
    return _no_store(render(request, "sensors/office/rule.html", context))


RULE_EXAMPLE = {
    "target": {"device_type": "soil-moisture", "groups": ["park-1"]},
    "when": {
        "threshold": {"quantity": "soil_moisture", "op": "below", "value": 20, "clear": 35, "for_s": 1800}
    },
    "on_fire": [{"alarm": {"severity": "warning", "message": "Soil is dry"}}],
    "on_clear": [{"clear_alarm": {}}],
}


RULE_FIELDS = ("code", "name", "definition", "note")


def _rule_form(request: HttpRequest, officer: Officer, rule: Rule | None) -> HttpResponse:
    from civicore.sensors import rules

    if rule is not None and rule.current_version is not None:
        definition = _pretty(rule.current_version.definition)
    else:
        definition = _pretty(RULE_EXAMPLE)
    values = {
        "code": rule.code if rule else "",
        "name": rule.name if rule else "",
        "definition": definition,
        "note": "",
    }
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {
            "code": rule.code if rule else str(request.POST.get("code", "")).strip(),
            "name": str(request.POST.get("name", "")).strip(),
            "definition": str(request.POST.get("definition", "")),
            "note": str(request.POST.get("note", "")).strip(),
        }
        errors = {}
        parsed: Any = None
        try:
            parsed = ruledef.parse_text(values["definition"])
        except ApplicationError as exc:
            errors = _field_errors(exc, RULE_FIELDS, other="definition")
        if len(values["note"]) > NOTE_MAX:
            errors["note"] = _("The note is too long: at most %(max)s characters.") % {"max": NOTE_MAX}
        if not errors:
            try:
                version = rules.rule_save(
                    rule_or_none=rule,
                    agency=officer.agency,
                    code=values["code"],
                    name=values["name"],
                    definition=parsed,
                    note=values["note"],
                    actor=officer,
                )
            except PermissionDenied as exc:
                raise DjangoPermissionDenied(str(exc)) from exc
            except ApplicationError as exc:
                if exc.code == "sensors.rule_code_taken":
                    errors = {"code": exc.message}
                else:
                    errors = _field_errors(exc, RULE_FIELDS, other="definition")
            else:
                messages.success(
                    request,
                    _("Version %(number)s of rule %(code)s was saved.")
                    % {"number": version.number, "code": version.rule.code},
                )
                return redirect("sensors:rule_detail", code=version.rule.code)
        status = 422
    context = {"officer": officer, "rule": rule, "values": values, "errors": errors}
    return _no_store(render(request, "sensors/office/rule_form.html", context, status=status))


@login_required
@require_http_methods(["GET", "POST"])
def rule_new(request: HttpRequest) -> HttpResponse:
    return _rule_form(request, _officer(request, permissions.SENSOR_MANAGE), None)


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, code: str) -> HttpResponse:
    officer = _officer(request, permissions.SENSOR_MANAGE)
    return _rule_form(request, officer, _rule(officer, code))


@login_required
@require_POST
def rule_toggle(request: HttpRequest, code: str, action: str) -> HttpResponse:
    from civicore.sensors import rules

    officer = _officer(request, permissions.SENSOR_MANAGE)
    rule = _rule(officer, code)
    if action not in ("enable", "disable"):
        raise Http404(_("Unknown action."))
    try:
        if action == "enable":
            rules.rule_enable(rule=rule, actor=officer)
            messages.success(request, _("Rule %(code)s is enabled.") % {"code": rule.code})
        else:
            rules.rule_disable(rule=rule, actor=officer)
            messages.success(request, _("Rule %(code)s is disabled.") % {"code": rule.code})
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(str(exc)) from exc
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("sensors:rule_detail", code=rule.code)
