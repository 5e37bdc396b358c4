"""The officers' payment pages: cashiers and payments officers see their own agency's payments,
filter and total them and export the settled ones for the treasury; payments officers refund,
work the reconciliation queue and upload bank statements. Another agency's payment is not found,
an officer without the permission is refused, and reading someone's data is audited."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from civicore.agencies.models import Agency, Officer
from civicore.agencies.tests.factories import back_office_client, make_officer
from civicore.applications.tests.factories import make_service, make_submitted
from civicore.audit.models import AuditEntry
from civicore.core.tests.accessibility import Check, axe_in_chromium
from civicore.identity.tests.factories import make_citizen
from civicore.payments import camt, services
from civicore.payments.models import (
    CollectionAccount,
    Payment,
    PaymentEvent,
    Refund,
    StatementImport,
    StatementLine,
)
from civicore.payments.tests.factories import FEE, application_with_fee, make_payment

pytestmark = pytest.mark.django_db
CREATED = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)
BOOKED = date(2026, 12, 5)


# --- a small agency with payments ----------------------------------------------------------------


class Office:
    """An agency taking fees for two services, with a cashier and a payments officer."""

    def __init__(self) -> None:
        first = application_with_fee()
        self.agency: Agency = first.service.agency
        self.account: CollectionAccount = CollectionAccount.objects.get(agency=self.agency)
        self.service = first.service
        self.other_service = make_service(agency=self.agency, fee={**FEE, "amount": 70000})
        self.first_application = first
        self.cashier: Officer = make_officer(agency=self.agency, roles=("cashier",))
        self.officer: Officer = make_officer(agency=self.agency, roles=("payments_officer",))

    def payment(self, *, other_service: bool = False, method: str = Payment.Method.VIETQR) -> Payment:
        service = self.other_service if other_service else self.service
        application = make_submitted(make_citizen(), service)
        return make_payment(application, method=method, gateway="vnpay" if method == "gateway" else "")

    def client(self, officer: Officer | None = None) -> Client:
        return back_office_client((officer or self.officer).user)


def _pay(payment: Payment, *, at: datetime | None = None, **fields: Any) -> Payment:
    settled = services.payment_settle(
        reference=payment.reference,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        source=PaymentEvent.Source.STATEMENT,
        key=f"test:{payment.reference}",
        at=at or timezone.now(),
        **fields,
    )
    assert settled.outcome is services.Outcome.APPLIED
    payment.refresh_from_db()
    return payment


def _line(amount: int, text: str, ref: str, **fields: Any) -> camt.StatementLine:
    values: dict[str, Any] = {
        "amount": amount,
        "currency": "VND",
        "credit": True,
        "servicer_reference": ref,
        "booking_date": BOOKED,
        "value_date": BOOKED,
        "remittance_info": text,
        "debtor_name": "NGUYEN VAN AN",
        **fields,
    }
    return camt.StatementLine(**values)


def _statement(
    account: CollectionAccount, lines: list[camt.StatementLine], message_id: str = "MSG-1"
) -> bytes:
    return camt.write_camt053(
        message_id=message_id, account=account.account_number, currency="VND", lines=lines, created_at=CREATED
    )


def _named(data: bytes, name: str) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/xml")


def _page(response: Any) -> str:
    return response.content.decode()


def _streamed(response: Any) -> str:
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def office() -> Office:
    return Office()


# --- who may see what ----------------------------------------------------------------------------


def test_each_page_renders_for_a_cashier_and_a_payments_officer(office: Office) -> None:
    payment = _pay(office.payment())
    for officer, may_act in ((office.cashier, False), (office.officer, True)):
        client = office.client(officer)
        listing = _page(client.get("/office/payments/"))
        assert payment.reference in listing
        assert 'href="/office/payments/"' in listing  # the office navigation links here
        detail = client.get(f"/office/payments/{payment.public_id}/")
        assert detail.status_code == 200 and detail["Cache-Control"] == "private, no-store"
        assert ('id="refund-form"' in _page(detail)) is may_act
        queue = client.get("/office/payments/reconciliation/")
        assert queue.status_code == 200
        statements = client.get("/office/payments/statements/")
        assert statements.status_code == 200
        assert ('id="statement-form"' in _page(statements)) is may_act


def test_officers_without_the_permission_are_refused(office: Office) -> None:
    payment = _pay(office.payment())
    pages = (
        "/office/payments/",
        "/office/payments/export.csv",
        f"/office/payments/{payment.public_id}/",
        "/office/payments/reconciliation/",
        "/office/payments/statements/",
    )
    assert Client().get(pages[0])["Location"].startswith("/accounts/login/")
    caseworker = office.client(make_officer(agency=office.agency, roles=("caseworker",)))
    for url in pages:
        assert caseworker.get(url).status_code == 403, url
    assert 'href="/office/payments/"' not in _page(caseworker.get("/office/payments/"))

    cashier = office.client(office.cashier)
    refused = cashier.post(f"/office/payments/{payment.public_id}/refund/", {"amount": "1", "reason": "x"})
    assert refused.status_code == 403
    assert cashier.post("/office/payments/statements/", {}).status_code == 403
    assert cashier.post("/office/payments/reconciliation/1/resolve/", {"action": "note"}).status_code == 403
    refund = services.refund_request(payment=payment, amount_minor=1000, reason="x", officer=office.officer)
    confirm = f"/office/payments/{payment.public_id}/refunds/{refund.reference}/confirm/"
    assert cashier.post(confirm).status_code == 403
    refund.refresh_from_db()
    assert refund.status == Refund.Status.REQUESTED


def test_another_agencys_payment_and_line_are_not_found(office: Office) -> None:
    theirs = _pay(make_payment())
    client = office.client()
    assert theirs.reference not in _page(client.get("/office/payments/"))
    assert client.get(f"/office/payments/{theirs.public_id}/").status_code == 404
    refund = client.post(f"/office/payments/{theirs.public_id}/refund/", {"amount": "1000", "reason": "x"})
    assert refund.status_code == 404
    services.statement_import(
        data=_statement(theirs.collection_account, [_line(1000, "UNG HO", "FT9")]),  # type: ignore[arg-type]
        filename="theirs.xml",
    )
    line = StatementLine.objects.get(bank_reference="FT9")
    assert (
        client.post(
            f"/office/payments/reconciliation/{line.pk}/resolve/", {"action": "note", "note": "x"}
        ).status_code
        == 404
    )
    assert "FT9" not in _page(client.get("/office/payments/reconciliation/"))
    assert "theirs.xml" not in _page(client.get("/office/payments/statements/"))
    line.refresh_from_db()
    assert line.status == StatementLine.Status.UNMATCHED and not Refund.objects.exists()


# --- the list ------------------------------------------------------------------------------------


def test_filters_narrow_the_list_and_its_totals(office: Office) -> None:
    old = _pay(office.payment(), at=timezone.now() - timedelta(days=40))
    Payment.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=41))
    recent_paid = _pay(office.payment(other_service=True))
    waiting = office.payment()
    card = office.payment(method=Payment.Method.GATEWAY)
    client = office.client(office.cashier)

    def shown(query: str) -> set[str]:
        page = _page(client.get(f"/office/payments/?{query}"))
        table = page[page.index('id="payment-table"') :]
        return {p.reference for p in (old, recent_paid, waiting, card) if p.reference in table}

    everything = {old.reference, recent_paid.reference, waiting.reference, card.reference}
    assert shown("") == everything
    assert shown("status=paid") == {old.reference, recent_paid.reference}
    assert shown(f"service={office.other_service.pk}") == {recent_paid.reference}
    assert shown("method=gateway") == {card.reference}
    day = timezone.localdate() - timedelta(days=41)
    assert shown(f"since={day.isoformat()}&until={day.isoformat()}") == {old.reference}
    assert shown(f"date_field=paid&since={(day + timedelta(days=1)).isoformat()}") == {
        old.reference,
        recent_paid.reference,
    }
    assert shown(f"date_field=paid&since={timezone.localdate().isoformat()}") == {recent_paid.reference}
    spaced = f"{waiting.reference[:5]} {waiting.reference[5:].lower()}"
    assert shown(f"reference={spaced}") == {waiting.reference}
    assert shown(f"reference={card.application.reference}") == {card.reference}
    # Nonsense filters are ignored; a date that is not a date says so.
    response = client.get("/office/payments/?status=stolen&method=cash&service=x&since=31/12")
    assert response.status_code == 200 and "Enter a date such as 2026-12-31." in _page(response)

    totals = _page(client.get("/office/payments/?status=paid"))
    totals = totals[
        totals.index('id="payment-totals"') : totals.index("</table>", totals.index('id="payment-totals"'))
    ]
    assert '<td class="text-right">2</td>' in totals
    assert "120,000 VND" in totals  # 50,000 + 70,000 paid, nothing refunded: net the same
    assert totals.count("120,000 VND") == 2 and "0 VND" in totals


def test_htmx_gets_the_results_only(office: Office) -> None:
    payment = office.payment()
    response = office.client().get("/office/payments/?status=created", HTTP_HX_REQUEST="true")
    page = _page(response)
    assert payment.reference in page and "<html" not in page and 'id="payment-table"' in page


def test_the_list_costs_the_same_queries_for_3_or_30_payments(
    office: Office, django_assert_max_num_queries: Any
) -> None:
    client = office.client()
    client.get("/office/payments/")  # warm the session and the officer's second factor check

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/office/payments/").status_code == 200
        return len(queries)

    for _ in range(3):
        _pay(office.payment())
    few = count()
    for _ in range(27):
        office.payment()
    assert count() == few
    # Session, user, officer, second factor, count, totals, page, services, unread, agency name.
    with django_assert_max_num_queries(10):
        client.get("/office/payments/?page=2")


# --- the treasury export -------------------------------------------------------------------------


def test_the_export_streams_settled_payments_without_names_and_defuses_formulas(office: Office) -> None:
    paid = _pay(office.payment(), bank_reference='=HYPERLINK("http://x.test","click")')
    card = _pay(office.payment(method=Payment.Method.GATEWAY), gateway_transaction="@SUM(A1)")
    tabbed = _pay(office.payment(), bank_reference="\t-1+2")
    office.payment()  # not paid: not exported
    refund = services.refund_request(payment=paid, amount_minor=20000, reason="Twice", officer=office.officer)
    services.refund_confirm_transfer(refund=refund, officer=office.officer)
    _pay(make_payment())  # another agency's

    response = office.client(office.cashier).get("/office/payments/export.csv")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="payments-')
    text = _streamed(response)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["payment_reference"] for row in rows] == [paid.reference, card.reference, tabbed.reference]
    first = rows[0]
    assert first["bank_reference"] == """'=HYPERLINK("http://x.test","click")"""
    assert first["status"] == "partially_refunded"
    assert (first["amount"], first["paid"], first["refunded"], first["net"]) == (
        "50000",
        "50000",
        "20000",
        "30000",
    )
    assert first["service_code"] == office.service.code and first["agency"] == office.agency.code
    assert first["application_reference"] == paid.application.reference and first["late"] == "false"
    assert datetime.fromisoformat(first["paid_at"]).utcoffset() == timedelta(hours=7)
    assert rows[1]["gateway_transaction"] == "'@SUM(A1)" and rows[1]["method"] == "gateway"
    assert rows[2]["bank_reference"] == "'\t-1+2"
    assert str(paid.payer.user) not in text and paid.payer.user.email not in text

    entry = AuditEntry.objects.get(action="payment.export")
    assert entry.actor == office.cashier.user and entry.agency == office.agency

    only_card = _streamed(office.client().get("/office/payments/export.csv?method=gateway"))
    assert card.reference in only_card and paid.reference not in only_card
    assert office.client().get("/office/payments/export.csv?since=yesterday").status_code == 400


