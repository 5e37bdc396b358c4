"""The daily reconciliation report: ledger beside the gateway's signed messages and the bank's
statement, and every difference listed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from civicore.agencies.permissions import MissingPermission
from civicore.agencies.tests.factories import make_officer
from civicore.payments import camt, services
from civicore.payments.gateways import GatewayResult, GatewayStatus
from civicore.payments.models import Payment
from civicore.payments.reports import reconciliation_report
from civicore.payments.tests.factories import application_with_fee, collection_account, make_payment

pytestmark = pytest.mark.django_db
DAY = date(2026, 12, 5)
NOON = datetime(2026, 12, 5, 5, 0, tzinfo=UTC)  # midday in Hanoi


def _line(amount: int, text: str, ref: str) -> camt.StatementLine:
    return camt.StatementLine(
        amount=amount, currency="VND", credit=True, servicer_reference=ref, booking_date=DAY,
        value_date=DAY, remittance_info=text,
    )  # fmt: skip


def test_a_day_that_balances_and_one_that_does_not() -> None:
    application = application_with_fee(amount=50000)
    agency = application.service.agency
    transfer = make_payment(application)
    other = make_payment(application_with_fee(amount=30000, account=False), method="gateway", gateway="vnpay")
    # Both payments belong to one agency for the report.
    Payment.objects.filter(pk=other.pk).update(agency=agency)
    other.refresh_from_db()
    account = transfer.collection_account
    assert account is not None
    statement = camt.write_camt053(
        message_id="D-1", account=account.account_number, currency="VND", created_at=NOON,
        lines=[_line(50000, f"{transfer.reference} LE PHI", "FT1"), _line(12000, "UNG HO", "FT2")],
    )  # fmt: skip
    services.statement_import(data=statement, filename="d1.xml")
    services.gateway_result_apply(
        gateway="vnpay",
        result=GatewayResult(
            reference=other.reference,
            status=GatewayStatus.PAID,
            amount_minor=30000,
            currency="VND",
            gateway_transaction="14000001",
            code="00",
            paid_at=NOON,
        ),  # fmt: skip
        source="gateway_callback",
    )
    cashier = make_officer(agency=agency, roles=["cashier"])
    report = reconciliation_report(officer=cashier, day=DAY)
    assert (report.ledger["vietqr"].count, report.ledger["vietqr"].amount_minor) == (1, 50000)
    assert (report.confirmed["vietqr"].count, report.confirmed["vietqr"].amount_minor) == (1, 50000)
    assert (report.ledger["vnpay"].amount_minor, report.confirmed["vnpay"].amount_minor) == (30000, 30000)
    # The donation nobody can match is the one difference.
    assert [(d.kind, d.reference, d.amount_minor) for d in report.differences] == [
        ("statement_unmatched", "FT2", 12000)
    ]
    assert reconciliation_report(officer=cashier, day=DAY + timedelta(days=1)).balanced


def test_an_open_gateway_payment_past_its_time_is_listed() -> None:
    payment = make_payment(method="gateway", gateway="vnpay")
    cashier = make_officer(agency=payment.agency, roles=["cashier"])
    day = (payment.expires_at + timedelta(days=1)).date()
    report = reconciliation_report(officer=cashier, day=day)
    assert [d.kind for d in report.differences] == ["gateway_unresolved"]


def test_only_officers_who_see_payments_get_the_report() -> None:
    payment = make_payment()
    collection_account(payment.agency)
    with pytest.raises(MissingPermission):
        reconciliation_report(officer=make_officer(agency=payment.agency, roles=["caseworker"]), day=DAY)
