"""CSRF everywhere: every URL pattern that takes POST, PUT, PATCH or DELETE refuses such a request
from a signed-in browser that sends no CSRF token, unless it is on CSRF_EXEMPT with the reason it
authenticates otherwise (no cookie is read). Every such endpoint must be on one of the two lists,
so a new one fails here until someone has looked at it.

Which methods an endpoint takes: Django views say so (class-based views by their handlers,
functions by require_http_methods); django-ninja endpoints are asked (405 means not taken).
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern, RoutePattern

from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
REFUSED_MARK = "X-Test-CSRF-Refused"

# Taken without a CSRF token, because nothing there authenticates with the browser's cookies.
# Keys are routes as Django writes them (config/urls.py and the apps' urls.py); "prefix*" for many.
CSRF_EXEMPT: dict[str, str] = {
    "api/3/action/<str:name>": (
        "CKAN's Action API (civicore.opendata.ckan): read-only actions over public open data; "
        "no cookie or session is read and nothing is written."
    ),
    "api/action/<str:name>": "The same CKAN Action API at its unversioned address.",
    "api/v1/exchange/profile-updates": (
        "Agency systems: the body is a JWS signed with the application's registered key "
        "(civicore.registry); no cookie or session is read."
    ),
    "api/v1/exchange/person-query": (
        "Agency systems: the body is a JWS signed with the application's registered key "
        "(civicore.registry); no cookie or session is read."
    ),
    "api/v1/sensors/devices/<device_id>/senml": (
        "Devices post readings with their own token in the Authorization header "
        "(civicore.sensors.api.DeviceToken); no cookie or session is read."
    ),
    "api/v1/credentials/verify": (
        "Checking a document's signature: anonymous, reads no cookie, changes nothing."
    ),
    "api/v1/vc/verify": (
        "Checking a credential or presentation: anonymous, reads no cookie; it only notes that a "
        "shared presentation was checked."
    ),
    "oauth/token": (
        "OAuth token endpoint: the client authenticates with a private_key_jwt assertion and the "
        "code's PKCE verifier; no cookie is read."
    ),
    "oauth/par": (
        "Pushed authorization requests (RFC 9126): the client authenticates with a private_key_jwt "
        "assertion; no cookie is read."
    ),
    "oauth/revoke": (
        "Token revocation (RFC 7009): the client authenticates with a private_key_jwt assertion; "
        "no cookie is read."
    ),
    "oauth/userinfo": (
        "OpenID Connect UserInfo: the access token is a bearer token in the Authorization header "
        "(POST allowed by OIDC Core 5.3.1); no cookie is read."
    ),
    "open311/v2/requests.<str:fmt>": (
        "Open311 GeoReport v2 POST requests: the client authenticates with the api_key parameter "
        "(civicore.open311); no cookie or session is read."
    ),
}

# Take unsafe methods and must refuse them without the token (Django's CsrfViewMiddleware for
# pages, SessionAuth(csrf=True) for the API).
CSRF_PROTECTED: dict[str, str] = {
    "admin/*": "Django admin (every model admin and its add, change, delete and history views)",
    "accounts/*": "django-allauth: sign-in, sign-up, passwords, e-mail, second factors, sessions",
    "i18n/setlang/": "language switch",
    "api/v1/": "the API root",
    "api/v1/openapi.json": "OpenAPI document (answers GET only)",
    "api/v1/docs": "API documentation page (answers GET only)",
    "api/v1/applications": "file an application (session or bearer token)",
    "api/v1/applications/<application_id>": "save a draft",
    "api/v1/applications/<application_id>/documents": "upload a document",
    "api/v1/applications/<application_id>/submit": "submit",
    "api/v1/applications/<application_id>/respond": "answer a request for information",
    "api/v1/cases/<case_id>/<action>": "case actions",
    "api/v1/notifications/<notification_id>/read": "mark a notification read",
    "api/v1/insights/offline-volumes": "report a service's offline transactions (performance.view)",
    "office/performance/offline/": "report a service's offline transactions (performance.view)",
    "applications/start/<slug:code>/": "start an application",
    "applications/<uuid:public_id>/": "application form",
    "applications/<uuid:public_id>/documents/": "upload a document",
    "applications/<uuid:public_id>/documents/<uuid:document_id>/delete/": "delete a document",
    "applications/<uuid:public_id>/respond/": "answer a request for information",
    "office/systems/new/": "register an agency system",
    "office/systems/<slug:client_id>/": "edit an agency system",
    "office/officers/*": "manage officers, teams and roles",
    "office/verify-identity/": "raise a citizen to assurance level 2 after an in-person check",
    "my-documents/<uuid:public_id>/": "share part of one's document as a link",
    "api/v1/vc/credentials/<credential_id>/presentations": "share part of a credential (session/bearer)",
    "my-documents/shared/<str:public_id>/withdraw": "withdraw a shared link",
    "office/documents/<uuid:public_id>/status": "suspend, revoke or reinstate a document (result.issue)",
    "office/deliveries/replay-dead/": "replay dead deliveries",
    "office/deliveries/<int:delivery_id>/replay/": "replay a delivery",
    "office/cases/<int:case_id>/<slug:action>/": "case actions",
    "business/*": "businesses: register, act for, members, grants",
    "verify/": "verify an uploaded result document",
    "inbox/<int:notification_id>/read": "mark a notification read",
    "oauth/authorize": "the citizen's consent form",
    "oauth/logout": "OpenID Connect RP-initiated logout confirmation",
    "my-data/consents/<uuid:public_id>/revoke": "withdraw a consent",
    "my-profile/sessions/*": "end sessions",
    "my-profile/<slug:key>/": "declare a profile item",
    "report/": "file a problem report",
    "report/<str:reference>/me-too/": 'follow an existing report instead of filing ("Me too")',
    "report/<str:reference>/human-review/": "ask for a human review of the AI's routing",
    "report/<str:reference>/rate/": "rate the work on a resolved report",
    "office/reports/<int:report_id>/<slug:action>/": "problem report actions (route, assign, resolve, ...)",
    "office/routing/<int:model_id>/activate/": "activate an AI routing model (ai.manage)",
    "payments/pay/<uuid:application_id>/": "choose how to pay an application's fee and start paying",
    "office/payments/<uuid:public_id>/refund/": "refund a payment (payment.refund)",
    "office/payments/<uuid:public_id>/refunds/<str:reference>/confirm/": (
        "confirm a bank-transfer refund was sent (payment.refund)"
    ),
    "office/payments/reconciliation/<int:line_id>/resolve/": (
        "resolve a reconciliation queue line (payment.refund)"
    ),
    "office/payments/statements/": "upload a bank statement (payment.refund)",
    "office/payments/proposals/<int:refund_id>/decide/": (
        "accept or decline a proposed refund (payment.refund)"
    ),
    "api/v1/payments": "start paying an application's fee (session or bearer token)",
    "api/v1/payments/<payment_id>/refunds": "refund a payment (officers; session or bearer token)",
    "feedback/<slug:kind>/<uuid:public_id>/": "rate one's own decided application, resolved report or fee",
    "api/v1/feedback/ratings": "rate one's own finished transaction (session or bearer token)",
    "office/sensors/add/device/": "register a sensor device (sensor.manage)",
    "office/sensors/add/device-type/": "add a device type (sensor.manage)",
    "office/sensors/add/rule/": "write a new sensor rule (sensor.manage)",
    "office/sensors/devices/<slug:device_id>/command/": "send a command to a device (sensor.operate)",
    "office/sensors/devices/<slug:device_id>/credentials/<slug:action>/": (
        "provision, rotate or revoke a device's credentials (sensor.manage)"
    ),
    "office/sensors/alarms/<int:alarm_id>/<slug:action>/": "acknowledge or clear an alarm (sensor.operate)",
    "office/sensors/rules/<slug:code>/edit/": "save a new version of a sensor rule (sensor.manage)",
    "office/sensors/rules/<slug:code>/<slug:action>/": "enable or disable a sensor rule (sensor.manage)",
    "consultations/<str:key>/ideas/": "post an idea on an open consultation (citizens)",
    "consultations/ideas/<int:idea_id>/vote/": "vote for an idea or withdraw the vote (citizens)",
    "consultations/ideas/<int:idea_id>/comments/": "comment on an idea (citizens)",
    "consultations/ideas/<int:idea_id>/follow/": "follow or stop following an idea (citizens)",
    "office/consultations/new/": "open a new consultation (consultation.manage)",
    "office/consultations/<int:consultation_id>/edit/": "change a consultation (consultation.manage)",
    "office/consultations/<int:consultation_id>/<slug:action>/": (
        "publish, close, respond, add or remove a document, set an idea's status (consultation.manage); "
        "hide an idea or comment (consultation.moderate)"
    ),
    "api/v1/consultations/<consultation_id>/ideas": "post an idea (citizens; session or bearer token)",
    "api/v1/consultations/ideas/<idea_id>/votes": "vote or withdraw a vote (citizens; session or bearer)",
    "api/v1/consultations/ideas/<idea_id>/comments": "comment on an idea (citizens; session or bearer)",
}


def csrf_refused(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Stands in for CSRF_FAILURE_VIEW, so a refusal for the token is told from other 403s."""
    response = HttpResponseForbidden(reason)
    response[REFUSED_MARK] = reason or "refused"
    return response


