from __future__ import annotations

import json

import pytest
from django.db import connection
from joserfc import jws
from joserfc.jwk import ECKey

from civicore.audit.models import AuditEntry
from civicore.core.errors import PermissionDenied, ValidationFailed
from civicore.core.jose import public_jwks, signing_key_rotate, verification_keys
from civicore.registry.models import MessageLogEntry
from civicore.registry.services import (
    Unauthenticated,
    check_access,
    message_log_record,
    sign_response,
    signed_request_verify,
)
from civicore.registry.tests.factories import make_application, signed_request

pytestmark = pytest.mark.django_db
AUD = "https://civicore.example/api/v1/exchange/query"


def test_registration_refuses_unknown_items_and_missing_keys() -> None:
    with pytest.raises(ValidationFailed) as exc:
        make_application(allowed_items=["full_name", "favourite_colour"])
    assert "allowed_items" in exc.value.details
    with pytest.raises(ValidationFailed) as exc:
        make_application(jwks={}, jwks_url="")
    assert "jwks" in exc.value.details
    with pytest.raises(ValidationFailed) as exc:
        make_application(subscribed_items=["address"], webhook_url="")
    assert "webhook_url" in exc.value.details
    with pytest.raises(ValidationFailed) as exc:
        make_application(redirect_uris=["javascript:alert(1)"])
    assert "redirect_uris" in exc.value.details


def test_signed_request_is_verified_against_the_applications_keys() -> None:
    app, key = make_application()
    got, claims = signed_request_verify(token=signed_request(app, key, audience=AUD, query="x"), audience=AUD)
    assert got == app
    assert claims["query"] == "x"


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (
            lambda app, key: signed_request(app, ECKey.generate_key("P-256", auto_kid=True), audience=AUD),
            "invalid_signature",
        ),
        (lambda app, key: signed_request(app, key, audience="https://elsewhere/"), "wrong_audience"),
        (lambda app, key: signed_request(app, key, audience=AUD, iat=1, exp=2), "expired_request"),
        (lambda app, key: signed_request(app, key, audience=AUD, lifetime=3600), "expired_request"),
        (lambda app, key: "not.a.jws", "malformed_request"),
        (lambda app, key: "", "malformed_request"),
        (lambda app, key: signed_request(app, key, audience=AUD, iss="nobody"), "unknown_client"),
        (lambda app, key: signed_request(app, key, audience=AUD, jti="short"), "malformed_request"),
    ],
)
def test_bad_signed_requests_are_refused_with_specific_codes(mutate, code) -> None:  # type: ignore[no-untyped-def]
    app, key = make_application()
    with pytest.raises(Unauthenticated) as exc:
        signed_request_verify(token=mutate(app, key), audience=AUD)
    assert exc.value.code == code
    assert exc.value.status == 401


def test_alg_none_is_refused() -> None:
    app, _key = make_application()
    import base64

    def b64(d: dict) -> str:  # type: ignore[type-arg]
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    claims = {"iss": app.client_id, "aud": AUD, "iat": 1, "exp": 2, "jti": "x" * 10}
    token = f"{b64({'alg': 'none'})}.{b64(claims)}."
    with pytest.raises(Unauthenticated):
        signed_request_verify(token=token, audience=AUD)


def test_inactive_application_is_refused() -> None:
    app, key = make_application()
    app.active = False
    app.save()
    with pytest.raises(Unauthenticated) as exc:
        signed_request_verify(token=signed_request(app, key, audience=AUD), audience=AUD)
    assert exc.value.code == "unknown_client"


def test_access_is_limited_to_allowed_items_and_purposes() -> None:
    app, _ = make_application(allowed_items=["full_name"])
    check_access(app, items=["full_name"], purpose="benefit")
    with pytest.raises(PermissionDenied) as exc:
        check_access(app, items=["full_name", "address"], purpose="benefit")
    assert exc.value.code == "items_not_allowed"
    assert exc.value.details == {"items": ["address"]}
    with pytest.raises(PermissionDenied) as exc:
        check_access(app, items=["full_name"], purpose="marketing")
    assert exc.value.code == "purpose_not_allowed"


def test_message_log_keeps_encrypted_bodies_with_their_digests_in_the_audit_chain() -> None:
    app, _ = make_application()
    entry = message_log_record(
        application=app,
        direction="in",
        operation="person.query",
        message_id="jti-0001-abc",
        status=200,
        request_body="request-body",
        response_body="response-body",
        items=["full_name"],
        purpose="benefit",
    )
    entry.refresh_from_db()
    assert entry.request_body == "request-body"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT request_body FROM {MessageLogEntry._meta.db_table} WHERE id = %s", [entry.pk])  # noqa: S608
        raw = cursor.fetchone()[0]
    assert raw.startswith("enc") and "request-body" not in raw
    audit = AuditEntry.objects.get(pk=entry.audit_entry_id)
    assert audit.action == "exchange.person.query"
    assert audit.details["request_sha256"] == entry.request_digest
    assert audit.details["response_sha256"] == entry.response_digest


def test_a_replayed_inbound_message_is_refused() -> None:
    app, _ = make_application()
    kwargs = {
        "application": app,
        "direction": "in",
        "operation": "q",
        "message_id": "same-jti-1",
        "status": 200,
    }
    message_log_record(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(Unauthenticated) as exc:
        message_log_record(**kwargs)  # type: ignore[arg-type]
    assert exc.value.code == "replayed_request"


def test_platform_signatures_verify_with_the_published_jwks_through_a_rotation(client) -> None:  # type: ignore[no-untyped-def]
    first = sign_response({"hello": "world"}, audience="app-1")
    old_kid = public_jwks()["keys"][0]["kid"]
    signing_key_rotate(immediately=True)
    second = sign_response({"hello": "again"}, audience="app-1")
    published = client.get("/.well-known/jwks.json").json()
    kids = {k["kid"] for k in published["keys"]}
    assert old_kid in kids and len(kids) == 2
    assert all("d" not in k for k in published["keys"])  # never a private part
    for token in (first, second):
        assert json.loads(jws.deserialize_compact(token, verification_keys()).payload)["aud"] == "app-1"


def test_deeply_nested_payload_is_refused_not_crashed() -> None:
    app, key = make_application()
    nested = "[" * 100_000 + "]" * 100_000
    token = jws.serialize_compact({"alg": "ES256", "kid": key.kid}, nested, key)
    with pytest.raises(Unauthenticated) as exc:
        signed_request_verify(token=token, audience=AUD)
    assert exc.value.code == "malformed_request"
