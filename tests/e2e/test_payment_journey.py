"""Paying a fee in a real browser, in Vietnamese and English: the citizen sees the fee on the
application, opens the VietQR transfer details, then pays by card through the local VNPAY (its
hosted page, the signed return, the server-to-server callback to the live site) and sees the fee
paid. Every page of ours on the way is checked with axe-core."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from civicore.core import demo
from civicore.identity.models import Person
from civicore.payments.models import Payment
from civicore.payments.tests.factories import application_with_fee
from tests.e2e.accessibility import assert_accessible
from tests.e2e.test_citizen_journey import CITIZEN_EMAIL, CITIZEN_SECRET, _login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def gateway(vnpay_sandbox: tuple[str, Any]) -> str:
    """The local VNPAY's base URL (tests/e2e/conftest.py)."""
    return vnpay_sandbox[0]


def _choose(page: Any, method: str) -> None:
    """Pick a payment method by its label, as a person does (the radio itself is drawn by CSS)."""
    radio = page.locator(f"input[name=method][value='{method}']")
    page.click(f"label[for={radio.get_attribute('id')}]")
    assert radio.is_checked()


@pytest.mark.parametrize("locale", ["vi-VN", "en-GB"])
def test_citizen_pays_a_fee_by_transfer_details_and_then_by_card(
    browser: Any, live_server: Any, gateway: str, locale: str
) -> None:
    demo.load()
    person = Person.objects.get(user__email=CITIZEN_EMAIL)
    application = application_with_fee(person, amount=150000)
    base = live_server.url
    page = browser.new_context(locale=locale).new_page()
    _login(page, base, CITIZEN_EMAIL, CITIZEN_SECRET)

    page.goto(f"{base}/applications/{application.public_id}/")
    page.wait_for_selector("#fee-panel")
    assert "150" in page.inner_text("#fee-state")
    assert_accessible(page, "application with a fee to pay")

    page.click("#fee-pay")
    page.wait_for_selector("#fee-breakdown")
    assert_accessible(page, "choose how to pay")

    # Bank transfer: the code and the same details as text.
    _choose(page, "vietqr")
    with page.expect_navigation():
        page.click("#pay-continue")
    page.wait_for_selector("#transfer-details")
    payment = Payment.objects.get(application=application, method="vietqr")
    assert page.inner_text("#transfer-reference").strip() == payment.reference
    assert page.locator("svg[role=img]").count() == 1
    assert_accessible(page, "transfer details")

    # Then by card at the gateway instead.
    page.goto(f"{base}/payments/pay/{application.public_id}/")
    _choose(page, "gateway:vnpay")
    with page.expect_navigation():
        page.click("#pay-continue")
    assert page.url.startswith(gateway)
    with page.expect_navigation(url=re.compile(r".*/payments/[0-9a-f-]+/$"), timeout=15000):
        page.click("button.pay")
    page.wait_for_selector("#payment-status")
    card = Payment.objects.get(application=application, method="gateway")
    # Settled by the status query on return or by the gateway's callback, whichever came first.
    deadline = time.monotonic() + 10
    while card.status != Payment.Status.PAID and time.monotonic() < deadline:
        time.sleep(0.2)
        card.refresh_from_db()
    assert card.status == Payment.Status.PAID
    page.reload()
    assert page.locator("#paid-heading").count() == 1
    assert card.events.filter(kind="paid").count() == 1
    assert_accessible(page, "payment paid")

    page.goto(f"{base}/applications/{application.public_id}/")
    assert f"/payments/{card.public_id}/" in page.content()
