"""Open311 GeoReport v2 at /open311/v2/: services, service definitions, service requests.

Each endpoint answers in the format its extension names (.json or .xml; any other is 404), checks
jurisdiction_id against OPEN311_JURISDICTION, and answers every problem with the specification's
error list. These are API endpoints: no cookie or session is read (POST requests authenticates
with api_key), so they are exempt from CSRF and answer a wrong method with 405 in their format.

Civicore extensions, documented in docs/open311.md: service_code is optional on POST requests
(the AI routing model chooses the category, or an officer does); media_url is kept as a link for
officers and never fetched; a GET shows a request's description only to the client that filed it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, ValidationError
from django.core.validators import URLValidator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from civicore.core.errors import ApplicationError
from civicore.open311 import render, selectors
from civicore.open311.models import Open311Client
from civicore.open311.services import open311_client_authenticate, open311_request_file
from civicore.reports import geocoding
from civicore.reports.models import Report, ReportCategory

MAX_SPAN = timedelta(days=90)
MAX_IDS = 100
MAX_PARAM = 100  # service codes, api_key, names: nothing longer is valid
MEDIA_URL_MAX = 500

# Which Open311 parameter a report field comes from, to name it in error descriptions.
PARAMETER_OF = {
    "description": "description",
    "location": "lat/long",
    "address": "address_string",
    "category": "service_code",
    "contact_name": "first_name/last_name",
    "contact_email": "email",
    "contact_phone": "phone",
}

View = Callable[..., HttpResponse]


class Problem(Exception):
    """An error the view answers at once, in the Open311 error format."""

    def __init__(self, status: int, *descriptions: str, headers: dict[str, str] | None = None):
        super().__init__(*descriptions)
        self.status = status
        self.descriptions = descriptions
        self.headers = headers or {}


def _language(request: HttpRequest) -> str:
    """`locale` (en, en_US, vi-VN, ...) if the client sent one we speak, else the request's."""
    wanted = str(request.GET.get("locale") or "").strip().lower().replace("_", "-")
    for code, _name in settings.LANGUAGES:
        if wanted == code or wanted.startswith(code + "-"):
            return code
    return translation.get_language() or settings.LANGUAGE_CODE


