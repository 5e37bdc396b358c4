"""Agency systems updating and querying the verified profile with signed requests."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client
from joserfc import jws
from joserfc.jwk import ECKey

from civicore.audit.models import AuditEntry
from civicore.audit.selectors import accesses_to_person_data
from civicore.core import jose
from civicore.identity.models import ProfileItem, ProfileItemChange
from civicore.identity.services import profile_item_declare, profile_item_record
from civicore.identity.signals import profile_items_changed
from civicore.identity.tests.factories import make_citizen, make_register
from civicore.registry.models import MessageLogEntry
from civicore.registry.tests.factories import make_application, signed_request

pytestmark = pytest.mark.django_db

UPDATES = "/api/v1/exchange/profile-updates"
QUERY = "/api/v1/exchange/person-query"
JOSE = "application/jose"


def aud(path: str) -> str:
    return f"http://testserver{path}"


@pytest.fixture(autouse=True)
def _fresh_platform_keys() -> Any:
    jose.reset_cache()
    yield
    jose.reset_cache()


@pytest.fixture
def sent() -> Any:
    calls: list[dict[str, Any]] = []
    profile_items_changed.connect(
        lambda sender, **kw: calls.append(kw), dispatch_uid="exchange_api.sent", weak=False
    )
    yield calls
    profile_items_changed.disconnect(dispatch_uid="exchange_api.sent")


@pytest.fixture
def registry_app() -> tuple[Any, ECKey]:
    """The civil-status register's system: an agency of record for marital status and address."""
    return make_application(
        is_agency_of_record=True,
        allowed_items=["address", "marital_status", "household_members", "vehicle"],
    )


def post(path: str, body: str | bytes, content_type: str = JOSE) -> Any:
    # Agency systems read messages in English unless they ask otherwise; the tests ask for it.
    return Client(HTTP_ACCEPT_LANGUAGE="en").post(path, body, content_type=content_type)


def update(app: Any, key: ECKey, **payload: Any) -> Any:
    return post(UPDATES, signed_request(app, key, audience=aud(UPDATES), **payload))


def query(app: Any, key: ECKey, **payload: Any) -> Any:
    return post(QUERY, signed_request(app, key, audience=aud(QUERY), **payload))


