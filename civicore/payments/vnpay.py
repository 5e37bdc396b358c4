"""VNPAY's merchant protocol (version 2.1.0) and the gateway adapter that speaks it.

Every message between VNPAY and a merchant is signed with HMAC-SHA512 under the terminal's hash
secret: redirect and callback parameters over their sorted, form-encoded `k=v` pairs; API calls and
answers over their values joined with "|" in an order fixed per message. Nothing unsigned, or
signed otherwise, is ever believed. Amounts travel as dong x 100, times as yyyyMMddHHmmss in GMT+7.

Sources: VNPAY's merchant documentation, https://sandbox.vnpayment.vn/apis/docs/ (thanh-toan-pay/
pay.html: payment URL, return URL, IPN and the response codes; truy-van-hoan-tien/querydr&refund.html:
querydr and refund; chuyen-doi-thuat-toan/changeTypeHash.html: version 2.1.0 with HMAC-SHA512).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import re
import secrets
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote_plus, urlsplit

from civicore.payments.gateways import (
    ForgedMessage,
    GatewayError,
    GatewayResult,
    GatewayStatus,
    PaymentStart,
    RefundRequest,
    RefundResult,
    UnsupportedPayment,
)

logger = logging.getLogger(__name__)

VERSION = "2.1.0"
CURRENCY = "VND"
# Vietnam keeps no daylight saving time, so a fixed offset is exact (and needs no tz database).
GMT7 = timezone(timedelta(hours=7), "GMT+7")
TIME_FORMAT = "%Y%m%d%H%M%S"
PAY_PATH = "/paymentv2/vpcpay.html"
API_PATH = "/merchant_webapi/api/transaction"
HASH_FIELD = "vnp_SecureHash"
HASH_TYPE_FIELD = "vnp_SecureHashType"
PREFIX = "vnp_"

# The values each API message signs, in the order VNPAY's documentation gives (querydr&refund.html).
QUERY_REQUEST_FIELDS = (
    "vnp_RequestId", "vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_TxnRef",
    "vnp_TransactionDate", "vnp_CreateDate", "vnp_IpAddr", "vnp_OrderInfo",
)  # fmt: skip
REFUND_REQUEST_FIELDS = (
    "vnp_RequestId", "vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_TransactionType",
    "vnp_TxnRef", "vnp_Amount", "vnp_TransactionNo", "vnp_TransactionDate", "vnp_CreateBy",
    "vnp_CreateDate", "vnp_IpAddr", "vnp_OrderInfo",
)  # fmt: skip
QUERY_RESPONSE_FIELDS = (
    "vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode",
    "vnp_TxnRef", "vnp_Amount", "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo",
    "vnp_TransactionType", "vnp_TransactionStatus", "vnp_OrderInfo", "vnp_PromotionCode",
    "vnp_PromotionAmount",
)  # fmt: skip
REFUND_RESPONSE_FIELDS = (
    "vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode",
    "vnp_TxnRef", "vnp_Amount", "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo",
    "vnp_TransactionType", "vnp_TransactionStatus", "vnp_OrderInfo",
)  # fmt: skip
RESPONSE_FIELDS = {"querydr": QUERY_RESPONSE_FIELDS, "refund": REFUND_RESPONSE_FIELDS}

# What the merchant answers an IPN with (pay.html, "Code IPN URL"). VNPAY sends the IPN again
# until it gets 00 or 02.
IPN_ANSWERS: dict[str, tuple[str, str]] = {
    "ok": ("00", "Confirm Success"),
    "unknown_payment": ("01", "Order not found"),
    "already_settled": ("02", "Order already confirmed"),
    "amount_mismatch": ("04", "Invalid amount"),
    "signature_invalid": ("97", "Invalid signature"),
    "retry": ("99", "Unknown error"),
}

PAID = "00"
CANCELLED = "24"
SUSPECTED_FRAUD = "07"  # the money was taken, VNPAY holds the payment for review
REFUND_FULL = "02"
REFUND_PARTIAL = "03"
# vnp_TransactionStatus in a querydr answer, in the ledger's words. A payment whose refund is under
# way or was refused (05, 06, 09) was still paid: refunds are the ledger's own business.
TRANSACTION_STATUS = {
    "00": GatewayStatus.PAID,
    "01": GatewayStatus.PENDING,  # not finished
    "02": GatewayStatus.FAILED,
    "04": GatewayStatus.PENDING,  # reversed: the bank debited the payer, VNPAY did not complete it
    "05": GatewayStatus.PAID,
    "06": GatewayStatus.PAID,
    "07": GatewayStatus.PENDING,
    "09": GatewayStatus.PAID,
}
NOT_FOUND = "91"
DUPLICATE_REQUEST = "94"

# Letters, digits and a little punctuation that every URL encoder writes the same way: VNPAY asks
# for ASCII without special characters, and a character two encoders disagree on (`~`, `*`) would
# break the signature on one side.
_ORDER_INFO_UNSAFE = re.compile(r"[^A-Za-z0-9 .,:_\-]+")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
_DIGITS = re.compile(r"^[0-9]{1,15}$")
ORDER_INFO_MAX = 255
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "Civicore-Payments/1.0"


class MalformedMessage(ForgedMessage):
    """Signed correctly, but not a message this adapter can read (a field is missing or unreadable).
    Never acted on, like a forged one."""

    code = "message_malformed"


# --- the protocol ---------------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """A timezone-aware moment as VNPAY writes it: yyyyMMddHHmmss in GMT+7."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("VNPAY times are written from timezone-aware datetimes")
    return moment.astimezone(GMT7).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """yyyyMMddHHmmss in GMT+7, as VNPAY writes it; ValueError on anything else."""
    if len(text) != 14 or not text.isdigit():
        raise ValueError(f"not a VNPAY time: {text!r}")
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=GMT7)


