"""A paid fee gets one signed e-receipt: the payer downloads it, /verify vouches for it."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from pathlib import Path
from typing import Any

import pypdf
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from civicore.audit.models import AuditEntry
from civicore.core import jobs
from civicore.core.models import Job
from civicore.credentials.selectors import document_lookup, document_verify
from civicore.credentials.services import SigningNotConfigured, signing_material_reset
from civicore.credentials.tests.conftest import signing_dir  # noqa: F401 - the same fresh keys as results
from civicore.credentials.tests.helpers import append_update, flip_byte_in_signed_range
from civicore.identity.tests.factories import make_citizen
from civicore.payments import fees, receipts, services
from civicore.payments.models import Payment, PaymentEvent, Receipt
from civicore.payments.tests.factories import application_with_fee, make_payment

pytestmark = pytest.mark.django_db

# 09:05 on 5 December 2026 in Hanoi.
PAID_AT = dt.datetime(2026, 12, 5, 2, 5, tzinfo=dt.UTC)


def _paid(payment: Payment | None = None, **settle: Any) -> Payment:
    """Settle a payment as a bank statement line would."""
    payment = payment or make_payment(application_with_fee(amount=150000))
    values: dict[str, Any] = {
        "source": PaymentEvent.Source.STATEMENT,
        "key": f"bank:VCB:FT{payment.pk:08d}",
        "bank_reference": f"FT{payment.pk:08d}",
        **settle,
    }
    outcome = services.payment_settle(
        reference=payment.reference,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        at=PAID_AT,
        **values,
    )
    assert outcome.outcome is services.Outcome.APPLIED
    payment.refresh_from_db()
    return payment


def _issued(payment: Payment | None = None) -> Receipt:
    return receipts.receipt_issue(payment_id=_paid(payment).pk)


def _text(data: bytes) -> str:
    """The PDF's text with lines joined: long values wrap in the value column."""
    pages = pypdf.PdfReader(io.BytesIO(data)).pages
    return " ".join(" ".join(page.extract_text() for page in pages).split())


# --- issuing --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("signing_dir")
def test_paying_issues_exactly_one_receipt_even_when_the_hook_runs_again() -> None:
    payment = _paid()
    assert Job.objects.filter(name="payments.paid", payload__payment_id=payment.pk).count() == 1

    jobs.work(once=True)  # payments.paid, then the receipt job it enqueued
    receipt = Receipt.objects.get(payment=payment)

    # The job retried after a crash, and the hook called on its own: nothing more is issued.
    services.paid_followups_run(payment_id=payment.pk)
    receipts.receipt_hook(payment)
    jobs.work(once=True)
    assert receipts.receipt_issue(payment_id=payment.pk).pk == receipt.pk
    assert Receipt.objects.filter(payment=payment).count() == 1
    assert Job.objects.filter(name=receipts.RECEIPT_JOB).count() == 1
    assert AuditEntry.objects.filter(action="receipt.issued", subject_id=str(receipt.pk)).count() == 1


@pytest.mark.usefixtures("signing_dir")
def test_the_hook_waits_for_a_pending_receipt_job() -> None:
    payment = _paid()
    receipts.receipt_hook(payment)
    receipts.receipt_hook(payment)
    assert Job.objects.filter(name=receipts.RECEIPT_JOB, payload__payment_id=payment.pk).count() == 1


@pytest.mark.usefixtures("signing_dir")
def test_the_receipt_is_signed_by_us_and_covers_the_whole_file(settings: Any) -> None:
    receipt = _issued()
    data = receipt.file.read()

    assert data.startswith(b"%PDF-")
    assert receipt.sha256 == hashlib.sha256(data).hexdigest()
    [signature] = PdfFileReader(io.BytesIO(data)).embedded_signatures
    context = ValidationContext(trust_roots=[load_cert_from_pemder(str(settings.SIGNING_DIR / "ca.pem"))])
    status = validate_pdf_signature(signature, context)
    assert status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert "Biên lai" in str(signature.sig_object["/Reason"])


