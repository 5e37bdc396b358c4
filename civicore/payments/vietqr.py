"""VietQR, Napas's profile of the EMVCo merchant-presented QR code that Vietnamese banking apps scan
to pre-fill a NAPAS247 transfer: built, read back and drawn. Invariants: what we build is printable
ASCII TLV ending in its CRC (ID 63); input we cannot accept raises VietQRError with a stable code.

Sources (facts only, no text reused):
- Napas, "Tai lieu quy dinh ve dinh dang ma VietQR trong dich vu chuyen nhanh NAPAS247", version 1.0,
  September 2021, published on vietqr.net: table 1 (root objects, 01 and 58 mandatory), 5.1 (lengths
  01..99; 00 first, 63 last), 5.2.2 (11 = static, reusable; 12 = dynamic, one transaction), table 4
  and 5.2.3.2 (ID 38: GUID 00 "A000000727"; 01 beneficiary = 00 BIN of 6 + 01 account or card number
  of at most 19; 02 service QRIBFTTA to an account, QRIBFTTC to a card), 5.2.5 (VND is "704"), 5.2.6
  (amount: at most 13, non-zero, digits and at most one "." with as many decimals as the currency
  exponent), 5.2.11-5.2.12 (name at most 25, city at most 15, ANS), table 2 and 5.2.14 (ID 62 at
  most 99, purpose of transaction 08 ANS at most 25), 5.2.15 (CRC: ISO/IEC 13239, polynomial 1021,
  initial FFFF, over everything up to and including "6304"), 6.1 (worked examples with their CRC).
- EMVCo, EMV QR Code Specification for Payment Systems, Merchant-Presented Mode, version 1.1 (2020),
  which the Napas document profiles: ANS is the EMV common character set (printable ASCII).
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field

import segno

from civicore.core.errors import ValidationFailed

NAPAS_GUID = "A000000727"
COUNTRY = "VN"
SERVICES = {"account": "QRIBFTTA", "card": "QRIBFTTC"}
CURRENCIES = {"VND": "704"}  # NAPAS247 transfers are in dong only; VND has no minor unit
PAYLOAD_FORMAT = "01"
STATIC, DYNAMIC = "11", "12"

BIN_LENGTH = 6
ACCOUNT_MAX = 19
AMOUNT_MAX = 10**13 - 1  # 13 characters without a decimal point
REFERENCE_MAX = 25
NAME_MAX = 25
CITY_MAX = 15
ADDITIONAL_MAX = {f"{n:02d}": 25 for n in range(1, 9)} | {"09": 3}
# Our own bound: a VietQR is far shorter, and it caps the work a hostile string can cause.
PAYLOAD_MAX = 512
TITLE_MAX = 200
SCALE_MAX = 64

_BIN = re.compile(r"[0-9]{6}")
_ACCOUNT = re.compile(r"[A-Za-z0-9]+")
_CARD = re.compile(r"[0-9]+")
_REFERENCE = re.compile(r"[A-Za-z0-9]+")
_ANS = re.compile(r"[\x20-\x7e]*")
_AMOUNT = re.compile(r"[0-9]+\.?")  # VND: exponent 0, so a "." may only end the number
_CRC = re.compile(r"[0-9A-Fa-f]{4}")
_DIGITS2 = re.compile(r"[0-9]{2}")


class VietQRError(ValidationFailed):
    """A VietQR payload could not be built or read; `code` says which rule was broken."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


@dataclass(frozen=True, slots=True)
class VietQR:
    """The fields of a VietQR payload, decoded and checked."""

    bank_bin: str
    account: str
    service: str | None  # "account", "card", or None when the code names no service
    amount_minor: int | None  # None: the payer types the amount
    currency: str
    reference: str  # 62/08, the transfer content banks show and return; "" when absent
    dynamic: bool  # point of initiation "12": the code is meant for one transaction
    merchant_name: str = ""
    merchant_city: str = ""
    country: str = COUNTRY
    additional: dict[str, str] = field(default_factory=dict)  # other objects of ID 62, by ID


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        crc &= 0xFFFF
    return crc


