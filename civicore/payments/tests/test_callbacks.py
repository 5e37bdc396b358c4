"""The gateway callback endpoint: a signed VNPAY IPN settles the payment once, and forged,
replayed, mismatched and unknown callbacks each get VNPAY's answer code and change nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client

from civicore.audit.models import AuditEntry
from civicore.core.models import Job
from civicore.payments import vnpay
from civicore.payments.models import Payment
from civicore.payments.tests.factories import make_payment

pytestmark = pytest.mark.django_db
SECRET = "ipn-test-secret-0123456789abcdef"
URL = "/payments/gateways/vnpay/callback/"


@pytest.fixture(autouse=True)
def _vnpay(settings: Any) -> None:
    settings.VNPAY_TMN_CODE = "CIVICORE"
    settings.VNPAY_HASH_SECRET = SECRET


def _ipn(
    payment: Payment, *, code: str = "00", amount: int | None = None, secret: str = SECRET, **extra: str
) -> dict[str, str]:
    params = {
        "vnp_TmnCode": "CIVICORE",
        "vnp_Amount": str((payment.amount_minor if amount is None else amount) * 100),
        "vnp_BankCode": "NCB",
        "vnp_BankTranNo": "VNP14012345",
        "vnp_CardType": "ATM",
        "vnp_PayDate": vnpay.format_time(payment.created_at),
        "vnp_OrderInfo": "Le phi ho so",
        "vnp_TransactionNo": "14012345",
        "vnp_ResponseCode": code,
        "vnp_TransactionStatus": code,
        "vnp_TxnRef": payment.reference,
        **extra,
    }
    params["vnp_SecureHash"] = vnpay.sign_params(params, secret=secret)
    return params


def _gateway_payment() -> Payment:
    return make_payment(method=Payment.Method.GATEWAY, gateway="vnpay")


def _sent_twice_at_once(params: dict[str, str]) -> list[str]:
    """The same callback from two threads released together (each with its own connection):
    VNPAY's answer codes, sorted."""
    start = threading.Barrier(2)
    answers: list[str] = []

    def send() -> None:
        try:
            start.wait()
            answers.append(Client().get(URL, params).json()["RspCode"])
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(answers)


def test_a_signed_ipn_settles_the_payment_once() -> None:
    payment = _gateway_payment()
    client = Client()
    first = client.get(URL, _ipn(payment))
    assert first.status_code == 200 and first.json()["RspCode"] == "00"
    again = client.get(URL, _ipn(payment))
    assert again.json()["RspCode"] == "02"  # already confirmed: VNPAY stops sending
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and payment.gateway_transaction == "14012345"
    assert payment.events.filter(kind="paid").count() == 1


def test_a_forged_or_tampered_ipn_changes_nothing() -> None:
    payment = _gateway_payment()
    client = Client()
    assert client.get(URL, _ipn(payment, secret="another-secret")).json()["RspCode"] == "97"
    tampered = _ipn(payment)
    tampered["vnp_Amount"] = "100"
    assert client.get(URL, tampered).json()["RspCode"] == "97"
    unsigned = _ipn(payment)
    del unsigned["vnp_SecureHash"]
    assert client.get(URL, unsigned).json()["RspCode"] == "97"
    doubled = _ipn(payment)
    assert (
        client.get(URL + "?vnp_TxnRef=X&" + "&".join(f"{k}={v}" for k, v in doubled.items())).json()[
            "RspCode"
        ]
        == "97"
    )
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CREATED and not payment.events.exclude(kind="create").exists()


def test_a_wrong_amount_is_answered_04_and_held() -> None:
    payment = _gateway_payment()
    answer = Client().get(URL, _ipn(payment, amount=payment.amount_minor - 1000))
    assert answer.json()["RspCode"] == "04"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CREATED
    assert payment.events.filter(kind="mismatch").count() == 1


