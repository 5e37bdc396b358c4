"""Signed e-receipts for paid fees.

A payment that became paid gets exactly one Receipt: a bilingual A4 PDF, PAdES-signed with the
same material and layout as results, registered by serial and SHA-256 so /verify vouches for it.
A receipt states what was paid and when; a later refund does not change it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.catalogue.presentation import format_money
from civicore.core import jobs
from civicore.core.errors import Conflict, NotFound
from civicore.core.models import Job
from civicore.credentials.selectors import Registered
from civicore.credentials.services import (
    DocumentContent,
    person_full_name,
    signed_document,
    signed_document_store,
    verify_url,
)
from civicore.payments import references
from civicore.payments.models import Payment, Receipt
from civicore.payments.selectors import SETTLED, payment_of_payer

RECEIPT_JOB = "payments.receipt"
TITLE_VI = "Biên lai thu phí, lệ phí"
TITLE_EN = "Receipt for fees and charges"
SIGNING_REASON = f"{TITLE_VI} / {TITLE_EN}"
NUMBER_PREFIX = "RC"
# Receipts print the time in Vietnam whatever the server's TIME_ZONE.
PAYMENT_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
# ISO 4217 exponents of the currencies a fee may be in; the dong has none.
_EXPONENT = {"VND": 0}


class ReceiptNotReady(Conflict):
    """The payment has not been paid, so it has no receipt."""

    code = "receipt_not_ready"


def receipt_number(payment: Payment) -> str:
    """`RC-<year paid>-<the payment reference without its CV>`: unique because references are,
    and a reader can match a receipt to the transfer it came from."""
    assert payment.paid_at is not None  # noqa: S101 - only paid payments have receipts
    year = payment.paid_at.astimezone(PAYMENT_ZONE).year
    return f"{NUMBER_PREFIX}-{year}-{payment.reference.removeprefix(references.PREFIX)}"


def money_text(amount_minor: int, currency: str) -> str:
    """An amount as printed on a Vietnamese receipt: "150.000 ₫"; other currencies by code."""
    exponent = _EXPONENT.get(currency.upper(), 2)
    whole, minor = divmod(int(amount_minor), 10**exponent)
    text = f"{whole:,}".replace(",", ".")
    if exponent:
        text += f",{minor:0{exponent}d}"
    return f"{text} ₫" if currency.upper() == "VND" else f"{text} {currency.upper()}"


def _label(value: Any, default: tuple[str, str]) -> tuple[str, str]:
    if isinstance(value, Mapping):
        vi = str(value.get("vi") or value.get("en") or default[0])
        return vi, str(value.get("en") or "")
    return default


def _integer(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _breakdown_rows(breakdown: Any, currency: str) -> list[tuple[str, str, str]]:
    """One row per fee line as the ledger kept it (FeeQuote.as_json), then any exemption."""
    data = breakdown if isinstance(breakdown, Mapping) else {}
    lines = data.get("lines")
    rows: list[tuple[str, str, str]] = []
    for line in lines if isinstance(lines, list) else []:
        if not isinstance(line, Mapping):
            continue
        label_vi, label_en = _label(line.get("label"), ("Phí, lệ phí", "Fee"))
        quantity, amount = _integer(line.get("quantity")), _integer(line.get("amount"))
        value = money_text(amount, currency)
        if quantity > 1:
            value = f"{quantity} × {money_text(_integer(line.get('unit_amount')), currency)} = {value}"
        rows.append((label_vi, label_en, value))
    exemption = data.get("exemption")
    if isinstance(exemption, Mapping):
        rows.append(
            ("Miễn phí", "Exempt", " / ".join(filter(None, _label(exemption.get("label"), ("", "")))))
        )
    return rows


def _method_text(payment: Payment) -> str:
    if payment.method == Payment.Method.VIETQR:
        return "Chuyển khoản ngân hàng (VietQR) / Bank transfer (VietQR)"
    via = payment.gateway.upper()
    return f"Thẻ hoặc ví điện tử qua {via} / Card or e-wallet via {via}"


def _paid_at_text(paid_at: dt.datetime) -> str:
    return paid_at.astimezone(PAYMENT_ZONE).strftime("%d/%m/%Y %H:%M (UTC+7)")


def _rows(payment: Payment, number: str) -> list[tuple[str, str, str]]:
    assert payment.paid_at is not None  # noqa: S101 - checked by the caller
    service = payment.service
    rows = [
        ("Số biên lai", "Receipt number", number),
        ("Mã thanh toán", "Payment reference", payment.reference),
        ("Số hồ sơ", "Application reference", payment.application.reference or ""),
        ("Thủ tục", "Service", " / ".join(filter(None, (service.name_vi, service.name_en)))),
        ("Người nộp tiền", "Payer", person_full_name(payment.payer)),
        *_breakdown_rows(payment.breakdown, payment.currency),
        ("Tổng cộng", "Total", money_text(payment.paid_minor, payment.currency)),
        ("Hình thức thanh toán", "Method", _method_text(payment)),
    ]
    transaction_id = payment.gateway_transaction or payment.bank_reference
    if transaction_id:
        rows.append(("Mã giao dịch", "Transaction reference", transaction_id))
    rows.append(("Thời điểm thanh toán", "Paid at", _paid_at_text(payment.paid_at)))
    return rows


def receipt_issue(*, payment_id: int) -> Receipt:
    """Issue the signed receipt of a paid payment; returns the existing one if issued.

    NotFound for no such payment, ReceiptNotReady for one not paid, SigningNotConfigured when
    the signing material is missing.
    """
    existing = Receipt.objects.filter(payment_id=payment_id).first()
    if existing is not None:
        return existing
    payment = (
        Payment.objects.select_related("application", "service", "agency", "payer__user")
        .filter(pk=payment_id)
        .first()
    )
    if payment is None:
        raise NotFound("No such payment", code="payment_not_found")
    if payment.status not in SETTLED or payment.paid_at is None:
        raise ReceiptNotReady()

    agency = payment.agency
    number = receipt_number(payment)
    serial = uuid.uuid4()
    issued_at = timezone.now()
    content = DocumentContent(
        serial=serial,
        agency_vi=agency.name_vi,
        agency_en=agency.name_en,
        title_vi=TITLE_VI,
        title_en=TITLE_EN,
        fields=_rows(payment, number),
        reference=payment.application.reference or payment.reference,
        issued_at=issued_at,
        verify_url=verify_url(serial),
    )
    # Rendering and signing take a while and need no lock: done before the row is written.
    signed = signed_document(content, reason=SIGNING_REASON)

    receipt = Receipt(
        serial=serial,
        number=number,
        payment=payment,
        amount_minor=payment.paid_minor,
        currency=payment.currency,
        issued_at=issued_at,
    )
    # The one-to-one keeps the payment to one receipt, whichever worker issued it first.
    return signed_document_store(
        receipt,
        signed=signed,
        action="receipt.issued",
        person=payment.payer,
        agency=agency,
        details={"number": number, "reference": payment.reference},
        issued_meanwhile=lambda: Receipt.objects.filter(payment_id=payment_id).first(),
    )


@jobs.job(RECEIPT_JOB)
def receipt_job(payment_id: int) -> None:
    receipt_issue(payment_id=payment_id)


def receipt_hook(payment: Payment) -> None:
    """Paid hook: the receipt is issued by a job of its own, so that signing (slow, and failing
    until the signing material is set up) neither delays nor holds back the payment's other
    follow-ups. Running it again enqueues nothing more."""
    if Receipt.objects.filter(payment_id=payment.pk).exists():
        return
    waiting = Job.objects.filter(
        name=RECEIPT_JOB, payload__payment_id=payment.pk, status=Job.Status.PENDING
    ).exists()
    if not waiting:
        jobs.enqueue(RECEIPT_JOB, payment_id=payment.pk)


# --- the register /verify consults ------------------------------------------------------------


def _registered(receipt: Receipt | None) -> Registered | None:
    if receipt is None:
        return None
    paid_at = receipt.payment.paid_at or receipt.issued_at
    return Registered(
        serial=receipt.serial,
        title=TITLE_VI,
        issuer=receipt.payment.agency.name,
        issued_at=receipt.issued_at,
        kind=_("Payment receipt"),
        facts=(
            (_("Receipt number"), receipt.number),
            (_("Amount paid"), format_money(receipt.amount_minor, receipt.currency)),
            (_("Paid on"), paid_at.astimezone(PAYMENT_ZONE).strftime("%d/%m/%Y")),
        ),
    )


class ReceiptRegister:
    """Receipts as credentials' /verify sees them: no personal data, only what the receipt
    proves (its number, the agency, the amount and the date)."""

    def by_serial(self, serial: uuid.UUID) -> Registered | None:
        return _registered(Receipt.objects.select_related("payment__agency").filter(serial=serial).first())

    def by_sha256(self, digest: str) -> Registered | None:
        return _registered(Receipt.objects.select_related("payment__agency").filter(sha256=digest).first())


def receipt_filename(receipt: Receipt) -> str:
    """The download's name: the receipt number, which holds only letters, digits and dashes."""
    return f"{receipt.number}.pdf"


def receipt_of_payer(*, person: Any, public_id: Any) -> Receipt:
    """The receipt of one of the person's own payments; anyone else's, or one not issued yet,
    is not found."""
    payment = payment_of_payer(person=person, public_id=public_id)
    receipt = Receipt.objects.select_related("payment").filter(payment=payment).first()
    if receipt is None:
        raise NotFound(_("This payment has no receipt yet."), code="receipt_not_found")
    return receipt