@pytest.mark.usefixtures("signing_dir")
def test_the_receipt_shows_the_payment_in_vietnamese_and_english() -> None:
    payer = make_citizen(full_name="Phạm Thị Hồng Nhung")
    receipt = _issued(make_payment(application_with_fee(payer, amount=150000)))
    payment = receipt.payment
    text = _text(receipt.file.read())

    assert receipt.number == f"RC-2026-{payment.reference[2:]}"
    for expected in (
        receipts.TITLE_VI.upper(),
        receipts.TITLE_EN,
        payment.agency.name_vi.upper(),
        receipt.number,
        payment.reference,
        payment.application.reference,
        payment.service.name_vi,
        "Phạm Thị Hồng Nhung",
        "150.000 ₫",
        "Bank transfer (VietQR)",
        f"FT{payment.pk:08d}",
        "05/12/2026 09:05",
        f"/verify/{receipt.serial}/",
    ):
        assert expected in text, expected
    assert receipt.amount_minor == 150000 and receipt.currency == "VND"


@pytest.mark.usefixtures("signing_dir")
def test_a_gateway_payment_names_the_gateway_and_its_transaction() -> None:
    payment = make_payment(method=Payment.Method.GATEWAY, gateway="vnpay")
    paid = _paid(
        payment, source=PaymentEvent.Source.GATEWAY_CALLBACK, key="vnpay:14012345:00",
        bank_reference="", gateway_transaction="14012345",
    )  # fmt: skip
    receipt = receipts.receipt_issue(payment_id=paid.pk)
    text = _text(receipt.file.read())
    assert "Card or e-wallet via VNPAY" in text and "14012345" in text and "50.000 ₫" in text


def test_breakdown_lines_are_printed_with_quantities() -> None:
    fee = {
        "amount": 50000,
        "currency": "VND",
        "items": [
            {
                "code": "copies",
                "label": {"vi": "Bản sao", "en": "Copies"},
                "quantity_field": "copies",
                "unit_amount": 5000,
            }
        ],
    }
    quote = fees.quote(fee, answers={"copies": 3}, today=dt.date(2026, 12, 5))
    rows = receipts._breakdown_rows(quote.as_json(), "VND")
    assert rows == [("Phí, lệ phí", "Fee", "50.000 ₫"), ("Bản sao", "Copies", "3 × 5.000 ₫ = 15.000 ₫")]
    assert receipts._breakdown_rows({"lines": "not a list"}, "VND") == []
    assert receipts.money_text(1500000, "VND") == "1.500.000 ₫"


@pytest.mark.usefixtures("signing_dir")
def test_an_unpaid_payment_has_no_receipt() -> None:
    payment = make_payment()
    with pytest.raises(receipts.ReceiptNotReady):
        receipts.receipt_issue(payment_id=payment.pk)
    assert not Receipt.objects.exists()


def test_without_signing_keys_the_receipt_waits_and_the_payment_follow_ups_still_run(
    tmp_path: Path, settings: Any
) -> None:
    settings.SIGNING_DIR = tmp_path / "nothing-here"
    signing_material_reset()
    payment = _paid()
    with pytest.raises(SigningNotConfigured):
        receipts.receipt_issue(payment_id=payment.pk)

    jobs.work(once=True)
    assert Job.objects.get(name="payments.paid").status == Job.Status.DONE
    waiting = Job.objects.get(name=receipts.RECEIPT_JOB)
    assert waiting.status == Job.Status.PENDING and "signing" in waiting.last_error.lower()
    assert not Receipt.objects.exists()
    signing_material_reset()


# --- the payer's download -----------------------------------------------------------------------


def _url(receipt: Receipt) -> str:
    return f"/payments/{receipt.payment.public_id}/receipt.pdf"


