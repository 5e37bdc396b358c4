"""Bank statements matched to payments: a credit with the reference and amount pays, the same
credit in a notification and the day's statement counts once, and what does not match waits for
an officer of the account's agency. Bad files change nothing."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from civicore.agencies.tests.factories import make_officer
from civicore.audit.models import AuditEntry
from civicore.payments import camt, selectors, services
from civicore.payments.models import Payment, StatementImport, StatementLine
from civicore.payments.tests.factories import make_payment

pytestmark = pytest.mark.django_db
CREATED = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)


def _line(amount: int, text: str, ref: str, **fields: Any) -> camt.StatementLine:
    values: dict[str, Any] = {
        "amount": amount,
        "currency": "VND",
        "credit": True,
        "servicer_reference": ref,
        "booking_date": date(2026, 12, 5),
        "value_date": date(2026, 12, 5),
        "remittance_info": text,
        "debtor_name": "NGUYEN VAN AN",
        **fields,
    }
    return camt.StatementLine(**values)


def _camt053(payment: Payment, lines: list[camt.StatementLine], message_id: str = "MSG-1") -> bytes:
    assert payment.collection_account is not None
    return camt.write_camt053(
        message_id=message_id,
        account=payment.collection_account.account_number,
        currency="VND",
        lines=lines,
        created_at=CREATED,
    )


def test_a_credit_with_the_reference_and_amount_pays_and_is_counted_once() -> None:
    payment = make_payment()
    content = f"{payment.reference} NGUYEN VAN AN NOP LE PHI"
    notification = camt.write_camt054(
        message_id="NTF-1",
        account=payment.collection_account.account_number,  # type: ignore[union-attr]
        currency="VND",
        lines=[_line(50000, content, "FT26339001")],
        created_at=CREATED,
    )
    first = services.statement_import(data=notification, filename="ntf.xml")
    assert (first.lines, first.matched, first.queued, first.repeated) == (1, 1, 0, 0)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and payment.bank_reference == "FT26339001"

    # The day's statement repeats the notified credit, with one more that matches nothing.
    statement = _camt053(payment, [_line(50000, content, "FT26339001"), _line(20000, "UNG HO", "FT26339002")])
    second = services.statement_import(data=statement, filename="stmt.xml")
    assert (second.lines, second.matched, second.queued, second.repeated) == (2, 0, 1, 1)
    payment.refresh_from_db()
    assert payment.paid_minor == 50000
    assert payment.events.filter(kind="paid").count() == 1
    assert AuditEntry.objects.filter(action="payment.statement_import").count() == 2


def test_the_same_file_twice_is_refused() -> None:
    payment = make_payment()
    data = _camt053(payment, [_line(50000, payment.reference, "FT1")])
    services.statement_import(data=data, filename="a.xml")
    with pytest.raises(services.StatementRepeated):
        services.statement_import(data=data, filename="a-again.xml")
    assert StatementImport.objects.count() == 1


def test_wrong_amounts_and_second_payments_wait_for_the_accounts_agency() -> None:
    payment = make_payment()
    data = _camt053(
        payment,
        [
            _line(40000, payment.reference, "FT1"),  # too little: held
            _line(50000, f"thanh toan {payment.reference.lower()}", "FT2"),  # pays
            _line(50000, payment.reference, "FT3"),  # paid again: held
            _line(50000, "CHUYEN TIEN", "FT4"),  # no reference
            _line(50000, payment.reference, "FT5", credit=False),  # a debit: not ours
        ],
    )
    imported = services.statement_import(data=data, filename="s.xml")
    assert (imported.lines, imported.matched, imported.queued) == (4, 1, 3)
    statuses = dict(StatementLine.objects.values_list("bank_reference", "status"))
    assert statuses == {
        "FT1": StatementLine.Status.MISMATCH,
        "FT2": StatementLine.Status.MATCHED,
        "FT3": StatementLine.Status.PAID_TWICE,
        "FT4": StatementLine.Status.UNMATCHED,
    }
    cashier = make_officer(agency=payment.agency, roles=("cashier",))
    queue = selectors.reconciliation_queue(officer=cashier)
    assert sorted(line.bank_reference for line in queue) == ["FT1", "FT3", "FT4"]
    assert list(selectors.reconciliation_queue(officer=make_officer(roles=("cashier",)))) == []


def test_a_statement_for_an_unknown_account_changes_nothing() -> None:
    payment = make_payment()
    data = camt.write_camt053(
        message_id="M", account="999999999", currency="VND", lines=[_line(50000, payment.reference, "FT1")],
        created_at=CREATED,
    )  # fmt: skip
    with pytest.raises(services.StatementAccountUnknown):
        services.statement_import(data=data, filename="x.xml")
    assert not StatementImport.objects.exists()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CREATED


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not xml",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>',
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"/>',
    ],
)
def test_files_that_are_not_statements_are_refused_with_a_code(data: bytes) -> None:
    with pytest.raises(camt.CamtError) as caught:
        services.statement_import(data=data, filename="bad.xml")
    assert caught.value.code in {"camt_malformed", "camt_unsupported", "camt_invalid"}
    assert not StatementImport.objects.exists()


def test_the_import_command_reports_each_file(tmp_path: Any) -> None:
    payment = make_payment()
    good = tmp_path / "good.xml"
    good.write_bytes(_camt053(payment, [_line(50000, payment.reference, "FT1")]))
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<oops")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "payments", "import", str(good), str(bad), str(tmp_path / "missing.xml"), stdout=out, stderr=err
        )
    assert "1 credits, 1 matched" in out.getvalue()
    assert "bad.xml: camt_malformed" in err.getvalue()
    assert "missing.xml: cannot be read" in err.getvalue()
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID
