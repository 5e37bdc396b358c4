"""The payments API: a citizen or a business member with the pay role starts a payment and follows
it, officers of the agency read and refund it; everyone else is refused with a stable code, and
hostile input is a 4xx, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from openapi_spec_validator import validate

from civicore.agencies.models import Officer
from civicore.agencies.tests.factories import back_office_client, make_officer
from civicore.applications import services as application_services
from civicore.applications.models import Application
from civicore.applications.tests.factories import VALID_ANSWERS, make_service, make_submitted, pdf_upload
from civicore.audit.models import AuditEntry
from civicore.identity.services import api_token_create
from civicore.identity.tests.factories import make_citizen
from civicore.organisations.models import Organisation
from civicore.organisations.registry import FileBusinessRegistry
from civicore.organisations.tests.factories import make_organisation, member_with
from civicore.payments import services, vietqr, vnpay
from civicore.payments.models import Payment, PaymentEvent, Refund
from civicore.payments.sandbox import VnpaySandbox
from civicore.payments.tests.factories import FEE, application_with_fee, collection_account, make_payment
from civicore.payments.tests.test_vnpay import http_get as gateway_get
from civicore.payments.tests.test_vnpay import submit

pytestmark = pytest.mark.django_db
URL = "/api/v1/payments"
SECRET = "api-test-vnpay-secret-0123456789abcdef"
PAYMENT_URL = "https://sandbox.vnpay.example/paymentv2/vpcpay.html"
EXPRESS = {"code": "express", "label": {"vi": "Trả kết quả nhanh", "en": "Express delivery"}, "amount": 20000}


@pytest.fixture(autouse=True)
def _vnpay(settings: Any) -> None:
    settings.VNPAY_TMN_CODE = "CIVICORE"
    settings.VNPAY_HASH_SECRET = SECRET
    settings.VNPAY_PAYMENT_URL = PAYMENT_URL
    settings.SITE_URL = "https://dichvucong.example.vn"


@pytest.fixture(autouse=True)
def _forget_registry_entries() -> Iterator[None]:
    yield
    FileBusinessRegistry.forget_added()


def _client(user: Any, *, acting_for: str | None = None, language: str = "en") -> Client:
    _token, secret = api_token_create(user=user, name="test")
    headers = {"Authorization": f"Bearer {secret}", "Accept-Language": language}
    if acting_for is not None:
        headers["X-Acting-For"] = acting_for
    return Client(headers=headers)


def _start(client: Client, application: Application, method: str = "vietqr", **extra: Any) -> Any:
    body = {"application_id": str(application.public_id), "method": method, **extra}
    return client.post(URL, body, content_type="application/json")


def _paid(payment: Payment) -> Payment:
    services.payment_settle(
        reference=payment.reference,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        source=PaymentEvent.Source.STATEMENT,
        key=f"bank:test:{payment.reference}",
        at=timezone.now(),
        bank_reference=f"FT{payment.pk:010d}",
    )
    payment.refresh_from_db()
    return payment


def _refund(client: Client, payment: Payment, amount: Any = 10000, reason: Any = "Fee charged twice") -> Any:
    return client.post(
        f"{URL}/{payment.public_id}/refunds",
        {"amount_minor": amount, "reason": reason},
        content_type="application/json",
    )


def _payments_officer(payment: Payment, roles: tuple[str, ...] = ("payments_officer",)) -> Officer:
    return make_officer(payment.agency, roles=roles)


# --- starting a payment ----------------------------------------------------------------------------


def test_a_citizen_starts_a_bank_transfer_and_gets_a_code_that_reads_back() -> None:
    application = application_with_fee(items=[EXPRESS])
    account = application.service.agency.collection_accounts.get()
    response = _start(_client(application.applicant.user), application)
    assert response.status_code == 201, response.content
    body = response.json()
    payment = Payment.objects.get(public_id=body["id"])
    assert body["reference"] == payment.reference and body["application_id"] == str(application.public_id)
    assert (body["method"], body["gateway"], body["status"]) == ("vietqr", "", "pending")
    assert (body["amount_minor"], body["currency"]) == (70000, "VND")
    assert [(line["code"], line["label"], line["amount"]) for line in body["breakdown"]] == [
        ("base", "Fee", 50000),
        ("express", "Express delivery", 20000),
    ]
    assert body["paid_at"] is None and body["checkout_url"] is None
    transfer = body["transfer"]
    assert (transfer["bank_bin"], transfer["account_number"]) == (account.bank_bin, account.account_number)
    assert (transfer["amount_minor"], transfer["reference"]) == (70000, payment.reference)
    code = vietqr.parse(transfer["qr_payload"])
    assert (code.bank_bin, code.account, code.amount_minor) == (
        account.bank_bin,
        account.account_number,
        70000,
    )
    assert code.reference == payment.reference and code.dynamic
    assert payment.payer == application.applicant and payment.status == Payment.Status.PENDING
    assert AuditEntry.objects.filter(action="payment.create", subject_id=str(payment.pk)).exists()


def test_the_breakdown_is_in_the_language_of_the_request() -> None:
    application = application_with_fee(items=[EXPRESS])
    body = _start(_client(application.applicant.user, language="vi"), application).json()
    assert [line["label"] for line in body["breakdown"]][1] == "Trả kết quả nhanh"


def test_starting_again_answers_200_with_the_same_open_payment() -> None:
    application = application_with_fee()
    client = _client(application.applicant.user)
    first = _start(client, application)
    again = _start(client, application)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["transfer"] is not None
    assert Payment.objects.filter(application=application).count() == 1


def test_a_gateway_payment_answers_with_a_signed_checkout_url_that_comes_back_to_the_portal() -> None:
    application = application_with_fee()
    response = _start(_client(application.applicant.user), application, "gateway", gateway="vnpay")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["checkout_url"].startswith(django_settings.VNPAY_PAYMENT_URL + "?")
    assert body["transfer"] is None and body["status"] == "pending" and body["gateway"] == "vnpay"
    params = dict(parse_qsl(urlsplit(body["checkout_url"]).query))
    assert vnpay.verify_params(params, secret=SECRET)  # raises on a wrong signature
    assert params["vnp_TxnRef"] == body["reference"] and params["vnp_Amount"] == str(50000 * 100)
    assert params["vnp_ReturnUrl"] == f"https://dichvucong.example.vn/payments/{body['id']}/return/"
    assert params["vnp_Locale"] == "en" and params["vnp_IpAddr"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("make", "method", "code"),
    [
        (lambda: application_with_fee(account=False), "vietqr", "not_payable"),
        (lambda: application_with_fee(amount=0), "vietqr", "nothing_to_pay"),
        (lambda: application_with_fee(amount=0), "gateway", "nothing_to_pay"),
    ],
)
def test_what_cannot_be_paid_is_409(make: Any, method: str, code: str) -> None:
    application = make()
    extra = {"gateway": "vnpay"} if method == "gateway" else {}
    response = _start(_client(application.applicant.user), application, method, **extra)
    assert (response.status_code, response.json()["code"]) == (409, code)
    assert not Payment.objects.filter(application=application).exists()


def test_a_draft_is_not_payable() -> None:
    service = make_service(fee=FEE)
    collection_account(service.agency)
    person = make_citizen()
    draft = application_services.application_start(person=person, service=service)
    response = _start(_client(person.user), draft)
    assert (response.status_code, response.json()["code"]) == (409, "not_payable")


def test_a_paid_fee_is_409_already_paid() -> None:
    payment = _paid(make_payment())
    response = _start(_client(payment.payer.user), payment.application, "gateway", gateway="vnpay")
    assert (response.status_code, response.json()["code"]) == (409, "already_paid")


def test_an_unknown_gateway_is_422_and_makes_no_payment() -> None:
    application = application_with_fee()
    client = _client(application.applicant.user)
    for extra in ({"gateway": "paypal"}, {}, {"gateway": ""}):
        response = _start(client, application, "gateway", **extra)
        assert (response.status_code, response.json()["code"]) == (422, "unknown_gateway"), extra
    response = _start(client, application, "vietqr", gateway="vnpay")
    assert (response.status_code, response.json()["code"]) == (422, "unknown_gateway")
    assert not Payment.objects.filter(application=application).exists()


def test_a_gateway_without_its_credentials_is_503_and_makes_no_payment(settings: Any) -> None:
    settings.VNPAY_HASH_SECRET = ""
    application = application_with_fee()
    response = _start(_client(application.applicant.user), application, "gateway", gateway="vnpay")
    assert (response.status_code, response.json()["code"]) == (503, "gateway_unavailable")
    assert not Payment.objects.filter(application=application).exists()


def test_an_unknown_or_someone_elses_application_is_404() -> None:
    application = application_with_fee()
    stranger = _client(make_citizen().user)
    for target in (application, Application(public_id="00000000-0000-4000-8000-000000000000")):
        response = _start(stranger, target)
        assert (response.status_code, response.json()["code"]) == (404, "application_not_found")
    assert not Payment.objects.exists()


def test_officers_and_anonymous_callers_cannot_start_payments() -> None:
    application = application_with_fee()
    officer = make_officer(application.service.agency, roles=("payments_officer",))
    response = _start(_client(officer.user), application)
    assert (response.status_code, response.json()["code"]) == (403, "not_a_citizen")
    response = _start(Client(), application)
    assert (response.status_code, response.json()["code"]) == (401, "unauthenticated")


# --- paying for a business -------------------------------------------------------------------------


def _business_application() -> tuple[Organisation, Application]:
    organisation = make_organisation()
    service = make_service(fee=FEE)
    collection_account(service.agency)
    filer = member_with(organisation, "file", service)
    draft = application_services.application_start(person=filer, service=service, organisation=organisation)
    application_services.document_attach(
        application=draft, requirement="birth-certificate", upload=pdf_upload()
    )
    application = application_services.application_submit(
        application=draft, answers=dict(VALID_ANSWERS), actor=filer
    )
    return organisation, application


def test_a_business_member_pays_only_with_the_pay_role() -> None:
    organisation, application = _business_application()
    number = organisation.registration_number
    viewer = member_with(organisation, "view", application.service)
    refused = _start(_client(viewer.user, acting_for=number), application)
    assert (refused.status_code, refused.json()["code"]) == (403, "no_business_role")
    filer = application.applicant  # may file, not pay
    refused = _start(_client(filer.user, acting_for=number), application)
    assert (refused.status_code, refused.json()["code"]) == (403, "no_business_role")
    assert not Payment.objects.exists()

    payer = member_with(organisation, "pay", application.service)
    response = _start(_client(payer.user, acting_for=number), application)
    assert response.status_code == 201, response.content
    payment = Payment.objects.get(public_id=response.json()["id"])
    assert payment.payer == payer and payment.organisation == organisation
    # Without the header the business's application is nobody's own.
    assert _start(_client(payer.user), application).status_code == 404
    # The viewer follows the business's payments, and reading one someone else made is audited.
    listed = _client(viewer.user, acting_for=number).get(URL, {"application_id": str(application.public_id)})
    assert [p["id"] for p in listed.json()["items"]] == [str(payment.public_id)]
    seen = _client(viewer.user, acting_for=number).get(f"{URL}/{payment.public_id}")
    assert seen.status_code == 200
    assert AuditEntry.objects.filter(action="payment.view", actor=viewer.user, person=payer).exists()


def test_a_member_without_any_role_for_the_service_is_refused() -> None:
    organisation, application = _business_application()
    outsider = member_with(organisation, "pay", make_service())  # another service only
    client = _client(outsider.user, acting_for=organisation.registration_number)
    assert _start(client, application).json()["code"] == "no_business_role"
    assert (
        client.get(URL, {"application_id": str(application.public_id)}).json()["code"] == "no_business_role"
    )
    stranger = _client(make_citizen().user, acting_for=organisation.registration_number)
    assert _start(stranger, application).json()["code"] == "no_business_role"


# --- reading payments ------------------------------------------------------------------------------


def test_the_payer_reads_their_payment_and_nobody_else_does() -> None:
    payment = make_payment()
    body = _client(payment.payer.user).get(f"{URL}/{payment.public_id}").json()
    assert (body["id"], body["reference"], body["status"]) == (
        str(payment.public_id),
        payment.reference,
        "created",
    )
    assert body["transfer"]["reference"] == payment.reference
    assert not AuditEntry.objects.filter(action="payment.view").exists()  # one's own: no audit
    for client in (
        _client(make_citizen().user),
        _client(make_officer(roles=("payments_officer",)).user),  # another agency
        _client(make_officer(payment.agency, roles=("caseworker",)).user),  # no payment.view
    ):
        response = client.get(f"{URL}/{payment.public_id}")
        assert (response.status_code, response.json()["code"]) == (404, "payment_not_found")
    assert Client().get(f"{URL}/{payment.public_id}").status_code == 401


def test_an_officer_of_the_agency_reads_a_payment_and_the_read_is_audited() -> None:
    payment = _paid(make_payment())
    cashier = _payments_officer(payment, roles=("cashier",))
    response = _client(cashier.user).get(f"{URL}/{payment.public_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "paid" and body["paid_at"] is not None and body["transfer"] is None
    entry = AuditEntry.objects.get(action="payment.view")
    assert (entry.actor, entry.person, entry.agency) == (cashier.user, payment.payer, payment.agency)


def test_the_payments_of_an_application_page_with_a_cursor(django_assert_max_num_queries: Any) -> None:
    application = application_with_fee()
    first = make_payment(application)
    second = make_payment(application, method="gateway", gateway="vnpay")
    client = _client(application.applicant.user)
    with django_assert_max_num_queries(4):
        page = client.get(URL, {"application_id": str(application.public_id), "limit": "1"}).json()
    assert [p["id"] for p in page["items"]] == [str(second.public_id)] and page["next_cursor"]
    rest = client.get(
        URL, {"application_id": str(application.public_id), "cursor": page["next_cursor"]}
    ).json()
    assert [p["id"] for p in rest["items"]] == [str(first.public_id)] and rest["next_cursor"] is None
    assert rest["items"][0]["transfer"]["reference"] == first.reference

    stranger = _client(make_citizen().user).get(URL, {"application_id": str(application.public_id)})
    assert (stranger.status_code, stranger.json()["code"]) == (404, "application_not_found")
    forged = client.get(URL, {"application_id": str(application.public_id), "cursor": "not-a-cursor"})
    assert (forged.status_code, forged.json()["code"]) == (422, "invalid_cursor")


def test_listing_costs_the_same_queries_for_many_payments(django_assert_max_num_queries: Any) -> None:
    application = application_with_fee()
    for _ in range(8):
        payment = make_payment(application)
        Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED)
    client = _client(application.applicant.user)
    with django_assert_max_num_queries(4):
        page = client.get(URL, {"application_id": str(application.public_id)}).json()
    assert len(page["items"]) == 8


@pytest.fixture
def sandbox(settings: Any) -> Iterator[VnpaySandbox]:
    """A local VNPAY over real HTTP that never delivers its callback, as when the IPN is lost."""
    gateway = VnpaySandbox(tmn_code="CIVICORE", hash_secret=SECRET, ipn_url=None)
    base, stop = gateway.start_in_thread()
    settings.VNPAY_PAYMENT_URL = base + vnpay.PAY_PATH
    settings.VNPAY_API_URL = base + vnpay.API_PATH
    settings.VNPAY_TIMEOUT_SECONDS = 2
    yield gateway
    stop()


def test_refresh_asks_the_gateway_when_the_callback_was_lost(sandbox: VnpaySandbox) -> None:
    application = application_with_fee()
    client = _client(application.applicant.user)
    body = _start(client, application, "gateway", gateway="vnpay").json()
    base = django_settings.VNPAY_PAYMENT_URL.removesuffix(vnpay.PAY_PATH)
    page = gateway_get(body["checkout_url"])
    assert page.status == 200
    assert submit(base, page.body, "pay", bank="NCB").status == 302  # paid at the gateway

    url = f"{URL}/{body['id']}"
    assert client.get(url).json()["status"] == "pending"  # the ledger has not heard yet
    refreshed = client.get(url, {"refresh": "true"}).json()
    assert refreshed["status"] == "paid" and refreshed["paid_at"] is not None
    payment = Payment.objects.get(public_id=body["id"])
    assert payment.events.filter(kind="paid", source=PaymentEvent.Source.GATEWAY_QUERY).count() == 1


def test_refresh_when_the_gateway_is_down_shows_what_the_ledger_knows(settings: Any) -> None:
    settings.VNPAY_API_URL = "http://127.0.0.1:9/merchant_webapi/api/transaction"
    settings.VNPAY_TIMEOUT_SECONDS = 1
    payment = make_payment(method="gateway", gateway="vnpay")
    response = _client(payment.payer.user).get(f"{URL}/{payment.public_id}", {"refresh": "true"})
    assert response.status_code == 200 and response.json()["status"] == "created"


# --- refunds ---------------------------------------------------------------------------------------


def test_an_officer_refunds_part_of_a_paid_payment_and_both_sides_see_it() -> None:
    payment = _paid(make_payment())
    officer = _payments_officer(payment)
    response = _refund(_client(officer.user), payment, 20000, "  Fee   charged twice ")
    assert response.status_code == 201, response.content
    body = response.json()
    refund = Refund.objects.get(reference=body["reference"])
    assert (body["amount_minor"], body["currency"], body["status"]) == (20000, "VND", "requested")
    assert body["reason"] == "Fee charged twice" and body["completed_at"] is None
    assert refund.payment == payment and refund.requested_by == officer.user
    for client in (_client(payment.payer.user), _client(officer.user)):
        listed = client.get(f"{URL}/{payment.public_id}/refunds").json()
        assert [r["reference"] for r in listed["items"]] == [refund.reference]
    assert _client(make_citizen().user).get(f"{URL}/{payment.public_id}/refunds").status_code == 404


def test_a_refund_retried_with_its_idempotency_key_refunds_once() -> None:
    payment = _paid(make_payment())
    officer = _payments_officer(payment)
    client = _client(officer.user)

    def send(amount: int, key: str, to: Payment = payment) -> Any:
        return client.post(
            f"{URL}/{to.public_id}/refunds",
            {"amount_minor": amount, "reason": "Fee charged twice"},
            content_type="application/json",
            headers={"Idempotency-Key": key},
        )

    first = send(20000, "refund-7f3a")
    assert first.status_code == 201, first.content
    again = send(20000, "refund-7f3a")
    assert again.status_code == 200 and again.json()["reference"] == first.json()["reference"]
    assert Refund.objects.filter(payment=payment).count() == 1
    assert payment.events.filter(kind="refund_request").count() == 1
    # The same key for another amount or another payment is refused, and refunds nothing.
    other = _paid(make_payment(make_submitted(make_citizen(), payment.service)))
    for answer in (send(10000, "refund-7f3a"), send(20000, "refund-7f3a", other)):
        assert answer.status_code == 409 and answer.json()["code"] == "idempotency_key_reused"
    assert Refund.objects.count() == 1
    # A new key is a new refund; an empty or overlong key is refused.
    assert send(10000, "refund-8b41").status_code == 201
    for bad in ("x" * 201,):
        answer = send(1000, bad)
        assert answer.status_code == 422 and answer.json()["code"] == "invalid_idempotency_key"
    assert Refund.objects.filter(payment=payment).count() == 2


def test_refunds_beyond_what_was_paid_or_without_a_reason_are_422() -> None:
    payment = _paid(make_payment())
    client = _client(_payments_officer(payment).user)
    too_much = _refund(client, payment, payment.amount_minor + 1)
    assert (too_much.status_code, too_much.json()["code"]) == (422, "refund_invalid")
    assert too_much.json()["details"] == {"amount": payment.amount_minor}
    blank = _refund(client, payment, reason="   ")
    assert (blank.status_code, blank.json()["code"]) == (422, "refund_invalid")
    # JSON has one kind of number: 50000.0 is the whole number 50000.
    assert _refund(client, payment, float(payment.amount_minor)).status_code == 201
    again = _refund(client, payment, 1)
    assert (again.status_code, again.json()["code"]) == (422, "refund_invalid")
    assert Refund.objects.filter(payment=payment).count() == 1


def test_an_unpaid_payment_cannot_be_refunded() -> None:
    payment = make_payment()
    response = _refund(_client(_payments_officer(payment).user), payment)
    assert (response.status_code, response.json()["code"]) == (409, "refund_not_allowed")


def test_refunds_need_payment_refund_in_the_payments_agency() -> None:
    payment = _paid(make_payment())
    for roles in (("cashier",), ("caseworker", "decider", "agency_admin")):
        response = _refund(_client(_payments_officer(payment, roles=roles).user), payment)
        assert (response.status_code, response.json()["code"]) == (403, "missing_permission"), roles
    response = _refund(_client(payment.payer.user), payment)
    assert (response.status_code, response.json()["code"]) == (403, "not_an_officer")
    elsewhere = _refund(_client(make_officer(roles=("payments_officer",)).user), payment)
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "payment_not_found")
    assert not Refund.objects.exists()


def test_an_officer_session_refunds_only_with_the_csrf_token_and_a_second_factor() -> None:
    payment = _paid(make_payment())
    officer = _payments_officer(payment)
    browser = back_office_client(officer.user)
    browser.handler.enforce_csrf_checks = True
    refused = _refund(browser, payment)
    assert (refused.status_code, refused.json()["code"]) == (403, "csrf_failed")
    browser.get("/")  # the page sets the CSRF cookie, as a browser gets it
    token = browser.cookies[django_settings.CSRF_COOKIE_NAME].value
    accepted = browser.post(
        f"{URL}/{payment.public_id}/refunds",
        {"amount_minor": 1000, "reason": "Overcharged"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert accepted.status_code == 201, accepted.content

    password_only = Client()
    password_only.force_login(officer.user)
    response = _refund(password_only, payment)
    assert (response.status_code, response.json()["code"]) == (403, "second_factor_required")
    assert Refund.objects.count() == 1


# --- hostile input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [-1, 0, 10**30, "1000", 1.5, True, None, [1000], {"value": 1}],
)
def test_refund_amounts_that_are_not_a_positive_whole_number_are_422(amount: Any) -> None:
    payment = _paid(make_payment())
    response = _refund(_client(_payments_officer(payment).user), payment, amount)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")
    assert not Refund.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"method": "vietqr"},
        {"application_id": "not-a-uuid", "method": "vietqr"},
        {"application_id": "{id}", "method": "cash"},
        {"application_id": "{id}", "method": None},
        {"application_id": "{id}", "method": "gateway", "gateway": "x" * 500},
        {"application_id": "{id}", "method": "gateway", "gateway": 7},
        {"application_id": 12, "method": "vietqr"},
        [],
        '"vietqr"',  # JSON, but not an object
    ],
)
def test_malformed_payment_requests_are_422(body: Any) -> None:
    application = application_with_fee()
    if isinstance(body, dict):
        body = {k: (str(application.public_id) if v == "{id}" else v) for k, v in body.items()}
    response = _client(application.applicant.user).post(URL, body, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")
    assert not Payment.objects.exists()


def test_unreadable_bodies_and_paths_are_4xx() -> None:
    payment = _paid(make_payment())
    officer = _client(_payments_officer(payment).user)
    broken = officer.post(f"{URL}/{payment.public_id}/refunds", "{not json", content_type="application/json")
    assert (broken.status_code, broken.json()["code"]) == (400, "malformed_body")
    payer = _client(payment.payer.user)
    for path in (f"{URL}/not-a-uuid", f"{URL}/not-a-uuid/refunds"):
        assert payer.get(path).status_code == 422
    assert payer.get(URL).json()["code"] == "invalid_request"  # application_id is required
    assert payer.get(URL, {"application_id": "x"}).status_code == 422
    assert payer.get(f"{URL}/{payment.public_id}", {"refresh": "perhaps"}).status_code == 422
    assert (
        payer.get(URL, {"application_id": str(payment.application.public_id), "limit": "-5"}).status_code
        == 200
    )


# --- the OpenAPI document --------------------------------------------------------------------------


def test_the_openapi_document_describes_the_payments_endpoints_and_their_errors() -> None:
    document = Client().get("/api/v1/openapi.json").json()
    validate(document)
    paths = document["paths"]
    expected = {
        ("post", URL): {"200", "201", "400", "401", "403", "404", "409", "422", "503"},
        ("get", URL): {"200", "401", "403", "404", "422"},
        ("get", URL + "/{payment_id}"): {"200", "401", "403", "404", "422"},
        ("post", URL + "/{payment_id}/refunds"): {"200", "201", "400", "401", "403", "404", "409", "422"},
        ("get", URL + "/{payment_id}/refunds"): {"200", "401", "403", "404", "422"},
    }
    for (method, path), statuses in expected.items():
        operation = paths[path][method]
        assert set(operation["responses"]) == statuses, (method, path)
        assert operation["tags"] == ["payments"]
        for status in statuses - {"200", "201"}:
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}
    start = paths[URL]["post"]
    assert "X-Acting-For" in start["description"] and "gateway_unavailable" in start["description"]
    assert "refresh" in paths[URL + "/{payment_id}"]["get"]["description"]
    schemas = document["components"]["schemas"]
    assert {"PaymentOut", "RefundOut", "TransferOut", "PaymentIn", "RefundIn"} <= set(schemas)
    assert schemas["PaymentIn"]["properties"]["method"]["enum"] == ["vietqr", "gateway"]