def payload(
    *,
    bank_bin: str,
    account: str,
    amount_minor: int | None,
    reference: str,
    currency: str = "VND",
    merchant_name: str = "",
    merchant_city: str = "",
    service: str = "account",
) -> str:
    """The VietQR text for a transfer of `amount_minor` to `account` at the bank `bank_bin`.

    With an amount the code is dynamic ("12", one payment); without one it is static ("11") and the
    payer types the amount. `reference` goes into 62/08, which banks show as the transfer content.
    """
    _check_bin(bank_bin)
    service_code = _service_code(service)
    _check_account(account, service=service)
    currency_code = _currency_code(currency)
    amount_text = None if amount_minor is None else _amount_text(amount_minor)
    _check_reference(reference)
    name = _merchant_text(merchant_name, what="merchant name", limit=NAME_MAX)
    city = _merchant_text(merchant_city, what="merchant city", limit=CITY_MAX)

    beneficiary = _tlv("00", bank_bin) + _tlv("01", account)
    account_info = _tlv("00", NAPAS_GUID) + _tlv("01", beneficiary) + _tlv("02", service_code)
    parts = [
        _tlv("00", PAYLOAD_FORMAT),
        _tlv("01", STATIC if amount_text is None else DYNAMIC),
        _tlv("38", account_info),
        _tlv("53", currency_code),
    ]
    if amount_text is not None:
        parts.append(_tlv("54", amount_text))
    parts.append(_tlv("58", COUNTRY))
    if name:
        parts.append(_tlv("59", name))
    if city:
        parts.append(_tlv("60", city))
    parts.append(_tlv("62", _tlv("08", reference)))
    body = "".join(parts) + "6304"
    return f"{body}{crc16_ccitt(body.encode('ascii')):04X}"


def parse(text: str) -> VietQR:
    """Read a scanned VietQR text back into its fields, checking the CRC first and then every rule."""
    if not isinstance(text, str) or not text:
        raise VietQRError("malformed", "A VietQR code is a non-empty text.")
    if len(text) > PAYLOAD_MAX:
        raise VietQRError("malformed", f"The code is longer than {PAYLOAD_MAX} characters.")
    if not text.isprintable():
        raise VietQRError("malformed", "The code contains control or other non-printable characters.")
    if len(text) < 8 or text[-8:-4] != "6304" or not _CRC.fullmatch(text[-4:]):
        raise VietQRError("malformed", "The code does not end with its CRC (ID 63, length 04).")
    # Checked before the structure: any misread or altered character is reported as such.
    if int(text[-4:], 16) != crc16_ccitt(text[:-4].encode("utf-8")):
        raise VietQRError("crc_mismatch", "The CRC does not match: the code was altered or misread.")

    root = _objects(text, where="the code")
    ids = list(root)
    if ids[0] != "00" or root["00"] != PAYLOAD_FORMAT:
        raise VietQRError("malformed", "The code does not start with payload format indicator 01.")
    if ids[-1] != "63" or len(root["63"]) != 4:
        raise VietQRError("malformed", "The CRC (ID 63) is not the last object of the code.")
    initiation = _required(root, "01", where="the code")
    if initiation not in (STATIC, DYNAMIC):
        raise VietQRError("value_invalid", "The point of initiation (ID 01) must be 11 or 12.")
    country = _required(root, "58", where="the code")
    if country != COUNTRY:
        raise VietQRError("value_invalid", "The country code (ID 58) must be VN.")

    merchant = _objects(_required(root, "38", where="the code"), where="ID 38")
    if _required(merchant, "00", where="ID 38") != NAPAS_GUID:
        raise VietQRError("not_vietqr", "ID 38 does not carry the Napas identifier A000000727.")
    beneficiary = _objects(_required(merchant, "01", where="ID 38"), where="ID 38/01")
    bank_bin = _required(beneficiary, "00", where="ID 38/01")
    _check_bin(bank_bin)
    service = None
    if "02" in merchant:
        names = {code: name for name, code in SERVICES.items()}
        if merchant["02"] not in names:
            raise VietQRError("service_invalid", "The service (ID 38/02) is not QRIBFTTA or QRIBFTTC.")
        service = names[merchant["02"]]
    account = _required(beneficiary, "01", where="ID 38/01")
    _check_account(account, service=service or "account")

    currencies = {code: name for name, code in CURRENCIES.items()}
    currency_code = _required(root, "53", where="the code")
    if currency_code not in currencies:
        raise VietQRError("currency_unsupported", "The currency (ID 53) is not 704 (VND).")
    amount_minor = _read_amount(root["54"]) if "54" in root else None

    additional: dict[str, str] = {}
    if "62" in root:
        additional = _objects(root["62"], where="ID 62")
        for sub_id, value in additional.items():
            if sub_id in ADDITIONAL_MAX:
                _ans_text(value, what=f"ID 62/{sub_id}", limit=ADDITIONAL_MAX[sub_id])
    reference = additional.pop("08", "")

    return VietQR(
        bank_bin=bank_bin,
        account=account,
        service=service,
        amount_minor=amount_minor,
        currency=currencies[currency_code],
        reference=reference,
        dynamic=initiation == DYNAMIC,
        merchant_name=_ans_text(root.get("59", ""), what="merchant name", limit=NAME_MAX),
        merchant_city=_ans_text(root.get("60", ""), what="merchant city", limit=CITY_MAX),
        country=country,
        additional=additional,
    )