def platform_claims(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == JOSE
    token = jws.deserialize_compact(response.content, jose.verification_keys())
    return json.loads(token.payload)


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    return body


# --- profile updates ------------------------------------------------------------------------


def test_agency_of_record_updates_a_profile_and_gets_a_signed_receipt(registry_app, sent):
    app, key = registry_app
    person = make_citizen()
    response = update(
        app,
        key,
        person={"national_id": person.national_id},
        items={"address": "Số 9 đường Hai Bà Trưng", "marital_status": "married"},
    )
    claims = platform_claims(response)
    assert claims["iss"] == "civicore" and claims["aud"] == app.client_id
    assert set(claims["items"]) == {"address", "marital_status"}
    items = {i.key: i for i in person.items.select_related("agency", "application")}
    assert items["address"].value == "Số 9 đường Hai Bà Trưng"
    assert (items["marital_status"].agency, items["marital_status"].application) == (app.agency, app)
    assert items["marital_status"].source_kind == "agency"
    log = MessageLogEntry.objects.get(application=app)
    assert (log.operation, log.status, log.person, log.direction) == ("profile.update", 200, person, "in")
    assert log.items == ["address", "marital_status"]
    assert log.response_body == response.content.decode()
    assert claims["in_reply_to"] == log.message_id
    assert sent[0]["agency"] == app.agency and {c["key"] for c in sent[0]["changes"]} == {
        "address",
        "marital_status",
    }


def test_structured_values_are_accepted_as_json(registry_app):
    app, key = registry_app
    person = make_citizen()
    vehicles = [{"plate": "93H1-123.45", "kind": "motorbike"}, {"plate": "93A-012.34", "kind": "car"}]
    platform_claims(update(app, key, person={"national_id": person.national_id}, items={"vehicle": vehicles}))
    assert json.loads(person.items.get(key="vehicle").value) == vehicles


def test_an_agency_that_is_not_of_record_is_refused_and_logged():
    app, key = make_application(allowed_items=["address"])
    person = make_citizen()
    before = person.items.get(key="address").value
    body = error(update(app, key, person={"national_id": person.national_id}, items={"address": "X"}), 403)
    assert body["code"] == "not_agency_of_record"
    assert person.items.get(key="address").value == before
    log = MessageLogEntry.objects.get(application=app)
    assert log.status == 403 and json.loads(log.response_body)["code"] == "not_agency_of_record"


def test_items_outside_the_allowed_set_are_refused(registry_app):
    app, key = registry_app
    person = make_citizen()
    body = error(
        update(
            app, key, person={"national_id": person.national_id}, items={"address": "X", "full_name": "Y"}
        ),
        403,
    )
    assert body["code"] == "items_not_allowed" and body["details"] == {"items": ["full_name"]}
    assert person.items.get(key="address").value != "X"


def test_unknown_person_is_404(registry_app):
    app, key = registry_app
    body = error(update(app, key, person={"national_id": "001099999999"}, items={"address": "X"}), 404)
    assert body["code"] == "person_not_found"
    assert MessageLogEntry.objects.get(application=app).status == 404


def test_invalid_values_are_422_per_item_and_nothing_is_saved(registry_app, sent):
    app, key = registry_app
    person = make_citizen()
    response = update(
        app,
        key,
        person={"national_id": person.national_id},
        items={
            "address": "Số 1 đường Mới",
            "marital_status": "complicated",
            "household_members": [{"name": "A", "relationship": "cousin", "date_of_birth": "2019-02-30"}],
        },
    )
    body = error(response, 422)
    assert body["code"] == "invalid_item_values"
    assert set(body["details"]) == {"marital_status", "household_members"}
    assert "Choose one of" in body["details"]["marital_status"]
    assert "Entry 1" in body["details"]["household_members"]
    assert person.items.get(key="address").value == "12 Đường Lê Lợi, xã An Bình"
    assert not person.items.filter(key__in=["marital_status", "household_members"]).exists()
    assert sent == []
    assert MessageLogEntry.objects.get(application=app).status == 422


def test_a_replayed_request_is_refused_and_not_applied_twice(registry_app, sent):
    app, key = registry_app
    person = make_citizen()
    token = signed_request(
        app, key, audience=aud(UPDATES), person={"national_id": person.national_id}, items={"address": "A"}
    )
    assert post(UPDATES, token).status_code == 200
    profile_item_record(person=person, key="address", value="B", agency=make_register())
    assert error(post(UPDATES, token), 401)["code"] == "replayed_request"
    assert person.items.get(key="address").value == "B"
    assert MessageLogEntry.objects.filter(application=app).count() == 1


def test_a_refused_request_cannot_be_replayed_either(registry_app):
    app, key = registry_app
    token = signed_request(app, key, audience=aud(UPDATES), person={"national_id": "001099999999"}, items={})
    assert post(UPDATES, token).status_code == 422
    assert error(post(UPDATES, token), 401)["code"] == "replayed_request"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("make_body", "code"),
    [
        (lambda app, key, p: json.dumps({"person": {"national_id": p.national_id}}), "malformed_request"),
        (lambda app, key, p: "  ", "malformed_request"),
        (lambda app, key, p: "a.b.c", "malformed_request"),
        (
            lambda app, key, p: signed_request(
                app, ECKey.generate_key("P-256", auto_kid=True), audience=aud(UPDATES), items={"address": "X"}
            ),
            "invalid_signature",
        ),
        (lambda app, key, p: signed_request(app, key, audience=aud(QUERY)), "wrong_audience"),
        (
            lambda app, key, p: signed_request(app, key, audience=aud(UPDATES), iat=1, exp=2),
            "expired_request",
        ),
        (
            lambda app, key, p: signed_request(app, key, audience=aud(UPDATES), iss="someone-else"),
            "unknown_client",
        ),
        (
            lambda app, key, p: (
                f"{_b64({'alg': 'none'})}.{_b64({'iss': app.client_id, 'aud': aud(UPDATES)})}."
            ),
            "malformed_request",
        ),
        (lambda app, key, p: "é.é.é", "malformed_request"),
        (lambda app, key, p: "\x00" * 100, "malformed_request"),
    ],
)
def test_requests_that_do_not_authenticate_are_401_and_change_nothing(registry_app, make_body, code):
    app, key = registry_app
    person = make_citizen()
    body = error(post(UPDATES, make_body(app, key, person)), 401)
    if code != "malformed_request":
        assert body["code"] == code
    else:
        assert body["code"] in {"malformed_request", "invalid_signature"}
    assert not MessageLogEntry.objects.exists()
    assert ProfileItemChange.objects.filter(item__person=person).exclude(cause="registration").count() == 0


def test_oversized_body_is_413(registry_app):
    app, key = registry_app
    person = make_citizen()
    big = signed_request(
        app,
        key,
        audience=aud(UPDATES),
        person={"national_id": person.national_id},
        items={"address": "x" * 70_000},
    )
    assert error(post(UPDATES, big), 413)["code"] == "request_too_large"
    assert error(post(QUERY, "a" * (64 * 1024 + 1)), 413)["code"] == "request_too_large"


