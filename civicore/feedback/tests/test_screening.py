"""The screener hides phone numbers, e-mail addresses, ID numbers and card numbers, and leaves
dates, amounts and reference numbers as they were."""

from __future__ import annotations

import pytest
from django.utils import translation

from civicore.feedback.screening import luhn_valid, screen

PHONE = "[phone number]"
EMAIL = "[e-mail address]"
ID = "[ID number]"
CARD = "[payment card number]"


@pytest.fixture(autouse=True)
def _english() -> None:
    translation.activate("en")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Vietnamese mobiles and landlines, national and international forms
        ("Gọi tôi số 0912345678 nhé", f"Gọi tôi số {PHONE} nhé"),
        ("SĐT: 0912 345 678", f"SĐT: {PHONE}"),
        ("0912.345.678", PHONE),
        ("0912-345-678", PHONE),
        ("091 234 5678", PHONE),
        ("091-2345-678", PHONE),
        ("038 765 4321.", f"{PHONE}."),
        ("(0987654321)", f"({PHONE})"),
        ("+84 912 345 678", PHONE),
        ("+84912345678", PHONE),
        ("+84 (0) 912 345 678", PHONE),
        ("0084 912 345 678", PHONE),
        ("+84-28-3822-1234", PHONE),
        ("028 3822 1234", PHONE),
        ("0283 822 1234", PHONE),
        ("02838221234", PHONE),
        ("0912345678 để liên hệ", f"{PHONE} để liên hệ"),
        # Singapore
        ("+65 9123 4567", PHONE),
        ("+6591234567", PHONE),
        ("call 9123 4567 after 6pm", f"call {PHONE} after 6pm"),
        ("6123-4567", PHONE),
        ("81234567", PHONE),
        # e-mail
        ("an.nguyen@example.com.vn", EMAIL),
        ("write to TRAN_B+rates@mail.example.org.", f"write to {EMAIL}."),
        # Vietnamese ID numbers
        ("CCCD 079090001234", f"CCCD {ID}"),
        ("CCCD: 0790 9000 1234", f"CCCD: {ID}"),
        ("079 090 001 234", ID),
        ("CMND 024123456", f"CMND {ID}"),
        ("CMND 024 123 456", f"CMND {ID}"),
        # Singapore NRIC / FIN
        ("NRIC S1234567D", f"NRIC {ID}"),
        ("my FIN is G7654321X.", f"my FIN is {ID}."),
        ("t0123456a", ID),
        ("M1234567K", ID),
        # card numbers that pass the Luhn check
        ("card 4111 1111 1111 1111", f"card {CARD}"),
        ("4111-1111-1111-1111", CARD),
        ("5500005555555559", CARD),
        ("378282246310005", CARD),
        ("6011 0009 9013 9424", CARD),
        # several at once
        (
            "Tôi là S1234567D, email a@b.vn, số 0912345678, thẻ 4111111111111111.",
            f"Tôi là {ID}, email {EMAIL}, số {PHONE}, thẻ {CARD}.",
        ),
    ],
)
def test_personal_data_is_replaced(text: str, expected: str) -> None:
    assert screen(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Hồ sơ HCM-2026-000123 được giải quyết nhanh",
        "HCM-2026-012345678",
        "Ngày 15/01/2026 lúc 10:30",
        "01-02-2026 10:30",
        "2026-01-15",
        "20260115",
        "Phí 1.500.000đ",
        "phí 85.000.000 VND",
        "90000000 đ",
        "150000000 VND",
        "S$ 1,250.00",
        "thuế 3.5%",
        "số 12 Lê Lợi, phường 4, quận 3",
        "Mã thanh toán CV7K2M9QX4",
        "4111 1111 1111 1112",  # 16 digits, not Luhn-valid
        "1234567890123456789012",  # too long for a card
        "Quầy số 5, tầng 2, giờ 8-17",
        "T2026 report",
        "version 2.0.1",
        "mã số thuế 0312345678-001",
        "GPS 10.776889, 106.700806",
        "",
        "Rất hài lòng, cán bộ nhiệt tình!",
    ],
)
def test_ordinary_text_survives(text: str) -> None:
    assert screen(text) == text


def test_the_placeholder_is_in_the_active_language() -> None:
    with translation.override("vi"):
        screened = screen("0912345678")
    assert screened.startswith("[") and screened.endswith("]") and "0912345678" not in screened


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")
