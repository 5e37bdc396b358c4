"""The daily reconciliation report page and its CSV: an officer who sees payments reads their own
agency's day (yesterday unless they choose), the ledger beside the gateway and the bank, the
differences with links to the payments; nobody reads another agency's report, a bad day is a form
error and never a server error, and the CSV defuses formulas."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from civicore.agencies.models import Agency, Officer
from civicore.agencies.tests.factories import back_office_client, make_officer
from civicore.applications.tests.factories import make_submitted
from civicore.core.tests.accessibility import Check, axe_in_chromium
from civicore.identity.tests.factories import make_citizen
from civicore.payments import camt, services
from civicore.payments.models import CollectionAccount, Payment, PaymentEvent
from civicore.payments.tests.factories import application_with_fee, make_payment

pytestmark = pytest.mark.django_db
URL = "/office/payments/report/"
CSV_URL = "/office/payments/report.csv"
FORMULA = '=HYPERLINK("http://x.test","click")'


def _days_ago(days: int) -> Any:
    return timezone.localdate() - timedelta(days=days)


class Office:
    """An agency taking fees by bank transfer and by card, with a cashier."""

    def __init__(self) -> None:
        first = application_with_fee()
        self.service = first.service
        self.agency: Agency = first.service.agency
        self.account: CollectionAccount = CollectionAccount.objects.get(agency=self.agency)
        self.cashier: Officer = make_officer(agency=self.agency, roles=("cashier",))
        self.officer: Officer = make_officer(agency=self.agency, roles=("payments_officer",))

    def payment(self, method: str = Payment.Method.VIETQR) -> Payment:
        application = make_submitted(make_citizen(), self.service)
        return make_payment(application, method=method, gateway="vnpay" if method == "gateway" else "")

    def client(self, officer: Officer | None = None, language: str = "en") -> Client:
        return back_office_client((officer or self.cashier).user, language=language)

    def statement(self, day: Any, lines: list[tuple[int, str, str]], message_id: str) -> None:
        """A camt.053 statement of `day` booking (amount, transfer text, bank reference) credits."""
        data = camt.write_camt053(
            message_id=message_id,
            account=self.account.account_number,
            currency="VND",
            created_at=timezone.now(),
            lines=[
                camt.StatementLine(
                    amount=amount,
                    currency="VND",
                    credit=True,
                    servicer_reference=ref,
                    booking_date=day,
                    value_date=day,
                    remittance_info=text,
                )  # fmt: skip
                for amount, text, ref in lines
            ],
        )
        services.statement_import(data=data, filename=f"{message_id}.xml")

    def day_with_differences(self, day: Any) -> dict[str, Payment]:
        """A transfer the bank booked, a card payment counted paid that the gateway never confirmed,
        and a credit that matches nothing, its bank reference a spreadsheet formula."""
        transfer = self.payment()
        card = self.payment(method=Payment.Method.GATEWAY)
        lines = [(50000, f"{transfer.reference} LE PHI", "FT1"), (12000, "UNG HO", FORMULA)]
        self.statement(day, lines, "D-1")
        services.payment_settle(
            reference=card.reference, amount_minor=card.amount_minor, currency=card.currency,
            source=PaymentEvent.Source.STATEMENT, key=f"test:{card.reference}",
            at=timezone.make_aware(datetime.combine(day, time(12))),
        )  # fmt: skip
        return {"transfer": transfer, "card": card}


@pytest.fixture
def office() -> Office:
    return Office()


def _page(response: Any) -> str:
    return response.content.decode()


def _csv(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def _table(page: str, table_id: str) -> str:
    start = page.index(f'id="{table_id}"')
    return page[start : page.index("</table>", start)]


# --- what the page and the CSV show --------------------------------------------------------------


def test_a_day_with_differences(office: Office) -> None:
    day = _days_ago(2)
    made = office.day_with_differences(day)
    response = office.client().get(f"{URL}?day={day.isoformat()}")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    page = _page(response)
    status = page[page.index('id="report-status"') :]
    assert 'data-balanced="false"' in status[:80] and "2 differences to look at." in status
    summary = _table(page, "report-summary")
    assert "<caption>" in summary and 'scope="colgroup"' in summary
    transfers = summary[summary.index("Bank transfer (VietQR)") :]
    # Ledger 1 / 50,000; no gateway for a transfer; the bank booked it.
    assert transfers.split("</tr>")[0].count("50,000 VND") == 2 and "—" in transfers.split("</tr>")[0]
    cards = summary[summary.index("Card or e-wallet (vnpay)") :].split("</tr>")[0]
    assert "50,000 VND" in cards and "0 VND" in cards
    differences = _table(page, "report-differences")
    assert differences.count('scope="row"') == 2 and "<caption>" in differences
    card_row = differences[differences.index('data-kind="gateway_not_confirmed"') :].split("</tr>")[0]
    assert "Not confirmed by the gateway" in card_row
    assert f'href="/office/payments/{made["card"].public_id}/"' in card_row
    assert "no message from the gateway that day confirms it" in card_row
    line_row = differences[differences.index('data-kind="statement_unmatched"') :].split("</tr>")[0]
    assert "Bank credit matching no payment" in line_row and "12,000 VND" in line_row
    assert "=HYPERLINK(&quot;http://x.test&quot;,&quot;click&quot;)" in line_row and "href" not in line_row
    assert f'href="/office/payments/report.csv?day={day.isoformat()}"' in page

    export = office.client().get(f"{CSV_URL}?day={day.isoformat()}")
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    assert "no-store" in export["Cache-Control"]
    assert export["Content-Disposition"] == (
        f'attachment; filename="reconciliation-{office.agency.code}-{day:%Y%m%d}.csv"'
    )
    rows = _csv(export)
    assert list(rows[0]) == [
        "day", "agency", "row", "method", "source", "count", "kind", "reference", "amount", "currency",
        "note",
    ]  # fmt: skip
    assert {row["day"] for row in rows} == {day.isoformat()}
    assert {row["agency"] for row in rows} == {office.agency.code}
    summary = [(r["method"], r["source"], r["count"], r["amount"]) for r in rows if r["row"] == "summary"]
    assert summary == [
        ("vietqr", "ledger", "1", "50000"),
        ("vietqr", "bank_statement", "1", "50000"),
        ("vnpay", "ledger", "1", "50000"),
        ("vnpay", "gateway", "0", "0"),
    ]
    assert [(r["count"], r["amount"]) for r in rows if r["row"] == "refunds"] == [("0", "0")]
    found = {r["kind"]: r for r in rows if r["row"] == "difference"}
    assert set(found) == {"gateway_not_confirmed", "statement_unmatched"}
    assert found["gateway_not_confirmed"]["reference"] == made["card"].reference
    unmatched = found["statement_unmatched"]
    assert (unmatched["amount"], unmatched["currency"]) == ("12000", "VND")
    # The bank's text cannot run as a formula in a spreadsheet.
    assert unmatched["reference"] == "'" + FORMULA


def test_a_balanced_day_and_its_refunds(office: Office) -> None:
    day = _days_ago(3)
    transfer = office.payment()
    office.statement(day, [(50000, f"{transfer.reference} LE PHI", "FT1")], "D-2")
    transfer.refresh_from_db()
    page = _page(office.client().get(f"{URL}?day={day.isoformat()}"))
    assert 'data-balanced="true"' in page and "Balanced" in page
    assert 'id="report-no-differences"' in page and 'id="report-differences"' not in page
    rows = _csv(office.client().get(f"{CSV_URL}?day={day.isoformat()}"))
    assert [r["row"] for r in rows] == ["summary", "summary", "refunds"]

    refund = services.refund_request(
        payment=transfer, amount_minor=20000, reason="Twice", officer=office.officer
    )
    services.refund_confirm_transfer(refund=refund, officer=office.officer)
    today = timezone.localdate().isoformat()
    refunds = _page(office.client().get(f"{URL}?day={today}"))
    assert "1 refund, 20,000 VND" in refunds[refunds.index('id="report-refunds"') :]
    assert [(r["count"], r["amount"]) for r in _csv(office.client().get(f"{CSV_URL}?day={today}"))] == [
        ("1", "20000")
    ]


def test_yesterday_by_default_with_the_days_around_it(office: Office) -> None:
    yesterday = _days_ago(1)
    office.day_with_differences(yesterday)
    page = _page(office.client().get(URL))
    assert f'value="{yesterday.isoformat()}"' in page and "2 differences to look at." in page
    assert f'href="/office/payments/report/?day={_days_ago(2).isoformat()}"' in page
    assert f'href="/office/payments/report/?day={timezone.localdate().isoformat()}"' in page
    today = _page(office.client().get(f"{URL}?day={timezone.localdate().isoformat()}"))
    assert 'id="report-previous"' in today and 'id="report-next"' not in today
    # The navigation of the payment pages leads here, and marks it as the current page.
    assert '<a href="/office/payments/report/" aria-current="page">' in page
    assert 'href="/office/payments/report/"' in _page(office.client().get("/office/payments/"))
    rows = _csv(office.client().get(CSV_URL))
    assert {r["day"] for r in rows} == {yesterday.isoformat()}


# --- who may read it -----------------------------------------------------------------------------


def test_another_agencys_officer_sees_only_their_own(office: Office) -> None:
    day = _days_ago(2)
    made = office.day_with_differences(day)
    theirs = make_officer(agency=make_payment().agency, roles=("payments_officer",))
    client = office.client(theirs)
    own = _page(client.get(f"{URL}?day={day.isoformat()}"))
    assert made["card"].reference not in own and "Balanced" in own
    assert made["card"].reference not in client.get(f"{CSV_URL}?day={day.isoformat()}").content.decode()
    for url in (URL, CSV_URL):
        refused = client.get(f"{url}?day={day.isoformat()}&agency={office.agency.pk}")
        assert refused.status_code == 403, url
        assert made["card"].reference not in refused.content.decode()
    # Their own agency named explicitly is theirs to read; our cashier may name ours.
    assert client.get(f"{URL}?agency={theirs.agency_id}").status_code == 200
    mine = office.client().get(f"{URL}?day={day.isoformat()}&agency={office.agency.pk}")
    assert mine.status_code == 200 and made["card"].reference in _page(mine)
    assert f"day={day.isoformat()}&amp;agency={office.agency.pk}" in _page(mine)


def test_officers_without_the_permission_are_refused(office: Office) -> None:
    assert Client().get(URL)["Location"].startswith("/accounts/login/")
    assert Client().get(CSV_URL)["Location"].startswith("/accounts/login/")
    caseworker = office.client(make_officer(agency=office.agency, roles=("caseworker",)))
    assert caseworker.get(URL).status_code == 403
    assert caseworker.get(CSV_URL).status_code == 403
    citizen = back_office_client(make_citizen().user)
    assert citizen.get(URL).status_code == 403


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "message"),
    [
        ("2026-13-40", "Enter a date such as 2026-12-31."),
        ("'; drop table payments_payment; --", "Enter a date such as 2026-12-31."),
        ("20261205", "Enter a date such as 2026-12-31."),
        ("2026-W49-6", "Enter a date such as 2026-12-31."),
        ("２０２６-１２-０５", "Enter a date such as 2026-12-31."),
        ("9999-12-31", "There is no report for a day after today."),
        ("tomorrow", "Enter a date such as 2026-12-31."),
        ("0001-01-01", "Choose a day from 01/01/2000 onwards."),
        ("x" * 5000, "Enter a date such as 2026-12-31."),
    ],
)
def test_a_bad_day_is_a_form_error(office: Office, day: str, message: str) -> None:
    response = office.client().get(URL, {"day": day})
    assert response.status_code == 400
    page = _page(response)
    assert message in page and 'id="report-day-error"' in page and 'aria-invalid="true"' in page
    assert 'href="#report-day"' in page  # the error summary leads to the field
    assert 'id="report-summary"' not in page and 'id="report-missing"' in page
    export = office.client().get(CSV_URL, {"day": day})
    assert export.status_code == 400 and export["Content-Type"].startswith("text/plain")
    assert message in export.content.decode()


def test_tomorrow_is_refused_and_an_agency_that_is_not_a_number_too(office: Office) -> None:
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert office.client().get(URL, {"day": tomorrow}).status_code == 400
    response = office.client().get(URL, {"agency": "1 OR 1=1"})
    assert response.status_code == 400 and "Choose one of your agencies." in _page(response)
    assert office.client().get(CSV_URL, {"agency": "abc"}).status_code == 400


# --- languages -----------------------------------------------------------------------------------


def test_the_page_in_vietnamese_and_english(office: Office) -> None:
    day = _days_ago(2)
    office.day_with_differences(day)
    vietnamese = _page(office.client(language="vi").get(f"{URL}?day={day.isoformat()}"))
    assert '<html lang="vi">' in vietnamese
    assert "Chuyển khoản ngân hàng (VietQR)" in vietnamese  # the method
    assert "không có thông báo nào của cổng thanh toán" in vietnamese  # the difference's note
    assert "Sao kê ngân hàng" in vietnamese  # the navigation
    english = _page(office.client(language="en").get(f"{URL}?day={day.isoformat()}"))
    assert '<html lang="en">' in english and "Bank transfer (VietQR)" in english
    assert "no message from the gateway that day confirms it" in english
    wrong = office.client(language="vi").get(URL, {"day": "2026-13-40"})
    assert wrong.status_code == 400 and "Nhập một ngày, ví dụ 2026-12-31." in _page(wrong)
    vietnamese_csv = _csv(office.client(language="vi").get(f"{CSV_URL}?day={day.isoformat()}"))
    # The columns and codes stay English; the note is in the reader's language.
    assert {r["kind"] for r in vietnamese_csv if r["row"] == "difference"} == {
        "gateway_not_confirmed",
        "statement_unmatched",
    }
    assert any("cổng thanh toán" in r["note"] for r in vietnamese_csv)


# --- accessibility -------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_page_passes_axe_in_chromium(live_server: Any) -> None:
    office = Office()
    day = _days_ago(2)
    office.day_with_differences(day)
    base = live_server.url
    pages = {
        "differences": f"{base}{URL}?day={day.isoformat()}",
        "balanced": f"{base}{URL}?day={_days_ago(5).isoformat()}",
        "bad day": f"{base}{URL}?day=2026-13-40",
    }

    def choose_a_day(page: Any, check: Check) -> None:
        """The day picker, used as a person does: choose a day and show it."""
        page.goto(pages["balanced"])
        page.fill("#report-day", day.isoformat())
        page.click("#report-form button[type=submit]")
        page.wait_for_selector("#report-differences")

    found = axe_in_chromium(
        base_url=base,
        session=office.client().cookies[settings.SESSION_COOKIE_NAME].value,
        pages=pages,
        actions=[choose_a_day],
    )
    assert len(found) == 6