def test_the_list_links_the_export_with_its_filters(office: Office) -> None:
    page = _page(office.client().get("/office/payments/?status=paid&method=vietqr&reference=x"))
    assert 'href="/office/payments/export.csv?status=paid&amp;method=vietqr&amp;reference=x"' in page


# --- one payment ---------------------------------------------------------------------------------


def test_the_detail_shows_the_ledger_and_the_payer_and_is_audited(office: Office) -> None:
    payment = _pay(office.payment(), bank_reference="FT26339001")
    payer = payment.payer.user
    page = _page(office.client(office.cashier).get(f"/office/payments/{payment.public_id}/"))
    assert str(payer) in page[page.index('id="payment-payer"') :]
    breakdown = page[page.index('id="payment-breakdown"') :]
    assert "50,000 VND" in breakdown and "Fee" in breakdown
    events = page[page.index('id="payment-events"') :]
    assert "Payment created" in events and "Money received" in events and "Bank statement" in events
    assert "Created → Paid" in events
    entry = AuditEntry.objects.get(action="payment.view")
    assert entry.person == payment.payer and entry.actor == office.cashier.user
    assert entry.subject_id == str(payment.pk)


def test_a_payments_officer_refunds_part_then_confirms_the_transfer(office: Office) -> None:
    payment = _pay(office.payment())
    client = office.client()
    url = f"/office/payments/{payment.public_id}/refund/"

    too_much = client.post(url, {"amount": "50.001", "reason": "Charged twice"})
    assert too_much.status_code == 422
    assert "at most 50000" in _page(too_much) and 'id="refund-amount-error"' in _page(too_much)
    no_reason = client.post(url, {"amount": "20000", "reason": "   "})
    assert no_reason.status_code == 422 and "Give the reason for the refund." in _page(no_reason)
    not_a_number = client.post(url, {"amount": "twenty", "reason": "x"})
    assert not_a_number.status_code == 422 and "Enter the amount in dong" in _page(not_a_number)
    assert not Refund.objects.exists()

    done = client.post(url, {"amount": "20.000", "reason": "Charged twice"}, follow=True)
    refund = Refund.objects.get()
    assert (refund.amount_minor, refund.reason, refund.status) == (
        20000,
        "Charged twice",
        Refund.Status.REQUESTED,
    )
    assert done.redirect_chain[-1][0] == f"/office/payments/{payment.public_id}/"
    assert f"Refund {refund.reference} of 20,000 VND is requested" in _page(done)

    confirmed = client.post(
        f"/office/payments/{payment.public_id}/refunds/{refund.reference}/confirm/", follow=True
    )
    assert "is recorded as sent" in _page(confirmed)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PARTIALLY_REFUNDED and payment.refunded_minor == 20000
    assert client.post(f"/office/payments/{payment.public_id}/refunds/RFNOPE/confirm/").status_code == 404

    full = client.post(url, {"amount": "30000", "reason": "Application withdrawn"})
    assert full.status_code == 302
    assert Refund.objects.filter(status=Refund.Status.REQUESTED, amount_minor=30000).exists()
    # Nothing is left to refund: no form, and a post anyway is told so.
    assert 'id="refund-form"' not in _page(client.get(f"/office/payments/{payment.public_id}/"))
    nothing_left = client.post(url, {"amount": "1", "reason": "Again"})
    assert nothing_left.status_code == 422 and "at most 0" in _page(nothing_left)
    assert Refund.objects.count() == 2


