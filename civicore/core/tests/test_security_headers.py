"""Security headers and cookies under the production settings, read from config.settings.production
itself (in a subprocess, with an https SITE_URL) and applied to a page, an API answer and the
429 page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from civicore.core import throttle
from civicore.core.auth_protection import device_cookie_name
from civicore.identity.tests.factories import PASSWORD, make_citizen

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
NAMES = [
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "X_FRAME_OPTIONS",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_NAME",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "TRUSTED_PROXY_COUNT",
    "ALLAUTH_TRUSTED_PROXY_COUNT",
]


def production_settings(tmp_path: Path, **env: str) -> dict[str, Any]:
    code = (
        "import json, config.settings.production as s; "
        f"print(json.dumps({{name: getattr(s, name, None) for name in {NAMES!r}}}))"
    )
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "SITE_URL", "TRUSTED_PROXY_COUNT", "SECURE_HSTS_PRELOAD"}
    }
    environment.update({"SECRET_KEY": "x" * 50, "CIVICORE_VAR_DIR": str(tmp_path), **env})
    result = subprocess.run(  # noqa: S603 - our own interpreter and settings module
        [sys.executable, "-c", code], env=environment, cwd=ROOT, capture_output=True, text=True, check=True
    )
    values: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    if values["SECURE_PROXY_SSL_HEADER"] is not None:
        values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    return values


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return production_settings(tmp_path_factory.mktemp("var"), SITE_URL="https://dichvucong.example.vn")


@pytest.fixture
def production_like(production: dict[str, Any], settings: Any) -> dict[str, Any]:
    for name, value in production.items():
        setattr(settings, name, value)
    return production


def test_production_over_https_turns_everything_on(production: dict[str, Any]) -> None:
    assert production["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert production["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert production["SECURE_HSTS_PRELOAD"] is False  # opt-in: SECURE_HSTS_PRELOAD=true
    assert production["SECURE_SSL_REDIRECT"] is True
    assert production["SECURE_PROXY_SSL_HEADER"] is None  # no proxy of ours configured
    assert production["SESSION_COOKIE_NAME"] == "__Host-sessionid"
    assert production["CSRF_COOKIE_NAME"] == "__Host-csrftoken"
    assert production["SESSION_COOKIE_SECURE"] and production["CSRF_COOKIE_SECURE"]
    assert production["SESSION_COOKIE_HTTPONLY"] and production["CSRF_COOKIE_HTTPONLY"]
    assert production["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert production["X_FRAME_OPTIONS"] == "DENY"


def test_a_trusted_proxy_is_believed_for_the_scheme_and_the_address(tmp_path: Path) -> None:
    values = production_settings(
        tmp_path,
        SITE_URL="https://dichvucong.example.vn",
        TRUSTED_PROXY_COUNT="1",
        SECURE_HSTS_PRELOAD="true",
    )
    assert values["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert values["TRUSTED_PROXY_COUNT"] == values["ALLAUTH_TRUSTED_PROXY_COUNT"] == 1
    assert values["SECURE_HSTS_PRELOAD"] is True


def test_production_over_plain_http_promises_no_https(tmp_path: Path) -> None:
    values = production_settings(tmp_path, SITE_URL="http://intranet.example")
    assert values["SECURE_HSTS_SECONDS"] == 0 and values["SECURE_SSL_REDIRECT"] is False
    assert values["SESSION_COOKIE_NAME"] == "sessionid" and values["SESSION_COOKIE_SECURE"] is False


def assert_protective_headers(response: Any) -> None:
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    csp = response["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "default-src 'self'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_a_page_carries_the_headers(production_like: dict[str, Any]) -> None:
    response = Client().get("/", secure=True)
    assert response.status_code == 200
    assert_protective_headers(response)


def test_an_api_answer_carries_the_headers(production_like: dict[str, Any]) -> None:
    response = Client().get("/api/v1/catalogue/services", secure=True)
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert_protective_headers(response)


def test_the_429_page_carries_the_headers(production_like: dict[str, Any]) -> None:
    person = make_citizen()
    for _ in range(5):
        throttle.fail("login", {"subject": f"user:{person.user.pk}"})
    response = Client().post(
        "/accounts/login/", {"login": person.user.email, "password": PASSWORD}, secure=True
    )
    assert response.status_code == 429 and response["Retry-After"] == "60"
    assert_protective_headers(response)


def test_plain_http_is_sent_to_https(production_like: dict[str, Any]) -> None:
    response = Client().get("/services/?q=x")
    assert response.status_code == 301 and response["Location"] == "https://testserver/services/?q=x"
    # Without a proxy of ours, a client claiming HTTPS is not believed.
    spoofed = Client().get("/services/", HTTP_X_FORWARDED_PROTO="https")
    assert spoofed.status_code == 301


def test_behind_a_trusted_proxy_its_scheme_header_counts(
    production_like: dict[str, Any], settings: Any
) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert Client().get("/services/", HTTP_X_FORWARDED_PROTO="https").status_code == 200


def test_cookies_are_host_bound_secure_and_out_of_scripts_reach(production_like: dict[str, Any]) -> None:
    from allauth.mfa.totp.internal.auth import TOTP

    from civicore.core.tests.test_login_protection import SECRET, totp_now

    person = make_citizen()
    TOTP.activate(person.user, SECRET)
    client = Client()
    client.get("/accounts/login/", secure=True)
    client.post("/accounts/login/", {"login": person.user.email, "password": PASSWORD}, secure=True)
    before = client.cookies["__Host-sessionid"].value
    done = client.post("/accounts/2fa/authenticate/", {"code": totp_now()}, secure=True)
    assert done.status_code == 302
    assert client.cookies["__Host-sessionid"].value != before  # a new session once signed in

    for name in ("__Host-sessionid", "__Host-csrftoken", device_cookie_name()):
        cookie = client.cookies[name]
        assert cookie["secure"] and cookie["httponly"], name
        assert cookie["path"] == "/" and not cookie["domain"], name
        assert cookie["samesite"] == "Lax", name
    assert device_cookie_name() == "__Host-civicore_device"


def test_htmx_takes_the_csrf_token_from_the_page(production_like: dict[str, Any]) -> None:
    """The CSRF cookie is HttpOnly; pages hand the token to htmx in hx-headers instead."""
    client = Client(enforce_csrf_checks=True)
    page = client.get("/services/", secure=True).content.decode()
    token = re.search(
        r"hx-headers='\{&quot;X-CSRFToken&quot;: &quot;([^&]+)&quot;\}'|"
        r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'",
        page,
    )
    assert token
    value = token.group(1) or token.group(2)
    headers = {"HTTP_X_CSRFTOKEN": value, "HTTP_REFERER": "https://testserver/services/"}
    assert client.post("/i18n/setlang/", {"language": "en"}, secure=True, **headers).status_code == 302
    assert client.post("/i18n/setlang/", {"language": "en"}, secure=True).status_code == 403