def amount_to_vnp(amount_minor: int, *, currency: str) -> str:
    """VNPAY counts in hundredths of a dong; the ledger counts in dong (VND has no minor unit)."""
    if currency != CURRENCY:
        raise UnsupportedPayment(f"VNPAY collects {CURRENCY} only, not {currency}")
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise UnsupportedPayment("the amount must be a positive whole number of dong")
    return str(amount_minor * 100)


def amount_from_vnp(text: str) -> int:
    """Dong from VNPAY's hundredths; ValueError unless a whole number of dong."""
    if not _DIGITS.match(text):
        raise ValueError(f"not a VNPAY amount: {text!r}")
    hundredths = int(text)
    if hundredths % 100:
        raise ValueError(f"not a whole number of dong: {text!r}")
    return hundredths // 100


def plain_ascii(text: str, *, limit: int = ORDER_INFO_MAX) -> str:
    """Text VNPAY accepts: ASCII letters, digits and plain punctuation, accents dropped
    ("Lệ phí" -> "Le phi"), spaces squeezed, at most `limit` characters."""
    decomposed = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    ascii_only = decomposed.encode("ascii", "ignore").decode("ascii")
    return " ".join(_ORDER_INFO_UNSAFE.sub(" ", ascii_only).split())[:limit].strip()


def order_info(text: str) -> str:
    """vnp_OrderInfo for a description: plain ASCII, never empty."""
    return plain_ascii(text) or "Payment"


def canonical_query(params: Mapping[str, str]) -> str:
    """What a redirect or callback signs: its vnp_ parameters but the hash itself, sorted by name,
    values form-encoded as VNPAY's own examples encode them (space as "+"), joined k=v&k=v."""
    pairs = sorted(
        (key, value)
        for key, value in params.items()
        if key.startswith(PREFIX) and key not in (HASH_FIELD, HASH_TYPE_FIELD)
    )
    return "&".join(f"{quote_plus(key)}={quote_plus(value)}" for key, value in pairs)


def sign(data: str, *, secret: str) -> str:
    """HMAC-SHA512 of `data` under the terminal's hash secret, in lower-case hex."""
    return hmac.new(secret.encode("utf-8"), data.encode("utf-8"), hashlib.sha512).hexdigest()


def sign_params(params: Mapping[str, str], *, secret: str) -> str:
    return sign(canonical_query(params), secret=secret)


def signed_query(params: Mapping[str, str], *, secret: str) -> str:
    """The query string of a signed redirect: the canonical parameters, then the hash."""
    canonical = canonical_query(params)
    return f"{canonical}&{HASH_FIELD}={sign(canonical, secret=secret)}"


def _same_hash(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.strip().lower().encode("ascii", "replace"), expected.encode("ascii"))


def verify_params(params: Mapping[str, str], *, secret: str) -> dict[str, str]:
    """The vnp_ parameters of a signed redirect or callback, if their hash verifies."""
    given = params.get(HASH_FIELD)
    if not given:
        raise ForgedMessage("the message carries no vnp_SecureHash")
    if not _same_hash(given, sign_params(params, secret=secret)):
        raise ForgedMessage("vnp_SecureHash does not match the parameters")
    return {
        key: value
        for key, value in params.items()
        if key.startswith(PREFIX) and key not in (HASH_FIELD, HASH_TYPE_FIELD)
    }