def test_empty_body_is_refused():
    assert Client().post(UPDATES, "", content_type=JOSE).status_code in (401, 415)


def test_wrong_content_type_is_415(registry_app):
    app, key = registry_app
    token = signed_request(app, key, audience=aud(UPDATES), items={"address": "X"})
    assert (
        error(post(UPDATES, token, content_type="application/json"), 415)["code"] == "unsupported_media_type"
    )


def test_content_type_parameters_are_accepted(registry_app):
    app, key = registry_app
    person = make_citizen()
    token = signed_request(
        app, key, audience=aud(UPDATES), person={"national_id": person.national_id}, items={"address": "Y"}
    )
    assert post(UPDATES, token, content_type="application/jose; charset=us-ascii").status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"person": {"national_id": "x"}},
        {"person": {"national_id": "x"}, "items": []},
        {"person": {"national_id": "x"}, "items": {}},
        {"person": {"national_id": "x"}, "items": "address=X"},
        {"person": "079090001234", "items": {"address": "X"}},
        {"person": {"national_id": 79090001234}, "items": {"address": "X"}},
        {"person": {}, "items": {"address": "X"}},
        {"person": {"national_id": "1", "phone": "0901234567"}, "items": {"address": "X"}},
        {"person": {"national_id": "1", "passport": "B123"}, "items": {"address": "X"}},
        {"person": {"national_id": "1" * 500}, "items": {"address": "X"}},
        {"person": {"national_id": "x"}, "items": {f"k{i}": 1 for i in range(60)}},
    ],
)
def test_wrong_json_shapes_are_422_never_500(registry_app, payload):
    app, key = registry_app
    body = error(update(app, key, **payload), 422)
    assert body["code"] == "invalid_request"
    assert "Traceback" not in json.dumps(body)


def test_unknown_items_are_422(registry_app):
    app, key = registry_app
    person = make_citizen()
    body = error(update(app, key, person={"national_id": person.national_id}, items={"password": "x"}), 422)
    assert body["code"] == "unknown_items" and body["details"] == {"items": ["password"]}


def test_deeply_nested_payload_is_refused_cleanly(registry_app):
    app, key = registry_app
    person = make_citizen()
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    response = update(app, key, person={"national_id": person.national_id}, items={"vehicle": deep})
    assert error(response, 422)["code"] == "invalid_item_values"
    nested = "[" * 30_000 + "]" * 30_000
    token = jws.serialize_compact(
        {"alg": "ES256"},
        '{"iss":"%s","aud":"%s","x":%s}' % (app.client_id, aud(UPDATES), nested),  # noqa: UP031
        key,
    )
    assert post(UPDATES, token).status_code in (401, 413)


def test_get_is_not_allowed():
    assert Client().get(UPDATES).status_code == 405


# --- person query -----------------------------------------------------------------------------


@pytest.fixture
def benefit_app() -> tuple[Any, ECKey]:
    return make_application(allowed_items=["full_name", "address", "marital_status", "education", "vehicle"])


def test_query_answers_values_with_source_and_verified_at(benefit_app):
    app, key = benefit_app
    person = make_citizen(full_name="Lê Thị Hoa")
    civil = make_register("Civil status register", "Sở Tư pháp")
    profile_item_record(person=person, key="marital_status", value="married", agency=civil)
    profile_item_declare(person=person, key="education", value={"level": "bachelor", "year": 2012})
    claims = platform_claims(
        query(
            app,
            key,
            person={"national_id": person.national_id},
            items=["full_name", "marital_status", "education", "vehicle"],
            purpose="benefit",
        )
    )
    answer = claims["items"]
    assert answer["full_name"]["value"] == "Lê Thị Hoa"
    assert answer["full_name"]["source"]["kind"] == "agency"
    assert answer["marital_status"] == {
        "value": "married",
        "source": {
            "kind": "agency",
            "agency": civil.code,
            "agency_name": {"vi": "Sở Tư pháp", "en": "Civil status register"},
        },
        "verified_at": person.items.get(key="marital_status").verified_at.isoformat(),
    }
    assert answer["education"]["value"] == {"level": "bachelor", "year": 2012}
    assert answer["education"]["source"] == {"kind": "declared", "agency": None, "agency_name": None}
    assert answer["education"]["verified_at"] is None
    assert answer["vehicle"] is None
    assert claims["purpose"] == "benefit"


