"""A payments officer's refunds in a real browser, in Vietnamese and English. Two fees are paid by
card through the local VNPAY (its hosted page and its callback to the live site). The officer
logs in, refunds part of the first from its payment page with a reason, sees the refund recorded
and, once the refund job has asked the gateway, completed; the second application is rejected,
its fee is proposed for refund, and the officer accepts the proposal from the proposals page.
Every page of ours on the way is checked with axe-core."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import OperationalError, connections
from django.utils import translation

from civicore.agencies.models import Agency
from civicore.agencies.tests.factories import make_officer
from civicore.applications.models import Application
from civicore.applications.tests.factories import make_service, make_submitted
from civicore.cases import services as case_services
from civicore.catalogue.presentation import format_money
from civicore.core import demo, jobs
from civicore.identity.tests.factories import make_citizen
from civicore.payments import services
from civicore.payments.models import Payment, Refund
from civicore.payments.sandbox import VnpaySandbox
from civicore.payments.tests.test_vnpay import http_get, submit
from tests.e2e.accessibility import assert_accessible
from tests.e2e.test_citizen_journey import _click_and_wait, _login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OFFICER_EMAIL = f"payments.{demo.PAYMENTS_AGENCY}@demo.civicore.invalid"  # payments_officer in the demo
FEE = 150000


@pytest.fixture
def gateway(vnpay_sandbox: tuple[str, VnpaySandbox]) -> tuple[str, VnpaySandbox]:
    """The local VNPAY (tests/e2e/conftest.py)."""
    return vnpay_sandbox


def _paid_by_card(application: Application, base: str, gateway: str) -> Payment:
    """The payer pays the fee on the gateway's page; its callback to the live site settles it."""
    payment = services.payment_start(
        application=application, payer=application.applicant, method=Payment.Method.GATEWAY, gateway="vnpay"
    )
    url = services.payment_checkout(
        payment=payment, return_url=f"{base}/payments/{payment.public_id}/return/", payer_ip="127.0.0.1"
    )
    hosted = http_get(url)
    assert hosted.status == 200, hosted.body
    assert submit(gateway, hosted.body, "pay", bank="NCB").status == 302
    return _wait_for(payment, lambda p: p.status == Payment.Status.PAID)


def _run_worker() -> int:
    """Run due jobs the way `civicore worker` does, in a thread of its own (outside the browser's
    event loop), closing its database connection after; how many ran."""
    done: list[int] = []

    def work() -> None:
        try:
            done.append(jobs.work(once=True))
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=120)
    assert done, "the worker did not finish"
    return done[0]


def _work_until(finished: Callable[[], bool], seconds: float = 60) -> None:
    """Keep the worker going until `finished()`, as a running worker would: a job that failed
    (the gateway slow to answer on a busy machine) is retried after its back-off."""
    deadline = time.monotonic() + seconds
    while True:
        _run_worker()
        if finished():
            return
        assert time.monotonic() < deadline, "the jobs did not get it done"
        time.sleep(1)


def _reread(payment: Payment) -> None:
    """The payment as the database has it now. With SQLite the test and the live server share one
    in-memory database, whose table locks are not waited for: a read while the server's thread
    writes the payment (the gateway's callback) fails at once with "database table is locked",
    and is tried again."""
    for _attempt in range(50):
        try:
            payment.refresh_from_db()
            return
        except OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.1)
    payment.refresh_from_db()


def _wait_for(payment: Payment, done: Callable[[Payment], bool], seconds: float = 30) -> Payment:
    deadline = time.monotonic() + seconds
    _reread(payment)
    while not done(payment) and time.monotonic() < deadline:
        time.sleep(0.2)
        _reread(payment)
    assert done(payment), f"{payment.reference} is {payment.status}"
    return payment


