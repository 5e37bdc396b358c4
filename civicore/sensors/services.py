"""Writes for device types and devices: register, provision, rotate and revoke credentials.

A device's MQTT password and HTTPS token are made here from the system's random source, handed
back once (DeviceCredentials) and never stored: the broker keeps its own salted hash of the
password, the database a keyed hash of the token. Every write is audited; an officer needs
sensor.manage in the device's own agency. The broker is told before the transaction commits, so
if it refuses nothing changes here, and if the commit fails the device is left without working
credentials rather than with credentials nobody was shown.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Agency, Officer
from civicore.audit import services as audit
from civicore.core.crypto import lookup_hash
from civicore.core.errors import Conflict, PermissionDenied, ValidationFailed
from civicore.sensors.broker import broker
from civicore.sensors.models import Device, DeviceType

TOKEN_PURPOSE = "sensors.device_token"  # noqa: S105 - a hash purpose, not a secret
# Lowercase letters, digits and hyphens: the id is a topic level, a broker user name and a client id.
DEVICE_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,62}[a-z0-9])")
CODE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?")
GROUP = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?")
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,39}")
UNIT_MAX = 20
LABEL_MAX = 100
MAX_QUANTITIES = 50
MAX_COMMANDS = 30
MAX_PARAMS = 20
PARAM_TYPES = ("number", "integer", "boolean", "string")
QUANTITY_KEYS = {"name", "unit", "min", "max", "label_vi", "label_en"}
COMMAND_KEYS = {"name", "params", "label_vi", "label_en"}
PARAM_KEYS = {"type", "min", "max", "required", "unit", "label_vi", "label_en"}
# Seconds: upper bounds that catch a slip of the keyboard (a day, a year, ten years).
LIMITS = {
    "expected_interval_s": (1, 86_400),
    "offline_after_intervals": (1, 1_000),
    "retention_days": (1, 3_650),
    "rate_per_minute": (1, 60_000),
    "max_run_s": (1, 86_400),
    "command_timeout_s": (1, 3_600),
    "command_retries": (0, 10),
}


class InvalidDeviceType(ValidationFailed):
    """The device type is not valid."""

    code = "sensors.invalid_device_type"


class InvalidDevice(ValidationFailed):
    """The device is not valid."""

    code = "sensors.invalid_device"


class AlreadyExists(Conflict):
    """This identifier is already taken."""

    code = "sensors.already_exists"


class WrongState(Conflict):
    """This is not possible in the device's current state."""

    code = "sensors.wrong_state"


class OtherAgency(PermissionDenied):
    """This belongs to another agency."""

    code = "sensors.other_agency"


@dataclass(frozen=True)
class DeviceCredentials:
    """What a device needs to connect, shown once. Its MQTT client id must be its device id."""

    device_id: str
    mqtt_username: str
    mqtt_password: str = field(repr=False)
    http_token: str = field(repr=False)
    credential_version: int = 0
    broker_url: str = ""


# --- checks -----------------------------------------------------------------------------------------


def _require_manage(actor: Officer | None, agency: Agency) -> None:
    """An officer needs sensor.manage in `agency`; None is the platform itself (a command line)."""
    if actor is None:
        return
    permissions.require(actor, permissions.SENSOR_MANAGE)
    if actor.agency_id != agency.pk:
        raise OtherAgency(_("This belongs to another agency."))


def _audit_actor(actor: Officer | None) -> Any:
    return actor.user if actor is not None else None


def _bad(
    error: type[ValidationFailed], field_name: str, message: str, code: str | None = None
) -> ValidationFailed:
    return error(message, code=code, details={field_name: message})


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _label(item: dict[str, Any], key: str, where: str, fail: Callable[[str], NoReturn]) -> None:
    if key in item and (not isinstance(item[key], str) or len(item[key]) > LABEL_MAX):
        fail(
            _("%(where)s: %(key)s must be text of at most %(max)d characters.")
            % {"where": where, "key": key, "max": LABEL_MAX}
        )


