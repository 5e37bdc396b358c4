"""A local VNPAY: its hosted payment page, the signed return redirect, IPN calls retried until the
merchant confirms, and querydr/refund, over real HTTP, so payments run end to end without VNPAY.

It speaks exactly the protocol of `civicore.payments.vnpay` (plain WSGI, no Django, state in memory
behind one lock). Refunds never add up beyond what was paid; a vnp_RequestId is accepted once.

Fault drills, for tests and the demo, are set from the constructor (`Faults`) or, while it runs,
through `/_sandbox/...` with an `X-Sandbox-Auth` header: HMAC-SHA512 under the terminal's hash
secret of "METHOD|PATH|body" (`admin_signature`). They delay answers, answer 503 (down), send each
IPN twice, send a forged IPN before the real one, hold IPNs until released, answer the API with
garbage or with a wrong signature.
"""

from __future__ import annotations

import dataclasses
import hmac
import html
import http.client
import ipaddress
import json
import logging
import secrets
import socketserver
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from civicore.payments import vnpay

logger = logging.getLogger(__name__)

DEFAULT_IPN_SCHEDULE = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before each retry
ADMIN_HEADER = "X-Sandbox-Auth"
MAX_BODY = 64 * 1024
CONFIRMED = ("00", "02")  # IPN answers that end the retries
BANKS: dict[str, tuple[str, str, str]] = {  # code -> card type, Vietnamese and English labels
    "NCB": ("ATM", "Thẻ ATM nội địa - Ngân hàng NCB (thử nghiệm)", "Domestic ATM card - NCB bank (test)"),
    "VCB": ("ATM", "Thẻ ATM nội địa - Vietcombank (thử nghiệm)", "Domestic ATM card - Vietcombank (test)"),
    "VNPAYQR": ("QRCODE", "Ứng dụng ngân hàng quét mã VNPAY-QR", "Banking app scanning VNPAY-QR"),
}
# An HTTP answer: status, headers, body.
Answer = tuple[int, list[tuple[str, str]], bytes]
_PAGE_FIELDS = (
    "vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_Amount", "vnp_CurrCode", "vnp_TxnRef",
    "vnp_OrderInfo", "vnp_OrderType", "vnp_Locale", "vnp_ReturnUrl", "vnp_IpAddr", "vnp_CreateDate",
    "vnp_ExpireDate",
)  # fmt: skip
# VNPAY wants the order description without special characters; these could never be meant.
_MARKUP = set("<>\"'`\\{}")
_API_MESSAGES = {
    "00": "Request success",
    "02": "Invalid merchant or refund amount",
    "03": "Invalid data format",
    "04": "Full refund is not allowed after a partial refund",
    "91": "Transaction not found",
    "93": "Invalid refund amount",
    "94": "Duplicate request",
    "95": "Transaction is not successful at VNPAY",
    "97": "Invalid checksum",
    "99": "Other error",
}


@dataclass(frozen=True, slots=True)
class Faults:
    """What goes wrong on purpose."""

    delay_ms: int = 0  # every answer but the admin endpoint's waits this long
    down: bool = False  # every answer but the admin endpoint's is 503
    duplicate_ipn: bool = False  # each IPN is delivered twice, at the same time
    forge_ipn: bool = False  # a tampered IPN goes out before each real one
    hold_ipn: bool = False  # IPNs wait until released (the merchant can be stopped meanwhile)
    garbage: bool = False  # the API answers with something that is not JSON
    forge_responses: bool = False  # the API signs its answers with the wrong key


@dataclass(frozen=True, slots=True)
class IpnAttempt:
    at: datetime
    kind: str  # "ipn", "duplicate" or "forged"
    http_status: int | None  # None: no HTTP answer (refused, timed out)
    rsp_code: str  # the merchant's RspCode, "" when unreadable
    error: str = ""


@dataclass
class Transaction:
    txn_ref: str
    amount: int  # vnp_Amount: dong x 100
    order_info: str
    locale: str
    return_url: str
    ip_addr: str
    create_date: str
    expires_at: datetime
    request_hash: str  # the signed request it came from; the same request reopens the page
    session: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    status: str = "01"  # vnp_TransactionStatus: 01 waiting, 00 paid, 02 failed
    response_code: str = ""
    transaction_no: str = ""
    bank_code: str = ""
    bank_tran_no: str = ""
    card_type: str = ""
    pay_date: str = ""
    refunded: int = 0  # dong x 100
    refunds: list[dict[str, str]] = field(default_factory=list)
    ipn_attempts: list[IpnAttempt] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in ("session", "token", "request_hash"):
            data.pop(name)
        data["expires_at"] = self.expires_at.isoformat()
        data["ipn_attempts"] = [
            {**dataclasses.asdict(attempt), "at": attempt.at.isoformat()} for attempt in self.ipn_attempts
        ]
        return data


