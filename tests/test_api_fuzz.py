"""Property-based fuzzing of the REST API with schemathesis.

Every operation of /api/v1/openapi.json is called with generated requests, valid and invalid,
as three callers: a signed-in citizen who has applications of their own, an officer of the
agency that handles them (caseworker and decider, logged in with a second factor) and an agency
system (no session; its requests to /api/v1/exchange are signed with its registered key). Each
response goes through all of schemathesis's checks: no server error, only documented status
codes, content types, headers and bodies, invalid input refused and valid input accepted.

The application runs in-process through its WSGI handler, inside the test's database
transaction; each generated request runs in a savepoint that is rolled back, so every request
sees the same data and nothing leaks into other tests. Generation is deterministic (fixed seed,
no example database), so a failure found in CI is found again locally.
"""

from __future__ import annotations

import json
import os
import time
import traceback
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections, transaction
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from joserfc import jws
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.transport.wsgi import WSGI_TRANSPORT
from schemathesis.transport.wsgi import multipart_serializer as werkzeug_multipart

from civicore.core import jose

CSRF_TOKEN = "fuzzcsrf" * 4  # a 32-character secret: the cookie and the header must agree
EXCHANGE_PREFIX = "/api/v1/exchange/"
# Longer runs find more: CIVICORE_FUZZ_EXAMPLES=500 CIVICORE_FUZZ_SEED=7 pytest tests/test_api_fuzz.py
MAX_EXAMPLES = int(os.environ.get("CIVICORE_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("CIVICORE_FUZZ_SEED", "20250801"))
# The same examples on every run unless a seed is asked for.
DERANDOMIZE = "CIVICORE_FUZZ_SEED" not in os.environ


class _InProcessApp(WSGIHandler):
    """The site's WSGI handler, remembering the traceback of any unhandled exception so that a
    500 is reported with its cause."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        # A WSGI server always names the peer; the test client does not.
        environ.setdefault("REMOTE_ADDR", "127.0.0.1")
        return super().__call__(environ, start_response)


APP = _InProcessApp()

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            # Credentials come from the caller below, never generated: a made-up session cookie
            # would only measure how a stranger is refused, which the anonymous checks cover.
            "with-security-parameters": False,
        },
    }
)
SCHEMA = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APP, config=CONFIG)
# Signed requests of agency systems are compact JWS strings: sent as they are.
schemathesis.serializer.alias("application/jose", "text/plain")
# Devices' SenML in CBOR (civicore.sensors) is binary: sent as the bytes generated.
schemathesis.serializer.alias("application/senml+cbor", "application/octet-stream")


@WSGI_TRANSPORT.serializer("multipart/form-data")
def _multipart_as_http_clients_send_it(ctx: Any, value: Any) -> dict[str, Any]:
    """The werkzeug test client writes an empty file part without the line break that ends its
    (empty) content, so Django reads no file at all; encode the parts as browsers and HTTP
    libraries do instead."""
    from werkzeug.datastructures import FileStorage

    encoded = werkzeug_multipart(ctx, value)
    parts = encoded.get("data")
    if not isinstance(parts, dict):
        return encoded
    fields = {
        name: [
            SimpleUploadedFile(
                os.path.basename(item.filename or "") or "file", item.read(), item.content_type or ""
            )
            if isinstance(item, FileStorage)
            else item
            for item in items
        ]
        for name, items in parts.items()
    }
    return {"data": encode_multipart(BOUNDARY, fields), "content_type": MULTIPART_CONTENT}


# Schema-valid requests that the API still refuses with these codes are refused for what the
# generator cannot know, so the "valid data is accepted" check does not apply to them: every
# other refusal of a valid request fails the test.
STATE_DEPENDENT_REFUSALS = {
    "invalid_cursor": "a cursor is a signed token from the previous page, not any string",
    "invalid_answers": "answers are checked against the e-service's own form, not the API schema",
    "missing_documents": "submitting needs the documents the e-service asks for, uploaded first",
    "unknown_requirement": "which documents exist depends on the e-service",
    "file_type_not_allowed": "the e-service decides which file types it takes",
    "file_empty": "an empty file is schema-valid but never a document",
    "message_required": "whether a message is needed depends on the case action",
    "tree_size_out_of_range": "which tree sizes exist depends on how far the transparency log has grown",
    "entry_selector_required": "one of start/end or hash is needed: a rule across parameters",
    "entry_range_out_of_range": "start must not pass end, nor end the log's size: rules across parameters",
    "entry_range_too_large": "at most 1,000 entries between start and end: a rule across parameters",
    "unknown_claim": "which claims a credential has depends on the credential",
    "invalid_lifetime": "a presentation lasts 1h, 1d, 7d or 30d",
    "audience_required": "a blank audience is schema-valid but names no one",
    "token_too_long": "a credential is at most 64 KiB",
}


# --- the callers ----------------------------------------------------------------------------------


@dataclass
class Caller:
    name: str
    cookies: dict[str, str] = field(default_factory=dict)
    # Real objects the caller may name in a path, by path parameter.
    objects: dict[str, list[Any]] = field(default_factory=dict)
    system: Any = None
    key: Any = None


def _session_caller(name: str, user: Any, objects: dict[str, list[Any]]) -> Caller:
    from civicore.agencies.tests.factories import back_office_client

    # Everyone logs in with a second factor, as the back office requires of officers.
    client = back_office_client(user)
    return Caller(
        name=name,
        cookies={
            settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value,
            settings.CSRF_COOKIE_NAME: CSRF_TOKEN,
        },
        objects=objects,
    )


def _world() -> dict[str, Caller]:
    from civicore.agencies.tests.factories import AgencyFactory, make_officer
    from civicore.applications import services as application_services
    from civicore.applications.tests.factories import make_service, make_submitted
    from civicore.identity.tests.factories import make_citizen
    from civicore.notify.models import Notification
    from civicore.registry.tests.factories import make_application

    agency = AgencyFactory()
    service = make_service(agency=agency)
    person = make_citizen()
    submitted = make_submitted(person, service)
    draft = application_services.application_start(person=person, service=service)
    officer = make_officer(agency, roles=("caseworker", "decider"))
    notifications = list(Notification.objects.filter(user=person.user).values_list("pk", flat=True))
    system, key = make_application(
        agency=agency,
        is_agency_of_record=True,
        allowed_items=["full_name", "date_of_birth", "address", "marital_status"],
    )
    jose.ensure_signing_keys()  # outside the per-request savepoints: replies are signed with it
    return {
        "citizen": _session_caller(
            "citizen",
            person.user,
            {
                "application_id": [submitted.public_id, draft.public_id],
                "application_public_id": [submitted.public_id],
                "notification_id": notifications,
                "code": [service.code],
            },
        ),
        "officer": _session_caller(
            "officer",
            officer.user,
            {"case_id": [submitted.case.pk], "application_public_id": [submitted.public_id]},
        ),
        "system": Caller(
            name="system",
            objects={"code": [service.code], "national_id": [person.national_id]},
            system=system,
            key=key,
        ),
    }


_CURRENT: dict[str, Caller] = {}


@SCHEMA.auth(refresh_interval=None)
class _CallersSession:
    """The current caller's session cookie, set as explicit credentials so that schemathesis's
    authentication checks know them and can also send the request without them."""

    def get(self, case: Any, context: Any) -> dict[str, str] | None:
        caller = _CURRENT.get("caller")
        return caller.cookies if caller is not None and caller.cookies else None

    def set(self, case: Any, data: dict[str, str], context: Any) -> None:
        case.cookies = {**(case.cookies or {}), **data}
        case.headers = {**(case.headers or {}), "X-CSRFToken": CSRF_TOKEN}


@pytest.fixture(autouse=True)
def _private_storage(tmp_path: Any, settings: Any) -> None:
    """Uploads and signed results of each test go to its own directory, not the shared one."""
    settings.MEDIA_ROOT = tmp_path / "private"
    settings.PRIVATE_STORAGE_DIR = settings.MEDIA_ROOT


@contextmanager
def _in_process() -> Iterator[None]:
    # Django's test client does the same around each request: a request must not close the
    # connection that holds the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    got_request_exception.connect(_remember_exception, dispatch_uid="api_fuzz")
    jose.reset_cache()
    try:
        yield
    finally:
        got_request_exception.disconnect(dispatch_uid="api_fuzz")
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        jose.reset_cache()


@pytest.fixture(params=["citizen", "officer", "system"])
def caller(request: Any, db: Any) -> Iterator[Caller]:
    with _in_process():
        _CURRENT["caller"] = _world()[request.param]
        try:
            yield _CURRENT["caller"]
        finally:
            _CURRENT.clear()


def _remember_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    APP.errors.append(traceback.format_exc())


# --- shaping a generated request for the caller ---------------------------------------------------


def _stable_choice(case: Any, options: list[Any]) -> Any | None:
    """One of `options` for about half of the cases, chosen from the case's own data so that the
    same case always gets the same answer; None otherwise."""
    digest = zlib.crc32(repr((case.query, case.body)).encode())
    if not options or digest % 2:
        return None
    return options[(digest // 2) % len(options)]


def _name_real_objects(case: Any, caller: Caller) -> None:
    """Point valid requests at objects the caller really has, so the fuzzing reaches past
    "not found" into the operation itself. Invalid requests keep their generated paths."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    for name in list(case.path_parameters or {}):
        chosen = _stable_choice(case, caller.objects.get(name, []))
        if chosen is not None:
            case.path_parameters[name] = str(chosen)
    if isinstance(case.body, dict) and "service" in case.body:
        chosen = _stable_choice(case, caller.objects.get("code", []))
        if chosen is not None:
            case.body["service"] = chosen


def _sign_for_system(case: Any, caller: Caller) -> bool:
    """The agency system signs whatever body was generated with its registered key, so the
    payload checks behind the signature are fuzzed too (unsigned bodies come from the others)."""
    if caller.system is None or not case.path.startswith(EXCHANGE_PREFIX):
        return False
    if not isinstance(case.body, str):
        return False
    now = int(time.time())
    try:
        payload = json.loads(case.body)
    except ValueError:
        payload = case.body
    claims = {
        "iss": caller.system.client_id,
        "aud": f"http://localhost{case.path}",
        "iat": now,
        "exp": now + 60,
        "jti": f"fuzz-{zlib.crc32(case.body.encode())}-{time.monotonic_ns()}",
    }
    body = {**payload, **claims} if isinstance(payload, dict) else {**claims, "value": payload}
    case.body = jws.serialize_compact({"alg": "ES256", "kid": caller.key.kid}, json.dumps(body), caller.key)
    return True


# --- the test -------------------------------------------------------------------------------------


@SCHEMA.parametrize()
@hypothesis_settings(
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,
    max_examples=MAX_EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api(case: Any, caller: Caller) -> None:
    # The coverage phase's cases come without the registered credentials: add them.
    case.operation.schema.auth.set(case, schemathesis.AuthContext(operation=case.operation, app=APP))
    _name_real_objects(case, caller)
    signed = _sign_for_system(case, caller)
    APP.errors.clear()
    with transaction.atomic():
        try:
            response = case.call()
            # A signed body is no longer the generated one, whose validity the check is about.
            excluded = [positive_data_acceptance] if signed or _refused_for_state(response) else []
            case.validate_response(response, excluded_checks=excluded)
        finally:
            transaction.set_rollback(True)
            if APP.errors:
                print("\n".join(APP.errors))  # noqa: T201 - the cause of a 500, beside the failure


def _refused_for_state(response: Any) -> bool:
    if not 400 <= response.status_code < 500:
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("code") in STATE_DEPENDENT_REFUSALS


# --- what agency systems sign ---------------------------------------------------------------------
#
# The exchange endpoints take a compact JWS, so the schema above can only generate the envelope.
# Here the signed payload itself is generated, valid and invalid, from the models the endpoints
# read it with, signed with the system's registered key, sent to the real endpoint and checked
# against the real document's responses.


def _payload_document() -> dict[str, Any]:
    from civicore.identity.exchange_api import PersonQueryIn, ProfileUpdateIn

    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for path, model in (
        ("/api/v1/exchange/profile-updates", ProfileUpdateIn),
        ("/api/v1/exchange/person-query", PersonQueryIn),
    ):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
        body = {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        paths[path] = {
            "post": {
                "requestBody": {"required": True, "content": {"application/json": body}},
                "responses": {"200": {"description": "The platform's signed reply"}},
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Signed payloads of the exchange API", "version": "1"},
        "paths": paths,
        "components": {"schemas": components},
    }


PAYLOADS = schemathesis.openapi.from_dict(_payload_document(), config=CONFIG)
# Refusals of a well-formed payload that depend on the data held, not on the payload's shape.
PAYLOAD_REFUSALS = {
    "invalid_request",  # exactly one of national_id, phone, email: a rule JSON Schema cannot say here
    "unknown_items",
    "invalid_item_values",
    "items_not_allowed",
    "purpose_not_allowed",
    "not_agency_of_record",
    "person_not_found",
}


@pytest.fixture
def agency_system(db: Any) -> Iterator[Caller]:
    with _in_process():
        yield _world()["system"]


@PAYLOADS.parametrize()
@hypothesis_settings(
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,
    max_examples=MAX_EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_signed_payloads(case: Any, agency_system: Caller) -> None:
    payload = case.body if isinstance(case.body, dict | list | str | int | float | bool) else None
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and isinstance(payload, dict):
        # Half the valid payloads name the real citizen and the items the system may use.
        national_id = _stable_choice(case, agency_system.objects["national_id"])
        if national_id is not None:
            payload = {**payload, "person": {"national_id": national_id}}
            items = payload.get("items")
            if isinstance(items, list):
                payload = {**payload, "items": ["full_name", "address"], "purpose": "benefit"}
            elif isinstance(items, dict):
                # A generated value for an item the system records, valid for it or not.
                value = next(iter(items.values()), "")
                payload = {**payload, "items": {"address": value if isinstance(value, str) else str(value)}}
    now = int(time.time())
    envelope = {
        "iss": agency_system.system.client_id,
        "aud": f"http://localhost{case.path}",
        "iat": now,
        "exp": now + 60,
        "jti": f"fuzz-{time.monotonic_ns()}",
    }
    claims = {**payload, **envelope} if isinstance(payload, dict) else payload
    token = jws.serialize_compact(
        {"alg": "ES256", "kid": agency_system.key.kid}, json.dumps(claims), agency_system.key
    )
    real = SCHEMA[case.path]["POST"].Case(body=token, media_type="application/jose")
    APP.errors.clear()
    with transaction.atomic():
        try:
            response = real.call()
            real.validate_response(response)
        finally:
            transaction.set_rollback(True)
            if APP.errors:
                print("\n".join(APP.errors))  # noqa: T201 - the cause of a 500, beside the failure
    body = response.json() if response.status_code != 200 else {"code": None}
    if not isinstance(claims, dict):
        assert (response.status_code, body["code"]) == (401, "malformed_request"), body
    elif positive:
        assert response.status_code == 200 or body["code"] in PAYLOAD_REFUSALS, body
    else:
        assert response.status_code != 200, f"an invalid payload was accepted: {claims}"
