import pytest
from django.test import Client


@pytest.mark.django_db
def test_healthz_answers_json():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db
def test_openapi_is_valid_json_with_our_paths():
    spec = Client().get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/applications" in spec["paths"]
    assert "/api/v1/cases" in spec["paths"]


@pytest.mark.django_db
def test_security_headers_are_set():
    response = Client().get("/healthz")
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_api_docs_page_serves_local_assets():
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    assert "/static/ninja/swagger-ui-bundle.js" in response.content.decode()
    assert "cdn" not in response.content.decode().lower()
