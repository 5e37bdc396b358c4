"""VietQR payloads: the CRC, the layout Napas publishes, round trips, independent decoders (zxing-cpp,
crcmod, cemacqr), the drawn code, and a stable error for every hostile input."""

from __future__ import annotations

import io
import random
import string
import xml.etree.ElementTree as ET
from typing import Any

import crcmod.predefined
import pytest
import zxingcpp
from cemacqr import parse_tlv
from PIL import Image

from civicore.payments import vietqr
from civicore.payments.vietqr import VietQRError, crc16_ccitt, parse, payload, qr_png, qr_svg

# Napas, "Tai lieu quy dinh ve dinh dang ma VietQR trong dich vu chuyen nhanh NAPAS247", v1.0,
# September 2021 (vietqr.net), section 6.1: worked examples with the CRC Napas gives for each.
NAPAS_STATIC_CARD = (
    "00020101021138600010A00000072701300006970403011697040311012345670208QRIBFTTC53037045802VN63044F52"
)
NAPAS_DYNAMIC_ACCOUNT = (
    "00020101021238570010A00000072701270006970403011300110123456780208QRIBFTTA530370454061800005802VN"
    "62340107NPS68690819thanh toan don hang63042E2E"
)
NAPAS_DYNAMIC_CARD = (
    "00020101021238600010A00000072701300006970403011697040311012345670208QRIBFTTC530370454061800005802VN"
    "62340107NPS68690819thanh toan don hang6304A203"
)
# Section 6.1.1 as printed: its CRC F4E5 is right for the text, but ID 38/01 says "0112" for a
# 13-digit account, so the beneficiary template overruns. A careful reader must refuse it.
NAPAS_STATIC_ACCOUNT_AS_PRINTED = (
    "00020101021138570010A00000072701270006970403011200110123456780208QRIBFTTA53037045802VN6304F4E5"
)

FEE: dict[str, Any] = {
    "bank_bin": "970403",
    "account": "0011012345678",
    "amount_minor": 180_000,
    "reference": "HS2025000123",
}
crc_ccitt_false = crcmod.predefined.mkCrcFun("crc-ccitt-false")


def _fee(**changes: Any) -> str:
    return payload(**(FEE | changes))


def _with_crc(body: str) -> str:
    """A payload whose CRC is right, so that only the structure is under test."""
    body += "6304"
    return f"{body}{crc16_ccitt(body.encode('utf-8')):04X}"


def _error_code(call: Any) -> str:
    with pytest.raises(VietQRError) as caught:
        call()
    return caught.value.code


def _decode_png(png: bytes) -> list[Any]:
    image = Image.open(io.BytesIO(png))
    return list(zxingcpp.read_barcodes(image))


# --- CRC ------------------------------------------------------------------------------------------


def test_crc16_check_value_is_the_ccitt_false_one() -> None:
    assert crc16_ccitt(b"123456789") == 0x29B1
    assert crc16_ccitt(b"") == 0xFFFF


def test_crc16_agrees_with_crcmod_on_arbitrary_bytes() -> None:
    rng = random.Random(20250101)
    for size in range(0, 300, 7):
        data = bytes(rng.randrange(256) for _ in range(size))
        assert crc16_ccitt(data) == crc_ccitt_false(data)


@pytest.mark.parametrize("sample", [NAPAS_STATIC_CARD, NAPAS_DYNAMIC_ACCOUNT, NAPAS_DYNAMIC_CARD])
def test_our_crc_reproduces_the_published_napas_checksums(sample: str) -> None:
    assert f"{crc16_ccitt(sample[:-4].encode('ascii')):04X}" == sample[-4:]


# --- the published examples -----------------------------------------------------------------------


def test_parser_reads_the_napas_dynamic_account_example() -> None:
    code = parse(NAPAS_DYNAMIC_ACCOUNT)
    assert code == vietqr.VietQR(
        bank_bin="970403",
        account="0011012345678",
        service="account",
        amount_minor=180_000,
        currency="VND",
        reference="thanh toan don hang",
        dynamic=True,
        additional={"01": "NPS6869"},
    )