def clean_quantities(quantities: Any, *, required: bool) -> list[dict[str, Any]]:
    """`[{"name": "soil_moisture", "unit": "%", "min": 0, "max": 100, "label_vi": "...",
    "label_en": "..."}]`: names unique identifiers, units as SenML writes them, bounds optional."""

    def fail(message: str) -> NoReturn:
        raise _bad(InvalidDeviceType, "quantities", message, "sensors.invalid_quantities")

    if not isinstance(quantities, list):
        fail(_("The quantities must be a list of objects."))
    if required and not quantities:
        fail(_("A sensor must measure at least one quantity."))
    if len(quantities) > MAX_QUANTITIES:
        fail(_("At most %(max)d quantities.") % {"max": MAX_QUANTITIES})
    seen: set[str] = set()
    cleaned = []
    for number, item in enumerate(quantities, start=1):
        where = _("Quantity %(number)d") % {"number": number}
        if not isinstance(item, dict):
            fail(_("%(where)s must be an object.") % {"where": where})
        unknown = sorted(set(item) - QUANTITY_KEYS)
        if unknown:
            fail(_("%(where)s: unknown key %(key)s.") % {"where": where, "key": unknown[0]})
        name = item.get("name")
        if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
            fail(
                _(
                    "%(where)s: the name must be lowercase letters, digits and _ (at most 40), "
                    "starting with a letter."
                )
                % {"where": where}
            )
        if name in seen:
            fail(_("%(where)s: the name %(name)s is used twice.") % {"where": where, "name": name})
        seen.add(name)
        unit = item.get("unit", "")
        if not isinstance(unit, str) or len(unit) > UNIT_MAX or any(char.isspace() for char in unit):
            fail(_("%(where)s: the unit must be a SenML unit such as %% or Cel.") % {"where": where})
        for bound in ("min", "max"):
            if item.get(bound) is not None and not _finite_number(item[bound]):
                fail(_("%(where)s: %(bound)s must be a number.") % {"where": where, "bound": bound})
        low, high = item.get("min"), item.get("max")
        if low is not None and high is not None and low >= high:
            fail(_("%(where)s: min must be below max.") % {"where": where})
        for key in ("label_vi", "label_en"):
            _label(item, key, where, fail)
        cleaned.append(
            {key: item[key] for key in ("name", "unit", "min", "max", "label_vi", "label_en") if key in item}
        )
    return cleaned


def clean_commands(commands: Any, *, required: bool) -> list[dict[str, Any]]:
    """`[{"name": "open", "params": {"duration_s": {"type": "integer", "min": 1, "max": 3600}}}]`:
    names unique identifiers; each parameter an object with an optional type (number, integer,
    boolean, string), bounds, `required`, unit and labels."""

    def fail(message: str) -> NoReturn:
        raise _bad(InvalidDeviceType, "commands", message, "sensors.invalid_commands")

    if not isinstance(commands, list):
        fail(_("The commands must be a list of objects."))
    if required and not commands:
        fail(_("An actuator must take at least one command."))
    if len(commands) > MAX_COMMANDS:
        fail(_("At most %(max)d commands.") % {"max": MAX_COMMANDS})
    seen: set[str] = set()
    cleaned = []
    for number, item in enumerate(commands, start=1):
        where = _("Command %(number)d") % {"number": number}
        if not isinstance(item, dict):
            fail(_("%(where)s must be an object.") % {"where": where})
        unknown = sorted(set(item) - COMMAND_KEYS)
        if unknown:
            fail(_("%(where)s: unknown key %(key)s.") % {"where": where, "key": unknown[0]})
        name = item.get("name")
        if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
            fail(
                _(
                    "%(where)s: the name must be lowercase letters, digits and _ (at most 40), "
                    "starting with a letter."
                )
                % {"where": where}
            )
        if name in seen:
            fail(_("%(where)s: the name %(name)s is used twice.") % {"where": where, "name": name})
        seen.add(name)
        for key in ("label_vi", "label_en"):
            _label(item, key, where, fail)
        params = item.get("params", {})
        if not isinstance(params, dict) or len(params) > MAX_PARAMS:
            fail(
                _("%(where)s: params must be an object of at most %(max)d parameters.")
                % {"where": where, "max": MAX_PARAMS}
            )
        for param, spec in params.items():
            here = f"{where}, {param}"
            if not IDENTIFIER.fullmatch(param):
                fail(
                    _("%(where)s: a parameter name must be lowercase letters, digits and _.")
                    % {"where": here}
                )
            if not isinstance(spec, dict):
                fail(_('%(where)s must be an object, for example {"type": "integer"}.') % {"where": here})
            unknown = sorted(set(spec) - PARAM_KEYS)
            if unknown:
                fail(_("%(where)s: unknown key %(key)s.") % {"where": here, "key": unknown[0]})
            if "type" in spec and spec["type"] not in PARAM_TYPES:
                fail(
                    _("%(where)s: the type must be one of %(types)s.")
                    % {"where": here, "types": ", ".join(PARAM_TYPES)}
                )
            for bound in ("min", "max"):
                if bound in spec and not _finite_number(spec[bound]):
                    fail(_("%(where)s: %(bound)s must be a number.") % {"where": here, "bound": bound})
            if "min" in spec and "max" in spec and spec["min"] > spec["max"]:
                fail(_("%(where)s: min must not be above max.") % {"where": here})
            if "required" in spec and not isinstance(spec["required"], bool):
                fail(_("%(where)s: required must be true or false.") % {"where": here})
            if "unit" in spec and (not isinstance(spec["unit"], str) or len(spec["unit"]) > UNIT_MAX):
                fail(_("%(where)s: the unit must be short text.") % {"where": here})
            for key in ("label_vi", "label_en"):
                _label(spec, key, here, fail)
        cleaned.append(
            {"name": name, **{key: item[key] for key in ("params", "label_vi", "label_en") if key in item}}
        )
    return cleaned