def test_a_gateway_refund_is_not_confirmed_by_hand(office: Office) -> None:
    payment = _pay(office.payment(method=Payment.Method.GATEWAY))
    refund = services.refund_request(payment=payment, amount_minor=50000, reason="x", officer=office.officer)
    page = _page(office.client().get(f"/office/payments/{payment.public_id}/"))
    assert "Confirm bank transfer sent" not in page
    answer = office.client().post(
        f"/office/payments/{payment.public_id}/refunds/{refund.reference}/confirm/", follow=True
    )
    assert "Only a bank-transfer refund" in _page(answer)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.REQUESTED


# --- the reconciliation queue --------------------------------------------------------------------


def _queue_lines(office: Office, *lines: camt.StatementLine) -> dict[str, StatementLine]:
    services.statement_import(data=_statement(office.account, list(lines)), filename="queue.xml")
    return {line.bank_reference: line for line in StatementLine.objects.all()}


def test_the_queue_shows_the_agencys_waiting_credits_and_is_audited(office: Office) -> None:
    payment = office.payment()
    lines = _queue_lines(
        office,
        _line(40000, payment.reference, "FT1"),
        _line(50000, "CHUYEN TIEN", "FT2", debtor_name="TRAN THI BINH"),
        _line(50000, payment.reference, "FT3"),
    )
    assert lines["FT3"].status == StatementLine.Status.MATCHED
    page = _page(office.client(office.cashier).get("/office/payments/reconciliation/"))
    assert "FT1" in page and "FT2" in page and "FT3" not in page
    assert "TRAN THI BINH" in page and "Amount or currency differs" in page
    assert "Apply to the payment" not in page  # a cashier looks, a payments officer resolves
    entry = AuditEntry.objects.get(action="payment.queue_view")
    assert sorted(entry.details["lines"]) == sorted([lines["FT1"].pk, lines["FT2"].pk])
    assert entry.details["fields"] == ["debtor_name"]