def test_parser_reads_the_napas_card_examples() -> None:
    static = parse(NAPAS_STATIC_CARD)
    assert (static.service, static.account, static.amount_minor, static.dynamic) == (
        "card",
        "9704031101234567",
        None,
        False,
    )
    dynamic = parse(NAPAS_DYNAMIC_CARD)
    assert (dynamic.service, dynamic.amount_minor, dynamic.reference) == (
        "card",
        180_000,
        "thanh toan don hang",
    )


def test_builder_lays_out_the_objects_exactly_as_the_napas_example() -> None:
    # Same bank, account and amount as section 6.1.3: everything up to the country code is identical,
    # then our reference goes in 62/08 and the CRC is computed over our own text.
    built = _fee(reference="thanhtoandonhang")
    prefix = NAPAS_DYNAMIC_ACCOUNT[: NAPAS_DYNAMIC_ACCOUNT.index("5802VN") + 6]
    assert built.startswith(prefix)
    assert built[len(prefix) :] == "62200816thanhtoandonhang6304" + built[-4:]
    assert built[-4:] == f"{crc_ccitt_false(built[:-4].encode()):04X}"


def test_the_example_printed_with_a_wrong_length_is_refused_despite_its_valid_crc() -> None:
    body = NAPAS_STATIC_ACCOUNT_AS_PRINTED[:-4]
    assert f"{crc16_ccitt(body.encode()):04X}" == "F4E5"
    assert _error_code(lambda: parse(NAPAS_STATIC_ACCOUNT_AS_PRINTED)) == "malformed"


# --- building and reading back --------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"amount_minor": None},
        {"amount_minor": 1},
        {"amount_minor": 9_999_999_999_999},
        {"service": "card", "account": "9704031101234567"},
        {"account": "99MM24011M34875080", "reference": "a" * 25},
        {"merchant_name": "UBND PHUONG BEN NGHE", "merchant_city": "HO CHI MINH"},
        {"merchant_name": "Cong an Q.1 (Phong CSGT)", "merchant_city": "Ha Noi"},
        {"account": "1" * 19, "merchant_name": "N" * 25, "merchant_city": "C" * 15},
    ],
)
def test_round_trip_gives_back_every_field(changes: dict[str, Any]) -> None:
    fields = FEE | changes
    code = parse(payload(**fields))
    assert code.bank_bin == fields["bank_bin"]
    assert code.account == fields["account"]
    assert code.service == fields.get("service", "account")
    assert code.amount_minor == fields["amount_minor"]
    assert code.currency == "VND"
    assert code.reference == fields["reference"]
    assert code.merchant_name == fields.get("merchant_name", "")
    assert code.merchant_city == fields.get("merchant_city", "")
    assert code.dynamic is (fields["amount_minor"] is not None)
    assert code.additional == {}


def test_point_of_initiation_follows_the_amount() -> None:
    assert _fee().startswith("000201010212")
    assert _fee(amount_minor=None).startswith("000201010211")
    assert "5406180000" in _fee() and "5406180000" not in _fee(amount_minor=None)


def test_what_we_build_is_printable_ascii_with_uppercase_crc() -> None:
    text = _fee(merchant_name="A~B!", merchant_city="x y")
    assert text.isascii() and text.isprintable()
    assert text[-8:-4] == "6304" and text[-4:] == text[-4:].upper()


def test_a_reference_containing_6304_does_not_confuse_the_parser() -> None:
    for reference in ["6304", "63041234", "X6304ABCD6304", "6304" + "0" * 21]:
        text = _fee(reference=reference)
        assert parse(text).reference == reference
    # Even when the injected digits carry the right CRC of the text before them.
    head = _fee(reference="PLACEHOLDER").split("62")[0]
    fake_crc = f"{crc16_ccitt((head + '6304').encode()):04X}"
    text = _fee(reference=f"6304{fake_crc}")
    assert parse(text).reference == f"6304{fake_crc}"


def test_any_changed_character_is_a_crc_mismatch() -> None:
    text = _fee(merchant_name="UBND Quan 1")
    for position in range(len(text) - 8):  # the CRC object itself is tested below
        for replacement in "7a ":
            if text[position] == replacement:
                continue
            altered = text[:position] + replacement + text[position + 1 :]
            assert _error_code(lambda altered=altered: parse(altered)) == "crc_mismatch", position


def test_a_changed_crc_digit_is_a_crc_mismatch_and_lowercase_hex_is_read() -> None:
    text = _fee()
    wrong = text[:-1] + ("0" if text[-1] != "0" else "1")
    assert _error_code(lambda: parse(wrong)) == "crc_mismatch"
    assert parse(text[:-4] + text[-4:].lower()).reference == FEE["reference"]


def test_a_trailing_decimal_point_in_the_amount_is_read() -> None:
    body = _fee()[:-8].replace("5406180000", "5407180000.")
    assert parse(_with_crc(body)).amount_minor == 180_000


# --- independent checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{}, {"amount_minor": None, "service": "card", "account": "9704031101234567"}, {"merchant_name": "UBND"}],
)
def test_png_decodes_with_zxing_and_checks_with_crcmod_and_cemacqr(changes: dict[str, Any]) -> None:
    text = _fee(**changes)
    results = _decode_png(qr_png(text))
    assert len(results) == 1
    decoded = results[0]
    assert decoded.valid and decoded.format == zxingcpp.BarcodeFormat.QRCode
    assert decoded.ec_level == "M"
    assert decoded.text == text

    assert int(decoded.text[-4:], 16) == crc_ccitt_false(decoded.text[:-4].encode("ascii"))

    root = parse_tlv(decoded.text)
    tags = [item.tag for item in root]
    assert tags[0] == "00" and tags[-1] == "63" and len(tags) == len(set(tags))
    by_tag = {item.tag: item.value for item in root}
    merchant = {item.tag: item.value for item in parse_tlv(by_tag["38"])}
    beneficiary = {item.tag: item.value for item in parse_tlv(merchant["01"])}
    additional = {item.tag: item.value for item in parse_tlv(by_tag["62"])}
    fields = FEE | changes
    assert merchant["00"] == "A000000727"
    assert merchant["02"] == ("QRIBFTTC" if fields.get("service") == "card" else "QRIBFTTA")
    assert beneficiary == {"00": fields["bank_bin"], "01": fields["account"]}
    assert by_tag["53"] == "704" and by_tag["58"] == "VN"
    assert by_tag.get("54") == (None if fields["amount_minor"] is None else str(fields["amount_minor"]))
    assert by_tag["01"] == ("11" if fields["amount_minor"] is None else "12")
    assert additional == {"08": fields["reference"]}


def test_the_napas_example_decodes_the_same_in_cemacqr() -> None:
    root = {item.tag: item.value for item in parse_tlv(NAPAS_DYNAMIC_ACCOUNT)}
    assert {item.tag: item.value for item in parse_tlv(root["62"])} == {
        "01": "NPS6869",
        "08": "thanh toan don hang",
    }


def test_png_scale_sets_the_pixel_size_and_is_checked() -> None:
    text = _fee()
    small, large = (Image.open(io.BytesIO(qr_png(text, scale=s))) for s in (2, 8))
    assert large.size[0] == 4 * small.size[0] and large.size[0] == large.size[1]
    for scale in (0, -1, 65, True, 2.5):
        assert _error_code(lambda scale=scale: qr_png(text, scale=scale)) == "value_invalid"