def test_an_unknown_reference_is_answered_01() -> None:
    payment = _gateway_payment()
    params = _ipn(payment)
    params["vnp_TxnRef"] = "CV0000000000Z"
    params["vnp_SecureHash"] = vnpay.sign_params(
        {k: v for k, v in params.items() if k != "vnp_SecureHash"}, secret=SECRET
    )
    assert Client().get(URL, params).json()["RspCode"] == "01"


def test_a_cancelled_payment_fails_and_a_later_success_still_counts() -> None:
    payment = _gateway_payment()
    client = Client()
    assert client.get(URL, _ipn(payment, code="24", vnp_TransactionNo="0")).json()["RspCode"] == "00"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert client.get(URL, _ipn(payment)).json()["RspCode"] == "00"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and payment.late


def test_an_unknown_gateway_is_not_found_and_posts_are_refused() -> None:
    client = Client()
    assert client.get("/payments/gateways/paypal/callback/").status_code == 404
    assert client.post(URL).status_code == 405


def test_settling_writes_the_event_audit_entry_and_job_together() -> None:
    payment = _gateway_payment()
    assert Client().get(URL, _ipn(payment)).json()["RspCode"] == "00"
    entry = AuditEntry.objects.get(action="payment.paid", subject_id=str(payment.pk))
    assert (entry.agency_id, entry.actor_label) == (payment.agency_id, "payments:gateway_callback")
    assert entry.details["key"] == "vnpay:14012345:paid" and entry.details["from"] == "created"
    assert [job.payload for job in Job.objects.filter(name="payments.paid")] == [{"payment_id": payment.pk}]
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and payment.paid_minor == payment.amount_minor


def test_a_repeated_cancellation_is_answered_02_and_recorded_once() -> None:
    payment = _gateway_payment()
    client = Client()
    cancelled = _ipn(payment, code="24", vnp_TransactionNo="0")
    assert client.get(URL, cancelled).json()["RspCode"] == "00"
    assert client.get(URL, cancelled).json()["RspCode"] == "02"
    assert payment.events.filter(kind="fail").count() == 1
    assert AuditEntry.objects.filter(action="payment.fail", subject_id=str(payment.pk)).count() == 1