def _clean_text(
    value: Any, field_name: str, *, max_length: int, required: bool, error: type[ValidationFailed]
) -> str:
    text = " ".join(str(value or "").split())
    if required and not text:
        raise _bad(error, field_name, _("This field is required."))
    if len(text) > max_length:
        raise _bad(error, field_name, _("At most %(max)d characters.") % {"max": max_length})
    return text


def _whole(value: Any, field_name: str) -> int:
    low, high = LIMITS[field_name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(
            InvalidDeviceType,
            field_name,
            _("Enter a whole number from %(low)d to %(high)d.") % {"low": low, "high": high},
        )
    return value


# --- device types ---------------------------------------------------------------------------------


@transaction.atomic
def device_type_create(
    *,
    agency: Agency,
    code: str,
    name_vi: str,
    name_en: str = "",
    role: str = DeviceType.Role.SENSOR,
    quantities: Any,
    commands: Any = None,
    expected_interval_s: int = 300,
    offline_after_intervals: int = 3,
    retention_days: int = 400,
    rate_per_minute: int = 600,
    max_run_s: int | None = None,
    command_timeout_s: int = 30,
    command_retries: int = 2,
    actor: Officer | None = None,
) -> DeviceType:
    """A kind of device of the agency: what it measures (quantities) and what it does (commands)."""
    _require_manage(actor, agency)
    code = str(code or "").strip()
    if not CODE.fullmatch(code):
        raise _bad(
            InvalidDeviceType,
            "code",
            _("The code must be lowercase letters, digits and hyphens (at most 60)."),
        )
    if role not in DeviceType.Role.values:
        raise _bad(InvalidDeviceType, "role", _("Choose sensor or actuator."))
    is_actuator = role == DeviceType.Role.ACTUATOR
    kind = DeviceType(
        agency=agency,
        code=code,
        name_vi=_clean_text(name_vi, "name_vi", max_length=200, required=True, error=InvalidDeviceType),
        name_en=_clean_text(name_en, "name_en", max_length=200, required=False, error=InvalidDeviceType),
        role=role,
        quantities=clean_quantities(quantities, required=not is_actuator),
        commands=clean_commands([] if commands is None else commands, required=is_actuator),
        expected_interval_s=_whole(expected_interval_s, "expected_interval_s"),
        offline_after_intervals=_whole(offline_after_intervals, "offline_after_intervals"),
        retention_days=_whole(retention_days, "retention_days"),
        rate_per_minute=_whole(rate_per_minute, "rate_per_minute"),
        max_run_s=None if max_run_s is None else _whole(max_run_s, "max_run_s"),
        command_timeout_s=_whole(command_timeout_s, "command_timeout_s"),
        command_retries=_whole(command_retries, "command_retries"),
    )
    if DeviceType.objects.filter(code=code).exists():
        raise AlreadyExists(
            _("A device type with the code %(code)s exists.") % {"code": code},
            details={"code": _("This code is taken.")},
        )
    try:
        with transaction.atomic():
            kind.save(force_insert=True)
    except IntegrityError as exc:  # the same code, filed at the same moment
        raise AlreadyExists(
            _("A device type with the code %(code)s exists.") % {"code": code},
            details={"code": _("This code is taken.")},
        ) from exc
    audit.record(
        actor=_audit_actor(actor),
        action="sensors.device_type.create",
        subject=kind,
        agency=agency,
        details={"code": code, "role": role, "quantities": [q["name"] for q in kind.quantities]},
    )
    return kind


# --- devices ----------------------------------------------------------------------------------------


@transaction.atomic
def device_register(
    *,
    agency: Agency,
    device_id: str,
    name: str,
    device_type: DeviceType | None,
    group: str = "",
    district: str = "",
    latitude: float,
    longitude: float,
    actor: Officer | None = None,
) -> Device:
    """A device of the agency, known but without credentials until it is provisioned."""
    _require_manage(actor, agency)
    device_id = str(device_id or "").strip()
    if not DEVICE_ID.fullmatch(device_id):
        raise _bad(
            InvalidDevice,
            "device_id",
            _(
                "The identifier must be 3 to 64 lowercase letters, digits and hyphens, "
                "starting and ending with a letter or digit."
            ),
        )
    if device_type is None or device_type.agency_id != agency.pk:
        raise _bad(InvalidDevice, "device_type", _("Choose a device type of your agency."))
    group = str(group or "").strip()
    if group and not GROUP.fullmatch(group):
        raise _bad(InvalidDevice, "group", _("The group must be lowercase letters, digits and hyphens."))
    coordinates = {}
    for field_name, value, limit in (("latitude", latitude, 90), ("longitude", longitude, 180)):
        if not _finite_number(value) or not -limit <= value <= limit:
            raise _bad(
                InvalidDevice,
                field_name,
                _("Enter a number of degrees from -%(limit)d to %(limit)d.") % {"limit": limit},
            )
        coordinates[field_name] = float(value)
    device = Device(
        device_id=device_id,
        name=_clean_text(name, "name", max_length=200, required=True, error=InvalidDevice),
        device_type=device_type,
        agency=agency,
        group=group,
        district=_clean_text(district, "district", max_length=120, required=False, error=InvalidDevice),
        **coordinates,
    )
    taken = AlreadyExists(
        _("A device with the identifier %(id)s exists.") % {"id": device_id},
        details={"device_id": _("This identifier is taken.")},
    )
    if Device.objects.filter(device_id=device_id).exists():
        raise taken
    try:
        with transaction.atomic():
            device.save(force_insert=True)
    except IntegrityError as exc:
        raise taken from exc
    audit.record(
        actor=_audit_actor(actor),
        action="sensors.device.register",
        subject=device,
        agency=agency,
        details={"device_id": device_id, "device_type": device_type.code, "group": group},
    )
    return device


def _locked(device: Device) -> Device:
    return Device.objects.select_for_update().select_related("agency", "device_type").get(pk=device.pk)


def _new_secrets() -> tuple[str, str]:
    # 256 bits each. The token is hex so that the lookup hash's case folding loses nothing.
    return secrets.token_urlsafe(32), secrets.token_hex(32)


def _token_hash(token: str) -> str:
    return lookup_hash(token, purpose=TOKEN_PURPOSE)


def _revoked_marker(live_hash: str) -> str:
    """What a revoked device's token hash becomes: no token hashes to it, yet a revoked device
    presenting its old token is still recognised (and told so) instead of passing as unknown."""
    return hashlib.sha256(f"revoked:{live_hash}".encode()).hexdigest()


def _broker_url() -> str:
    url = settings.MQTT_URL
    if "@" in url:  # never show the platform's own login
        scheme, _sep, rest = url.partition("://")
        url = f"{scheme}://{rest.rpartition('@')[2]}"
    return url


def _issue(device: Device, *, action: str, actor: Officer | None) -> DeviceCredentials:
    password, token = _new_secrets()
    if action == "provision":
        broker().provision(device_id=device.device_id, password=password)
    else:
        broker().set_password(device_id=device.device_id, password=password)
    device.status = Device.Status.ACTIVE
    device.credential_version += 1
    device.credential_issued_at = timezone.now()
    device.http_token_hash = _token_hash(token)
    device.save(update_fields=["status", "credential_version", "credential_issued_at", "http_token_hash"])
    audit.record(
        actor=_audit_actor(actor),
        action=f"sensors.device.{action}",
        subject=device,
        agency=device.agency,
        details={"device_id": device.device_id, "credential_version": device.credential_version},
    )
    return DeviceCredentials(
        device_id=device.device_id,
        mqtt_username=device.mqtt_username,
        mqtt_password=password,
        http_token=token,
        credential_version=device.credential_version,
        broker_url=_broker_url(),
    )


@transaction.atomic
def device_provision(*, device: Device, actor: Officer | None = None) -> DeviceCredentials:
    """Give a registered (or revoked) device credentials: its broker client and role, and an
    HTTPS token. The secrets are in the returned value only."""
    device = _locked(device)
    _require_manage(actor, device.agency)
    if device.status == Device.Status.ACTIVE:
        raise WrongState(
            _("The device already has credentials; rotate them to issue new ones."),
            code="sensors.already_provisioned",
        )
    return _issue(device, action="provision", actor=actor)


@transaction.atomic
def device_rotate_credentials(*, device: Device, actor: Officer | None = None) -> DeviceCredentials:
    """New password and token for an active device; the old ones stop working at once (the
    broker disconnects a device connected with the old password)."""
    device = _locked(device)
    _require_manage(actor, device.agency)
    if device.status != Device.Status.ACTIVE:
        raise WrongState(_("Only an active device's credentials can be rotated."), code="sensors.not_active")
    return _issue(device, action="rotate", actor=actor)


@transaction.atomic
def device_revoke(*, device: Device, actor: Officer | None = None, reason: str = "") -> Device:
    """Cut the device off: the broker disables its client (a connected device is disconnected
    now) and its HTTPS token stops working."""
    device = _locked(device)
    _require_manage(actor, device.agency)
    if device.status == Device.Status.REVOKED:
        raise WrongState(_("The device is already revoked."), code="sensors.already_revoked")
    broker().revoke(device_id=device.device_id)
    device.status = Device.Status.REVOKED
    device.http_token_hash = _revoked_marker(device.http_token_hash) if device.http_token_hash else ""
    device.save(update_fields=["status", "http_token_hash"])
    audit.record(
        actor=_audit_actor(actor),
        action="sensors.device.revoke",
        subject=device,
        agency=device.agency,
        details={"device_id": device.device_id, "reason": reason[:300]},
    )
    return device


# --- devices presenting a token ----------------------------------------------------------------------

TOKEN_MAX = 200


def _find_by_hash(digest: str) -> Device | None:
    device = Device.objects.select_related("device_type").filter(http_token_hash=digest).first()
    if device is None or not hmac.compare_digest(device.http_token_hash, digest):
        return None
    return device


def device_for_token(token: str) -> Device | None:
    """The active device whose HTTPS token this is, or None."""
    if not token or len(token) > TOKEN_MAX:
        return None
    device = _find_by_hash(_token_hash(token))
    if device is None or device.status != Device.Status.ACTIVE:
        return None
    return device


def revoked_device_for_token(token: str) -> Device | None:
    """The revoked device that was given this token, or None."""
    if not token or len(token) > TOKEN_MAX:
        return None
    device = _find_by_hash(_revoked_marker(_token_hash(token)))
    if device is None or device.status != Device.Status.REVOKED:
        return None
    return device