def test_svg_is_accessible_scalable_and_matches_the_png() -> None:
    text = _fee()
    title = 'Mã QR thanh toán lệ phí <HS2025000123> & "phí"'
    svg = qr_svg(text, title=title)
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed to check it is well-formed
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == title
    assert root.find("{http://www.w3.org/2000/svg}title").text == title  # type: ignore[union-attr]
    assert root.get("width") is None and root.get("height") is None  # sized by its container
    _, _, width, height = root.get("viewBox", "").split()
    assert width == height
    png = Image.open(io.BytesIO(qr_png(text, scale=3)))
    assert png.size == (3 * int(width), 3 * int(height))
    assert 'fill="#fff"' in svg  # a white quiet zone even on a dark page
    assert "<script" not in svg.lower()


@pytest.mark.parametrize("title", ["", "   ", "a\nb", "x\x00", "t" * 201, None])
def test_svg_title_is_checked(title: Any) -> None:
    assert _error_code(lambda: qr_svg(_fee(), title=title)) in {"text_invalid", "field_too_long"}


WRONG_CRC = _fee()[:-1] + ("0" if _fee()[-1] != "0" else "1")


@pytest.mark.parametrize("text", ["", "hello", NAPAS_STATIC_ACCOUNT_AS_PRINTED, WRONG_CRC])
def test_nothing_that_does_not_parse_is_drawn(text: str) -> None:
    with pytest.raises(VietQRError):
        qr_svg(text, title="QR")
    with pytest.raises(VietQRError):
        qr_png(text)


# --- building: every validation error -------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"bank_bin": "97040"}, "bin_invalid"),
        ({"bank_bin": "9704031"}, "bin_invalid"),
        ({"bank_bin": "97O403"}, "bin_invalid"),
        ({"bank_bin": "９７０４０３"}, "bin_invalid"),  # full-width digits
        ({"bank_bin": "970403\n"}, "bin_invalid"),
        ({"bank_bin": ""}, "bin_invalid"),
        ({"bank_bin": None}, "bin_invalid"),
        ({"bank_bin": 970403}, "bin_invalid"),
        ({"account": ""}, "account_invalid"),
        ({"account": "0011 0123"}, "account_invalid"),
        ({"account": "0011-0123"}, "account_invalid"),
        ({"account": "tàikhoản1"}, "account_invalid"),
        ({"account": "0011\x000123"}, "account_invalid"),
        ({"account": "12345\n"}, "account_invalid"),
        ({"account": None}, "account_invalid"),
        ({"account": "1" * 20}, "field_too_long"),
        ({"service": "card", "account": "9704ABCD"}, "account_invalid"),
        ({"service": "card", "account": "9" * 20}, "field_too_long"),
        ({"service": "wallet"}, "service_invalid"),
        ({"service": "QRIBFTTA"}, "service_invalid"),
        ({"amount_minor": 0}, "amount_invalid"),
        ({"amount_minor": -180_000}, "amount_invalid"),
        ({"amount_minor": 10**13}, "amount_invalid"),
        ({"amount_minor": True}, "amount_invalid"),
        ({"amount_minor": 1800.5}, "amount_invalid"),
        ({"amount_minor": "180000"}, "amount_invalid"),
        ({"currency": "USD"}, "currency_unsupported"),
        ({"currency": "vnd"}, "currency_unsupported"),
        ({"currency": "704"}, "currency_unsupported"),
        ({"reference": ""}, "reference_invalid"),
        ({"reference": "HS 2025"}, "reference_invalid"),
        ({"reference": "HS-2025/01"}, "reference_invalid"),
        ({"reference": "Lệphí2025"}, "reference_invalid"),
        ({"reference": "ＨＳ２０２５"}, "reference_invalid"),  # full-width letters
        ({"reference": "HS2025\x07"}, "reference_invalid"),
        ({"reference": "HS2025\n"}, "reference_invalid"),
        ({"reference": "HS2025\u200b"}, "reference_invalid"),
        ({"reference": "HS2025" + "6304" + "ABCD" + "\r"}, "reference_invalid"),
        ({"reference": "6304ABCD" * 4}, "field_too_long"),
        ({"reference": "A" * 26}, "field_too_long"),
        ({"reference": None}, "reference_invalid"),
        ({"merchant_name": "Ủy ban nhân dân"}, "text_invalid"),
        ({"merchant_name": "UBND\tQ1"}, "text_invalid"),
        ({"merchant_name": "UBND\x1b[31m"}, "text_invalid"),
        ({"merchant_name": " UBND"}, "text_invalid"),
        ({"merchant_name": "N" * 26}, "field_too_long"),
        ({"merchant_city": "Hà Nội"}, "text_invalid"),
        ({"merchant_city": "C" * 16}, "field_too_long"),
        ({"merchant_city": None}, "text_invalid"),
    ],
)
def test_builder_refuses_hostile_input_with_a_stable_code(changes: dict[str, Any], code: str) -> None:
    assert _error_code(lambda: _fee(**changes)) == code