def qr_svg(text: str, *, title: str) -> str:
    """An inline, accessible SVG of the code: it fills its container's width (viewBox, no size),
    keeps a white quiet zone on dark pages, and is named by `title` for screen readers."""
    parse(text)  # never draw a code that would not read back
    label = _title(title)
    out = io.BytesIO()
    _symbol(text).save(
        out,
        kind="svg",
        xmldecl=False,
        omitsize=True,
        nl=False,
        title=label,
        svgclass="vietqr",
        dark="#000",
        light="#fff",
        encoding="utf-8",
    )
    svg = out.getvalue().decode("utf-8")
    return svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(label, quote=True)}" ', 1)


def qr_png(text: str, *, scale: int = 8) -> bytes:
    """The code as a PNG, `scale` pixels per module, with the 4-module quiet zone QR requires."""
    parse(text)
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= SCALE_MAX:
        raise VietQRError("value_invalid", f"The scale must be a whole number from 1 to {SCALE_MAX}.")
    out = io.BytesIO()
    _symbol(text).save(out, kind="png", scale=scale, border=4, dark="#000", light="#fff")
    return out.getvalue()


def _symbol(text: str) -> segno.QRCode:
    # Level M exactly: segno would otherwise raise it when that costs no size, and a full QR,
    # never a Micro QR, which banking apps do not read.
    return segno.make_qr(text, error="m", boost_error=False, encoding="utf-8")


def _tlv(object_id: str, value: str) -> str:
    assert 1 <= len(value) <= 99, (object_id, value)
    return f"{object_id}{len(value):02d}{value}"


def _objects(text: str, *, where: str) -> dict[str, str]:
    """Split a TLV string into {ID: value}; lengths count characters, as the spec defines them."""
    found: dict[str, str] = {}
    position = 0
    while position < len(text):
        header = text[position : position + 4]
        if len(header) < 4 or not _DIGITS2.fullmatch(header[:2]) or not _DIGITS2.fullmatch(header[2:]):
            raise VietQRError("malformed", f"Invalid ID or length at character {position + 1} of {where}.")
        object_id, length = header[:2], int(header[2:])
        start = position + 4
        if length == 0 or start + length > len(text):
            raise VietQRError(
                "malformed", f"ID {object_id} in {where} declares a length that overruns or is zero."
            )
        if object_id in found:
            raise VietQRError("duplicate_id", f"ID {object_id} appears twice in {where}.")
        found[object_id] = text[start : start + length]
        position = start + length
    return found