def pipe_data(values: Mapping[str, str], *, fields: Sequence[str]) -> str:
    """What an API message signs: its values in the documented order, joined with "|" (a field
    that is absent counts as empty)."""
    return "|".join(values.get(name, "") for name in fields)


def sign_fields(values: Mapping[str, str], *, fields: Sequence[str], secret: str) -> str:
    return sign(pipe_data(values, fields=fields), secret=secret)


def verify_fields(values: Mapping[str, str], *, fields: Sequence[str], secret: str) -> None:
    given = values.get(HASH_FIELD)
    if not given:
        raise ForgedMessage("the answer carries no vnp_SecureHash")
    if not _same_hash(given, sign_fields(values, fields=fields, secret=secret)):
        raise ForgedMessage("vnp_SecureHash does not match the answer")


def ipn_answer(outcome: str) -> dict[str, str]:
    """VNPAY's JSON answer to an IPN for one of PaymentGateway.callback_response's outcomes."""
    code, message = IPN_ANSWERS.get(outcome, IPN_ANSWERS["retry"])
    return {"RspCode": code, "Message": message}


def request_id_for(reference: str) -> str:
    """A vnp_RequestId (1-32 letters and digits) that is the same every time for one reference, so
    a refund sent twice is refused by VNPAY as a repeat instead of paid twice."""
    if _REQUEST_ID.match(reference):
        return reference
    return hashlib.sha256(reference.encode("utf-8")).hexdigest()[:32]


# --- the adapter ----------------------------------------------------------------------------------


def _status_of_payment(response_code: str, transaction_status: str) -> GatewayStatus:
    """A return or IPN's result: paid only when both codes say so. A suspected fraud took the
    money and stays pending (paying again would take it twice); anything else failed."""
    if response_code == PAID:
        return GatewayStatus.PAID if transaction_status == PAID else GatewayStatus.PENDING
    if response_code == SUSPECTED_FRAUD:
        return GatewayStatus.PENDING
    return GatewayStatus.FAILED