def test_error_is_an_application_error_with_code_and_message() -> None:
    from civicore.core.errors import ApplicationError

    with pytest.raises(ApplicationError) as caught:
        _fee(bank_bin="1")
    assert caught.value.code == "bin_invalid" and "6 digits" in caught.value.message


# --- reading: every validation error --------------------------------------------------------------

GOOD_BODY = _fee()[:-8]
MERCHANT = "38570010A00000072701270006970403011300110123456780208QRIBFTTA"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (None, "malformed"),
        (b"000201", "malformed"),
        ("", "malformed"),
        ("6304", "malformed"),
        (_fee() + "X", "malformed"),
        (_fee() + "\n", "malformed"),
        (_fee()[:-4] + "GHIJ", "malformed"),
        (_fee()[:-8], "malformed"),
        ("0" * 600, "malformed"),
        (_with_crc(GOOD_BODY.replace("5802VN", "5802VN\x00")), "malformed"),
        (_with_crc(GOOD_BODY.replace("5802VN", "58\u0662\u0660VN")), "malformed"),  # Arabic-Indic digits
        (_with_crc(GOOD_BODY.replace("5802VN", "58AAVN")), "malformed"),
        (_with_crc(GOOD_BODY.replace("5802VN", "5800VN")), "malformed"),
        (_with_crc(GOOD_BODY.replace("5802VN", "5899VN")), "malformed"),
        (_with_crc(GOOD_BODY.replace("0113001101", "0199001101")), "malformed"),  # nested overrun
        (_with_crc(GOOD_BODY.replace("01270006", "01270099")), "malformed"),  # nested-nested overrun
        (_with_crc(GOOD_BODY.replace("62160812", "62160899")), "malformed"),
        (_with_crc(GOOD_BODY.replace("000201", "000202")), "malformed"),
        (_with_crc(GOOD_BODY.replace("000201010212", "010212000201")), "malformed"),
        (_with_crc(GOOD_BODY + "63041234"), "duplicate_id"),
        (_with_crc(GOOD_BODY.replace("5802VN", "5802VN5802VN")), "duplicate_id"),
        (_with_crc(GOOD_BODY + "5406180000"), "duplicate_id"),
        (_with_crc(GOOD_BODY.replace("62160812HS2025000123", "62210812HS20250001230801X")), "duplicate_id"),
        (
            _with_crc(GOOD_BODY.replace("0208QRIBFTTA", "0208QRIBFTTA0208QRIBFTTC").replace("3857", "3869")),
            "duplicate_id",
        ),
        (_with_crc(GOOD_BODY.replace("010212", "")), "field_missing"),
        (_with_crc(GOOD_BODY.replace(MERCHANT, "")), "field_missing"),
        (_with_crc(GOOD_BODY.replace("53037045", "5")), "field_missing"),
        (_with_crc(GOOD_BODY.replace("5802VN", "")), "field_missing"),
        (_with_crc(GOOD_BODY.replace("0010A000000727", "").replace("3857", "3843")), "field_missing"),
        (_with_crc(GOOD_BODY.replace("0010A000000727", "0010A000000677")), "not_vietqr"),
        (_with_crc(GOOD_BODY.replace("010212", "010213")), "value_invalid"),
        (_with_crc(GOOD_BODY.replace("5802VN", "5802TH")), "value_invalid"),
        (_with_crc(GOOD_BODY.replace("0006970403", "000697040X")), "bin_invalid"),
        (_with_crc(GOOD_BODY.replace("0113001101", "0113 01101")), "account_invalid"),
        (_with_crc(GOOD_BODY.replace("QRIBFTTA", "QRPUSHXX")), "service_invalid"),
        (_with_crc(GOOD_BODY.replace("5303704", "5303840")), "currency_unsupported"),
        (_with_crc(GOOD_BODY.replace("5406180000", "54010")), "amount_invalid"),
        (_with_crc(GOOD_BODY.replace("5406180000", "54051,000")), "amount_invalid"),
        (_with_crc(GOOD_BODY.replace("5406180000", "5406-18000")), "amount_invalid"),
        (_with_crc(GOOD_BODY.replace("5406180000", "540618.000")), "amount_invalid"),
        (_with_crc(GOOD_BODY.replace("5406180000", "54141" + "0" * 13)), "amount_invalid"),
        (_with_crc(GOOD_BODY.replace("5802VN", "5802VN5904Hà N")), "text_invalid"),
        (_with_crc(GOOD_BODY.replace("5802VN", "5802VN5926" + "N" * 26)), "field_too_long"),
        (_with_crc(GOOD_BODY.replace("5802VN", "5802VN6016" + "C" * 16)), "field_too_long"),
        (_with_crc(GOOD_BODY.replace("62160812HS2025000123", "62300826" + "R" * 26)), "field_too_long"),
        (_with_crc(GOOD_BODY.replace("62160812HS2025000123", "62130809Lệ phí ab")), "text_invalid"),
    ],
)
def test_parser_refuses_hostile_input_with_a_stable_code(text: Any, code: str) -> None:
    assert _error_code(lambda: parse(text)) == code