def test_a_full_page_of_long_ids_is_audited_within_the_subject_column(office: Office) -> None:
    """The entry's subject holds as many of the lines' ids as fit its column (PostgreSQL refuses a
    longer value, failing the page); its details name every line shown."""
    from civicore.payments import office_views

    credits = [_line(1000 + n, "UNG HO", f"FT{n}") for n in range(office_views.QUEUE_PAGE_SIZE)]
    _queue_lines(office, *credits)
    StatementLine.objects.update(id=F("id") + 10_000_000)  # eight digits each
    shown = sorted(StatementLine.objects.values_list("pk", flat=True))
    assert len(",".join(map(str, shown))) > 64  # AuditEntry.subject_id's max_length

    response = office.client(office.cashier).get("/office/payments/reconciliation/")
    assert response.status_code == 200 and f"line-{shown[-1]}" in _page(response)
    entry = AuditEntry.objects.get(action="payment.queue_view")
    assert sorted(entry.details["lines"]) == shown
    assert 0 < len(entry.subject_id) <= 64
    ids = [int(pk) for pk in entry.subject_id.split(",")]
    assert len(ids) == 7 and set(ids) <= set(shown)


def test_a_credit_is_applied_to_the_payment_it_is_for(office: Office) -> None:
    payment = office.payment()
    line = _queue_lines(office, _line(50000, "NOP LE PHI", "FT7"))["FT7"]
    client = office.client()
    url = f"/office/payments/reconciliation/{line.pk}/resolve/"
    answer = client.post(
        url, {"action": "apply", "payment_reference": payment.reference.lower()}, follow=True
    )
    assert "The credit FT7 is resolved." in _page(answer)
    line.refresh_from_db()
    payment.refresh_from_db()
    assert line.status == StatementLine.Status.RESOLVED and line.payment == payment
    assert line.resolved_by == office.officer.user and line.resolved_at is not None
    assert payment.reference in line.resolution
    assert payment.status == Payment.Status.PAID and payment.paid_minor == 50000
    assert payment.bank_reference == "FT7" and timezone.localdate(payment.paid_at) == BOOKED
    event = payment.events.get(kind="paid")
    assert event.key == f"bank:{office.account.bank_bin}:{office.account.account_number}:FT7"
    assert event.source == PaymentEvent.Source.OFFICER
    assert (
        AuditEntry.objects.filter(action="payment.statement_line_resolve", actor=office.officer.user).count()
        == 1
    )
    # The same form again changes nothing.
    again = client.post(url, {"action": "apply", "payment_reference": payment.reference}, follow=True)
    assert "resolved already" in _page(again)
    assert payment.events.filter(kind="paid").count() == 1