def _text(value: Any) -> str:
    """An API answer's value as the string that was signed; JSON numbers are accepted as VNPAY's
    examples sometimes send them, anything stranger is unreadable."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"unexpected value {value!r}")


def _required(values: Mapping[str, str], name: str) -> str:
    value = values.get(name, "")
    if not value:
        raise MalformedMessage(f"the message has no {name}")
    return value


class VnpayGateway:
    """PaymentGateway for VNPAY: a signed redirect to its payment page, signed return and IPN
    parameters, and querydr/refund over its JSON API (`http.client`, with a timeout)."""

    code = "vnpay"

    def __init__(
        self,
        *,
        tmn_code: str,
        hash_secret: str,
        payment_url: str,
        api_url: str,
        server_ip: str = "127.0.0.1",
        timeout: float = 10.0,
        order_type: str = "other",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not tmn_code or not hash_secret:
            raise ValueError("VNPAY needs a terminal code and its hash secret")
        for url in (payment_url, api_url):
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise ValueError(f"not an http(s) URL: {url!r}")
        self.tmn_code = tmn_code
        self._secret = hash_secret
        self.payment_url = payment_url
        self.api_url = api_url
        self.server_ip = server_ip
        self.timeout = timeout
        self.order_type = order_type
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def at(cls, base_url: str, **options: Any) -> VnpayGateway:
        """The gateway whose payment page and API sit at VNPAY's sandbox paths under one base URL
        (VNPAY's own sandbox, or the local one). Production uses other hosts and paths."""
        base = base_url.rstrip("/")
        return cls(payment_url=base + PAY_PATH, api_url=base + API_PATH, **options)

    def __repr__(self) -> str:
        return f"VnpayGateway(tmn_code={self.tmn_code!r}, payment_url={self.payment_url!r})"

    # -- the payer's way to the payment page and back

    def start(self, payment: PaymentStart) -> str:
        try:
            ipaddress.ip_address(payment.payer_ip)
        except ValueError as exc:
            raise UnsupportedPayment(f"not an IP address: {payment.payer_ip!r}") from exc
        params = {
            "vnp_Version": VERSION,
            "vnp_Command": "pay",
            "vnp_TmnCode": self.tmn_code,
            "vnp_Amount": amount_to_vnp(payment.amount_minor, currency=payment.currency),
            "vnp_CurrCode": CURRENCY,
            "vnp_TxnRef": payment.reference,
            "vnp_OrderInfo": order_info(payment.description),
            "vnp_OrderType": self.order_type,
            # The ledger says "vi"; VNPAY's code for Vietnamese is "vn".
            "vnp_Locale": "en" if payment.locale == "en" else "vn",
            "vnp_ReturnUrl": payment.return_url,
            "vnp_IpAddr": payment.payer_ip,
            "vnp_CreateDate": format_time(payment.created_at),
            "vnp_ExpireDate": format_time(payment.expires_at),
        }
        return f"{self.payment_url}?{signed_query(params, secret=self._secret)}"

    def verify_return(self, params: Mapping[str, str]) -> GatewayResult:
        return self._payment_result(params)

    def verify_callback(self, params: Mapping[str, str]) -> GatewayResult:
        return self._payment_result(params)

    def _payment_result(self, params: Mapping[str, str]) -> GatewayResult:
        verified = verify_params(params, secret=self._secret)
        if verified.get("vnp_TmnCode") != self.tmn_code:
            raise MalformedMessage("the message is for another terminal")
        reference = _required(verified, "vnp_TxnRef")
        response_code = _required(verified, "vnp_ResponseCode")
        try:
            amount = amount_from_vnp(_required(verified, "vnp_Amount"))
        except ValueError as exc:
            raise MalformedMessage(str(exc)) from exc
        status = _status_of_payment(response_code, verified.get("vnp_TransactionStatus", ""))
        paid_at = None
        if status is GatewayStatus.PAID:
            try:
                paid_at = parse_time(_required(verified, "vnp_PayDate"))
            except ValueError as exc:
                raise MalformedMessage(str(exc)) from exc
        transaction_no = verified.get("vnp_TransactionNo", "")
        return GatewayResult(
            reference=reference,
            status=status,
            amount_minor=amount,
            currency=CURRENCY,
            # VNPAY numbers a payment that never reached a bank "0".
            gateway_transaction="" if transaction_no.strip("0") == "" else transaction_no,
            code=response_code,
            paid_at=paid_at,
            raw=verified,
        )

    def callback_response(self, outcome: str) -> tuple[int, dict[str, str]]:
        if outcome not in IPN_ANSWERS:
            logger.error("Unknown IPN outcome %r: answering 99 so that VNPAY sends it again", outcome)
        # VNPAY reads the answer's body only; the HTTP status is always 200.
        return 200, ipn_answer(outcome)

    # -- the merchant API

    def query(self, *, reference: str, created_at: datetime, requester_ip: str) -> GatewayResult:
        body = {
            "vnp_RequestId": secrets.token_hex(16),
            "vnp_Version": VERSION,
            "vnp_Command": "querydr",
            "vnp_TmnCode": self.tmn_code,
            "vnp_TxnRef": reference,
            "vnp_TransactionDate": format_time(created_at),
            "vnp_CreateDate": format_time(self._clock()),
            "vnp_IpAddr": requester_ip,
            "vnp_OrderInfo": order_info(f"Query {reference}"),
        }
        body[HASH_FIELD] = sign_fields(body, fields=QUERY_REQUEST_FIELDS, secret=self._secret)
        answer = self._call(body)
        code = answer.get("vnp_ResponseCode", "")
        if code == NOT_FOUND:
            return GatewayResult(
                reference=reference, status=GatewayStatus.UNKNOWN, amount_minor=None, currency=None,
                code=code, raw=answer,
            )  # fmt: skip
        if code != PAID:
            raise GatewayError(
                f"VNPAY refused the status query: {code} {answer.get('vnp_Message', '')}".strip(),
                code=f"vnpay_{code or 'no_code'}",
            )
        transaction_status = answer.get("vnp_TransactionStatus", "")
        status = TRANSACTION_STATUS.get(transaction_status, GatewayStatus.PENDING)
        try:
            amount = amount_from_vnp(_required(answer, "vnp_Amount"))
            paid_at = parse_time(answer["vnp_PayDate"]) if answer.get("vnp_PayDate") else None
        except ValueError as exc:
            raise MalformedMessage(str(exc)) from exc
        transaction_no = answer.get("vnp_TransactionNo", "")
        return GatewayResult(
            reference=reference,
            status=status,
            amount_minor=amount,
            currency=CURRENCY,
            gateway_transaction="" if transaction_no.strip("0") == "" else transaction_no,
            code=transaction_status,
            paid_at=paid_at if status is GatewayStatus.PAID else None,
            raw=answer,
        )

    def refund(self, request: RefundRequest) -> RefundResult:
        body = {
            "vnp_RequestId": request_id_for(request.refund_reference),
            "vnp_Version": VERSION,
            "vnp_Command": "refund",
            "vnp_TmnCode": self.tmn_code,
            "vnp_TransactionType": REFUND_FULL if request.full else REFUND_PARTIAL,
            "vnp_TxnRef": request.reference,
            "vnp_Amount": amount_to_vnp(request.amount_minor, currency=CURRENCY),
            "vnp_TransactionNo": request.gateway_transaction,
            # VNPAY wants the payment's vnp_CreateDate here; RefundRequest carries only when it was
            # paid, which is within the payment's validity window of it.
            "vnp_TransactionDate": format_time(request.paid_at),
            "vnp_CreateBy": plain_ascii(request.requested_by, limit=250) or "civicore",
            "vnp_CreateDate": format_time(self._clock()),
            "vnp_IpAddr": request.requester_ip,
            "vnp_OrderInfo": order_info(request.reason),
        }
        body[HASH_FIELD] = sign_fields(body, fields=REFUND_REQUEST_FIELDS, secret=self._secret)
        answer = self._call(body)
        code = answer.get("vnp_ResponseCode", "")
        if code == DUPLICATE_REQUEST:
            # The same refund reference went out before: VNPAY refuses the repeat, and whether the
            # first one went through is only known from its own answer.
            raise GatewayError("VNPAY has this refund request already", code="refund_duplicate")
        if code in ("97", "98", "99", ""):
            raise GatewayError(f"VNPAY could not take the refund: {code}", code=f"vnpay_{code or 'no_code'}")
        transaction_no = answer.get("vnp_TransactionNo", "")
        return RefundResult(
            refund_reference=request.refund_reference,
            accepted=code == PAID,
            code=code,
            gateway_transaction="" if transaction_no.strip("0") == "" else transaction_no,
            raw=answer,
        )

    def _call(self, body: dict[str, str]) -> dict[str, str]:
        """POST one API message and return its verified answer."""
        answer = self._post(body)
        command = body["vnp_Command"]
        verify_fields(answer, fields=RESPONSE_FIELDS[command], secret=self._secret)
        # A genuine answer to another question (replayed, or for another payment) is no answer.
        if answer.get("vnp_Command", command) != command:
            raise MalformedMessage("the answer is for another command")
        if answer.get("vnp_TmnCode", self.tmn_code) != self.tmn_code:
            raise MalformedMessage("the answer is for another terminal")
        if answer.get("vnp_TxnRef", body["vnp_TxnRef"]) != body["vnp_TxnRef"]:
            raise MalformedMessage("the answer is about another payment")
        return answer

    def _post(self, body: Mapping[str, str]) -> dict[str, str]:
        parts = urlsplit(self.api_url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.hostname or ""
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(host, parts.port, timeout=self.timeout)
        else:
            connection = http.client.HTTPConnection(host, parts.port, timeout=self.timeout)
        payload = json.dumps(dict(body)).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
        try:
            connection.request("POST", path, body=payload, headers=headers)
            response = connection.getresponse()
            status = response.status
            data = response.read(MAX_RESPONSE_BYTES + 1)
        except TimeoutError as exc:
            raise GatewayError(
                f"VNPAY did not answer within {self.timeout}s", code="gateway_timeout"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise GatewayError(f"VNPAY could not be reached: {exc}", code="gateway_unavailable") from exc
        finally:
            connection.close()
        if status >= 500:
            raise GatewayError(f"VNPAY answered HTTP {status}", code="gateway_unavailable")
        if status != 200:
            raise GatewayError(f"VNPAY answered HTTP {status}", code="gateway_bad_response")
        if len(data) > MAX_RESPONSE_BYTES:
            raise GatewayError("VNPAY's answer is too long", code="gateway_bad_response")
        try:
            decoded = json.loads(data)
            if not isinstance(decoded, dict):
                raise ValueError("not a JSON object")
            return {str(key): _text(value) for key, value in decoded.items()}
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise GatewayError(f"VNPAY's answer is unreadable: {exc}", code="gateway_bad_response") from exc


def from_settings() -> VnpayGateway:
    """The gateway as this deployment configures it (VNPAY_* settings, secrets from the environment)."""
    from django.conf import settings

    return VnpayGateway(
        tmn_code=settings.VNPAY_TMN_CODE,
        hash_secret=settings.VNPAY_HASH_SECRET,
        payment_url=settings.VNPAY_PAYMENT_URL,
        api_url=settings.VNPAY_API_URL,
        timeout=settings.VNPAY_TIMEOUT_SECONDS,
    )
