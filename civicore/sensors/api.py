"""City sensors under /api/v1/sensors.

Devices that cannot speak MQTT post SenML (JSON or CBOR) over HTTPS with their own token as a
bearer token; the readings take the same path as those that arrive over MQTT. No session or
cookie is read there, so no CSRF token is asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status
from ninja.security import HttpBearer

from civicore.agencies import permissions as agency_permissions
from civicore.agencies.models import Officer
from civicore.agencies.selectors import officer_for_user
from civicore.core import throttle
from civicore.core.errors import PermissionDenied
from civicore.core.pagination import paginate
from civicore.core.schemas import errors as error_responses
from civicore.sensors import selectors as sensor_selectors
from civicore.sensors import services
from civicore.sensors.models import Device, Rejection

router = Router(tags=["sensors"])

# --- HTTPS ingest (devices) -------------------------------------------------------------------------

SENML_JSON = "application/senml+json"
SENML_CBOR = "application/senml+cbor"
CONTENT_TYPES = (SENML_JSON, SENML_CBOR, "application/json", "application/cbor")
# Bodies up to the broker's own packet limit are read and refused by ingestion (and counted, as
# over MQTT); anything larger is refused unread.
READ_LIMIT = 262_144
MAX_REJECTED_LISTED = 50
THROTTLE_SCOPE = "sensor_device_token"
# Wrong tokens from one address: a lost or mistyped token is retried by a device forever, so the
# lock is short but certain. Devices with a valid token are never slowed by it.
throttle.register(
    THROTTLE_SCOPE,
    address=throttle.Limit(free=30, steps=(throttle.MINUTE, 5 * throttle.MINUTE), decay=throttle.HOUR),
)


def _error(status: int, code: str, message: str, details: Any = None, **headers: str) -> JsonResponse:
    response = JsonResponse({"code": code, "message": message, "details": details}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


@dataclass(frozen=True)
class DeviceAuth:
    """The outcome of presenting a token: the device, or the answer refusing it."""

    device: Device | None = None
    refusal: HttpResponse | None = None


class DeviceToken(HttpBearer):
    """A device's own HTTPS token, shown once when the device was provisioned."""

    def __call__(self, request: HttpRequest) -> DeviceAuth:
        scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
        return self.authenticate(request, token.strip() if scheme.lower() == "bearer" else "")

    def authenticate(self, request: HttpRequest, token: str | None) -> DeviceAuth:
        device = services.device_for_token(token or "")
        if device is not None:
            return DeviceAuth(device=device)
        keys = {"address": throttle.client_address(request)}
        decision = throttle.check(THROTTLE_SCOPE, keys)
        if not decision.allowed:
            return DeviceAuth(refusal=throttle.api_response(decision))
        if services.revoked_device_for_token(token or "") is not None:
            return DeviceAuth(
                refusal=_error(403, "sensors.revoked", _("This device's credentials were revoked."))
            )
        throttle.fail(THROTTLE_SCOPE, keys)
        return DeviceAuth(refusal=_bad_token())


def _bad_token() -> JsonResponse:
    return _error(
        401,
        "sensors.bad_token",
        _("Send this device's own token: Authorization: Bearer <token>."),
        WWW_Authenticate='Bearer realm="civicore-devices"',
    )


class RejectedRecordOut(Schema):
    reason: str
    detail: str


class IngestOut(Schema):
    """What was done with the readings of one message."""

    accepted: int
    duplicates: int
    rejected_count: int
    rejected: list[RejectedRecordOut]


def _error_doc(description: str, **extra: Any) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/ErrorOut"}
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