class PageError(Exception):
    """A request the payment page refuses: shown to the payer with its code, HTTP 400."""

    def __init__(self, code: str, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.status = status


# Why the page refused, in the payer's language. The numeric codes follow VNPAY's response codes
# where one fits (01 exists, 02 merchant, 03 format, 11 expired, 97 signature).
_REASONS: dict[str, tuple[str, str]] = {
    "invalid_signature": ("Chữ ký không hợp lệ.", "The signature is not valid."),
    "unknown_merchant": (
        "Mã website (vnp_TmnCode) không tồn tại.",
        "Unknown merchant terminal (vnp_TmnCode).",
    ),
    "missing_field": ("Thiếu tham số bắt buộc.", "A required parameter is missing."),
    "duplicate_parameter": ("Một tham số được gửi hai lần.", "A parameter was sent twice."),
    "invalid_parameter": ("Tham số không đúng định dạng.", "A parameter is not in the right format."),
    "invalid_amount": (
        "Số tiền không hợp lệ (phải là số dương, nhân 100).",
        "Invalid amount (a positive number, times 100).",
    ),
    "invalid_date": ("Thời gian không đúng định dạng.", "A date is not in the right format."),
    "expired": ("Giao dịch đã quá thời gian chờ thanh toán.", "The payment request has expired."),
    "transaction_exists": ("Giao dịch đã tồn tại hoặc đã xử lý.", "This transaction exists or is finished."),
    "unknown_transaction": ("Không tìm thấy giao dịch.", "No such transaction."),
    "invalid_token": ("Phiên thanh toán không hợp lệ.", "The payment session is not valid."),
    "invalid_bank": ("Vui lòng chọn ngân hàng.", "Please choose a bank."),
    "not_found": ("Không tìm thấy trang.", "Page not found."),
    "method_not_allowed": ("Phương thức không được hỗ trợ.", "Method not allowed."),
    "internal_error": ("Lỗi hệ thống thử nghiệm.", "Sandbox error."),
}


def admin_signature(secret: str, *, method: str, path: str, body: bytes) -> str:
    """The X-Sandbox-Auth header for an admin request."""
    return vnpay.sign(f"{method.upper()}|{path}|{body.decode('utf-8', 'replace')}", secret=secret)


def _api_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError("not a string")


class VnpaySandbox:
    """The WSGI application. One merchant terminal (`tmn_code`, `hash_secret`); IPNs go to
    `ipn_url` (as VNPAY's terminal settings would say), retried after each delay of `ipn_schedule`."""

    def __init__(
        self,
        *,
        tmn_code: str,
        hash_secret: str,
        ipn_url: str | None = None,
        ipn_schedule: Iterable[float] = DEFAULT_IPN_SCHEDULE,
        ipn_timeout: float = 5.0,
        faults: Faults | None = None,
        admin: bool = True,
        merchant_name: str = "Civicore",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if ipn_url is not None and urlsplit(ipn_url).scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {ipn_url!r}")
        self.tmn_code = tmn_code
        self._secret = hash_secret
        self.ipn_url = ipn_url
        self.ipn_schedule = tuple(float(delay) for delay in ipn_schedule)
        self.ipn_timeout = ipn_timeout
        self.admin = admin
        self.merchant_name = merchant_name
        self._clock = clock or (lambda: datetime.now(UTC))
        self._faults = faults or Faults()
        # Reentrant: answers are built under the lock and read the current fault drills.
        self._lock = threading.RLock()
        self._transactions: dict[str, Transaction] = {}
        self._sessions: dict[str, str] = {}  # session -> txn_ref
        self._request_ids: set[str] = set()
        self._held: list[tuple[str, dict[str, str]]] = []
        self._next_number = 14_000_000
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- what tests and the admin endpoint read and change ------------------------------------

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set_faults(self, **changes: Any) -> Faults:
        """Change some fault drills; turning `hold_ipn` off sends what was held."""
        with self._lock:
            self._faults = dataclasses.replace(self._faults, **changes)
            current = self._faults
        if not current.hold_ipn:
            self.release_ipns()
        return current

    def release_ipns(self) -> int:
        with self._lock:
            held, self._held = self._held, []
        for txn_ref, params in held:
            self._dispatch(txn_ref, params)
        return len(held)

    def transaction(self, txn_ref: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._transactions.get(txn_ref)
            return found.snapshot() if found else None

    def ipn_attempts(self, txn_ref: str) -> list[IpnAttempt]:
        with self._lock:
            found = self._transactions.get(txn_ref)
            return list(found.ipn_attempts) if found else []

    def close(self) -> None:
        """Stop retrying IPNs; threads still sending finish their one request."""
        self._closing.set()
        for thread in list(self._threads):
            thread.join(timeout=self.ipn_timeout + 1)

    def start_in_thread(self, *, host: str = "127.0.0.1", port: int = 0) -> tuple[str, Callable[[], None]]:
        """Serve from a background thread: the base URL and a function that stops it."""
        server = make_sandbox_server(self, host=host, port=port)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="vnpay-sandbox", daemon=True
        )
        thread.start()

        def stop() -> None:
            server.shutdown()
            server.server_close()
            self.close()
            thread.join(timeout=5)

        return _base_url(server), stop

    # --- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            status, headers, body = self._route(environ)
        except Exception:  # a bug here must still answer, and never with a traceback
            logger.exception("VNPAY sandbox failed on %s", environ.get("PATH_INFO"))
            status, headers, body = self._error_page(PageError("99", "internal_error", 500), "vi")
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]

    def _route(self, environ: dict[str, Any]) -> Answer:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if path.startswith("/_sandbox/"):
            return self._admin(environ, path, method)
        faults = self.faults
        if faults.delay_ms:
            self._closing.wait(faults.delay_ms / 1000)
        if faults.down:
            return _json(503, {"code": "unavailable", "message": "The gateway is down (fault drill)"})
        routes: dict[str, tuple[str, Callable[[dict[str, Any]], Answer]]] = {
            vnpay.PAY_PATH: ("GET", self._payment_page),
            "/paymentv2/pay": ("POST", lambda env: self._finish(env, paid=True)),
            "/paymentv2/cancel": ("POST", lambda env: self._finish(env, paid=False)),
            "/paymentv2/leave": ("GET", self._leave_page),
            vnpay.API_PATH: ("POST", self._api),
        }
        if path not in routes:
            return self._error_page(PageError("404", "not_found", 404), "vi")
        allowed, handler = routes[path]
        if method != allowed:
            status, headers, body = self._error_page(PageError("405", "method_not_allowed", 405), "vi")
            return status, [*headers, ("Allow", allowed)], body
        return handler(environ)

    # --- the hosted payment page --------------------------------------------------------------

    def _payment_page(self, environ: dict[str, Any]) -> Answer:
        try:
            params = _single_values(environ.get("QUERY_STRING", ""))
        except PageError as error:
            return self._error_page(error, "vi")
        lang = "en" if params.get("vnp_Locale") == "en" else "vi"
        try:
            transaction = self._open(params)
        except PageError as error:
            return self._error_page(error, lang)
        return _html(200, self._render_payment(transaction))

    def _open(self, params: dict[str, str]) -> Transaction:
        """Check a payment request as VNPAY would, and the transaction it opens (or reopens)."""
        tmn_code = params.get("vnp_TmnCode", "")
        if not tmn_code:
            raise PageError("03", "missing_field")
        if tmn_code != self.tmn_code:
            raise PageError("02", "unknown_merchant")
        try:
            vnpay.verify_params(params, secret=self._secret)
        except vnpay.ForgedMessage as exc:
            raise PageError("97", "invalid_signature") from exc
        if any(not params.get(name) for name in _PAGE_FIELDS):
            raise PageError("03", "missing_field")
        if (params["vnp_Version"], params["vnp_Command"], params["vnp_CurrCode"]) != (
            vnpay.VERSION, "pay", vnpay.CURRENCY,
        ):  # fmt: skip
            raise PageError("03", "invalid_parameter")
        amount_text = params["vnp_Amount"]
        if (
            not amount_text.isdigit()
            or len(amount_text) > 12
            or int(amount_text) <= 0
            or int(amount_text) % 100
        ):
            raise PageError("03", "invalid_amount")
        try:
            created = vnpay.parse_time(params["vnp_CreateDate"])
            expires = vnpay.parse_time(params["vnp_ExpireDate"])
        except ValueError as exc:
            raise PageError("03", "invalid_date") from exc
        if expires <= created:
            raise PageError("03", "invalid_date")
        if self._clock() > expires:
            raise PageError("11", "expired")
        txn_ref = params["vnp_TxnRef"]
        return_url = urlsplit(params["vnp_ReturnUrl"])
        info = params["vnp_OrderInfo"]
        if (
            len(txn_ref) > 100
            or not all(char.isascii() and (char.isalnum() or char in "-_") for char in txn_ref)
            or params["vnp_Locale"] not in ("vn", "en")
            or return_url.scheme not in ("http", "https")
            or not return_url.hostname
            or len(params["vnp_ReturnUrl"]) > 255
            or len(info) > 255
            or not all(char.isascii() and char.isprintable() and char not in _MARKUP for char in info)
            or not _is_ip(params["vnp_IpAddr"])
        ):
            raise PageError("03", "invalid_parameter")
        request_hash = params[vnpay.HASH_FIELD].lower()
        with self._lock:
            existing = self._transactions.get(txn_ref)
            if existing is not None:
                if existing.request_hash == request_hash and existing.status == "01":
                    return existing  # the payer came back to the same page
                raise PageError("01", "transaction_exists")
            transaction = Transaction(
                txn_ref=txn_ref,
                amount=int(amount_text),
                order_info=info,
                locale=params["vnp_Locale"],
                return_url=params["vnp_ReturnUrl"],
                ip_addr=params["vnp_IpAddr"],
                create_date=params["vnp_CreateDate"],
                expires_at=expires,
                request_hash=request_hash,
            )
            self._transactions[txn_ref] = transaction
            self._sessions[transaction.session] = txn_ref
            return transaction

    def _finish(self, environ: dict[str, Any], *, paid: bool) -> Answer:
        """The payer paid or cancelled: record it, send them back signed, and notify the merchant."""
        try:
            form = _single_values(_read_body(environ).decode("ascii"))
        except (PageError, UnicodeDecodeError):
            return self._error_page(PageError("03", "invalid_parameter"), "vi")
        with self._lock:
            txn_ref = self._sessions.get(form.get("session", ""))
            transaction = self._transactions.get(txn_ref or "")
        if transaction is None:
            return self._error_page(PageError("03", "unknown_transaction"), "vi")
        lang = "en" if transaction.locale == "en" else "vi"
        if not hmac.compare_digest(form.get("token", "").encode(), transaction.token.encode()):
            return self._error_page(PageError("03", "invalid_token"), lang)
        bank = form.get("bank", "")
        if paid and bank not in BANKS:
            return self._error_page(PageError("03", "invalid_bank"), lang)
        now = self._clock()
        with self._lock:
            if transaction.status != "01":
                refused = PageError("01", "transaction_exists")
            else:
                refused = None
                transaction.pay_date = vnpay.format_time(now)
                if paid and now > transaction.expires_at:
                    transaction.status, transaction.response_code = "02", "11"
                    transaction.bank_code, transaction.transaction_no = bank, "0"
                elif paid:
                    number = self._number()
                    transaction.status, transaction.response_code = "00", vnpay.PAID
                    transaction.bank_code, transaction.card_type = bank, BANKS[bank][0]
                    transaction.transaction_no = number
                    transaction.bank_tran_no = f"VNP{number}"
                else:
                    transaction.status, transaction.response_code = "02", vnpay.CANCELLED
                    transaction.bank_code, transaction.transaction_no = "VNPAY", "0"
                result = self._result_params(transaction)
        if refused is not None:
            return self._error_page(refused, lang)
        query = vnpay.signed_query(result, secret=self._secret)
        separator = "&" if "?" in transaction.return_url else "?"
        location = f"{transaction.return_url}{separator}{query}"
        self._notify(transaction.txn_ref, result)
        body = f'<!doctype html><title>Redirect</title><a href="{html.escape(location)}">Continue</a>'
        return 302, [("Location", location), *_page_headers()], body.encode()

    def _result_params(self, transaction: Transaction) -> dict[str, str]:
        params = {
            "vnp_TmnCode": self.tmn_code,
            "vnp_Amount": str(transaction.amount),
            "vnp_BankCode": transaction.bank_code,
            "vnp_BankTranNo": transaction.bank_tran_no,
            "vnp_CardType": transaction.card_type,
            "vnp_PayDate": transaction.pay_date,
            "vnp_OrderInfo": transaction.order_info,
            "vnp_TransactionNo": transaction.transaction_no,
            "vnp_ResponseCode": transaction.response_code,
            "vnp_TransactionStatus": transaction.status,
            "vnp_TxnRef": transaction.txn_ref,
        }
        return {key: value for key, value in params.items() if value}

    def _number(self) -> str:
        self._next_number += 1
        return str(self._next_number)

    def _leave_page(self, environ: dict[str, Any]) -> Answer:
        try:
            lang = "en" if _single_values(environ.get("QUERY_STRING", "")).get("lang") == "en" else "vi"
        except PageError:
            lang = "vi"
        title = "You left the payment page" if lang == "en" else "Bạn đã rời trang thanh toán"
        text = (
            "Nothing was paid. You can close this window and start again from the service."
            if lang == "en"
            else "Chưa có khoản tiền nào được thanh toán. Bạn có thể đóng cửa sổ này và bắt đầu lại."
        )
        return _html(200, _document(lang, title, f"<h1>{title}</h1><p>{text}</p>"))

    def _render_payment(self, transaction: Transaction) -> bytes:
        lang = "en" if transaction.locale == "en" else "vi"
        en = lang == "en"
        dong = transaction.amount // 100
        amount = f"{dong:,} VND" if en else f"{dong:,}".replace(",", ".") + " ₫"
        e = html.escape
        hidden = (
            f'<input type="hidden" name="session" value="{e(transaction.session)}">'
            f'<input type="hidden" name="token" value="{e(transaction.token)}">'
        )
        banks = "".join(
            f'<div class="bank"><input type="radio" id="bank-{code}" name="bank" value="{code}"'
            f'{" checked" if index == 0 else ""}><label for="bank-{code}">{e(labels[2] if en else labels[1])}'
            "</label></div>"
            for index, (code, labels) in enumerate(BANKS.items())
        )
        title = "Payment" if en else "Thanh toán"
        body = f"""<h1>{title}</h1>
<dl>
<dt>{"Merchant" if en else "Đơn vị nhận tiền"}</dt><dd>{e(self.merchant_name)} ({e(self.tmn_code)})</dd>
<dt>{"Amount" if en else "Số tiền"}</dt><dd class="amount">{e(amount)}</dd>
<dt>{"Order" if en else "Nội dung"}</dt><dd>{e(transaction.order_info)}</dd>
<dt>{"Reference" if en else "Mã giao dịch"}</dt><dd>{e(transaction.txn_ref)}</dd>
</dl>
<form method="post" action="/paymentv2/pay">{hidden}
<fieldset><legend>{"Choose a test bank" if en else "Chọn ngân hàng thử nghiệm"}</legend>{banks}</fieldset>
<div class="actions">
<button type="submit" class="pay">{"Pay" if en else "Thanh toán"} {e(amount)}</button></div>
</form>
<div class="actions">
<form method="post" action="/paymentv2/cancel">{hidden}
<button type="submit" class="cancel">{"Cancel payment" if en else "Hủy giao dịch"}</button></form>
<form method="get" action="/paymentv2/leave"><input type="hidden" name="lang" value="{lang}">
<button type="submit" class="leave">{"Leave this page" if en else "Rời khỏi trang"}</button></form>
</div>"""
        return _document(lang, title, body)

    def _error_page(self, error: PageError, lang: str) -> Answer:
        vi_text, en_text = _REASONS.get(error.reason, _REASONS["internal_error"])
        en = lang == "en"
        title = "The payment cannot go ahead" if en else "Không thể thực hiện giao dịch"
        body = (
            f"<h1>{title}</h1><p>{html.escape(en_text if en else vi_text)}</p>"
            f'<p>{"Error code" if en else "Mã lỗi"}: <strong class="code">{html.escape(error.code)}</strong> '
            f"({html.escape(error.reason)})</p>"
        )
        status, headers, page = _html(error.status, _document(lang, title, body))
        return status, [*headers, ("X-Sandbox-Error", f"{error.code} {error.reason}")], page

    # --- IPN ----------------------------------------------------------------------------------

    def _notify(self, txn_ref: str, params: dict[str, str]) -> None:
        if self.ipn_url is None:
            return
        with self._lock:
            if self._faults.hold_ipn:
                self._held.append((txn_ref, params))
                return
        self._dispatch(txn_ref, params)

    def _dispatch(self, txn_ref: str, params: dict[str, str]) -> None:
        faults = self.faults
        query = vnpay.signed_query(params, secret=self._secret)
        if faults.forge_ipn:
            # Someone without the secret raising the amount: the signature no longer matches.
            forged = dict(params, vnp_Amount=str(int(params["vnp_Amount"]) + 100))
            forged_query = vnpay.canonical_query(forged) + "&" + query.rsplit("&", 1)[1]
            self._start(self._deliver, txn_ref, forged_query, "forged", 1)
        self._start(self._deliver, txn_ref, query, "ipn", 1 + len(self.ipn_schedule))
        if faults.duplicate_ipn:
            self._start(self._deliver, txn_ref, query, "duplicate", 1 + len(self.ipn_schedule))

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name="vnpay-sandbox-ipn", daemon=True)
        with self._lock:
            self._threads = [alive for alive in self._threads if alive.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _deliver(self, txn_ref: str, query: str, kind: str, attempts: int) -> None:
        for attempt in range(attempts):
            if attempt and self._closing.wait(self.ipn_schedule[attempt - 1]):
                return
            if self._closing.is_set():
                return
            outcome = self._send_ipn(query, kind)
            with self._lock:
                transaction = self._transactions.get(txn_ref)
                if transaction is not None:
                    transaction.ipn_attempts.append(outcome)
            if outcome.rsp_code in CONFIRMED:
                return

    def _send_ipn(self, query: str, kind: str) -> IpnAttempt:
        assert self.ipn_url is not None
        parts = urlsplit(self.ipn_url)
        path = (parts.path or "/") + ("?" + parts.query + "&" if parts.query else "?") + query
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=self.ipn_timeout
            )
        else:
            connection = http.client.HTTPConnection(
                parts.hostname or "", parts.port, timeout=self.ipn_timeout
            )
        at = self._clock()
        try:
            connection.request("GET", path, headers={"User-Agent": "VNPAY-Sandbox/1.0"})
            response = connection.getresponse()
            data = response.read(MAX_BODY)
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            return IpnAttempt(at=at, kind=kind, http_status=None, rsp_code="", error=type(exc).__name__)
        finally:
            connection.close()
        try:
            answer = json.loads(data)
            rsp_code = str(answer.get("RspCode", "")) if isinstance(answer, dict) else ""
        except ValueError:
            rsp_code = ""
        return IpnAttempt(
            at=at,
            kind=kind,
            http_status=status,
            rsp_code=rsp_code,
            error="" if rsp_code else "unreadable answer",
        )

    # --- querydr and refund -------------------------------------------------------------------

    def _api(self, environ: dict[str, Any]) -> Answer:
        faults = self.faults
        if faults.garbage:
            return (
                200,
                [("Content-Type", "text/html; charset=utf-8")],
                b"<html><body>Maintenance</body></html>",
            )
        try:
            decoded = json.loads(_read_body(environ))
            if not isinstance(decoded, dict):
                raise ValueError("not an object")
            values = {str(key): _api_text(value) for key, value in decoded.items()}
        except (ValueError, PageError):
            return self._answer({}, "querydr", "03")
        command = values.get("vnp_Command", "")
        if command not in ("querydr", "refund"):
            return self._answer(values, "querydr", "03")
        fields = vnpay.QUERY_REQUEST_FIELDS if command == "querydr" else vnpay.REFUND_REQUEST_FIELDS
        optional = {"vnp_TransactionNo"}
        if any(not values.get(name) for name in fields if name not in optional):
            return self._answer(values, command, "03")
        if values["vnp_TmnCode"] != self.tmn_code:
            return self._answer(values, command, "02")
        try:
            vnpay.verify_fields(values, fields=fields, secret=self._secret)
        except vnpay.ForgedMessage:
            return self._answer(values, command, "97")
        with self._lock:
            if values["vnp_RequestId"] in self._request_ids:
                return self._answer(values, command, vnpay.DUPLICATE_REQUEST)
            self._request_ids.add(values["vnp_RequestId"])
        try:
            vnpay.parse_time(values["vnp_TransactionDate"])
            vnpay.parse_time(values["vnp_CreateDate"])
        except ValueError:
            return self._answer(values, command, "03")
        if values["vnp_Version"] != vnpay.VERSION:
            return self._answer(values, command, "03")
        if command == "querydr":
            return self._query(values)
        return self._refund(values)

    def _query(self, values: dict[str, str]) -> Answer:
        with self._lock:
            transaction = self._transactions.get(values["vnp_TxnRef"])
            if transaction is None:
                return self._answer(values, "querydr", vnpay.NOT_FOUND)
            status = transaction.status
            if status == "01" and self._clock() > transaction.expires_at:
                status = "02"  # the payer never finished before the page expired
            details = {
                "vnp_Amount": str(transaction.amount),
                "vnp_BankCode": transaction.bank_code,
                "vnp_PayDate": transaction.pay_date,
                "vnp_TransactionNo": transaction.transaction_no,
                "vnp_TransactionType": "01",
                "vnp_TransactionStatus": status,
                "vnp_OrderInfo": transaction.order_info,
            }
        return self._answer(values, "querydr", "00", details)

    def _refund(self, values: dict[str, str]) -> Answer:
        kind = values["vnp_TransactionType"]
        amount_text = values["vnp_Amount"]
        if kind not in (vnpay.REFUND_FULL, vnpay.REFUND_PARTIAL):
            return self._answer(values, "refund", "03")
        if not amount_text.isdigit() or len(amount_text) > 15 or int(amount_text) % 100:
            return self._answer(values, "refund", "03")
        amount = int(amount_text)
        with self._lock:
            transaction = self._transactions.get(values["vnp_TxnRef"])
            wanted_no = values.get("vnp_TransactionNo", "")
            if transaction is None or (
                wanted_no not in ("", "0") and wanted_no != transaction.transaction_no
            ):
                return self._answer(values, "refund", vnpay.NOT_FOUND)
            if transaction.status != "00":
                return self._answer(values, "refund", "95")
            if amount <= 0 or amount > transaction.amount:
                return self._answer(values, "refund", "93")
            if kind == vnpay.REFUND_FULL and transaction.refunded:
                return self._answer(values, "refund", "04")
            if kind == vnpay.REFUND_FULL and amount != transaction.amount:
                return self._answer(values, "refund", "93")
            if transaction.refunded + amount > transaction.amount:
                return self._answer(values, "refund", "02")
            transaction.refunded += amount
            number = self._number()
            transaction.refunds.append(
                {
                    "request_id": values["vnp_RequestId"],
                    "transaction_no": number,
                    "type": kind,
                    "amount": amount_text,
                    "by": values["vnp_CreateBy"],
                }
            )
            details = {
                "vnp_Amount": amount_text,
                "vnp_BankCode": transaction.bank_code,
                "vnp_PayDate": vnpay.format_time(self._clock()),
                "vnp_TransactionNo": number,
                "vnp_TransactionType": kind,
                "vnp_TransactionStatus": "05",  # VNPAY is processing the refund
                "vnp_OrderInfo": values["vnp_OrderInfo"],
            }
        return self._answer(values, "refund", "00", details)

    def _answer(
        self, values: Mapping[str, str], command: str, code: str, details: Mapping[str, str] | None = None
    ) -> Answer:
        answer = {
            "vnp_ResponseId": secrets.token_hex(16),
            "vnp_Command": command,
            "vnp_ResponseCode": code,
            "vnp_Message": _API_MESSAGES.get(code, "Other error"),
            # Echoed as asked, like the reference: an answer names the question it answers.
            "vnp_TmnCode": values.get("vnp_TmnCode", self.tmn_code),
            "vnp_TxnRef": values.get("vnp_TxnRef", ""),
            **(details or {}),
        }
        key = secrets.token_hex(32) if self.faults.forge_responses else self._secret
        answer[vnpay.HASH_FIELD] = vnpay.sign_fields(
            answer, fields=vnpay.RESPONSE_FIELDS[command], secret=key
        )
        return _json(200, answer)

    # --- the admin endpoint -------------------------------------------------------------------

    def _admin(self, environ: dict[str, Any], path: str, method: str) -> Answer:
        if not self.admin:
            return _json(404, {"code": "not_found"})
        try:
            body = _read_body(environ)
        except PageError:
            return _json(400, {"code": "invalid_request"})
        given = environ.get("HTTP_" + ADMIN_HEADER.upper().replace("-", "_"), "")
        expected = admin_signature(self._secret, method=method, path=path, body=body)
        if not hmac.compare_digest(given.encode("ascii", "replace"), expected.encode("ascii")):
            return _json(403, {"code": "forbidden"})
        if path == "/_sandbox/faults" and method == "POST":
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("not an object")
                known = {item.name: item.type for item in dataclasses.fields(Faults)}
                for name, value in changes.items():
                    wanted = int if known.get(name) == "int" else bool
                    if name not in known or type(value) is not wanted:
                        raise ValueError(f"unknown or mistyped fault: {name}")
                current = self.set_faults(**changes)
            except ValueError as exc:
                return _json(400, {"code": "invalid_faults", "message": str(exc)})
            return _json(200, dataclasses.asdict(current))
        if path == "/_sandbox/release-ipns" and method == "POST":
            return _json(200, {"released": self.release_ipns()})
        prefix = "/_sandbox/transactions/"
        if path.startswith(prefix) and method == "GET":
            found = self.transaction(path[len(prefix) :])
            return _json(200, found) if found else _json(404, {"code": "unknown_transaction"})
        return _json(404, {"code": "not_found"})


