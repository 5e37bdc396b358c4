"""The ledger counts every payment once: repeated, late, out-of-order and mismatched events, and
money that arrives twice, each have one clear outcome, an event and an audit entry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from civicore.agencies.permissions import MissingPermission
from civicore.agencies.tests.factories import make_officer
from civicore.applications.tests.factories import make_service
from civicore.audit.models import AuditEntry
from civicore.core import jobs
from civicore.core.models import Job
from civicore.identity.tests.factories import make_citizen
from civicore.payments import references, services
from civicore.payments.models import Payment, PaymentEvent, Refund
from civicore.payments.services import Outcome
from civicore.payments.tests.factories import application_with_fee, make_payment

pytestmark = pytest.mark.django_db
Source = PaymentEvent.Source


def _settle(
    payment: Payment, key: str, *, amount: int | None = None, currency: str = "VND"
) -> services.Settled:
    return services.payment_settle(
        reference=payment.reference,
        amount_minor=payment.amount_minor if amount is None else amount,
        currency=currency,
        source=Source.GATEWAY_CALLBACK,
        key=key,
        at=timezone.now(),
        gateway_transaction="14012345",
    )


def test_a_payment_carries_the_quoted_fee_and_a_checked_reference() -> None:
    payment = make_payment()
    assert payment.status == Payment.Status.CREATED
    assert payment.amount_minor == 50000 and payment.currency == "VND"
    assert payment.breakdown["total"] == 50000
    assert references.is_valid(payment.reference)
    assert AuditEntry.objects.filter(action="payment.create", subject_id=str(payment.pk)).count() == 1


def test_starting_again_returns_the_open_payment_for_the_same_method() -> None:
    payment = make_payment()
    again = services.payment_start(
        application=payment.application, payer=payment.payer, method=Payment.Method.VIETQR
    )
    assert again.pk == payment.pk
    other = services.payment_start(
        application=payment.application, payer=payment.payer, method=Payment.Method.GATEWAY, gateway="vnpay"
    )
    assert other.pk != payment.pk and other.reference != payment.reference


def test_a_free_service_has_nothing_to_pay() -> None:
    application = application_with_fee(amount=0)
    with pytest.raises(services.NothingToPay):
        services.payment_start(application=application, payer=application.applicant, method="vietqr")


def test_a_draft_cannot_be_paid() -> None:
    from civicore.applications.services import application_start

    service = make_service(fee={"amount": 1000, "currency": "VND"})
    citizen = make_citizen()
    draft = application_start(person=citizen, service=service)
    with pytest.raises(services.NotPayable):
        services.payment_start(application=draft, payer=citizen, method="vietqr")


def test_money_is_counted_once_whatever_arrives_twice() -> None:
    payment = make_payment()
    first = _settle(payment, "vnpay:14012345:00")
    assert first.outcome is Outcome.APPLIED
    again = _settle(payment, "vnpay:14012345:00")
    assert again.outcome is Outcome.REPEATED
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and payment.paid_minor == 50000
    assert payment.events.filter(kind="paid").count() == 1
    assert AuditEntry.objects.filter(action="payment.paid", subject_id=str(payment.pk)).count() == 1


def test_money_arriving_twice_by_two_routes_is_held_for_an_officer() -> None:
    payment = make_payment()
    _settle(payment, "vnpay:14012345:00")
    twice = _settle(payment, "bank:VCB:FT26339")
    assert twice.outcome is Outcome.PAID_TWICE
    payment.refresh_from_db()
    assert payment.paid_minor == 50000  # not 100,000
    assert payment.events.filter(kind="paid_twice").count() == 1


@pytest.mark.parametrize(("amount", "currency"), [(49999, "VND"), (500000, "VND"), (50000, "USD")])
def test_a_wrong_amount_or_currency_is_held_not_counted(amount: int, currency: str) -> None:
    payment = make_payment()
    held = _settle(payment, "vnpay:1:00", amount=amount, currency=currency)
    assert held.outcome is Outcome.MISMATCH
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CREATED and payment.paid_minor == 0
    event = payment.events.get(kind="mismatch")
    assert event.amount_minor == amount and event.data["expected"] == 50000


def test_an_unknown_reference_changes_nothing() -> None:
    outcome = services.payment_settle(
        reference="CV0000000000X",
        amount_minor=1,
        currency="VND",
        source=Source.STATEMENT,
        key="k",
        at=timezone.now(),
    )
    assert outcome.outcome is Outcome.UNKNOWN and outcome.payment is None
    assert not PaymentEvent.objects.filter(key="k").exists()


def test_a_failure_after_the_money_arrived_changes_nothing() -> None:
    payment = make_payment()
    _settle(payment, "vnpay:1:00")
    late = services.payment_fail(
        reference=payment.reference,
        source=Source.GATEWAY_CALLBACK,
        key="vnpay:1:24",
        at=timezone.now(),
        code="24",
    )
    assert late.outcome is Outcome.IGNORED
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID


def test_money_after_a_failure_or_expiry_still_counts_and_is_marked_late() -> None:
    payment = make_payment()
    services.payment_fail(
        reference=payment.reference,
        source=Source.GATEWAY_CALLBACK,
        key="vnpay:1:24",
        at=timezone.now(),
        code="24",
    )
    assert _settle(payment, "bank:1").outcome is Outcome.APPLIED
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and payment.late


def test_open_transfers_expire_after_their_time() -> None:
    payment = make_payment()
    assert services.payment_expire_due(now=payment.expires_at - timedelta(seconds=1)) == 0
    assert services.payment_expire_due(now=payment.expires_at) == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.EXPIRED
    assert services.payment_expire_due(now=payment.expires_at + timedelta(days=1)) == 0


def test_a_paid_application_cannot_be_paid_again() -> None:
    payment = make_payment()
    _settle(payment, "vnpay:1:00")
    with pytest.raises(services.AlreadyPaid):
        services.payment_start(application=payment.application, payer=payment.payer, method="vietqr")


def test_paid_hooks_run_from_a_durable_job_once_per_payment() -> None:
    seen: list[str] = []
    services.paid_hooks.append(lambda payment: seen.append(payment.reference))
    try:
        payment = make_payment()
        _settle(payment, "vnpay:1:00")
        _settle(payment, "vnpay:1:00")  # the same callback again enqueues nothing more
        queued = Job.objects.filter(name="payments.paid")
        assert [job.payload for job in queued] == [{"payment_id": payment.pk}]
        assert seen == []  # nothing runs before the worker takes the job
        jobs.run_one(queued.get().pk)
        assert seen == [payment.reference]
    finally:
        services.paid_hooks.pop()


def test_references_survive_what_banks_do_to_transfer_contents() -> None:
    reference = references.new_reference()
    assert references.find(f"nguyen van a chuyen tien {reference.lower()} le phi") == [reference]
    glued = f"THANHTOAN{reference[:5]}-{reference[5:]}NGUYENVANA"
    assert references.find(glued) == [reference]
    broken = reference[:-1] + ("0" if reference[-1] != "0" else "1")
    assert references.find(broken) == []
    assert not references.is_valid(reference[:-1])


# --- refunds -----------------------------------------------------------------------------------


def _paid(method: str = Payment.Method.VIETQR) -> Payment:
    payment = make_payment(method=method, gateway="vnpay" if method == Payment.Method.GATEWAY else "")
    _settle(payment, f"paid:{payment.reference}")
    payment.refresh_from_db()
    return payment


def _refunder(payment: Payment, roles: tuple[str, ...] = ("payments_officer",)) -> Any:
    return make_officer(agency=payment.agency, roles=roles)


def test_partial_then_full_bank_transfer_refunds_add_up_to_what_was_paid() -> None:
    payment = _paid()
    officer = _refunder(payment)
    first = services.refund_request(
        payment=payment, amount_minor=20000, reason="  Charged twice  ", officer=officer
    )
    assert first.status == Refund.Status.REQUESTED and first.reason == "Charged twice"
    # Nothing more than what is left after refunds on their way.
    with pytest.raises(services.RefundInvalid):
        services.refund_request(payment=payment, amount_minor=30001, reason="x", officer=officer)
    services.refund_confirm_transfer(refund=first, officer=officer)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PARTIALLY_REFUNDED and payment.refunded_minor == 20000
    second = services.refund_request(payment=payment, amount_minor=30000, reason="Rejected", officer=officer)
    services.refund_confirm_transfer(refund=second, officer=officer)
    services.refund_confirm_transfer(refund=second, officer=officer)  # twice: counted once
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED and payment.refunded_minor == 50000
    with pytest.raises(services.RefundNotAllowed):
        services.refund_request(payment=payment, amount_minor=1, reason="x", officer=officer)


@pytest.mark.parametrize("amount", [0, -1, 50001, True])
def test_refund_amounts_outside_what_was_paid_are_refused(amount: Any) -> None:
    payment = _paid()
    with pytest.raises(services.RefundInvalid):
        services.refund_request(payment=payment, amount_minor=amount, reason="x", officer=_refunder(payment))


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
def test_a_refund_needs_a_short_reason(reason: str) -> None:
    payment = _paid()
    with pytest.raises(services.RefundInvalid):
        services.refund_request(payment=payment, amount_minor=1, reason=reason, officer=_refunder(payment))


def test_only_officers_holding_payment_refund_in_the_agency_refund() -> None:
    payment = _paid()
    with pytest.raises(MissingPermission):
        services.refund_request(
            payment=payment, amount_minor=1, reason="x", officer=_refunder(payment, ("cashier",))
        )
    stranger = make_officer(roles=("payments_officer",))
    with pytest.raises(MissingPermission):
        services.refund_request(payment=payment, amount_minor=1, reason="x", officer=stranger)
    assert not payment.refunds.exists()


def test_an_unpaid_payment_cannot_be_refunded() -> None:
    payment = make_payment()
    with pytest.raises(services.RefundNotAllowed):
        services.refund_request(payment=payment, amount_minor=1, reason="x", officer=_refunder(payment))


def test_a_gateway_refund_is_sent_in_the_background() -> None:
    payment = _paid(Payment.Method.GATEWAY)
    refund = services.refund_request(
        payment=payment, amount_minor=50000, reason="x", officer=_refunder(payment)
    )
    assert Job.objects.filter(name="payments.refund_send", payload__refund_id=refund.pk).count() == 1
    failed = services.refund_complete(refund=refund, accepted=False, code="94")
    assert failed.status == Refund.Status.FAILED
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and payment.refunded_minor == 0


def test_a_transfer_needs_an_agency_account_and_names_it() -> None:
    application = application_with_fee(account=False)
    with pytest.raises(services.NotPayable):
        services.payment_start(application=application, payer=application.applicant, method="vietqr")
    payment = make_payment()
    assert payment.collection_account is not None
    assert payment.collection_account.agency_id == payment.agency_id