_INGEST_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            SENML_JSON: {"schema": {"type": "array", "items": {"type": "object"}}},
            SENML_CBOR: {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "responses": {
        "400": _error_doc("sensors.malformed: nothing in the message could be stored."),
        "401": _error_doc(
            "sensors.bad_token: no token, a wrong one, or another device's.",
            headers={"WWW-Authenticate": {"schema": {"type": "string"}}},
        ),
        "403": _error_doc("sensors.revoked: the device's credentials were revoked."),
        "413": _error_doc("sensors.too_large: the message is over the size limit (64 KB by default)."),
        "415": _error_doc("sensors.unsupported_media_type: send application/senml+json or senml+cbor."),
        "429": _error_doc(
            "sensors.rate_limited: the device is over its message rate; throttled: too many wrong "
            "tokens from this address.",
            headers={"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
        ),
    },
}


def _too_large(size: int | None = None) -> JsonResponse:
    limit = settings.SENSOR_MAX_PAYLOAD_BYTES
    return _error(
        413,
        "sensors.too_large",
        _("The message is larger than %(limit)d bytes.") % {"limit": limit},
        {"max_bytes": limit, "bytes": size},
    )


@router.post(
    "/devices/{device_id}/senml",
    auth=DeviceToken(),
    response={202: IngestOut},
    url_name="sensors_device_senml",
    openapi_extra=_INGEST_DOC,
)
def device_senml(request: HttpRequest, device_id: str) -> Any:
    """A device posts readings as a SenML pack (RFC 8428), JSON or CBOR, with its own token.

    202: the counts of readings stored, already stored (a message sent twice is stored once) and
    refused, with each refusal's reason. Errors: 400 sensors.malformed (nothing usable),
    401 sensors.bad_token, 403 sensors.revoked, 413 sensors.too_large,
    415 sensors.unsupported_media_type, 429 sensors.rate_limited (with Retry-After)."""
    auth: DeviceAuth = request.auth  # type: ignore[attr-defined]
    if auth.refusal is not None:
        return auth.refusal
    device = auth.device
    if device is None or device.device_id != device_id:
        return _bad_token()
    try:
        announced = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        announced = 0
    if announced > READ_LIMIT:
        return _too_large(announced)
    try:
        body = request.body
    except RequestDataTooBig:
        return _too_large()
    if len(body) > READ_LIMIT:
        return _too_large(len(body))
    if not body:
        return _error(
            400, "sensors.malformed", _("The message is empty."), {"rejected_count": 0, "rejected": []}
        )
    content_type = (request.content_type or "").lower()
    if content_type not in CONTENT_TYPES:
        return _error(
            415,
            "sensors.unsupported_media_type",
            _("Send the readings as application/senml+json or application/senml+cbor."),
            {"accepted": list(CONTENT_TYPES)},
        )

    from civicore.sensors.pipeline import ingest_payload

    result = ingest_payload(device, body, content_type=content_type)
    rejected = [{"reason": str(reason), "detail": str(detail)} for reason, detail in result.rejected]
    if not result.accepted and not result.duplicates:
        reasons = {item["reason"] for item in rejected}
        if Rejection.Reason.TOO_LARGE in reasons:
            return _too_large(len(body))
        if Rejection.Reason.RATE_LIMITED in reasons:
            rate = device.device_type.rate_per_minute
            wait = max(1, math.ceil(60 / rate))
            return _error(
                429,
                "sensors.rate_limited",
                _("This device sends more than %(rate)d messages a minute.") % {"rate": rate},
                {"rate_per_minute": rate, "retry_after": wait},
                Retry_After=str(wait),
            )
        if Rejection.Reason.UNKNOWN_DEVICE in reasons:  # revoked while the request ran
            return _error(403, "sensors.revoked", _("This device's credentials were revoked."))
        return _error(
            400,
            "sensors.malformed",
            _("Nothing in the message could be stored."),
            {"rejected_count": len(rejected), "rejected": rejected[:MAX_REJECTED_LISTED]},
        )
    return Status(
        202,
        {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected_count": len(rejected),
            "rejected": rejected[:MAX_REJECTED_LISTED],
        },
    )


# --- queries (officers and their agency's systems) --------------------------------------------------
# An officer's session, or an API token of a user who is an officer (an agency system's account),
# holding sensor.operate; each sees their own agency's devices only. Series are capped at
# selectors.MAX_POINTS points, and each period has a longest range (raw 7 days, 5m 14 days,
# 1h 200 days, 1d 10 years); bad queries are 400 with a stable code.


_PERIOD_HELP = "raw (readings of one device), 5m, 1h or 1d (rollups: mean, min, max and count per bucket)"
_TIME_HELP = "ISO 8601 date and time, e.g. 2026-12-05T07:00:00+07:00 (UTC if no offset)"


class SensorLastValueOut(Schema):
    quantity: str
    value: float
    unit: str
    time: datetime | None


class SensorDeviceOut(Schema):
    device_id: str
    name: str
    device_type: str
    role: str
    group: str
    district: str
    latitude: float
    longitude: float
    status: str
    connectivity: str
    last_seen_at: datetime | None
    accepted_count: int
    rejected_count: int
    last_values: list[SensorLastValueOut]


class SensorDevicePage(Schema):
    items: list[SensorDeviceOut]
    next_cursor: str | None


class SensorPointOut(Schema):
    time: datetime
    value: float
    min: float
    max: float
    count: int


class SensorSeriesOut(Schema):
    quantity: str
    period: str
    start: datetime
    end: datetime
    truncated: bool
    points: list[SensorPointOut]


class SensorDeviceSeriesOut(SensorSeriesOut):
    device_id: str


class SensorGroupSeriesOut(SensorSeriesOut):
    group: str
    devices: int


class SensorAreaSeriesOut(SensorSeriesOut):
    bbox: list[float]
    devices: int


def _sensor_officer(request: HttpRequest) -> Officer:
    officer = officer_for_user(request.user)
    if officer is None:
        raise PermissionDenied(_("Only officers can read sensor data."), code="not_an_officer")
    return agency_permissions.require(
        officer,
        agency_permissions.SENSOR_OPERATE,
        message=_("Your roles do not include watching sensors."),
    )


def _device_out(device: Device, now: datetime) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "name": device.name,
        "device_type": device.device_type.code,
        "role": device.device_type.role,
        "group": device.group,
        "district": device.district,
        "latitude": device.latitude,
        "longitude": device.longitude,
        "status": device.status,
        "connectivity": sensor_selectors.connectivity(device, now),
        "last_seen_at": device.last_seen_at,
        "accepted_count": device.accepted_count,
        "rejected_count": device.rejected_count,
        "last_values": [
            {"quantity": item.quantity, "value": item.value, "unit": item.unit, "time": item.time}
            for item in sensor_selectors.last_values(device)
        ],
    }


