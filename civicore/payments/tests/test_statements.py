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
from civicore.core.models import Job
from civicore.payments import camt, references, selectors, services
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


# --- batches: the same outcomes as settling line by line ---------------------------------------


def _expired(payment: Payment) -> Payment:
    assert services.payment_expire_due(now=payment.expires_at) == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.EXPIRED
    return payment


@pytest.mark.parametrize("chunk", [1, 2, 1000])
def test_a_file_settles_in_its_own_order_across_chunks(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the chunk size, each line sees what the lines before it did: a wrong amount is
    held, the right one then pays, a second credit for the paid payment is held as paid twice,
    the same bank entry twice counts once, and a reference naming no payment falls through to
    the next reference in the text."""
    monkeypatch.setattr(services, "_STATEMENT_CHUNK", chunk)
    payment = make_payment()
    other = make_payment(application_with_fee_for(payment))
    unknown = references.new_reference()
    data = _camt053(
        payment,
        [
            _line(40000, payment.reference, "FT1"),
            _line(50000, f"{unknown} {payment.reference}", "FT2"),
            _line(50000, payment.reference, "FT2"),  # the same entry again: counted once
            _line(50000, payment.reference, "FT3"),
            _line(50000, other.reference, "FT4"),
        ],
    )
    imported = services.statement_import(data=data, filename="order.xml")
    assert (imported.lines, imported.matched, imported.queued, imported.repeated) == (5, 2, 2, 1)
    statuses = dict(StatementLine.objects.values_list("bank_reference", "status"))
    assert statuses == {
        "FT1": StatementLine.Status.MISMATCH,
        "FT2": StatementLine.Status.MATCHED,
        "FT3": StatementLine.Status.PAID_TWICE,
        "FT4": StatementLine.Status.MATCHED,
    }
    assert set(StatementLine.objects.values_list("payment_id", flat=True)) == {payment.pk, other.pk}
    payment.refresh_from_db()
    assert (payment.status, payment.paid_minor, payment.bank_reference, payment.late) == (
        "paid",
        50000,
        "FT2",
        False,
    )
    events = list(
        payment.events.filter(source="statement").values_list("kind", "from_status", "to_status", "key")
    )
    account = payment.collection_account
    assert account is not None
    key = f"bank:{account.bank_bin}:{account.account_number}"
    assert events == [
        ("mismatch", "created", "created", f"{key}:FT1"),
        ("paid", "created", "paid", f"{key}:FT2"),
        ("paid_twice", "paid", "paid", f"{key}:FT3"),
    ]
    # Each event has the audit entry _record writes, and each payment paid one durable job.
    entries = AuditEntry.objects.filter(subject_type="payments.payment", subject_id=str(payment.pk))
    statement_entries = entries.filter(actor_label="payments:statement").order_by("id")
    assert [e.action for e in statement_entries] == ["payment.mismatch", "payment.paid", "payment.paid_twice"]
    paid_entry = statement_entries[1]
    assert paid_entry.agency_id == payment.agency_id and paid_entry.actor_id is None
    assert paid_entry.details == {
        "reference": payment.reference, "from": "created", "to": "paid", "amount": 50000, "key": f"{key}:FT2",
        "gateway_transaction": "", "bank_reference": "FT2", "late": False,
    }  # fmt: skip
    assert statement_entries[0].details["expected"] == 50000
    jobs = Job.objects.filter(name="payments.paid").order_by("id")
    assert [job.payload for job in jobs] == [{"payment_id": payment.pk}, {"payment_id": other.pk}]


def application_with_fee_for(payment: Payment) -> Any:
    """Another application of the same service, so its payment goes to the same account."""
    from civicore.applications.tests.factories import make_submitted
    from civicore.identity.tests.factories import make_citizen

    return make_submitted(make_citizen(), payment.service)


def test_money_after_expiry_or_failure_is_counted_and_marked_late() -> None:
    expired = _expired(make_payment())
    failed = make_payment(application_with_fee_for(expired))
    services.payment_fail(
        reference=failed.reference, source="gateway_callback", key="vnpay:1:24", at=CREATED, code="24"
    )
    data = _camt053(expired, [_line(50000, expired.reference, "FT1"), _line(50000, failed.reference, "FT2")])
    imported = services.statement_import(data=data, filename="late.xml")
    assert (imported.matched, imported.queued) == (2, 0)
    for payment, before in ((expired, "expired"), (failed, "failed")):
        payment.refresh_from_db()
        assert payment.status == Payment.Status.PAID and payment.late
        event = payment.events.get(kind="paid")
        assert (event.from_status, event.data["late"]) == (before, True)
        assert (
            AuditEntry.objects.get(action="payment.paid", subject_id=str(payment.pk)).details["late"] is True
        )


def test_a_credit_whose_key_was_applied_before_is_matched_without_a_second_event() -> None:
    """A bank entry settled before under its key (by an officer's resolution, say) is matched
    again without counting the money twice, as payment_settle answers REPEATED."""
    payment = make_payment()
    account = payment.collection_account
    assert account is not None
    services.payment_settle(
        reference=payment.reference, amount_minor=50000, currency="VND", source="statement",
        key=f"bank:{account.bank_bin}:{account.account_number}:FT9", at=CREATED, bank_reference="FT9",
    )  # fmt: skip
    imported = services.statement_import(
        data=_camt053(payment, [_line(50000, payment.reference, "FT9")]), filename="again.xml"
    )
    assert (imported.matched, imported.queued) == (1, 0)
    line = StatementLine.objects.get(bank_reference="FT9")
    assert (line.status, line.payment_id) == (StatementLine.Status.MATCHED, payment.pk)
    assert payment.events.filter(kind__in=["paid", "paid_twice"]).count() == 1
    assert Job.objects.filter(name="payments.paid").count() == 1


def test_debtor_names_are_stored_encrypted() -> None:
    payment = make_payment()
    services.statement_import(
        data=_camt053(payment, [_line(50000, payment.reference, "FT1")]), filename="n.xml"
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT debtor_name FROM payments_statementline")
        (stored,) = cursor.fetchone()
    assert stored and "NGUYEN" not in stored
    assert StatementLine.objects.get().debtor_name == "NGUYEN VAN AN"
