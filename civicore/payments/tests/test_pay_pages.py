"""The payer's pages: the fee on the application, choosing how to pay, the VietQR transfer details,
and a real round trip through the local VNPAY: its hosted page, the signed return and the status
query that settles the payment when the callback has not arrived."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import Client

from civicore.agencies.tests.factories import make_officer
from civicore.cases import services as case_services
from civicore.cases.services import TransitionNotAllowed
from civicore.core.models import Job
from civicore.identity.tests.factories import make_citizen
from civicore.payments import services, vietqr
from civicore.payments.models import Payment, Refund
from civicore.payments.sandbox import VnpaySandbox
from civicore.payments.tests.factories import application_with_fee, make_payment
from civicore.payments.tests.test_vnpay import SECRET, TMN, http_get, submit

pytestmark = pytest.mark.django_db


def _client(person: Any) -> Client:
    client = Client()
    client.force_login(person.user)
    return client


@pytest.fixture
def sandbox(settings: Any) -> Iterator[str]:
    """The local VNPAY in a thread, and this deployment configured to pay through it."""
    running = VnpaySandbox(tmn_code=TMN, hash_secret=SECRET)
    base, stop = running.start_in_thread()
    settings.VNPAY_TMN_CODE = TMN
    settings.VNPAY_HASH_SECRET = SECRET
    settings.VNPAY_PAYMENT_URL = base + "/paymentv2/vpcpay.html"
    settings.VNPAY_API_URL = base + "/merchant_webapi/api/transaction"
    yield base
    stop()


@pytest.fixture
def no_gateway(settings: Any) -> None:
    settings.VNPAY_HASH_SECRET = ""


def test_the_application_shows_the_fee_to_pay_and_then_that_it_is_paid(no_gateway: None) -> None:
    application = application_with_fee(amount=75000)
    client = _client(application.applicant)
    page = client.get(f"/applications/{application.public_id}/").content.decode()
    assert "75.000 VND" in page and f"/payments/pay/{application.public_id}/" in page
    receipt = client.get(f"/applications/{application.public_id}/receipt/").content.decode()
    assert "75.000 VND" in receipt

    payment = make_payment(application)
    services.payment_settle(
        reference=payment.reference, amount_minor=75000, currency="VND", source="statement",
        key="bank:test:1", at=payment.created_at,
    )  # fmt: skip
    page = client.get(f"/applications/{application.public_id}/").content.decode()
    assert f"/payments/{payment.public_id}/" in page and f"/payments/pay/{application.public_id}/" not in page


def test_paying_by_vietqr_shows_a_code_that_reads_back_to_the_transfer(no_gateway: None) -> None:
    application = application_with_fee(amount=120000)
    client = _client(application.applicant)
    page = client.get(f"/payments/pay/{application.public_id}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "120.000 VND" in body and 'value="vietqr"' in body and "gateway:vnpay" not in body

    answer = client.post(f"/payments/pay/{application.public_id}/", {"method": "vietqr"})
    payment = Payment.objects.get(application=application)
    assert answer.status_code == 302 and answer["Location"] == f"/payments/{payment.public_id}/"
    assert payment.status == Payment.Status.PENDING

    detail = client.get(answer["Location"]).content.decode()
    assert "<svg" in detail and payment.reference in detail
    transfer = vietqr.parse(
        vietqr.payload(
            bank_bin=payment.collection_account.bank_bin,
            account=payment.collection_account.account_number,
            amount_minor=120000,
            reference=payment.reference,
        )
    )
    assert transfer.amount_minor == 120000 and transfer.reference == payment.reference
    assert payment.collection_account.account_number in detail

    # Choosing again while the transfer is open gives the same payment, not a second reference.
    client.post(f"/payments/pay/{application.public_id}/", {"method": "vietqr"})
    assert Payment.objects.filter(application=application).count() == 1


@pytest.mark.parametrize("choice", ["", "cash", "gateway:nowhere", "vietqr\x00", "<script>"])
def test_a_method_not_offered_is_refused_with_a_message(no_gateway: None, choice: str) -> None:
    application = application_with_fee()
    url = f"/payments/pay/{application.public_id}/"
    answer = _client(application.applicant).post(url, {"method": choice})
    assert answer.status_code == 422
    page = answer.content.decode()
    assert "Choose how you want to pay" in page or "Hãy chọn cách" in page
    assert not Payment.objects.filter(application=application).exists()


def test_no_one_else_sees_or_pays_the_fee(no_gateway: None) -> None:
    payment = make_payment()
    stranger = _client(make_citizen())
    assert stranger.get(f"/payments/pay/{payment.application.public_id}/").status_code == 404
    url = f"/payments/pay/{payment.application.public_id}/"
    assert stranger.post(url, {"method": "vietqr"}).status_code == 404
    assert stranger.get(f"/payments/{payment.public_id}/").status_code == 404
    assert Client().get(f"/payments/{payment.public_id}/").status_code == 302  # to the login page


def test_an_agency_without_a_collection_account_or_gateway_says_so(no_gateway: None) -> None:
    application = application_with_fee(account=False)
    page = _client(application.applicant).get(f"/payments/pay/{application.public_id}/").content.decode()
    assert 'name="method"' not in page


def test_paying_through_the_gateway_end_to_end(sandbox: str) -> None:
    application = application_with_fee(amount=150000)
    client = _client(application.applicant)
    assert "gateway:vnpay" in client.get(f"/payments/pay/{application.public_id}/").content.decode()

    answer = client.post(f"/payments/pay/{application.public_id}/", {"method": "gateway:vnpay"})
    assert answer.status_code == 302 and answer["Location"].startswith(sandbox + "/paymentv2/vpcpay.html?")
    payment = Payment.objects.get(application=application)
    assert payment.status == Payment.Status.PENDING

    # The payer pays on the gateway's page; the gateway's callback never reaches us (no IPN URL).
    hosted = http_get(answer["Location"])
    assert hosted.status == 200 and "150.000" in hosted.body
    back = submit(sandbox, hosted.body, "pay", bank="NCB")
    assert back.status == 302
    location = back.headers["Location"]
    assert location.startswith(f"http://testserver/payments/{payment.public_id}/return/?")

    returned = client.get(urlsplit(location).path, dict(parse_qsl(urlsplit(location).query)))
    assert returned.status_code == 302 and returned["Location"] == f"/payments/{payment.public_id}/"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and payment.gateway_transaction
    assert payment.events.get(kind="paid").source == "gateway_query"
    assert Job.objects.filter(name="payments.paid", payload={"payment_id": payment.pk}).count() == 1

    # Coming back again (a reload) changes nothing.
    client.get(urlsplit(location).path, dict(parse_qsl(urlsplit(location).query)))
    assert payment.events.filter(kind="paid").count() == 1
    assert "payment-status" in client.get(f"/payments/{payment.public_id}/").content.decode()


def test_a_forged_return_changes_nothing_and_the_payer_is_told(sandbox: str) -> None:
    application = application_with_fee()
    client = _client(application.applicant)
    client.post(f"/payments/pay/{application.public_id}/", {"method": "gateway:vnpay"})
    payment = Payment.objects.get(application=application)
    forged = {"vnp_TxnRef": payment.reference, "vnp_ResponseCode": "00", "vnp_SecureHash": "00" * 64}
    answer = client.get(f"/payments/{payment.public_id}/return/", forged, follow=True)
    assert answer.status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING  # the gateway, asked, says it is not paid
    assert not payment.events.filter(kind="paid").exists()


def test_a_gateway_that_is_down_leaves_the_application_saved_with_a_message(settings: Any) -> None:
    settings.VNPAY_TMN_CODE = TMN
    settings.VNPAY_HASH_SECRET = SECRET
    settings.VNPAY_PAYMENT_URL = "http://127.0.0.1:9/paymentv2/vpcpay.html"
    settings.VNPAY_API_URL = "http://127.0.0.1:9/merchant_webapi/api/transaction"
    application = application_with_fee()
    client = _client(application.applicant)
    client.post(f"/payments/pay/{application.public_id}/", {"method": "gateway:vnpay"})
    payment = Payment.objects.get(application=application)
    answer = client.get(f"/payments/{payment.public_id}/return/", {"vnp_TxnRef": payment.reference})
    assert answer.status_code == 302
    payment.refresh_from_db()
    assert payment.is_open
    assert client.get(f"/applications/{application.public_id}/").status_code == 200


def test_a_fee_due_at_submission_must_be_paid_before_approval(no_gateway: None) -> None:
    application = application_with_fee(due="submission")
    officer = make_officer(agency=application.service.agency, roles=["caseworker", "decider"])
    case = application.case
    case_services.case_claim(case=case, officer=officer)
    with pytest.raises(TransitionNotAllowed) as refused:
        case_services.case_approve(case=case, officer=officer)
    assert refused.value.code == "fee_unpaid"
    payment = make_payment(application)
    services.payment_settle(
        reference=payment.reference, amount_minor=payment.amount_minor, currency="VND", source="statement",
        key="bank:test:2", at=payment.created_at,
    )  # fmt: skip
    case.refresh_from_db()
    assert case_services.case_approve(case=case, officer=officer).state == "approved"


def test_a_rejected_application_proposes_its_refund_once(no_gateway: None) -> None:
    application = application_with_fee(amount=90000)
    payment = make_payment(application)
    services.payment_settle(
        reference=payment.reference, amount_minor=90000, currency="VND", source="statement",
        key="bank:test:3", at=payment.created_at,
    )  # fmt: skip
    services.refund_propose(application_id=application.pk, reason="Not eligible")
    services.refund_propose(application_id=application.pk, reason="Not eligible")
    [refund] = Refund.objects.filter(payment=payment)
    assert (refund.status, refund.amount_minor) == (Refund.Status.PROPOSED, 90000)
    assert re.search("Not eligible", refund.reason)

    cashier = make_officer(agency=application.service.agency, roles=["payments_officer"])
    with pytest.raises(services.RefundInvalid):
        services.refund_proposal_decide(refund=refund, officer=cashier, accept=False, reason=" ")
    decided = services.refund_proposal_decide(refund=refund, officer=cashier, accept=True)
    assert decided.status == Refund.Status.REQUESTED
    with pytest.raises(services.RefundNotAllowed):
        services.refund_proposal_decide(refund=refund, officer=cashier, accept=True)


def test_the_reconciler_settles_a_lost_callback_and_expires_an_abandoned_payment(sandbox: str) -> None:
    from datetime import timedelta

    paid_app, abandoned_app = application_with_fee(amount=40000), application_with_fee(amount=40000)
    urls = {}
    for application in (paid_app, abandoned_app):
        answer = _client(application.applicant).post(
            f"/payments/pay/{application.public_id}/", {"method": "gateway:vnpay"}
        )
        urls[application.pk] = answer["Location"]
    # One payer pays and closes the browser before coming back; the other leaves the gateway's page.
    hosted = http_get(urls[paid_app.pk])
    assert submit(sandbox, hosted.body, "pay", bank="NCB").status == 302
    paid = Payment.objects.get(application=paid_app)
    abandoned = Payment.objects.get(application=abandoned_app)

    soon = paid.created_at + timedelta(minutes=6)
    counts = services.gateway_payments_reconcile(now=soon)
    assert counts == {"asked": 2, "settled": 1, "expired": 0}
    paid.refresh_from_db()
    abandoned.refresh_from_db()
    assert paid.status == Payment.Status.PAID and abandoned.status == Payment.Status.PENDING

    later = abandoned.expires_at + timedelta(minutes=1)
    assert services.gateway_payments_reconcile(now=later) == {"asked": 1, "settled": 0, "expired": 1}
    abandoned.refresh_from_db()
    assert abandoned.status == Payment.Status.EXPIRED
    assert paid.events.filter(kind="paid").count() == 1


def test_the_catalogue_and_the_form_show_the_fee_and_its_breakdown(no_gateway: None) -> None:
    import copy

    from civicore.applications import services as application_services
    from civicore.applications.tests.factories import DEFINITION, make_service

    form = copy.deepcopy(DEFINITION["form"])
    form["schema"]["properties"]["copies"] = {"type": "integer", "minimum": 0, "maximum": 20}
    form["fields"].append(
        {"name": "copies", "label": {"vi": "Số bản sao", "en": "Copies"}, "widget": "number"}
    )
    service = make_service(
        fee={
            "amount": 50000,
            "currency": "VND",
            "items": [
                {
                    "code": "copies",
                    "label": {"vi": "Bản sao", "en": "Copies"},
                    "unit_amount": 10000,
                    "quantity_field": "copies",
                    "free_quantity": 1,
                }
            ],
            "due": "before_release",
        },
        form=form,
    )
    person = make_citizen()
    client = _client(person)
    catalogue = client.get(f"/services/{service.code}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Base fee" in catalogue or "Phí cơ bản" in catalogue
    assert "Bản sao" in catalogue or "Copies" in catalogue

    application = application_services.application_start(person=person, service=service)
    application_services.application_save_draft(application=application, answers={"copies": "3"})
    form = client.get(f"/applications/{application.public_id}/").content.decode()
    assert "70.000 VND" in form  # 50,000 + 2 copies beyond the first at 10,000


def test_the_payer_is_told_once_that_the_fee_is_paid(no_gateway: None) -> None:
    from civicore.core import jobs
    from civicore.notify.models import Notification

    payment = make_payment()
    services.payment_settle(
        reference=payment.reference, amount_minor=payment.amount_minor, currency="VND", source="statement",
        key="bank:test:4", at=payment.created_at,
    )  # fmt: skip
    job = Job.objects.get(name="payments.paid", payload={"payment_id": payment.pk})
    jobs.run_one(job.pk)
    services.payer_notify_paid(payment)  # the job again, after a crash
    [told] = Notification.objects.filter(user=payment.payer.user, link=f"/payments/{payment.public_id}/")
    assert payment.application.reference in told.subject


def test_a_payment_the_gateway_cannot_take_is_refused_and_stays_open(sandbox: str) -> None:
    payment = make_payment(method="gateway", gateway="vnpay")
    with pytest.raises(services.NotPayable) as refused:
        services.payment_checkout(payment=payment, return_url="https://x.example/r", payer_ip="unknown")
    assert refused.value.code == "payment_unsupported"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CREATED