def _series_out(series: sensor_selectors.Series) -> dict[str, Any]:
    return {
        "quantity": series.quantity,
        "period": series.period,
        "start": series.start,
        "end": series.end,
        "truncated": series.truncated,
        "points": [
            {"time": p.time, "value": p.value, "min": p.minimum, "max": p.maximum, "count": p.count}
            for p in series.points
        ],
    }


@router.get(
    "/devices",
    response={200: SensorDevicePage, **error_responses(400, 403)},
    summary="The agency's devices, with status and latest readings",
)
def list_devices(
    request: HttpRequest,
    group: str = "",
    district: str = "",
    device_type: str = "",
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Devices of the caller's agency by identifier, filtered by group, district or type code;
    `connectivity` is online, offline, never_seen or revoked. Cursor pagination: pass
    `next_cursor` back as `cursor` (a tampered cursor is 422 invalid_cursor)."""
    officer = _sensor_officer(request)
    qs = sensor_selectors.devices_of_agency(
        agency_id=officer.agency_id, group=group[:80], district=district[:120], device_type=device_type[:60]
    )
    rows, next_cursor = paginate(qs, cursor=cursor, limit=limit, order=("device_id",))
    now = timezone.now()
    return {"items": [_device_out(device, now) for device in rows], "next_cursor": next_cursor}


@router.get(
    "/devices/{device_id}/series",
    response={200: SensorDeviceSeriesOut, **error_responses(400, 403, 404)},
    summary="One quantity of one device over time",
)
def device_series(
    request: HttpRequest,
    device_id: str,
    quantity: str = Query("", description="A quantity of the device type, e.g. soil_moisture"),
    period: str = Query("1h", description=_PERIOD_HELP),
    start: str | None = Query(
        None, description=_TIME_HELP + "; default: the period's usual window before end"
    ),
    end: str | None = Query(None, description=_TIME_HELP + "; default: now"),
) -> dict[str, Any]:
    """Raw readings (period=raw) or rollups, oldest first. 400: sensors.invalid_period,
    sensors.invalid_range (start not before end), sensors.range_too_large,
    sensors.invalid_time, sensors.invalid_quantity, sensors.unknown_quantity.
    404 sensors.unknown_device (also for another agency's device)."""
    officer = _sensor_officer(request)
    device = sensor_selectors.device_for_agency(agency_id=officer.agency_id, device_id=device_id)
    series = sensor_selectors.device_series(
        device=device, quantity=quantity, period=period, start=start, end=end
    )
    return {**_series_out(series), "device_id": device.device_id}


@router.get(
    "/groups/{group}/series",
    response={200: SensorGroupSeriesOut, **error_responses(400, 403, 404)},
    summary="One quantity across the devices of a group",
)
def group_series(
    request: HttpRequest,
    group: str,
    quantity: str = Query("", description="e.g. soil_moisture"),
    period: str = Query("1h", description="5m, 1h or 1d"),
    start: str | None = Query(None, description=_TIME_HELP),
    end: str | None = Query(None, description=_TIME_HELP),
) -> dict[str, Any]:
    """Per bucket, over the agency's devices of the group: the mean of all their readings, the
    lowest, the highest and how many. 404 sensors.unknown_group; 400 as for a device, and
    sensors.invalid_period for raw."""
    officer = _sensor_officer(request)
    series, devices = sensor_selectors.group_series(
        agency_id=officer.agency_id, group=group, quantity=quantity, period=period, start=start, end=end
    )
    return {**_series_out(series), "group": group, "devices": devices}


@router.get(
    "/area/series",
    response={200: SensorAreaSeriesOut, **error_responses(400, 403)},
    summary="One quantity across the devices inside a box",
)
def area_series(
    request: HttpRequest,
    bbox: str = Query("", description="south,west,north,east in degrees, e.g. 21.0,105.8,21.1,105.9"),
    quantity: str = Query("", description="e.g. rainfall"),
    period: str = Query("1h", description="5m, 1h or 1d"),
    start: str | None = Query(None, description=_TIME_HELP),
    end: str | None = Query(None, description=_TIME_HELP),
) -> dict[str, Any]:
    """As for a group, over the agency's devices inside the box. 400 sensors.invalid_bbox."""
    officer = _sensor_officer(request)
    south, west, north, east = sensor_selectors.parse_bbox(bbox)
    series, devices = sensor_selectors.area_series(
        agency_id=officer.agency_id, bbox=bbox, quantity=quantity, period=period, start=start, end=end
    )
    return {**_series_out(series), "bbox": [south, west, north, east], "devices": devices}
