"""Payment events reach the paying agency's subscribed systems through the signed webhooks: paid
(late too), refunded and held payments, once each, to that agency only, in the ledger's own
transaction; and they never show up among a citizen's profile changes or receipts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.utils import timezone

from civicore.agencies.models import Agency
from civicore.agencies.tests.factories import back_office_client, make_agency_admin, make_officer
from civicore.audit.models import AuditEntry
from civicore.core.errors import ValidationFailed
from civicore.core.tests.accessibility import axe_in_chromium
from civicore.exchange import services
from civicore.exchange.dispatcher import Dispatcher
from civicore.exchange.models import ChangeEvent, Delivery
from civicore.exchange.tests.factories import change, make_subscriber
from civicore.identity.tests.factories import make_citizen
from civicore.payments import services as ledger
from civicore.payments import vnpay
from civicore.payments.models import Payment, PaymentEvent
from civicore.payments.tests.factories import make_payment
from civicore.registry.models import AgencyApplication, MessageLogEntry
from civicore.registry.services import agency_application_update_by_officer
from civicore.registry.tests.factories import make_agency, make_application

pytestmark = pytest.mark.django_db
Source = PaymentEvent.Source
VNPAY_SECRET = "ipn-test-secret-0123456789abcdef"
CALLBACK = "/payments/gateways/vnpay/callback/"
NOWHERE = "http://127.0.0.1:9/hook"


def payment_subscriber(url: str, agency: Agency, **fields: Any) -> AgencyApplication:
    app, _key = make_application(agency=agency, webhook_url=url, payment_events=True, **fields)
    return app


def settle(payment: Payment, key: str, *, amount: int | None = None, currency: str = "VND") -> Any:
    return ledger.payment_settle(
        reference=payment.reference,
        amount_minor=payment.amount_minor if amount is None else amount,
        currency=currency,
        source=Source.GATEWAY_CALLBACK,
        key=key,
        at=timezone.now(),
    )


def payment_events() -> list[ChangeEvent]:
    return list(ChangeEvent.objects.filter(kind=ChangeEvent.Kind.PAYMENT).order_by("id"))


def deliver_all(rounds: int = 50) -> None:
    for _ in range(rounds):
        Dispatcher(worker_id="test").run(until_idle=True)
        if not Delivery.objects.filter(status=Delivery.Status.PENDING).exists():
            return
        Delivery.objects.filter(status=Delivery.Status.PENDING).update(next_attempt_at=timezone.now())
    raise AssertionError("deliveries still pending")


def refund(payment: Payment, amount: int) -> None:
    officer = make_officer(agency=payment.agency, roles=("payments_officer",))
    requested = ledger.refund_request(
        payment=payment, amount_minor=amount, reason="Overpaid", officer=officer
    )
    ledger.refund_confirm_transfer(refund=requested, officer=officer)


# --- who is told ---------------------------------------------------------------------------------


def test_a_paid_payment_is_told_once_to_its_own_agencys_subscribed_system_only() -> None:
    payment = make_payment()
    ours = payment_subscriber(NOWHERE, payment.agency)
    # The same agency's system that did not ask for payments, one that is switched off, and
    # another agency's system that did ask: none is told.
    unsubscribed = make_subscriber(NOWHERE, agency=payment.agency)
    inactive = payment_subscriber(NOWHERE, payment.agency, active=False)
    theirs = payment_subscriber(NOWHERE, make_agency())

    assert settle(payment, "vnpay:1:00").outcome is ledger.Outcome.APPLIED

    [event] = payment_events()
    [delivery] = Delivery.objects.filter(event=event)
    assert delivery.application_id == ours.pk and delivery.items == []
    assert delivery.webhook_id == services.webhook_id_for(event.uuid, ours.client_id)
    assert event.person_id == payment.payer_id and event.agency_id == payment.agency_id
    assert event.items == [] and event.data["type"] == "payment.paid"
    assert not Delivery.objects.filter(application__in=[unsubscribed, inactive, theirs]).exists()


def test_a_duplicate_callback_does_not_tell_the_agency_twice(settings: Any) -> None:
    settings.VNPAY_TMN_CODE = "CIVICORE"
    settings.VNPAY_HASH_SECRET = VNPAY_SECRET
    payment = make_payment(method=Payment.Method.GATEWAY, gateway="vnpay")
    payment_subscriber(NOWHERE, payment.agency)
    params = {
        "vnp_TmnCode": "CIVICORE",
        "vnp_Amount": str(payment.amount_minor * 100),
        "vnp_BankCode": "NCB",
        "vnp_PayDate": vnpay.format_time(payment.created_at),
        "vnp_OrderInfo": "Le phi ho so",
        "vnp_TransactionNo": "14012345",
        "vnp_ResponseCode": "00",
        "vnp_TransactionStatus": "00",
        "vnp_TxnRef": payment.reference,
    }
    params["vnp_SecureHash"] = vnpay.sign_params(params, secret=VNPAY_SECRET)
    client = Client()
    assert client.get(CALLBACK, params).json()["RspCode"] == "00"
    assert client.get(CALLBACK, params).json()["RspCode"] == "02"  # already confirmed

    [event] = payment_events()
    assert event.data["type"] == "payment.paid" and Delivery.objects.filter(event=event).count() == 1


def test_nothing_is_written_when_no_system_of_the_agency_subscribed() -> None:
    payment = make_payment()
    make_subscriber(NOWHERE, agency=payment.agency)  # profile changes only
    settle(payment, "vnpay:1:00")
    assert payment_events() == []


def test_money_after_an_expiry_is_told_as_a_late_payment() -> None:
    payment = make_payment()
    payment_subscriber(NOWHERE, payment.agency)
    ledger.payment_expire_due(now=payment.expires_at)
    settle(payment, "bank:1")
    [event] = payment_events()  # the expiry itself is not an agency's business
    assert event.data["status_from"] == "expired" and event.data["status_to"] == "paid"
    assert event.data["payment"]["late"] is True


def test_partial_and_full_refunds_are_told_with_what_was_refunded_so_far() -> None:
    payment = make_payment()
    payment_subscriber(NOWHERE, payment.agency)
    settle(payment, "vnpay:1:00")
    payment.refresh_from_db()
    refund(payment, 20000)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PARTIALLY_REFUNDED and payment.refunded_minor == 20000
    refund(payment, 30000)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED and payment.refunded_minor == 50000

    paid, partly, fully = payment_events()
    assert paid.data["type"] == "payment.paid"
    assert (partly.data["type"], partly.data["status_from"], partly.data["status_to"]) == (
        "payment.refunded", "paid", "partially_refunded",
    )  # fmt: skip
    assert partly.data["amount_minor"] == 20000 and partly.data["payment"]["refunded_minor"] == 20000
    assert (fully.data["status_from"], fully.data["status_to"]) == ("partially_refunded", "refunded")
    assert fully.data["amount_minor"] == 30000 and fully.data["payment"]["refunded_minor"] == 50000
    # Requests for a refund change no status: the agency hears when the money went back.
    assert PaymentEvent.objects.filter(payment=payment, kind="refund_request").count() == 2


def test_money_held_for_an_officer_is_told_with_the_reason() -> None:
    mismatched = make_payment()
    paid_twice = make_payment()
    payment_subscriber(NOWHERE, mismatched.agency)
    payment_subscriber(NOWHERE, paid_twice.agency)
    settle(mismatched, "vnpay:9:00", amount=10, currency="USD")
    settle(paid_twice, "vnpay:2:00")
    settle(paid_twice, "bank:VCB:FT1")

    held_amount, paid, held_twice = payment_events()
    assert held_amount.data["type"] == "payment.held" and held_amount.data["held_reason"] == "amount_mismatch"
    assert (held_amount.data["amount_minor"], held_amount.data["currency"]) == (10, "USD")
    assert held_amount.data["status_from"] == held_amount.data["status_to"] == "created"
    assert held_amount.data["payment"]["amount_minor"] == 50000
    assert paid.data["held_reason"] is None
    assert held_twice.data["type"] == "payment.held" and held_twice.data["held_reason"] == "paid_twice"


def test_failed_or_expired_payments_are_not_told() -> None:
    failed = make_payment(method=Payment.Method.GATEWAY, gateway="vnpay")
    expired = make_payment()
    payment_subscriber(NOWHERE, failed.agency)
    payment_subscriber(NOWHERE, expired.agency)
    ledger.payment_fail(reference=failed.reference, source=Source.GATEWAY_CALLBACK, key="vnpay:1:24",
                        at=timezone.now(), code="24")  # fmt: skip
    ledger.payment_expire_due(now=expired.expires_at)
    assert payment_events() == []


def test_an_event_rolled_back_with_the_payment_is_never_sent() -> None:
    payment = make_payment()
    payment_subscriber(NOWHERE, payment.agency)
    with pytest.raises(RuntimeError), transaction.atomic():
        settle(payment, "vnpay:1:00")
        assert len(payment_events()) == 1
        raise RuntimeError("the caller's transaction fails")
    assert payment_events() == [] and not Delivery.objects.exists()


# --- what it costs ----------------------------------------------------------------------------------


def test_without_subscribers_the_ledger_pays_one_query(django_assert_num_queries: Any) -> None:
    payment = make_payment()
    with django_assert_num_queries(1):
        assert (
            services.payment_event_record(
                payment=payment,
                kind="paid",
                from_status="created",
                to_status="paid",
                amount_minor=50000,
                occurred_at=timezone.now(),
            )  # fmt: skip
            is None
        )
    with django_assert_num_queries(0):  # not an event agencies are told about
        services.payment_event_record(
            payment=payment, kind="expire", from_status="created", to_status="expired",
            amount_minor=None, occurred_at=timezone.now(),
        )  # fmt: skip


def test_a_batch_costs_the_same_queries_for_3_or_15_events(django_assert_max_num_queries: Any) -> None:
    payments = [make_payment() for _ in range(18)]  # each for a service of an agency of its own
    subscribed = [p for n, p in enumerate(payments) if n % 3 != 2]
    for payment in subscribed:
        payment_subscriber(NOWHERE, payment.agency)
        payment_subscriber(NOWHERE, payment.agency)
    Payment.objects.filter(pk__in=[p.pk for p in payments]).update(
        status=Payment.Status.PAID, paid_minor=50000
    )

    def changes(chosen: list[Payment]) -> list[services.PaymentChange]:
        return [
            services.PaymentChange(
                payment_id=p.pk,
                agency_id=p.agency_id,
                kind="paid",
                from_status="pending",
                to_status="paid",
                amount_minor=50000,
                occurred_at=timezone.now(),
            )  # fmt: skip
            for p in chosen
        ]

    # Subscribers, the payments, the events, the deliveries (and a NOTIFY on PostgreSQL).
    with django_assert_max_num_queries(5):
        few = services.payment_events_record(events=changes(payments[:3]))
    with django_assert_max_num_queries(5):
        many = services.payment_events_record(events=changes(payments[3:]))
    assert len(few) == 2 and len(many) == 10  # every third agency has no subscriber
    assert Delivery.objects.filter(event__in=[*few, *many]).count() == 2 * 12
    for event in [*few, *many]:
        assert set(Delivery.objects.filter(event=event).values_list("application__agency_id", flat=True)) == {
            event.agency_id
        }
    with pytest.raises(ValueError, match="belongs to agency"):
        services.payment_events_record(
            events=[services.PaymentChange(
                payment_id=payments[0].pk, agency_id=payments[1].agency_id, kind="paid", from_status="paid",
                to_status="paid", amount_minor=1, occurred_at=timezone.now(),
            )]
        )  # fmt: skip


# --- what the agency receives -----------------------------------------------------------------------


def test_the_dispatcher_sends_a_body_the_receiver_verifies(receivers: Any) -> None:
    receiver = receivers()
    payer = make_citizen()
    payment = make_payment()
    Payment.objects.filter(pk=payment.pk).update(payer=payer)
    payment.refresh_from_db()
    app = payment_subscriber(receiver.url, payment.agency)
    at = dt.datetime(2026, 12, 1, 10, 30, tzinfo=dt.UTC)
    ledger.payment_settle(reference=payment.reference, amount_minor=50000, currency="VND",
                          source=Source.STATEMENT, key="bank:1", at=at)  # fmt: skip
    [event] = payment_events()

    deliver_all()

    delivery = Delivery.objects.get(event=event)
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 1
    assert receiver.invalid == []
    [arrival] = receiver.arrivals  # real HTTP, signature checked with the published keys
    assert arrival.webhook_id == delivery.webhook_id
    payment.refresh_from_db()
    assert arrival.payload == {
        "type": "payment.paid",
        "timestamp": event.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "event_id": str(event.uuid),
            "occurred_at": "2026-12-01T10:30:00Z",
            "payment": {
                "reference": payment.reference,
                "application_reference": payment.application.reference,
                "service_code": payment.service.code,
                "method": "vietqr",
                "amount_minor": 50000,
                "currency": "VND",
                "paid_minor": 50000,
                "refunded_minor": 0,
                "late": False,
            },
            "status_from": "created",
            "status_to": "paid",
            "amount_minor": 50000,
            "currency": "VND",
            "held_reason": None,
            "person": {"national_id": payer.national_id},
        },
    }
    # Logged as a payment delivery: the payer sees the agency was told about their payment.
    entry = AuditEntry.objects.get(action=services.PAYMENT_DELIVERED_ACTION)
    assert entry.person_id == payer.pk and entry.agency_id == payment.agency_id
    assert entry.details["event"] == str(event.uuid) and entry.details["items"] == []
    log = MessageLogEntry.objects.get(operation=services.PAYMENT_OPERATION)
    assert log.application_id == app.pk and log.message_id == delivery.webhook_id
    assert log.request_digest == hashlib.sha256(arrival.body).hexdigest()
    assert not AuditEntry.objects.filter(action=services.DELIVERED_ACTION).exists()


def test_a_system_that_stopped_asking_for_payments_is_not_sent_them(receivers: Any) -> None:
    receiver = receivers()
    payment = make_payment()
    app = payment_subscriber(receiver.url, payment.agency)
    settle(payment, "vnpay:1:00")
    AgencyApplication.objects.filter(pk=app.pk).update(payment_events=False)

    deliver_all()

    delivery = Delivery.objects.get(application=app)
    assert delivery.status == Delivery.Status.DEAD and delivery.last_error == "application withdrawn"
    assert receiver.arrivals == []


def test_a_delivery_moved_to_another_agencys_system_is_not_sent(receivers: Any) -> None:
    """The dispatcher checks the agency again: a payment event only ever goes to its own agency."""
    receiver = receivers()
    payment = make_payment()
    payment_subscriber(NOWHERE, payment.agency)
    settle(payment, "vnpay:1:00")
    stranger = payment_subscriber(receiver.url, make_agency())
    Delivery.objects.update(application=stranger)

    deliver_all()

    assert Delivery.objects.get().status == Delivery.Status.DEAD and receiver.arrivals == []


def test_profile_and_payment_deliveries_go_out_in_one_batch(receivers: Any) -> None:
    receiver = receivers()
    payment = make_payment()
    agency = payment.agency
    payment_subscriber(receiver.url, agency)
    make_subscriber(receiver.url, items=["address"], agency=agency)
    settle(payment, "vnpay:1:00")
    change(make_citizen(), ["address"])

    deliver_all()

    assert sorted(a.payload["type"] for a in receiver.arrivals) == ["payment.paid", "person.changed"]
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.DELIVERED}


# --- citizens' pages and receipts, officers' pages ---------------------------------------------------


def test_the_payer_gets_no_change_receipt_and_sees_no_payment_among_their_changes() -> None:
    payment = make_payment()
    payment_subscriber(NOWHERE, payment.agency)
    settle(payment, "vnpay:1:00")
    [event] = payment_events()
    Delivery.objects.update(status=Delivery.Status.DELIVERED, delivered_at=timezone.now())

    assert services.receipts_send() == 0
    event.refresh_from_db()
    assert event.receipt_sent_at is None
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(payment.payer.user)
    page = client.get("/my-data/changes/").content.decode()
    assert "No change to your details has been recorded yet." in page
    assert client.get(f"/my-data/changes/{event.uuid}/").status_code == 404


def test_officers_see_payment_deliveries_by_payment_and_may_replay_them() -> None:
    payment = make_payment()
    officer = make_agency_admin(agency=payment.agency)
    payment_subscriber(NOWHERE, payment.agency)
    settle(payment, "vnpay:1:00")
    delivery = Delivery.objects.get()
    Delivery.objects.update(status=Delivery.Status.DEAD, attempts=8, last_status=500, last_error="HTTP 500")
    client = back_office_client(officer.user)

    listing = client.get("/office/deliveries/").content.decode()
    assert f"Payment {payment.reference}: paid" in listing
    detail = client.get(f"/office/deliveries/{delivery.pk}/").content.decode()
    assert f"Payment {payment.reference}: paid" in detail and "Payment:" in detail
    assert client.post(f"/office/deliveries/{delivery.pk}/replay/").status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING and delivery.attempts == 0
    vi = back_office_client(officer.user, language="vi").get("/office/deliveries/?state=all")
    assert vi.status_code == 200 and payment.reference in vi.content.decode()


# --- registering a system for payment events --------------------------------------------------------


def test_a_supervisor_asks_for_payment_events_for_a_system_with_a_webhook() -> None:
    officer = make_agency_admin()
    app, _key = make_application(agency=officer.agency)
    with pytest.raises(ValidationFailed) as refused:
        agency_application_update_by_officer(officer=officer, application=app, payment_events=True)
    assert "webhook_url" in (refused.value.details or {})

    client = back_office_client(officer.user)
    form = {
        "name_vi": app.name_vi,
        "jwks": json.dumps(app.jwks),
        "redirect_uris": "https://agency.example/callback",
        "webhook_url": "https://agency.example/hook",
        "payment_events": "on",
        "active": "on",
    }
    page = client.get(f"/office/systems/{app.client_id}/").content.decode()
    assert 'name="payment_events"' in page and "Tell this system about your agency&#x27;s payments" in page
    assert client.post(f"/office/systems/{app.client_id}/", form).status_code == 302
    app.refresh_from_db()
    assert app.payment_events and app.webhook_url == "https://agency.example/hook"
    entry = AuditEntry.objects.filter(action="registry.application.update").latest("id")
    assert entry.details["payment_events"] is True

    del form["webhook_url"]
    answer = client.post(f"/office/systems/{app.client_id}/", form)
    assert (
        answer.status_code == 200
        and "A webhook URL is needed to be told of payments." in answer.content.decode()
    )


# --- accessibility ----------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_changed_pages_pass_axe_in_chromium(live_server: Any) -> None:
    payment = make_payment()
    officer = make_agency_admin(agency=payment.agency)
    app = payment_subscriber(NOWHERE, payment.agency)
    settle(payment, "vnpay:1:00")
    delivery = Delivery.objects.get()
    Delivery.objects.update(status=Delivery.Status.DEAD, attempts=8, last_status=500, last_error="HTTP 500")
    base = live_server.url
    found = axe_in_chromium(
        base_url=base,
        session=back_office_client(officer.user).cookies[settings.SESSION_COOKIE_NAME].value,
        pages={
            "deliveries": f"{base}/office/deliveries/",
            "delivery": f"{base}/office/deliveries/{delivery.pk}/",
            "system": f"{base}/office/systems/{app.client_id}/",
        },
    )
    assert len(found) == 6


def test_a_bank_statement_tells_the_agency_what_it_paid_and_held() -> None:
    from civicore.payments import camt

    paid = make_payment(method="vietqr")
    app = payment_subscriber(NOWHERE, paid.agency)
    account = paid.collection_account
    assert account is not None
    day = dt.date(2026, 12, 5)

    def credit(payment: Payment, amount: int, ref: str) -> camt.StatementLine:
        return camt.StatementLine(
            amount=amount, currency="VND", credit=True, servicer_reference=ref, booking_date=day,
            value_date=day, remittance_info=f"{payment.reference} NOP LE PHI", debtor_name="NGUYEN VAN AN",
        )  # fmt: skip

    data = camt.write_camt053(
        message_id="MSG-EVENTS",
        account=account.account_number,
        currency="VND",
        # Too little first (held), then the fee (paid), then the fee again (held: paid twice).
        lines=[
            credit(paid, paid.amount_minor - 1000, "FT1"),
            credit(paid, paid.amount_minor, "FT2"),
            credit(paid, paid.amount_minor, "FT3"),
        ],  # fmt: skip
        created_at=dt.datetime(2026, 12, 5, 17, 0, tzinfo=dt.UTC),
    )
    ledger.statement_import(data=data, filename="events.xml")
    told = [e.data["type"] for e in payment_events()]
    assert told == ["payment.held", "payment.paid", "payment.held"]
    assert Delivery.objects.filter(application=app).count() == 3
