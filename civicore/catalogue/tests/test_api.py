from __future__ import annotations

import pytest

BASE = "/api/v1/catalogue"


def test_service_list_shape(client, catalogue):
    response = client.get(f"{BASE}/services")
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    items = {item["code"]: item for item in body["items"]}
    assert len(items) == 6
    business = items["household-business-registration"]
    assert business == {
        "code": "household-business-registration",
        "name": {"vi": "Đăng ký thành lập hộ kinh doanh", "en": "Household business registration"},
        "agency": {
            "code": "phong-kinh-te-an-binh",
            "name": {"vi": "Phòng Kinh tế xã An Bình", "en": "An Binh Commune Economic Office"},
        },
        "fee": 100000,
        "currency": "VND",
        "sla_working_days": 3,
        "online": True,
        "version": 1,
        "procedure": None,
    }
    assert items["military-service-registration"]["procedure"] == "1.013133"


@pytest.mark.parametrize("q", ["dang ky khai sinh", "Đăng ký khai sinh", "birth registration"])
def test_service_list_search(client, catalogue, q):
    body = client.get(f"{BASE}/services", {"q": q}).json()
    assert [item["code"] for item in body["items"]] == ["birth-registration"]


def test_service_list_cursor_walks_every_service_once(client, catalogue):
    seen = []
    cursor = None
    for _ in range(10):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get(f"{BASE}/services", params).json()
        seen += [item["code"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6 == len(set(seen))
    assert seen == sorted(seen)


def test_tampered_cursor_is_refused(client, catalogue):
    response = client.get(f"{BASE}/services", {"cursor": "not-a-cursor"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize("limit", ["0", "101", "-1", "lots"])
def test_bad_limit_is_refused(client, catalogue, limit):
    response = client.get(f"{BASE}/services", {"limit": limit})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def test_service_detail_has_everything_to_build_the_form(client, catalogue):
    response = client.get(f"{BASE}/services/birth-registration")
    assert response.status_code == 200
    body = response.json()
    assert body["summary"]["en"].startswith("Register the birth")
    schema = body["form"]["schema"]
    assert schema["properties"]["child_gender"]["enum"] == ["male", "female"]
    assert "child_full_name" in schema["required"]
    fields = {f["name"]: f for f in body["form"]["fields"]}
    assert fields["applicant_full_name"]["prefill"] == "full_name"
    assert fields["child_full_name"]["prefill"] is None
    assert fields["child_gender"]["options"][1] == {"value": "female", "label": {"vi": "Nữ", "en": "Female"}}
    assert body["prefill"]["applicant_national_id"] == "national_id"
    assert body["documents"][0]["code"] == "birth-certificate"
    assert body["documents"][0]["types"] == ["application/pdf", "image/jpeg", "image/png"]
    assert body["workflow"]["transitions"][0] == {
        "name": "claim",
        "from": ["submitted"],
        "to": "in_review",
        "role": "caseworker",
    }
    assert body["result"]["title"]["vi"] == "Giấy khai sinh"
    assert body["fee"] == 0


@pytest.mark.parametrize("code", ["no-such-service", "BIRTH-REGISTRATION", "x" * 300, "birth%00"])
def test_unknown_service_is_404(client, catalogue, code):
    response = client.get(f"{BASE}/services/{code}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_procedure_list_and_search(client, catalogue):
    body = client.get(f"{BASE}/procedures").json()
    assert len(body["items"]) == 20 and body["next_cursor"]
    page_two = client.get(f"{BASE}/procedures", {"cursor": body["next_cursor"]}).json()
    assert page_two["items"][0]["code"] > body["items"][-1]["code"]
    found = client.get(f"{BASE}/procedures", {"q": "nghia vu quan su lan dau"}).json()
    assert found["items"] == [
        {
            "code": "1.013133",
            "name": "Thủ tục đăng ký nghĩa vụ quân sự lần đầu",
            "level": "Cấp Xã",
            "field": "Nghĩa vụ quân sự",
            "agency_name": "Ban chỉ huy quân sự cấp Xã",
        }
    ]


def test_procedure_detail(client, catalogue):
    body = client.get(f"{BASE}/procedures/1.013133").json()
    assert body["processing_time"] == "Trực tiếp: 1 Ngày làm việc\nTrực tuyến: 02 Giờ"
    assert body["documents"][0] == {
        "name": "Phiếu tự khai sức khỏe nghĩa vụ quân sự",
        "note": "Bản chính: 1\nBản sao: 0",
    }
    assert {"number": "78/2015/QH13", "title": "Nghĩa vụ quân sự"} in body["legal_basis"]
    assert body["services"] == ["military-service-registration"]
    assert "dichvucong.gov.vn" in body["source"]


@pytest.mark.parametrize("code", ["9.999999", "%00", "1.013133%00", "' OR '1'='1"])
def test_unknown_procedure_is_404(client, catalogue, code):
    response = client.get(f"{BASE}/procedures/{code}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("q", ["' OR 1=1 --", "a" * 5000, "%_\\", "khai\x00sinh", "🚀 한국어"])
def test_hostile_q_does_not_error(client, catalogue, q):
    for path in ("services", "procedures"):
        response = client.get(f"{BASE}/{path}", {"q": q})
        assert response.status_code == 200, response.content


def test_list_endpoints_do_not_grow_queries_with_results(client, catalogue, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        assert client.get(f"{BASE}/services", {"limit": 100}).status_code == 200
    with django_assert_max_num_queries(2):
        assert client.get(f"{BASE}/procedures", {"limit": 100}).status_code == 200


def test_catalogue_is_public_and_in_the_openapi_schema(client, catalogue):
    from config.api import api

    schema = api.get_openapi_schema()
    for path in (
        "/api/v1/catalogue/services",
        "/api/v1/catalogue/services/{code}",
        "/api/v1/catalogue/procedures",
    ):
        assert path in schema["paths"]
        assert "security" not in schema["paths"][path]["get"]


def test_service_detail_matches_its_documented_schema(client, catalogue):
    """The form's documents were once documented with the schema of an application's uploaded
    documents, because both schemas had the same name."""
    from jsonschema import Draft202012Validator

    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/catalogue/services/{code}"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    validator = Draft202012Validator({**schema, "components": document["components"]})
    body = client.get(f"{BASE}/services/birth-registration").json()
    assert body["documents"], "the service asks for documents"
    assert [error.message for error in validator.iter_errors(body)] == []