def test_good_body_is_what_the_table_above_mutates() -> None:
    # Guards the table: each replacement above must hit, or the case would test nothing.
    for fragment in ["5802VN", "0113001101", "01270006", "62160812HS2025000123", "000201010212", MERCHANT]:
        assert fragment in GOOD_BODY
    assert parse(_with_crc(GOOD_BODY)) == parse(_fee())


def test_unknown_root_objects_are_tolerated_but_still_framed() -> None:
    text = _with_crc(
        GOOD_BODY.replace("5303704", "520489995303704").replace("5802VN", "5802VN6105700008003abc")
    )
    assert parse(text).reference == FEE["reference"]


def test_truncations_deletions_and_random_mutations_only_ever_raise_vietqr_errors() -> None:
    rng = random.Random(63_04)
    text = _fee(merchant_name="UBND Quan 1", merchant_city="Ho Chi Minh")
    candidates = [text[:cut] for cut in range(len(text))]
    candidates += [text[:i] + text[i + 1 :] for i in range(len(text))]
    alphabet = string.printable + "ạệ\u0000\u200b９"
    for _ in range(3000):
        chars = list(text[:-8])
        for _ in range(rng.randint(1, 4)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        mutated = "".join(chars)
        candidates.append(mutated + text[-8:])
        candidates.append(_with_crc(mutated))  # right CRC: the structure checks must hold alone
    for candidate in candidates:
        try:
            parse(candidate)
        except VietQRError as error:
            assert error.code in {
                "malformed",
                "crc_mismatch",
                "duplicate_id",
                "field_missing",
                "not_vietqr",
                "value_invalid",
                "bin_invalid",
                "account_invalid",
                "service_invalid",
                "currency_unsupported",
                "amount_invalid",
                "text_invalid",
                "field_too_long",
            }