@pytest.mark.usefixtures("signing_dir")
def test_the_payer_downloads_the_receipt_as_a_private_attachment(client: Client) -> None:
    receipt = _issued()
    client.force_login(receipt.payment.payer.user)

    response = client.get(_url(receipt))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{receipt.number}.pdf"'
    assert "no-store" in response["Cache-Control"]
    assert b"".join(response.streaming_content) == receipt.file.open("rb").read()


@pytest.mark.usefixtures("signing_dir")
def test_another_citizen_gets_404_and_anonymous_is_sent_to_sign_in(client: Client) -> None:
    receipt = _issued()

    response = client.get(_url(receipt))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]

    client.force_login(make_citizen().user)
    assert client.get(_url(receipt)).status_code == 404
    assert client.post(_url(receipt)).status_code == 405


@pytest.mark.usefixtures("signing_dir")
def test_a_paid_payment_whose_receipt_is_not_ready_is_404(client: Client) -> None:
    payment = _paid()
    client.force_login(payment.payer.user)
    assert client.get(f"/payments/{payment.public_id}/receipt.pdf").status_code == 404


# --- /verify --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("signing_dir")
def test_verify_says_the_receipt_is_valid_and_what_it_is() -> None:
    payer = make_citizen(full_name="Phạm Thị Hồng Nhung")
    receipt = _issued(make_payment(application_with_fee(payer, amount=150000)))
    result = document_verify(pdf=receipt.file.read())

    assert result.status == "valid"
    assert result.serial == str(receipt.serial)
    assert result.kind in ("Payment receipt", "Biên lai thu phí")
    assert result.issuer == receipt.payment.agency.name
    assert result.issued_at == receipt.issued_at
    facts = dict(result.facts)
    assert facts["Receipt number"] == receipt.number
    assert facts["Amount paid"] == "150,000 VND"
    assert facts["Paid on"] == "05/12/2026"
    assert "Phạm" not in repr(result)  # the public page shows no personal data


@pytest.mark.usefixtures("signing_dir")
def test_a_changed_receipt_is_tampered() -> None:
    receipt = _issued()
    data = receipt.file.read()

    flipped = document_verify(pdf=flip_byte_in_signed_range(data))
    assert flipped.status == "tampered" and flipped.serial == str(receipt.serial)
    assert flipped.kind in ("Payment receipt", "Biên lai thu phí")
    assert document_verify(pdf=append_update(data)).status == "tampered"


@pytest.mark.usefixtures("signing_dir")
def test_the_verify_page_and_the_qr_link(client: Client) -> None:
    receipt = _issued()
    data = receipt.file.read()

    page = client.post("/verify/", {"file": SimpleUploadedFile("bien-lai.pdf", data, "application/pdf")})
    content = page.content.decode()
    assert page.status_code == 200 and 'data-status="valid"' in content
    assert receipt.number in content and "150.000 VND" in content  # Vietnamese page by default

    changed = SimpleUploadedFile("bien-lai.pdf", flip_byte_in_signed_range(data), "application/pdf")
    assert 'data-status="tampered"' in client.post("/verify/", {"file": changed}).content.decode()

    qr = client.get(f"/verify/{receipt.serial}/")
    assert qr.status_code == 200 and 'data-status="valid"' in qr.content.decode()
    assert receipt.number in qr.content.decode()
    assert document_lookup(serial=str(receipt.serial)).kind in ("Payment receipt", "Biên lai thu phí")


@pytest.mark.usefixtures("signing_dir")
def test_a_refund_later_leaves_the_receipt_as_issued() -> None:
    receipt = _issued()
    Payment.objects.filter(pk=receipt.payment_id).update(
        status=Payment.Status.REFUNDED, refunded_minor=150000, updated_at=timezone.now()
    )
    again = receipts.receipt_issue(payment_id=receipt.payment_id)
    assert again.pk == receipt.pk and again.sha256 == receipt.sha256
    assert document_verify(pdf=again.file.read()).status == "valid"