def open311_endpoint(*methods: str) -> Callable[[View], View]:
    """Method (405), format (404), jurisdiction (400), language and errors, for every endpoint."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, fmt: str, **kwargs: Any) -> HttpResponse:
            with translation.override(_language(request)):
                known = fmt if fmt in render.FORMATS else "json"
                if request.method not in methods:
                    response = render.errors(
                        known,
                        405,
                        _("Method %(method)s is not allowed here; use %(allowed)s.")
                        % {"method": request.method, "allowed": ", ".join(methods)},
                    )
                    response["Allow"] = ", ".join(methods)
                    return response
                if fmt not in render.FORMATS:
                    return render.errors(
                        "json", 404, _("Unknown format %(format)s: use .json or .xml.") % {"format": fmt[:20]}
                    )
                try:
                    params = _params(request)
                    _check_jurisdiction(params)
                    return view(request, params, *args, fmt=fmt, **kwargs)
                except Problem as problem:
                    return render.errors(fmt, problem.status, *problem.descriptions, headers=problem.headers)

        return wrapper

    return decorate


def _params(request: HttpRequest) -> QueryDict:
    """The query string, and for a POST the form body on top of it."""
    if request.method != "POST":
        return request.GET
    try:
        merged = request.GET.copy()
        for key, values in request.POST.lists():
            merged.setlist(key, values)
        return merged
    except RequestDataTooBig as exc:
        raise Problem(400, _("The request is too large.")) from exc
    except (TooManyFieldsSent, SuspiciousOperation) as exc:
        raise Problem(400, _("The request could not be read.")) from exc


def _one(params: QueryDict, name: str, *, limit: int = MAX_PARAM) -> str:
    value = str(params.get(name) or "").strip()
    if len(value) > limit:
        raise Problem(400, _("%(name)s is too long.") % {"name": name})
    return value


def _check_jurisdiction(params: QueryDict) -> None:
    jurisdiction = _one(params, "jurisdiction_id")
    expected = settings.OPEN311_JURISDICTION
    if jurisdiction and jurisdiction != expected:
        raise Problem(
            400,
            _("jurisdiction_id %(given)s is not served here; this endpoint serves %(expected)s.")
            % {"given": jurisdiction, "expected": expected},
        )


# --- services --------------------------------------------------------------------------------


def _service(category: ReportCategory) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": category.description,
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(part.strip() for part in category.keywords.split(",") if part.strip()),
        "group": category.agency.name,
    }


@open311_endpoint("GET", "HEAD")
def services(request: HttpRequest, params: QueryDict, *, fmt: str) -> HttpResponse:
    return render.render(fmt, "services", [_service(category) for category in selectors.active_services()])


@open311_endpoint("GET", "HEAD")
def service_definition(request: HttpRequest, params: QueryDict, code: str, *, fmt: str) -> HttpResponse:
    category = selectors.service_by_code(code) if len(code) <= MAX_PARAM else None
    if category is None:
        raise Problem(404, _("service_code %(code)s is not a known service.") % {"code": code[:MAX_PARAM]})
    # No service asks for extra attributes: the description, place and photos say it all.
    return render.render(fmt, "service_definition", {"service_code": category.code, "attributes": []})


# --- service requests ------------------------------------------------------------------------


def _client(params: QueryDict, *, required: bool) -> Open311Client | None:
    key = _one(params, "api_key")
    if not key:
        if required:
            raise Problem(403, _("api_key is required to create a service request."))
        return None
    client = open311_client_authenticate(key)
    if client is None:
        raise Problem(403, _("api_key is not valid (unknown or revoked)."))
    return client


def _coordinate(params: QueryDict, name: str, bound: float) -> float | None:
    text = _one(params, name, limit=40)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise Problem(
            400,
            _("%(name)s must be a decimal number from -%(bound)s to %(bound)s.")
            % {"name": name, "bound": int(bound)},
        )
    return value


def _media_url(params: QueryDict) -> str:
    url = _one(params, "media_url", limit=MEDIA_URL_MAX)
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError as exc:
            raise Problem(400, _("media_url must be an http or https URL.")) from exc
    return url


def _service_notice(report: Report) -> str:
    if report.status == Report.Status.TRIAGE:
        return _("An officer will send it to the responsible agency.")
    if report.status == Report.Status.MERGED and report.merged_into is not None:
        return _("Merged into %(reference)s, which reports the same problem.") % {
            "reference": report.merged_into.reference
        }
    if report.status == Report.Status.RESOLVED:
        return _("Resolved.")
    if report.agency is not None and report.category is not None:
        return _("%(agency)s will handle it within %(days)d working days.") % {
            "agency": report.agency.name,
            "days": report.category.sla_days,
        }
    return ""


def _problem_from(exc: ApplicationError) -> Problem:
    if exc.status == 429:
        return Problem(429, exc.message, headers={"Retry-After": "3600"})
    status = exc.status if exc.status in (403, 404) else 400
    details = exc.details if isinstance(exc.details, dict) else {}
    descriptions = [
        f"{PARAMETER_OF.get(str(field), str(field))}: {message}"
        for field, message in details.items()
        if isinstance(message, str)
    ]
    return Problem(status, *(descriptions or [exc.message]))


@open311_endpoint("GET", "HEAD", "POST")
def service_requests(request: HttpRequest, params: QueryDict, *, fmt: str) -> HttpResponse:
    if request.method == "POST":
        return _create(params, fmt)
    return _list(request, params, fmt)


def _create(params: QueryDict, fmt: str) -> HttpResponse:
    client = _client(params, required=True)
    assert client is not None  # noqa: S101 - _client raised otherwise
    service_code = _one(params, "service_code")
    if service_code and selectors.service_by_code(service_code) is None:
        raise Problem(400, _("service_code %(code)s is not a known service.") % {"code": service_code})
    latitude, longitude = _coordinate(params, "lat", 90), _coordinate(params, "long", 180)
    address = _one(params, "address_string", limit=1000)
    if (latitude is None) != (longitude is None):
        raise Problem(400, _("Send both lat and long, or neither."))
    if latitude is None and not address:
        raise Problem(400, _("lat and long, or address_string, are required."))
    if (latitude is None or longitude is None) and not geocoding.geocoder_configured():
        raise Problem(
            400,
            _("address_string alone cannot be placed (addresses are not looked up): send lat and long."),
        )
    description = str(params.get("description") or "")
    if not description.strip():
        raise Problem(400, _("description is required."))
    name = " ".join(part for part in (_one(params, "first_name"), _one(params, "last_name")) if part)
    try:
        report = open311_request_file(
            client=client,
            description=description,
            latitude=latitude,
            longitude=longitude,
            address=address,
            service_code=service_code or None,
            contact_name=name,
            contact_email=_one(params, "email", limit=254),
            contact_phone=_one(params, "phone", limit=40),
            media_url=_media_url(params),
            language=translation.get_language() or settings.LANGUAGE_CODE,
        )
    except ApplicationError as exc:
        problem = _problem_from(exc)
        if problem.status == 429:
            problem.headers["Retry-After"] = str(selectors.retry_after_seconds(f"open311:{client.pk}"))
        raise problem from exc
    body = [
        {
            "service_request_id": report.reference,
            "service_notice": _service_notice(report),
            "account_id": None,
        }
    ]
    return render.render(fmt, "service_requests", body, status=201)


def _datetime(params: QueryDict, name: str) -> datetime | None:
    text = _one(params, name, limit=40)
    if not text:
        return None
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None or timezone.is_naive(value):
        raise Problem(
            400,
            _("%(name)s must be a W3C date and time with a time zone, such as 2025-01-31T08:00:00Z.")
            % {"name": name},
        )
    return value


def _list_param(params: QueryDict, name: str) -> list[str]:
    values = [part.strip() for raw in params.getlist(name) for part in str(raw).split(",")]
    return [value for value in values if value]


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The requested_datetime range: the last 90 days by default, never more than 90 days."""
    if start is None and end is None:
        end = timezone.now()
    if start is None:
        assert end is not None  # noqa: S101 - set above
        start = end - MAX_SPAN
    if end is None:
        end = start + MAX_SPAN
    if end < start:
        raise Problem(400, _("end_date must not be before start_date."))
    if end - start > MAX_SPAN:
        raise Problem(400, _("start_date and end_date may not span more than 90 days."))
    return start, end