@pytest.mark.parametrize("locale", ["vi-VN", "en-GB"])
def test_payments_officer_refunds_part_of_a_card_payment_then_accepts_a_proposal(
    browser: Any, live_server: Any, gateway: tuple[str, VnpaySandbox], signing_dir: Any, locale: str
) -> None:
    gateway_url, sandbox = gateway
    demo.load()
    agency = Agency.objects.get(code=demo.PAYMENTS_AGENCY)
    service = make_service(agency=agency, fee={"amount": FEE, "currency": "VND"})
    base = live_server.url
    first = _paid_by_card(make_submitted(make_citizen(), service), base, gateway_url)
    second = _paid_by_card(make_submitted(make_citizen(), service), base, gateway_url)
    _run_worker()  # what follows a payment (receipts, the payer's notice), out of the way

    page = browser.new_context(locale=locale).new_page()
    _login(page, base, OFFICER_EMAIL, demo.OFFICER_SECRET)

    # The payments list, then the first payment's page.
    page.goto(f"{base}/office/payments/")
    page.wait_for_selector(f"text={first.reference}")
    assert_accessible(page, "payments list")
    page.goto(f"{base}/office/payments/{first.public_id}/")
    page.wait_for_selector("#refund-form")
    assert_accessible(page, "payment detail")

    # Part of it is refunded, with a reason.
    page.fill("#refund-amount", "50000")
    page.fill("#refund-reason", "Một bản sao không được cấp / one copy was not issued")
    _click_and_wait(page, "#refund-form button[type=submit]")
    page.wait_for_selector("#payment-refunds")
    refund = Refund.objects.get(payment=first)
    assert (refund.amount_minor, refund.status) == (50000, Refund.Status.REQUESTED)
    assert refund.reference in page.inner_text("#payment-refunds")
    assert page.locator(".usa-alert--success").count() == 1
    assert_accessible(page, "refund requested")

    # The refund job asks the gateway, which refunds it.
    _work_until(lambda: Refund.objects.get(pk=refund.pk).status != Refund.Status.REQUESTED)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert sandbox.transaction(first.reference)["refunded"] == 50000 * 100  # type: ignore[index]
    first = _wait_for(first, lambda p: p.status == Payment.Status.PARTIALLY_REFUNDED)
    assert first.refunded_minor == 50000
    page.reload()
    with translation.override(locale[:2]):
        partly, refunded = str(Payment.Status.PARTIALLY_REFUNDED.label), format_money(50000, "VND")
    assert page.inner_text("#payment-status").strip().startswith(partly)
    assert page.inner_text("#payment-refunded").strip() == refunded
    assert_accessible(page, "refund completed")

    # The second application is rejected; its paid fee is proposed for refund.
    caseworker = make_officer(agency=agency, roles=("caseworker",))
    case = case_services.case_claim(case=second.application.case, officer=caseworker)
    case_services.case_reject(case=case, officer=caseworker, reason="Hồ sơ không đủ điều kiện")
    _work_until(Refund.objects.filter(payment=second).exists)
    proposal = Refund.objects.get(payment=second)
    assert (proposal.status, proposal.amount_minor) == (Refund.Status.PROPOSED, FEE)

    # The officer finds it from the payment's page and accepts it in full.
    page.goto(f"{base}/office/payments/{second.public_id}/")
    page.wait_for_selector("#payment-proposals")
    assert_accessible(page, "payment with a proposal")
    _click_and_wait(page, "#payment-proposals a")
    page.wait_for_selector(f"#proposal-{proposal.pk}")
    assert second.reference in page.inner_text(f"#proposal-{proposal.pk}")
    assert_accessible(page, "refund proposals")
    assert page.input_value(f"#proposal-{proposal.pk}-amount") == str(FEE)
    _click_and_wait(page, f"#proposal-{proposal.pk} form:has(input[value=accept]) button[type=submit]")
    page.wait_for_selector("#decided-table")
    assert proposal.reference in page.inner_text("#decided-table")
    assert page.locator(f"#proposal-{proposal.pk}").count() == 0
    assert_accessible(page, "proposal accepted")
    proposal.refresh_from_db()
    assert proposal.status == Refund.Status.REQUESTED

    _work_until(lambda: Refund.objects.get(pk=proposal.pk).status != Refund.Status.REQUESTED)
    proposal.refresh_from_db()
    assert proposal.status == Refund.Status.SUCCEEDED
    assert sandbox.transaction(second.reference)["refunded"] == FEE * 100  # type: ignore[index]
    second = _wait_for(second, lambda p: p.status == Payment.Status.REFUNDED)
    page.goto(f"{base}/office/payments/{second.public_id}/")
    page.wait_for_selector("#payment-refunds")
    assert page.locator("#payment-proposals").count() == 0
    assert_accessible(page, "proposal refunded")