@pytest.mark.django_db(transaction=True)
def test_twin_callbacks_at_the_same_moment_settle_once() -> None:
    """VNPAY may deliver an IPN twice at once: the second waits for the first's row lock, then
    finds its key applied and is answered 02 (PostgreSQL: SQLite runs one writer at a time)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent transactions")
    payment = _gateway_payment()
    assert _sent_twice_at_once(_ipn(payment)) == ["00", "02"]
    assert payment.events.filter(kind="paid").count() == 1
    assert payment.events.exclude(kind__in=["create", "paid"]).count() == 0
    assert Job.objects.filter(name="payments.paid").count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="one statement per change on PostgreSQL")
def test_on_postgresql_a_callback_asks_about_webhook_subscribers_within_its_write() -> None:
    """Whether the agency's systems asked for payment events is part of the ledger's one write:
    no query of its own when nobody asked, and the event is still written when somebody did."""
    from django.test.utils import CaptureQueriesContext

    from civicore.exchange.models import ChangeEvent
    from civicore.registry.tests.factories import make_application

    payment = _gateway_payment()
    with CaptureQueriesContext(connection) as queries:
        assert Client().get(URL, _ipn(payment)).json()["RspCode"] == "00"
    asking = [q["sql"] for q in queries if "registry_agencyapplication" in q["sql"]]
    assert len(asking) == 1 and "INSERT INTO" in asking[0], asking
    assert not ChangeEvent.objects.filter(kind=ChangeEvent.Kind.PAYMENT).exists()

    other = _gateway_payment()
    make_application(agency=other.agency, webhook_url="http://127.0.0.1:9/hook", payment_events=True)
    assert Client().get(URL, _ipn(other, vnp_TransactionNo="14012346")).json()["RspCode"] == "00"
    told = ChangeEvent.objects.get(kind=ChangeEvent.Kind.PAYMENT)
    assert told.agency_id == other.agency_id and told.data["payment"]["reference"] == other.reference


# --- outside a transaction (PostgreSQL): no lock, one read and one write ---------------------------

only_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the unlocked path is PostgreSQL's"
)


def _settle_by_callback(payment: Payment, key: str, *, amount: int | None = None) -> Any:
    from django.utils import timezone

    from civicore.payments import services

    return services.payment_settle(
        reference=payment.reference,
        amount_minor=payment.amount_minor if amount is None else amount,
        currency=payment.currency,
        source="gateway_callback",
        key=key,
        at=timezone.now(),
        gateway_transaction="14012345",
    )


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_callback_reads_once_and_writes_once_without_a_lock() -> None:
    from django.test.utils import CaptureQueriesContext

    from civicore.payments.services import Outcome

    payment = _gateway_payment()
    with CaptureQueriesContext(connection) as queries:
        settled = _settle_by_callback(payment, "vnpay:1:paid")
    assert settled.outcome is Outcome.APPLIED
    sent = [q["sql"] for q in queries]
    assert len(sent) == 2 and not any("FOR UPDATE" in sql for sql in sent), sent
    with CaptureQueriesContext(connection) as queries:
        assert _settle_by_callback(payment, "vnpay:1:paid").outcome is Outcome.REPEATED
    assert len(queries) == 2  # the key was applied: nothing written, no lock taken
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
    assert payment.events.filter(kind="paid").count() == 1
    assert AuditEntry.objects.filter(action="payment.paid", subject_id=str(payment.pk)).count() == 1
    assert Job.objects.filter(name="payments.paid").count() == 1


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_payment_that_changed_after_it_was_read_is_decided_under_the_lock(monkeypatch: Any) -> None:
    """The write applies only if the status is still the one read: paid by the bank in between,
    the callback's money is held as paid twice, decided under the row lock."""
    from civicore.payments import services

    payment = _gateway_payment()
    read = services._read_unlocked

    def stale_read(reference: str) -> Any:
        found = read(reference)
        with transaction.atomic():  # the bank's line, settled under the lock meanwhile
            assert _settle_by_callback(payment, "bank:970436:0123:FT1").outcome is services.Outcome.APPLIED
        return found  # as it was before the bank's line paid it

    monkeypatch.setattr(services, "_read_unlocked", stale_read)
    assert _settle_by_callback(payment, "vnpay:1:paid").outcome is services.Outcome.PAID_TWICE
    assert [e.kind for e in payment.events.order_by("id")] == ["create", "paid", "paid_twice"]
    assert Job.objects.filter(name="payments.paid").count() == 1


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_twin_wrong_amounts_at_the_same_moment_are_held_once() -> None:
    """A wrong amount changes no status, so only the event's unique key stops its twin: one is
    held, the other answered 02, whichever path each took."""
    payment = _gateway_payment()
    assert _sent_twice_at_once(_ipn(payment, amount=payment.amount_minor - 1000)) == ["02", "04"]
    assert payment.events.filter(kind="mismatch").count() == 1


@only_postgresql
@pytest.mark.django_db(transaction=True)
def test_an_agency_whose_systems_asked_for_payment_events_settles_in_a_transaction() -> None:
    """Their outbox rows commit with the change: the locked path, and the event is written."""
    from django.test.utils import CaptureQueriesContext

    from civicore.exchange.models import ChangeEvent, Delivery
    from civicore.registry.tests.factories import make_application

    payment = _gateway_payment()
    make_application(agency=payment.agency, webhook_url="http://127.0.0.1:9/hook", payment_events=True)
    with CaptureQueriesContext(connection) as queries:
        assert _settle_by_callback(payment, "vnpay:1:paid").outcome.value == "applied"
    assert any("FOR UPDATE" in q["sql"] for q in queries)
    event = ChangeEvent.objects.get(kind=ChangeEvent.Kind.PAYMENT)
    assert event.data["type"] == "payment.paid" and Delivery.objects.filter(event=event).count() == 1