def _required(objects: dict[str, str], object_id: str, *, where: str) -> str:
    if object_id not in objects:
        raise VietQRError("field_missing", f"ID {object_id} is missing from {where}.")
    return objects[object_id]


def _check_bin(bank_bin: object) -> None:
    if not isinstance(bank_bin, str) or not _BIN.fullmatch(bank_bin):
        raise VietQRError("bin_invalid", f"The bank BIN must be exactly {BIN_LENGTH} digits.")


def _service_code(service: object) -> str:
    if not isinstance(service, str) or service not in SERVICES:
        raise VietQRError("service_invalid", "The service must be 'account' or 'card'.")
    return SERVICES[service]


def _check_account(account: object, *, service: str) -> None:
    pattern = _CARD if service == "card" else _ACCOUNT
    if not isinstance(account, str) or not pattern.fullmatch(account):
        kind = "A card number has digits only" if service == "card" else "An account has letters and digits"
        raise VietQRError("account_invalid", f"{kind}, with no spaces or other characters.")
    if len(account) > ACCOUNT_MAX:
        raise VietQRError("field_too_long", f"The account or card number is longer than {ACCOUNT_MAX}.")


def _currency_code(currency: object) -> str:
    if not isinstance(currency, str) or currency not in CURRENCIES:
        raise VietQRError("currency_unsupported", "VietQR transfers are in VND only.")
    return CURRENCIES[currency]


def _amount_text(amount_minor: object) -> str:
    # bool is an int; a float or Decimal would hide a rounding decision: both refused.
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise VietQRError("amount_invalid", "The amount must be a whole number of dong.")
    if not 0 < amount_minor <= AMOUNT_MAX:
        raise VietQRError("amount_invalid", f"The amount must be from 1 to {AMOUNT_MAX} dong.")
    return str(amount_minor)


def _read_amount(text: str) -> int:
    if len(text) > 13 or not _AMOUNT.fullmatch(text) or int(text.rstrip(".")) == 0:
        raise VietQRError("amount_invalid", "The amount (ID 54) is not a non-zero number of dong.")
    return int(text.rstrip("."))


def _check_reference(reference: object) -> None:
    # Banks strip anything else from the transfer content, and the statement must match it exactly.
    if not isinstance(reference, str) or not _REFERENCE.fullmatch(reference):
        raise VietQRError("reference_invalid", "The reference must be ASCII letters and digits only.")
    if len(reference) > REFERENCE_MAX:
        raise VietQRError("field_too_long", f"The reference is longer than {REFERENCE_MAX} characters.")


def _ans_text(value: object, *, what: str, limit: int) -> str:
    """A value of the spec's ANS format (printable ASCII) within its length limit."""
    if not isinstance(value, str) or not _ANS.fullmatch(value):
        raise VietQRError("text_invalid", f"The {what} must be printable ASCII (no accents, no controls).")
    if len(value) > limit:
        raise VietQRError("field_too_long", f"The {what} is longer than {limit} characters.")
    return value


def _merchant_text(value: object, *, what: str, limit: int) -> str:
    # Stricter than the spec for what we emit: apps trim spaces, and then the code would not match.
    text = _ans_text(value, what=what, limit=limit)
    if text != text.strip(" "):
        raise VietQRError("text_invalid", f"The {what} must not start or end with a space.")
    return text


def _title(title: object) -> str:
    if not isinstance(title, str) or not title.strip() or not title.isprintable():
        raise VietQRError("text_invalid", "The title must be printable text.")
    if len(title) > TITLE_MAX:
        raise VietQRError("field_too_long", f"The title is longer than {TITLE_MAX} characters.")
    return title