def test_a_held_credit_can_pay_another_open_payment(office: Office) -> None:
    paid = _pay(office.payment())
    other = office.payment()
    line = _queue_lines(office, _line(50000, paid.reference, "FT8"))["FT8"]
    assert line.status == StatementLine.Status.PAID_TWICE
    office.client().post(
        f"/office/payments/reconciliation/{line.pk}/resolve/",
        {"action": "apply", "payment_reference": other.reference},
    )
    other.refresh_from_db()
    line.refresh_from_db()
    assert other.status == Payment.Status.PAID and line.status == StatementLine.Status.RESOLVED
    assert line.payment == other
    assert Payment.objects.get(pk=paid.pk).paid_minor == 50000  # the first is counted once


def test_a_credit_of_another_amount_is_refused_with_a_message(office: Office) -> None:
    payment = office.payment()
    line = _queue_lines(office, _line(40000, payment.reference, "FT4"))["FT4"]
    client = office.client()
    url = f"/office/payments/reconciliation/{line.pk}/resolve/"
    refused = client.post(url, {"action": "apply", "payment_reference": payment.reference})
    assert refused.status_code == 422
    page = _page(refused)
    assert f"is not the amount of payment {payment.reference}" in page
    assert f'href="#line-{line.pk}-payment_reference"' in page  # the summary links to the field
    unknown = client.post(url, {"action": "apply", "payment_reference": "CV0000000000X"})
    assert unknown.status_code == 422 and "No payment of your agency has the reference" in _page(unknown)
    empty = client.post(url, {"action": "apply", "payment_reference": ""})
    assert empty.status_code == 422
    line.refresh_from_db()
    payment.refresh_from_db()
    assert line.status == StatementLine.Status.MISMATCH and line.resolved_by is None
    assert payment.status == Payment.Status.CREATED
    assert not payment.events.filter(source=PaymentEvent.Source.OFFICER).exists()