def _list(request: HttpRequest, params: QueryDict, fmt: str) -> HttpResponse:
    client = _client(params, required=False)
    references = _list_param(params, "service_request_id")
    if len(references) > MAX_IDS:
        raise Problem(400, _("Ask for at most %(max)d service_request_id values at once.") % {"max": MAX_IDS})
    codes = _list_param(params, "service_code")
    unknown = sorted(
        {code[:MAX_PARAM] for code in codes} - set(selectors.active_services().values_list("code", flat=True))
    )
    if unknown and not references:
        raise Problem(
            400,
            *[_("service_code %(code)s is not a known service.") % {"code": code} for code in unknown[:10]],
        )
    statuses = _list_param(params, "status")
    if any(status not in ("open", "closed") for status in statuses):
        raise Problem(400, _("status must be open or closed (or both, comma-separated)."))
    start, end = _datetime(params, "start_date"), _datetime(params, "end_date")
    if not references:
        start, end = _window(start, end)
    query = selectors.RequestQuery(
        references=references, service_codes=codes, start=start, end=end, statuses=statuses
    )
    reports = selectors.service_requests(query)
    return render.render(fmt, "service_requests", [_request(report, client) for report in reports])


@open311_endpoint("GET", "HEAD")
def service_request(request: HttpRequest, params: QueryDict, request_id: str, *, fmt: str) -> HttpResponse:
    client = _client(params, required=False)
    report = selectors.service_request(request_id) if len(request_id) <= 40 else None
    if report is None:
        raise Problem(404, _("service_request_id %(id)s was not found.") % {"id": request_id[:40]})
    return render.render(fmt, "service_requests", [_request(report, client)])


def _photo_url(photo: Any) -> str:
    path = reverse("reports_public:photo", kwargs={"public_id": photo.public_id})
    return f"{settings.SITE_URL}{path}"


def _request(report: Report, client: Open311Client | None) -> dict[str, Any]:
    """One service request as GET answers it: never contact details; the description only to
    the client that filed the report (it may hold what a citizen would not publish)."""
    submission = getattr(report, "open311_submission", None)  # None when filed on the web
    own = client is not None and submission is not None and submission.client_id == client.pk
    photos = getattr(report, "published_photos", [])
    if report.status == Report.Status.MERGED and report.merged_into is not None:
        notes = _("Merged into %(reference)s.") % {"reference": report.merged_into.reference}
    else:
        notes = str(report.get_status_display())
    return {
        "service_request_id": report.reference,
        "status": selectors.open311_status(report),
        "status_notes": notes,
        "service_name": report.category.name if report.category else None,
        "service_code": report.category.code if report.category else None,
        "description": report.description if own else None,
        "agency_responsible": report.agency.name if report.agency else None,
        "service_notice": _service_notice(report),
        "requested_datetime": render.w3c_datetime(report.created_at),
        "updated_datetime": render.w3c_datetime(report.updated_at),
        "expected_datetime": render.w3c_datetime(report.due_at) if report.is_open else None,
        "address": report.address or None,
        "address_id": None,
        "zipcode": None,
        "lat": selectors.rounded(report.latitude),
        "long": selectors.rounded(report.longitude),
        "media_url": _photo_url(photos[0]) if photos else None,
    }