# --- HTTP helpers -----------------------------------------------------------------------------


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _single_values(query: str) -> dict[str, str]:
    """Parameters that each appear once; a repeated one is refused, since the signature would cover
    one reading of it and the page could act on the other."""
    try:
        parsed = parse_qs(query, keep_blank_values=True, max_num_fields=64)
    except ValueError as exc:
        raise PageError("03", "invalid_parameter") from exc
    if any(len(values) > 1 for values in parsed.values()):
        raise PageError("03", "duplicate_parameter")
    return {key: values[0] for key, values in parsed.items()}


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise PageError("03", "invalid_parameter") from exc
    if length < 0 or length > MAX_BODY:
        raise PageError("03", "invalid_parameter")
    return environ["wsgi.input"].read(length) if length else b""


def _page_headers() -> list[tuple[str, str]]:
    return [
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    ]


def _html(status: int, page: bytes) -> Answer:
    return status, [("Content-Type", "text/html; charset=utf-8"), *_page_headers()], page


def _json(status: int, data: Mapping[str, Any]) -> Answer:
    return (
        status,
        [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
        json.dumps(data).encode(),
    )


_STYLE = """
body{margin:0;font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:#1b1b1b;background:#f3f5f7}
header,footer{background:#0a3d62;color:#fff;padding:.75rem 1.5rem}
header p,footer p{margin:0}
main{max-width:38rem;margin:1.5rem auto;background:#fff;padding:1.5rem;border-radius:.5rem}
h1{font-size:1.5rem;margin-top:0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
dt{font-weight:600}dd{margin:0}
.amount{font-size:1.25rem;font-weight:700}
fieldset{border:1px solid #5f6b7a;border-radius:.375rem;margin:1rem 0;padding:.75rem 1rem}
legend{font-weight:600;padding:0 .25rem}
.bank{margin:.35rem 0}.bank label{margin-left:.5rem}
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1rem}
.actions form{margin:0}
button{font:inherit;min-height:44px;padding:.6rem 1.2rem;border-radius:.375rem;
border:2px solid #0a3d62;cursor:pointer}
.pay{background:#0a3d62;color:#fff}
.cancel{background:#fff;color:#8a1c1c;border-color:#8a1c1c}
.leave{background:#fff;color:#1b1b1b;border-color:#5f6b7a}
:focus-visible{outline:3px solid #0a3d62;outline-offset:3px}
input:focus-visible{outline-color:#8a1c1c}
.code{font-family:ui-monospace,monospace}
"""


def _document(lang: str, title: str, body: str) -> bytes:
    site = "VNPAY sandbox" if lang == "en" else "Cổng thanh toán VNPAY thử nghiệm"
    notice = (
        "A local test gateway: no real money moves."
        if lang == "en"
        else "Cổng thử nghiệm cục bộ: không có tiền thật được chuyển."
    )
    return f"""<!doctype html>
<html lang="{lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - {site}</title><style>{_STYLE}</style></head>
<body>
<header><p>{site}</p></header>
<main>
{body}
</main>
<footer><p>{notice}</p></footer>
</body>
</html>
""".encode()


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


def make_sandbox_server(sandbox: VnpaySandbox, *, host: str = "127.0.0.1", port: int = 0) -> WSGIServer:
    return make_server(host, port, sandbox, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)


def _base_url(server: WSGIServer) -> str:
    host, port = server.server_address[:2]
    host = str(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    port: int, *, sandbox: VnpaySandbox, host: str = "127.0.0.1", ready: Callable[[str], None] | None = None
) -> None:
    """Serve until interrupted; `ready` is told the base URL once the port is open."""
    server = make_sandbox_server(sandbox, host=host, port=port)
    try:
        if ready is not None:
            ready(_base_url(server))
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        sandbox.close()
