"""The refund proposals page: a rejected application's paid fee waits there for a payments
officer, who accepts it (in full or for less; it is then requested as any refund) or declines it
with a reason. Cashiers see the list but decide nothing; another agency's proposals are neither
shown nor decided; every bad form is answered with a message and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from civicore.agencies.tests.factories import back_office_client, make_officer
from civicore.audit.models import AuditEntry
from civicore.core.models import Job
from civicore.core.tests.accessibility import Check, axe_in_chromium
from civicore.payments import services
from civicore.payments.models import Payment, PaymentEvent, Refund
from civicore.payments.tests.factories import make_payment
from civicore.payments.tests.test_office_pages import Office, _page, _pay

pytestmark = pytest.mark.django_db
LIST = "/office/payments/proposals/"


def _propose(payment: Payment, reason: str = "Not eligible") -> Refund:
    [refund] = services.refund_propose(application_id=payment.application_id, reason=reason)
    return refund


def _decide(refund: Refund) -> str:
    return f"/office/payments/proposals/{refund.pk}/decide/"


def _unchanged(refund: Refund, payment: Payment, events: int) -> None:
    """Nothing the form could have changed has changed."""
    refund.refresh_from_db()
    assert (refund.status, refund.requested_by_id, refund.amount_minor) == (
        Refund.Status.PROPOSED,
        None,
        50000,
    )
    assert Refund.objects.filter(payment=payment).count() == 1
    assert PaymentEvent.objects.filter(payment=payment).count() == events
    assert not Job.objects.filter(name="payments.refund_send").exists()


@pytest.fixture
def office() -> Office:
    return Office()


# --- the list ------------------------------------------------------------------------------------


def test_the_list_shows_the_agencys_open_proposals_and_is_audited(office: Office) -> None:
    payment = _pay(office.payment())
    refund = _propose(payment, reason="Documents   missing")
    theirs = _propose(_pay(make_payment()))
    response = office.client(office.cashier).get(LIST)
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    page = _page(response)
    row = page[page.index(f'id="proposal-{refund.pk}"') :]
    for shown in (
        payment.reference,
        office.service.name,
        payment.application.reference,
        "50,000 VND",
        "Application rejected: Documents missing",
        refund.reference,
    ):
        assert shown in row, shown
    assert f'href="/office/payments/{payment.public_id}/"' in row
    assert "1 proposal to decide." in page
    assert theirs.reference not in page and theirs.payment.reference not in page
    # A cashier sees the proposals but has no form to decide them.
    assert "Only payments officers can accept or decline" in page and _decide(refund) not in page
    assert 'href="/office/payments/proposals/" aria-current="page"' in page
    entry = AuditEntry.objects.get(action="payment.proposals_view")
    assert entry.actor == office.cashier.user and entry.details["refunds"] == [refund.reference]

    officer_page = _page(office.client().get(LIST))
    assert _decide(refund) in officer_page and f'id="proposal-{refund.pk}-amount"' in officer_page
    assert 'value="50000"' in officer_page


def test_the_list_filters_by_payment_and_says_when_nothing_waits(office: Office) -> None:
    first = _propose(_pay(office.payment()))
    second = _propose(_pay(office.payment(other_service=True)))
    client = office.client()
    reference = first.payment.reference
    narrowed = _page(client.get(LIST, {"payment": f" {reference[:5]} {reference[5:].lower()} "}))
    assert first.reference in narrowed and second.reference not in narrowed
    assert "Show every payment's proposals" in narrowed
    nothing = _page(office.client(office.cashier).get(LIST, {"payment": "CVNOPE"}))
    assert "No refund proposal is waiting for a decision." in nothing
    assert "No refund proposal has been decided yet." in nothing
    assert not AuditEntry.objects.filter(action="payment.proposals_view", actor=office.cashier.user).exists()


def test_the_list_costs_the_same_queries_for_2_or_8_proposals(
    office: Office, django_assert_max_num_queries: Any
) -> None:
    client = office.client()
    client.get(LIST)  # warm the session and the officer's second factor check

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(LIST).status_code == 200
        return len(queries)

    def add(n: int) -> None:
        for index in range(n):
            refund = _propose(_pay(office.payment(other_service=index % 2 == 1)))
            if index % 2:
                services.refund_proposal_decide(refund=refund, officer=office.officer, accept=True)

    add(2)
    few = count()
    add(6)
    assert count() == few
    # Session, user, officer, second factor, count, open page, decided, audit entry, unread, agency.
    with django_assert_max_num_queries(10):
        client.get(LIST)


def test_the_payment_page_counts_its_open_proposals_and_links_them(office: Office) -> None:
    payment = _pay(office.payment())
    detail = f"/office/payments/{payment.public_id}/"
    client = office.client(office.cashier)
    assert 'id="payment-proposals"' not in _page(client.get(detail))
    refund = _propose(payment)
    page = _page(client.get(detail))
    notice = page[page.index('id="payment-proposals"') :]
    assert "1 refund proposal waits for a decision." in notice
    assert f'href="/office/payments/proposals/?payment={payment.reference}"' in notice
    services.refund_proposal_decide(
        refund=refund, officer=office.officer, accept=False, reason="Paid by mistake"
    )
    assert 'id="payment-proposals"' not in _page(client.get(detail))


def test_the_payment_page_names_the_proposal_and_its_decline_among_the_events(office: Office) -> None:
    payment = _pay(office.payment())
    refund = _propose(payment)
    services.refund_proposal_decide(
        refund=refund, officer=office.officer, accept=False, reason="Paid by mistake"
    )
    page = _page(office.client(office.cashier).get(f"/office/payments/{payment.public_id}/"))
    start = page.index('id="payment-events"')
    events = page[start : page.index("</table>", start)]
    proposed = events.index(">Refund proposed</th>")
    assert proposed < events.index(">Refund proposal declined</th>")
    assert "refund_proposed" not in events and "refund_declined" not in events


# --- deciding ------------------------------------------------------------------------------------


def test_accepting_in_full_requests_the_refund_as_a_manual_refund_would(office: Office) -> None:
    payment = _pay(office.payment(method=Payment.Method.GATEWAY))
    refund = _propose(payment)
    client = office.client()
    done = client.post(_decide(refund), {"action": "accept", "amount": "50.000"}, follow=True)
    assert done.redirect_chain[-1] == (LIST, 302)
    page = _page(done)
    assert f"Refund {refund.reference} of 50,000 VND is requested from the gateway." in page
    refund.refresh_from_db()
    assert (refund.status, refund.amount_minor, refund.requested_by) == (
        Refund.Status.REQUESTED,
        50000,
        office.officer.user,
    )
    # The same path as a refund from the payment's page: an event, an audit entry, the gateway job.
    event = PaymentEvent.objects.get(payment=payment, kind="refund_request")
    assert event.amount_minor == 50000 and event.source == PaymentEvent.Source.OFFICER
    assert "proposed" not in event.data
    assert AuditEntry.objects.filter(action="payment.refund_request", actor=office.officer.user).exists()
    assert Job.objects.get(name="payments.refund_send").payload == {"refund_id": refund.pk}
    decided = page[page.index('id="decided-table"') :]
    assert refund.reference in decided and "Accepted: the refund is on its way" in decided
    assert "0 proposals to decide." in page


def test_accepting_less_refunds_only_that(office: Office) -> None:
    payment = _pay(office.payment())
    refund = _propose(payment)
    done = office.client().post(f"{_decide(refund)}?page=1", {"action": "accept", "amount": "20000"})
    assert done.status_code == 302 and done["Location"] == f"{LIST}?page=1"
    refund.refresh_from_db()
    assert (refund.status, refund.amount_minor) == (Refund.Status.REQUESTED, 20000)
    event = PaymentEvent.objects.get(payment=payment, kind="refund_request")
    assert event.amount_minor == 20000 and event.data["proposed"] == 50000
    # A bank-transfer refund is then confirmed on the payment's page, as any other.
    page = _page(office.client().get(f"/office/payments/{payment.public_id}/"))
    assert "Confirm bank transfer sent" in page


def test_declining_records_the_reason(office: Office) -> None:
    payment = _pay(office.payment())
    refund = _propose(payment)
    done = office.client().post(
        _decide(refund), {"action": "decline", "reason": "Fee is not refundable by law"}, follow=True
    )
    page = _page(done)
    assert f"The refund proposal {refund.reference} for payment {payment.reference} is declined." in page
    refund.refresh_from_db()
    assert refund.status == Refund.Status.DECLINED and refund.requested_by == office.officer.user
    event = PaymentEvent.objects.get(payment=payment, kind="refund_declined")
    assert event.data["reason"] == "Fee is not refundable by law"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and payment.refunded_minor == 0
    decided = page[page.index('id="decided-table"') :]
    assert "Declined: Fee is not refundable by law" in decided
    assert not Job.objects.filter(name="payments.refund_send").exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"action": "accept", "amount": "50001"}, "amount", "at most 50,000 VND"),
        ({"action": "accept", "amount": "60.000"}, "amount", "at most 50,000 VND"),
        ({"action": "accept", "amount": "0"}, "amount", "The amount must be more than 0."),
        ({"action": "accept", "amount": "-5000"}, "amount", "The amount must be more than 0."),
        ({"action": "accept", "amount": "twenty"}, "amount", "Enter the amount in dong, in digits"),
        ({"action": "accept", "amount": "1e5"}, "amount", "Enter the amount in dong, in digits"),
        ({"action": "accept", "amount": "٥٠٠٠"}, "amount", "Enter the amount in dong, in digits"),
        ({"action": "accept", "amount": "99999999999999999999"}, "amount", "Enter the amount in dong"),
        ({"action": "accept", "amount": "  "}, "amount", "Enter the amount to refund, in dong."),
        ({"action": "accept"}, "amount", "Enter the amount to refund, in dong."),
        ({"action": "decline", "reason": "  \n "}, "reason", "Say why the refund is declined."),
        ({"action": "decline"}, "reason", "Say why the refund is declined."),
        ({"action": "decline", "reason": "x" * 501}, "reason", "in at most 500 characters"),
        ({"action": "approve", "amount": "1000"}, "", "Choose whether to accept or decline"),
        ({}, "", "Choose whether to accept or decline"),
    ],
)
def test_bad_input_is_answered_with_a_message_and_changes_nothing(
    office: Office, data: dict[str, str], field: str, message: str
) -> None:
    payment = _pay(office.payment())
    refund = _propose(payment)
    events = PaymentEvent.objects.filter(payment=payment).count()
    answer = office.client().post(_decide(refund), data)
    assert answer.status_code == 422
    page = _page(answer)
    assert message in page
    if field:
        assert f'id="proposal-{refund.pk}-{field}-error"' in page
        assert f'href="#proposal-{refund.pk}-{field}"' in page  # the summary links to the field
    _unchanged(refund, payment, events)


def test_the_message_is_in_the_officers_language(office: Office) -> None:
    payment = _pay(office.payment())
    refund = _propose(payment)
    client = back_office_client(office.officer.user, language="vi")
    answer = client.post(_decide(refund), {"action": "accept", "amount": "hai mươi"})
    assert answer.status_code == 422
    page = _page(answer)
    assert "Nhập số tiền bằng đồng, chỉ gồm chữ số (ví dụ 50000)." in page and '<html lang="vi"' in page


def test_a_refund_since_the_proposal_lowers_what_may_be_accepted(office: Office) -> None:
    payment = _pay(office.payment())
    refund = _propose(payment)
    services.refund_request(
        payment=payment, amount_minor=30000, reason="Charged twice", officer=office.officer
    )
    client = office.client()
    page = _page(client.get(LIST))
    assert 'value="20000"' in page and "At most 20,000 VND." in page
    too_much = client.post(_decide(refund), {"action": "accept", "amount": "50000"})
    assert too_much.status_code == 422 and "at most 20,000 VND" in _page(too_much)
    assert client.post(_decide(refund), {"action": "accept", "amount": "20000"}).status_code == 302
    refund.refresh_from_db()
    assert (refund.status, refund.amount_minor) == (Refund.Status.REQUESTED, 20000)


def test_nothing_left_to_refund_leaves_only_declining(office: Office) -> None:
    payment = _pay(office.payment())
    refund = _propose(payment)
    services.refund_request(
        payment=payment, amount_minor=50000, reason="Charged twice", officer=office.officer
    )
    client = office.client()
    page = _page(client.get(LIST))
    assert "Nothing is left to refund on this payment: decline the proposal." in page
    assert f'id="proposal-{refund.pk}-amount"' not in page and f'id="proposal-{refund.pk}-reason"' in page
    refused = client.post(_decide(refund), {"action": "accept", "amount": "1000"})
    assert refused.status_code == 422 and "at most 0 VND" in _page(refused)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.PROPOSED


def test_a_decided_proposal_or_a_second_submit_changes_nothing(office: Office) -> None:
    payment = _pay(office.payment())
    refund = _propose(payment)
    client = office.client()
    assert client.post(_decide(refund), {"action": "accept", "amount": "50000"}).status_code == 302
    events = PaymentEvent.objects.filter(payment=payment).count()
    for data in (
        {"action": "accept", "amount": "50000"},  # the same form sent again
        {"action": "accept", "amount": "1000"},
        {"action": "decline", "reason": "Changed my mind"},
    ):
        again = client.post(_decide(refund), data)
        assert again.status_code == 409
        page = _page(again)
        assert "This refund has been decided already." in page and refund.reference in page
        assert "Nothing was changed." in page
    refund.refresh_from_db()
    assert (refund.status, refund.amount_minor) == (Refund.Status.REQUESTED, 50000)
    assert PaymentEvent.objects.filter(payment=payment).count() == events
    assert Refund.objects.filter(payment=payment).count() == 1


def test_a_manual_refund_is_not_a_proposal(office: Office) -> None:
    payment = _pay(office.payment())
    manual = services.refund_request(payment=payment, amount_minor=1000, reason="x", officer=office.officer)
    answer = office.client().post(_decide(manual), {"action": "decline", "reason": "x"})
    assert answer.status_code == 404 and "not one of your agency" in _page(answer)
    manual.refresh_from_db()
    assert manual.status == Refund.Status.REQUESTED


# --- who may decide ------------------------------------------------------------------------------


def test_another_agencys_proposal_is_neither_shown_nor_decided(office: Office) -> None:
    theirs_payment = _pay(make_payment())
    theirs = _propose(theirs_payment)
    events = PaymentEvent.objects.filter(payment=theirs_payment).count()
    client = office.client()
    for data in ({"action": "accept", "amount": "50000"}, {"action": "decline", "reason": "x"}):
        answer = client.post(_decide(theirs), data)
        assert answer.status_code == 404
        page = _page(answer)
        assert "This refund proposal is not one of your agency&#x27;s. Nothing was changed." in page
        assert theirs.reference not in page
    for missing in ("999999", "9" * 30):
        answer = client.post(f"/office/payments/proposals/{missing}/decide/", {"action": "accept"})
        assert answer.status_code == 404
    _unchanged(theirs, theirs_payment, events)


def test_only_payments_officers_decide_and_only_payment_viewers_see(office: Office) -> None:
    payment = _pay(office.payment())
    refund = _propose(payment)
    events = PaymentEvent.objects.filter(payment=payment).count()
    anonymous = Client()
    assert anonymous.get(LIST)["Location"].startswith("/accounts/login/")
    assert anonymous.post(_decide(refund), {"action": "accept", "amount": "1"})["Location"].startswith(
        "/accounts/login/"
    )
    caseworker = office.client(make_officer(agency=office.agency, roles=("caseworker",)))
    assert caseworker.get(LIST).status_code == 403
    assert caseworker.post(_decide(refund), {"action": "decline", "reason": "x"}).status_code == 403
    cashier = office.client(office.cashier)
    refused = cashier.post(_decide(refund), {"action": "accept", "amount": "50000"})
    assert refused.status_code == 403
    assert cashier.post(_decide(refund), {"action": "decline", "reason": "x"}).status_code == 403
    assert cashier.get(_decide(refund)).status_code == 405
    _unchanged(refund, payment, events)


# --- accessibility, in a real browser ------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_page_passes_axe_in_chromium(live_server: Any) -> None:
    office = Office()
    refund = _propose(_pay(office.payment()))
    decided = _propose(_pay(office.payment(other_service=True)))
    services.refund_proposal_decide(
        refund=decided, officer=office.officer, accept=False, reason="Not refundable"
    )
    payment = refund.payment
    base = live_server.url

    def decline_without_reason(page: Any, check: Check) -> None:
        """The error is announced and the page stays usable; the payment's page then links here."""
        page.click(f"#proposal-{refund.pk} form:has(input[value=decline]) button[type=submit]")
        page.wait_for_selector(f"#proposal-{refund.pk}-reason-error")
        check("decline-error")
        page.goto(f"{base}/office/payments/{payment.public_id}/")
        page.wait_for_selector("#payment-proposals")
        check("detail")

    found = axe_in_chromium(
        base_url=base,
        session=office.client().cookies[settings.SESSION_COOKIE_NAME].value,
        pages={"list": f"{base}{LIST}"},
        actions=[decline_without_reason],
    )
    assert len(found) == 6