def test_a_credit_is_resolved_with_a_note(office: Office) -> None:
    line = _queue_lines(office, _line(20000, "UNG HO", "FT5"))["FT5"]
    client = office.client()
    url = f"/office/payments/reconciliation/{line.pk}/resolve/"
    missing = client.post(url, {"action": "note", "note": "  "})
    assert missing.status_code == 422 and "Say what was done with this credit" in _page(missing)
    done = client.post(url, {"action": "note", "note": "Returned to the sender on 6/12"}, follow=True)
    assert (
        "The credit FT5 is resolved." in _page(done)
        and "FT5" not in _page(done).split("</h1>")[1].split('id="queue-count"')[0]
    )
    line.refresh_from_db()
    assert (
        line.status == StatementLine.Status.RESOLVED and line.resolution == "Returned to the sender on 6/12"
    )
    assert line.resolved_by == office.officer.user
    entry = AuditEntry.objects.get(action="payment.statement_line_resolve")
    assert entry.details["resolution"] == "Returned to the sender on 6/12"
    assert not office.client().get("/office/payments/reconciliation/").content.decode().count("FT5")


def test_resolving_is_refused_without_payment_refund_or_for_another_agency(office: Office) -> None:
    line = _queue_lines(office, _line(20000, "UNG HO", "FT6"))["FT6"]
    with pytest.raises(services.permissions.MissingPermission):
        services.statement_line_resolve(line=line, officer=office.cashier, note="x")
    stranger = make_officer(roles=("payments_officer",))
    with pytest.raises(services.NotFound):
        services.statement_line_resolve(line=line, officer=stranger, note="x")
    line.refresh_from_db()
    assert line.status == StatementLine.Status.UNMATCHED


# --- bank statements -----------------------------------------------------------------------------