@dataclass(frozen=True)
class Endpoint:
    route: str
    path: str
    callback: Any

    @property
    def is_ninja(self) -> bool:
        return str(getattr(self.callback, "__module__", "")).startswith("ninja")


_SAMPLES = ["1", "x", "auth", str(uuid.UUID(int=1)), "x-1"]


def _fill_route(pattern: RoutePattern) -> str:
    route = str(pattern)

    def sample(match: re.Match[str]) -> str:
        converter = pattern.converters[match.group("name")]
        return next(c for c in _SAMPLES if re.fullmatch(converter.regex, c))

    return re.sub(r"<(?:[^>:]+:)?(?P<name>[^>]+)>", sample, route)


def _fill_regex(pattern: RegexPattern) -> str:
    regex = str(pattern)
    out, i = "", 0
    while True:
        start = regex.find("(?P<", i)
        if start < 0:
            out += regex[i:]
            break
        out += regex[i:start]
        body_start = regex.index(">", start) + 1
        depth, j = 1, body_start
        while depth:
            if regex[j] == "\\":
                j += 2
                continue
            depth += {"(": 1, ")": -1}.get(regex[j], 0)
            j += 1
        body = regex[body_start : j - 1]
        out += next(c for c in _SAMPLES if re.fullmatch(body, c))
        i = j
    return out.lstrip("^").rstrip("$").replace("\\", "")