def test_query_is_audited_so_the_citizen_sees_it(benefit_app):
    app, key = benefit_app
    person = make_citizen()
    platform_claims(
        query(app, key, person={"national_id": person.national_id}, items=["address"], purpose="benefit")
    )
    log = MessageLogEntry.objects.get(application=app)
    assert (log.operation, log.person, log.purpose, log.items) == (
        "person.query",
        person,
        "benefit",
        ["address"],
    )
    assert AuditEntry.objects.get(pk=log.audit_entry_id).person == person
    seen = list(accesses_to_person_data(person=person))
    assert [entry.pk for entry in seen] == [log.audit_entry_id]
    assert seen[0].agency == app.agency and seen[0].action == "exchange.person.query"
    assert seen[0].details["purpose"] == "benefit" and seen[0].details["items"] == ["address"]


def test_query_only_ever_returns_the_named_persons_data(benefit_app):
    app, key = benefit_app
    person, neighbour = make_citizen(), make_citizen()
    profile_item_record(person=neighbour, key="address", value="Nhà hàng xóm", agency=make_register())
    claims = platform_claims(
        query(app, key, person={"national_id": person.national_id}, items=["address"], purpose="benefit")
    )
    assert claims["items"]["address"]["value"] == "12 Đường Lê Lợi, xã An Bình"
    assert "Nhà hàng xóm" not in json.dumps(claims, ensure_ascii=False)
    assert not accesses_to_person_data(person=neighbour).exists()


def test_query_by_phone(benefit_app):
    app, key = benefit_app
    person = make_citizen()
    profile_item_declare(person=person, key="phone", value="0912 345 678")
    claims = platform_claims(
        query(app, key, person={"phone": "+84912345678"}, items=["address"], purpose="benefit")
    )
    assert claims["items"]["address"]["value"] == "12 Đường Lê Lợi, xã An Bình"


def test_query_for_items_not_allowed_or_an_unregistered_purpose_is_403(benefit_app):
    app, key = benefit_app
    person = make_citizen()
    ref = {"national_id": person.national_id}
    body = error(query(app, key, person=ref, items=["address", "national_id"], purpose="benefit"), 403)
    assert body["code"] == "items_not_allowed"
    body = error(query(app, key, person=ref, items=["address"], purpose="marketing"), 403)
    assert body["code"] == "purpose_not_allowed"
    assert not accesses_to_person_data(person=person).exists()
    assert list(MessageLogEntry.objects.filter(application=app).values_list("status", flat=True)) == [
        403,
        403,
    ]


def test_query_for_an_unknown_person_is_404(benefit_app):
    app, key = benefit_app
    body = error(
        query(app, key, person={"national_id": "001099999999"}, items=["address"], purpose="benefit"), 404
    )
    assert body["code"] == "person_not_found"


@pytest.mark.parametrize(
    "payload",
    [
        {"person": {"national_id": "1"}, "items": ["address"]},
        {"person": {"national_id": "1"}, "items": "address", "purpose": "benefit"},
        {"person": {"national_id": "1"}, "items": [], "purpose": "benefit"},
        {"person": {"national_id": "1"}, "items": [1], "purpose": "benefit"},
        {"person": {"national_id": "1"}, "items": ["x" * 500], "purpose": "benefit"},
        {"person": {"national_id": "1"}, "items": ["address"], "purpose": "b" * 61},
        {"person": {"national_id": "1"}, "items": ["address"], "purpose": {"code": "benefit"}},
    ],
)
def test_query_with_a_wrong_shape_is_422(benefit_app, payload):
    app, key = benefit_app
    assert error(query(app, key, **payload), 422)["code"] == "invalid_request"


def test_query_replay_is_refused(benefit_app):
    app, key = benefit_app
    person = make_citizen()
    token = signed_request(
        app,
        key,
        audience=aud(QUERY),
        person={"national_id": person.national_id},
        items=["address"],
        purpose="benefit",
    )
    assert post(QUERY, token).status_code == 200
    assert error(post(QUERY, token), 401)["code"] == "replayed_request"
    assert accesses_to_person_data(person=person).count() == 1


def test_openapi_documents_the_exchange_endpoints():
    spec = Client().get("/api/v1/openapi.json").json()
    for path in (UPDATES, QUERY):
        assert JOSE in spec["paths"][path]["post"]["requestBody"]["content"]


def test_items_remain_readable_to_the_portal_after_an_update(registry_app):
    app, key = registry_app
    person = make_citizen()
    platform_claims(update(app, key, person={"national_id": person.national_id}, items={"address": "Số 2"}))
    assert ProfileItem.objects.get(person=person, key="address").source_label == app.agency.name