def test_a_statement_is_uploaded_once_and_its_counts_shown(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    from civicore.payments import camt

    payment = office.payment()
    data = _statement(office.account, [_line(50000, payment.reference, "FT1"), _line(1000, "?", "FT2")])
    client = office.client()
    reads: list[int] = []
    read = camt.read_statement
    monkeypatch.setattr(camt, "read_statement", lambda *a, **k: reads.append(1) or read(*a, **k))
    done = client.post(
        "/office/payments/statements/", {"statement": _named(data, "vcb-0512.xml")}, follow=True
    )
    assert len(reads) == 1  # the file is parsed once, the agency's accounts checked on that reading
    page = _page(done)
    assert (
        "vcb-0512.xml is imported. Credits: 2; matched to payments: 1; waiting in the reconciliation queue: 1"
        in page
    )
    assert "vcb-0512.xml" in page[page.index('id="import-table"') :]
    imported = StatementImport.objects.get()
    assert imported.imported_by == office.officer.user
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID

    again = client.post("/office/payments/statements/", {"statement": _named(data, "again.xml")})
    assert again.status_code == 422
    assert "This statement file has been imported already. (statement_repeated)" in _page(again)
    assert StatementImport.objects.count() == 1
    # The cashier sees the imports but has no upload form.
    cashier_page = _page(office.client(office.cashier).get("/office/payments/statements/"))
    assert "vcb-0512.xml" in cashier_page and 'id="statement-form"' not in cashier_page


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">&x;</Document>',
            "camt_malformed",
        ),
        (b"not xml at all", "camt_malformed"),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"/>', "camt_unsupported"),
    ],
)
def test_hostile_or_broken_files_are_refused_with_a_message_and_nothing_saved(
    office: Office, data: bytes, code: str
) -> None:
    answer = office.client().post("/office/payments/statements/", {"statement": _named(data, "evil.xml")})
    assert answer.status_code == 422
    page = _page(answer)
    assert 'id="statement-error"' in page and f"({code}" in page
    assert "root:" not in page  # nothing of the file the entity names
    assert not StatementImport.objects.exists() and not StatementLine.objects.exists()


def test_a_statement_for_another_agencys_account_changes_nothing(office: Office) -> None:
    theirs = make_payment()
    data = _statement(theirs.collection_account, [_line(50000, theirs.reference, "FT1")])  # type: ignore[arg-type]
    answer = office.client().post("/office/payments/statements/", {"statement": _named(data, "theirs.xml")})
    assert answer.status_code == 422 and "your agency does not collect fees into" in _page(answer)
    theirs.refresh_from_db()
    assert theirs.status == Payment.Status.CREATED and not StatementImport.objects.exists()


def test_an_empty_or_too_large_upload_is_refused(office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    from civicore.payments import office_views

    client = office.client()
    assert client.post("/office/payments/statements/", {}).status_code == 422
    monkeypatch.setattr(office_views, "STATEMENT_MAX_BYTES", 100)
    data = _statement(office.account, [_line(50000, "x", "FT1")])
    answer = client.post("/office/payments/statements/", {"statement": _named(data, "big.xml")})
    assert answer.status_code == 422 and "The file is larger than 100" in _page(answer)
    assert not StatementImport.objects.exists()


# --- accessibility, in a real browser ------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_pages_pass_axe_in_chromium(live_server: Any) -> None:
    office = Office()
    payment = _pay(office.payment())
    services.refund_request(
        payment=payment, amount_minor=10000, reason="Charged twice", officer=office.officer
    )
    _queue_lines(office, _line(20000, "UNG HO", "FT1"))
    base = live_server.url
    pages = {
        "list": f"{base}/office/payments/",
        "detail": f"{base}/office/payments/{payment.public_id}/",
        "queue": f"{base}/office/payments/reconciliation/",
        "statements": f"{base}/office/payments/statements/",
    }

    def refund_without_reason(page: Any, check: Check) -> None:
        """The error is announced and the page stays usable."""
        page.goto(pages["detail"])
        page.fill("#refund-amount", "1000")
        page.click("#refund-form button[type=submit]")
        page.wait_for_selector("#refund-reason-error")
        check("refund-error")

    found = axe_in_chromium(
        base_url=base,
        session=office.client().cookies[settings.SESSION_COOKIE_NAME].value,
        pages=pages,
        actions=[refund_without_reason],
    )
    assert len(found) == 10