def _fill(pattern: Any) -> str:
    return _fill_route(pattern) if isinstance(pattern, RoutePattern) else _fill_regex(pattern)


def endpoints() -> Iterator[Endpoint]:
    def walk(patterns: list[Any], route: str, path: str) -> Iterator[Endpoint]:
        for entry in patterns:
            here_route, here_path = route + str(entry.pattern), path + _fill(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, here_route, here_path)
            elif isinstance(entry, URLPattern):
                yield Endpoint(route=here_route, path="/" + here_path, callback=entry.callback)

    seen: set[str] = set()
    for endpoint in walk(get_resolver().url_patterns, "", ""):
        if endpoint.route not in seen:  # ninja lists one route per operation
            seen.add(endpoint.route)
            yield endpoint


def declared_methods(callback: Any) -> set[str]:
    """The unsafe methods a Django view takes: a class by its handlers, a function wrapped in
    require_http_methods by its list; any other function takes them all."""
    view_class = getattr(callback, "view_class", None)
    if view_class is not None:
        names = view_class.http_method_names
        return {m.upper() for m in names if m.upper() in UNSAFE and hasattr(view_class, m)}
    function, seen = callback, set()
    while function is not None and id(function) not in seen:
        seen.add(id(function))
        try:
            nonlocals = inspect.getclosurevars(function).nonlocals
        except (TypeError, ValueError):
            nonlocals = {}
        if "request_method_list" in nonlocals:
            return {m for m in nonlocals["request_method_list"] if m in UNSAFE}
        function = getattr(function, "__wrapped__", None)
    return set(UNSAFE)


