"""Consented sharing in a real browser: an agency system (Authlib's OAuth client) sends the citizen
to Civicore, the citizen approves on the consent screen, the agency reads the person, the citizen
finds the consent on their dashboard and withdraws it, and sees the agency's read on "who viewed
my data". The consent screen, the dashboard and the my-data page are checked with axe-core."""

from __future__ import annotations

import re
from typing import Any

import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT

from civicore.core import demo
from civicore.core.jose import reset_cache
from civicore.registry.tests.factories import make_agency, make_application
from tests.e2e.accessibility import assert_accessible
from tests.e2e.test_citizen_journey import CITIZEN_EMAIL, CITIZEN_SECRET, _click_and_wait, _login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CALLBACK = "https://agency.example/callback"


def test_citizen_consents_then_withdraws_and_sees_the_agency_read(
    browser: Any, live_server: Any, settings: Any
):
    settings.SITE_URL = live_server.url
    reset_cache()
    demo.load()
    base = live_server.url
    agency = make_agency(code="so-lao-dong")
    agency.name_vi, agency.name_en = "Sở Lao động – Thương binh và Xã hội", "Department of Labour"
    agency.save()
    app, key = make_application(
        agency=agency,
        name_vi="Cổng xét trợ cấp xã hội",
        name_en="Social benefit portal",
        redirect_uris=[CALLBACK],
    )
    oauth = OAuth2Client(
        client_id=app.client_id,
        client_secret=key,
        token_endpoint_auth_method="private_key_jwt",  # noqa: S106 - a method name, not a password
        code_challenge_method="S256",
        redirect_uri=CALLBACK,
        scope="full_name date_of_birth address",
    )
    oauth.register_client_auth_method(
        PrivateKeyJWT(f"{base}/oauth/token", headers={"kid": key.kid}, alg="ES256")
    )

    page = browser.new_context(locale="vi-VN").new_page()
    _login(page, base, CITIZEN_EMAIL, CITIZEN_SECRET)

    # The agency sends the citizen to the consent screen.
    verifier = generate_token(64)
    url, _state = oauth.create_authorization_url(
        f"{base}/oauth/authorize", code_verifier=verifier, purpose="benefit"
    )
    page.goto(url)
    assert_accessible(page, "consent screen")
    assert page.inner_text("#consent-agency") == agency.name_vi
    assert page.inner_text("#consent-application") == app.name_vi
    assert page.inner_text("#consent-purpose") == "Xét trợ cấp"
    assert "Nguyễn Văn An" in page.inner_text("#consent-items")

    # Approving sends the browser back to the agency with a code (the page's Content-Security-Policy
    # lets the form's redirect leave for the agency), and the agency exchanges the code.
    with page.expect_request(re.compile(r"^https://agency\.example/callback\?")) as callback:
        page.click("#consent-approve")
    oauth.fetch_token(
        f"{base}/oauth/token", authorization_response=callback.value.url, code_verifier=verifier
    )
    read = oauth.get(f"{base}/api/v1/consent/person")
    assert read.status_code == 200
    assert read.headers["Content-Type"] == "application/jwt"

    # The consent is on the dashboard; the citizen withdraws it and the agency is stopped at once.
    page.goto(f"{base}/my-data/consents/")
    assert_accessible(page, "consent dashboard")
    row = page.locator("tr[id^=consent-]")
    assert row.count() == 1
    assert app.name_vi in row.inner_text()
    _click_and_wait(page, "tr[id^=consent-] form[action$='/revoke'] button[type=submit]")
    assert page.locator("#no-active-consents").is_visible()
    assert_accessible(page, "consent dashboard after withdrawing")
    assert oauth.get(f"{base}/api/v1/consent/person").status_code == 401
    oauth.close()

    # "Who viewed my data" shows the agency system's read, the items, and the consent it used.
    page.goto(f"{base}/my-data/")
    assert_accessible(page, "who viewed my data")
    uses = page.inner_text("#data-uses")
    assert app.name_vi in uses
    assert agency.name_vi in uses
    assert "Xét trợ cấp" in uses
    assert page.locator("#data-uses a[href*='/my-data/consents/#consent-']").count() == 1