def listed(route: str, entries: dict[str, str]) -> str | None:
    for entry in entries:
        if entry == route or (entry.endswith("*") and route.startswith(entry[:-1])):
            return entry
    return None


def refused_for_the_token(response: Any) -> bool:
    if response.has_header(REFUSED_MARK):
        return True  # Django's CsrfViewMiddleware
    # The API's SessionAuth answers in the API's error shape.
    is_json = response.get("Content-Type", "").startswith("application/json")
    return response.status_code == 403 and is_json and response.json().get("code") == "csrf_failed"


@pytest.fixture
def browser(settings: Any) -> Client:
    """A signed-in citizen's browser on a forged page: the session cookie goes along, no token."""
    settings.CSRF_FAILURE_VIEW = f"{__name__}.csrf_refused"
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_citizen().user)
    return client


def test_every_state_changing_endpoint_needs_the_token_or_is_exempt_for_a_reason(browser: Client) -> None:
    problems: list[str] = []
    taken: set[str] = set()
    refused: set[str] = set()
    for endpoint in endpoints():
        try:
            match = resolve(endpoint.path)
        except Resolver404:
            problems.append(f"{endpoint.route}: test could not build a path that resolves ({endpoint.path})")
            continue
        if match.route != endpoint.route:
            continue  # shadowed by an earlier pattern: unreachable
        methods = set(UNSAFE) if endpoint.is_ninja else declared_methods(endpoint.callback)
        for method in sorted(methods):
            response = browser.generic(method, endpoint.path)
            if refused_for_the_token(response):
                taken.add(endpoint.route)
                refused.add(endpoint.route)
                continue
            if response.status_code == 405:
                continue  # the endpoint does not take this method
            taken.add(endpoint.route)
            if not listed(endpoint.route, CSRF_EXEMPT):
                problems.append(
                    f"{method} {endpoint.route} was answered {response.status_code} without a CSRF token: "
                    "protect it (a form view behind CsrfViewMiddleware, SessionAuth(csrf=True) in the API), "
                    "or, if no cookie authenticates it, add it to CSRF_EXEMPT with the reason"
                )

    for route in sorted(taken):
        if not listed(route, CSRF_EXEMPT) and not listed(route, CSRF_PROTECTED):
            problems.append(
                f"New endpoint {route} takes POST/PUT/PATCH/DELETE: add it to CSRF_PROTECTED "
                "(it refuses requests without the token, as checked here) or to CSRF_EXEMPT with the reason"
            )
    for route in sorted(refused):
        if entry := listed(route, CSRF_EXEMPT):
            problems.append(
                f"{route} now refuses requests without the token: remove {entry!r} from CSRF_EXEMPT"
            )
    for entry in [*CSRF_EXEMPT, *CSRF_PROTECTED]:
        if not any(listed(route, {entry: ""}) for route in taken):
            problems.append(f"{entry!r} matches no endpoint that takes unsafe methods any more: remove it")
    assert not problems, "\n".join(problems)


def test_the_csrf_refusal_is_a_403_page() -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"login": "a@example.test", "password": "x"})
    assert response.status_code == 403


def test_the_probe_recognises_both_kinds_of_refusal(browser: Client) -> None:
    """Guards the test itself: a page refused by the middleware, an API call by SessionAuth."""
    assert refused_for_the_token(browser.post("/inbox/1/read"))
    assert refused_for_the_token(browser.post("/api/v1/applications", {}, content_type="application/json"))
    assert not refused_for_the_token(browser.get("/services/"))


def test_the_path_builder_covers_converters_and_regexes() -> None:
    built = {endpoint.route: endpoint.path for endpoint in endpoints()}
    assert built["applications/<uuid:public_id>/respond/"] == f"/applications/{uuid.UUID(int=1)}/respond/"
    assert built["office/deliveries/<int:delivery_id>/replay/"] == "/office/deliveries/1/replay/"
    reset = next(route for route in built if "password/reset/key/(?P<uidb36>" in route)
    assert resolve(built[reset]).url_name == "account_reset_password_from_key"
