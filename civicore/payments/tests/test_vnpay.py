"""The VNPAY adapter: canonical strings and signatures checked against HMAC-SHA512 computed here,
the payment URL, return and IPN verification (one changed byte anywhere is a forgery), the IPN
answers, and querydr/refund over HTTP against the local sandbox, including a gateway that is down,
slow, or answers garbage."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import http.client
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from civicore.payments import vnpay
from civicore.payments.gateways import ForgedMessage, GatewayError, GatewayStatus, PaymentStart, RefundRequest
from civicore.payments.sandbox import VnpaySandbox
from civicore.payments.vnpay import MalformedMessage, UnsupportedPayment, VnpayGateway

SECRET = "TESTSECRET0123456789ABCDEFGHIJKL"
TMN = "CIVICORE"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # 16:30 in Hanoi
RETURN_URL = "https://portal.example/payments/return?p=1"


def hmac512(text: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha512).hexdigest()


def payment_start(
    reference: str = "CV0000000001",
    *,
    amount: int = 150_000,
    locale: str = "vi",
    created_at: datetime | None = None,
    ttl: timedelta = timedelta(minutes=15),
    return_url: str = RETURN_URL,
) -> PaymentStart:
    created = created_at or datetime.now(UTC)
    return PaymentStart(
        reference=reference,
        amount_minor=amount,
        currency="VND",
        description=f"Lệ phí hộ tịch — {reference}",
        return_url=return_url,
        payer_ip="203.0.113.7",
        created_at=created,
        expires_at=created + ttl,
        locale=locale,
    )


# --- talking to the sandbox as a browser would ---------------------------------------------------


@dataclass
class Page:
    status: int
    body: str
    headers: dict[str, str]


def http_get(url: str) -> Page:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        response = connection.getresponse()
        return Page(response.status, response.read().decode(), dict(response.getheaders()))
    finally:
        connection.close()


def http_post(base: str, path: str, *, body: bytes, content_type: str) -> Page:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return Page(response.status, response.read().decode(), dict(response.getheaders()))
    finally:
        connection.close()


def form_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'name="(session|token)" value="([^"]+)"', page))


def submit(base: str, page: str, action: str, **extra: str) -> Page:
    body = urlencode({**form_fields(page), **extra}).encode()
    return http_post(
        base, f"/paymentv2/{action}", body=body, content_type="application/x-www-form-urlencoded"
    )


def pay(base: str, url: str, *, action: str = "pay") -> dict[str, str]:
    """Open the payment page, press pay (or cancel): the parameters the browser brings back."""
    page = http_get(url)
    assert page.status == 200, page.body
    answer = submit(base, page.body, action, bank="NCB")
    assert answer.status == 302, answer.body
    location = answer.headers["Location"]
    assert location.startswith(RETURN_URL + "&vnp_")
    return dict(parse_qsl(urlsplit(location).query))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Running:
    sandbox: VnpaySandbox
    base: str
    gateway: VnpayGateway


@pytest.fixture
def running() -> Iterator[Running]:
    sandbox = VnpaySandbox(tmn_code=TMN, hash_secret=SECRET)
    base, stop = sandbox.start_in_thread()
    yield Running(sandbox, base, VnpayGateway.at(base, tmn_code=TMN, hash_secret=SECRET, timeout=2.0))
    stop()


def gateway_at(base: str, *, timeout: float = 2.0) -> VnpayGateway:
    return VnpayGateway.at(base, tmn_code=TMN, hash_secret=SECRET, timeout=timeout)


# --- signing -------------------------------------------------------------------------------------


def test_redirect_parameters_are_signed_sorted_and_form_encoded() -> None:
    params = {
        "vnp_TxnRef": "CV1",
        "vnp_ReturnUrl": "https://portal.example/pay/return?x=1",
        "vnp_OrderInfo": "Le phi: CV1 & more",
        "vnp_Amount": "15000000",
        "vnp_SecureHash": "not part of what is signed",
        "vnp_SecureHashType": "HmacSHA512",
        "utm_source": "not a vnp_ parameter",
    }
    canonical = (
        "vnp_Amount=15000000&vnp_OrderInfo=Le+phi%3A+CV1+%26+more"
        "&vnp_ReturnUrl=https%3A%2F%2Fportal.example%2Fpay%2Freturn%3Fx%3D1&vnp_TxnRef=CV1"
    )
    assert vnpay.canonical_query(params) == canonical
    assert vnpay.sign_params(params, secret=SECRET) == hmac512(canonical)
    assert vnpay.signed_query(params, secret=SECRET) == f"{canonical}&vnp_SecureHash={hmac512(canonical)}"


def test_api_messages_sign_their_values_joined_by_pipes_in_the_documented_order() -> None:
    query = {
        "vnp_OrderInfo": "Query CV1",
        "vnp_IpAddr": "10.0.0.1",
        "vnp_CreateDate": "20260302163500",
        "vnp_TransactionDate": "20260302163000",
        "vnp_TxnRef": "CV1",
        "vnp_TmnCode": TMN,
        "vnp_Command": "querydr",
        "vnp_Version": "2.1.0",
        "vnp_RequestId": "REQ1",
    }
    query_data = "REQ1|2.1.0|querydr|CIVICORE|CV1|20260302163000|20260302163500|10.0.0.1|Query CV1"
    assert vnpay.sign_fields(query, fields=vnpay.QUERY_REQUEST_FIELDS, secret=SECRET) == hmac512(query_data)

    refund = {
        **query,
        "vnp_RequestId": "REQ2",
        "vnp_Command": "refund",
        "vnp_TransactionType": "03",
        "vnp_Amount": "5000000",
        "vnp_TransactionNo": "14000001",
        "vnp_CreateBy": "officer-7",
        "vnp_OrderInfo": "Hoan phi",
    }
    refund_data = (
        "REQ2|2.1.0|refund|CIVICORE|03|CV1|5000000|14000001|20260302163000|officer-7"
        "|20260302163500|10.0.0.1|Hoan phi"
    )
    assert vnpay.sign_fields(refund, fields=vnpay.REFUND_REQUEST_FIELDS, secret=SECRET) == hmac512(
        refund_data
    )

    # An answer without a promotion signs those two fields as empty.
    answer = {
        "vnp_ResponseId": "R1",
        "vnp_Command": "querydr",
        "vnp_ResponseCode": "00",
        "vnp_Message": "OK",
        "vnp_TmnCode": TMN,
        "vnp_TxnRef": "CV1",
        "vnp_Amount": "15000000",
        "vnp_BankCode": "NCB",
        "vnp_PayDate": "20260302163100",
        "vnp_TransactionNo": "14000001",
        "vnp_TransactionType": "01",
        "vnp_TransactionStatus": "00",
        "vnp_OrderInfo": "Le phi",
    }
    answer_data = "R1|querydr|00|OK|CIVICORE|CV1|15000000|NCB|20260302163100|14000001|01|00|Le phi||"
    signed = {**answer, "vnp_SecureHash": hmac512(answer_data)}
    vnpay.verify_fields(signed, fields=vnpay.QUERY_RESPONSE_FIELDS, secret=SECRET)
    with pytest.raises(ForgedMessage):
        vnpay.verify_fields(
            {**signed, "vnp_TransactionStatus": "01"}, fields=vnpay.QUERY_RESPONSE_FIELDS, secret=SECRET
        )


def test_times_are_written_and_read_in_gmt_plus_7() -> None:
    assert vnpay.format_time(NOW) == "20260302163000"
    assert vnpay.parse_time("20260302163000") == NOW
    with pytest.raises(ValueError):
        vnpay.format_time(datetime(2026, 3, 2, 9, 30))  # noqa: DTZ001 - a naive time is the point
    for text in ("2026030216300", "2026-03-02 16:30", "20261302163000"):
        with pytest.raises(ValueError):
            vnpay.parse_time(text)


def test_order_info_is_plain_ascii() -> None:
    assert vnpay.order_info("Lệ phí đăng ký hộ tịch — CV1 (50%)") == "Le phi dang ky ho tich CV1 50"
    assert vnpay.order_info("★★★") == "Payment"
    assert len(vnpay.order_info("a" * 400)) == 255


# --- the payment URL -----------------------------------------------------------------------------


def test_start_builds_the_signed_payment_url() -> None:
    gateway = VnpayGateway(
        tmn_code=TMN,
        hash_secret=SECRET,
        payment_url="https://pay.example/paymentv2/vpcpay.html",
        api_url="https://pay.example/merchant_webapi/api/transaction",
    )
    url = gateway.start(payment_start("CV0000000001", created_at=NOW))

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "pay.example", "/paymentv2/vpcpay.html")
    unsigned, signature = parts.query.rsplit("&vnp_SecureHash=", 1)
    assert signature == hmac512(unsigned)
    assert dict(parse_qsl(unsigned)) == {
        "vnp_Amount": "15000000",
        "vnp_Command": "pay",
        "vnp_CreateDate": "20260302163000",
        "vnp_CurrCode": "VND",
        "vnp_ExpireDate": "20260302164500",
        "vnp_IpAddr": "203.0.113.7",
        "vnp_Locale": "vn",
        "vnp_OrderInfo": "Le phi ho tich CV0000000001",
        "vnp_OrderType": "other",
        "vnp_ReturnUrl": RETURN_URL,
        "vnp_TmnCode": TMN,
        "vnp_TxnRef": "CV0000000001",
        "vnp_Version": "2.1.0",
    }
    assert "vnp_SecureHashType" not in parts.query  # version 2.1.0 sends none


def test_start_in_english_and_refusals() -> None:
    gateway = gateway_at("https://pay.example")
    assert "vnp_Locale=en" in gateway.start(payment_start(locale="en"))
    for change in ({"currency": "USD"}, {"amount_minor": 0}, {"payer_ip": "not-an-ip"}):
        with pytest.raises(UnsupportedPayment):
            gateway.start(dataclasses.replace(payment_start(), **change))


# --- return and IPN ------------------------------------------------------------------------------


def result_params(secret: str = SECRET, **overrides: str) -> dict[str, str]:
    params = {
        "vnp_TmnCode": TMN,
        "vnp_Amount": "15000000",
        "vnp_BankCode": "NCB",
        "vnp_BankTranNo": "VNP14000001",
        "vnp_CardType": "ATM",
        "vnp_PayDate": "20260302163100",
        "vnp_OrderInfo": "Le phi ho tich CV1",
        "vnp_TransactionNo": "14000001",
        "vnp_ResponseCode": "00",
        "vnp_TransactionStatus": "00",
        "vnp_TxnRef": "CV1",
        **overrides,
    }
    params["vnp_SecureHash"] = hmac512(vnpay.canonical_query(params), secret)
    return params


@pytest.mark.parametrize("verify", ["verify_return", "verify_callback"])
def test_a_paid_result_verifies(verify: str) -> None:
    result = getattr(gateway_at("https://pay.example"), verify)(result_params())
    assert result.status is GatewayStatus.PAID
    assert (result.reference, result.amount_minor, result.currency) == ("CV1", 150_000, "VND")
    assert (result.gateway_transaction, result.code) == ("14000001", "00")
    assert result.paid_at == datetime(2026, 3, 2, 9, 31, tzinfo=UTC)
    assert result.raw["vnp_BankTranNo"] == "VNP14000001"
    assert "vnp_SecureHash" not in result.raw


@pytest.mark.parametrize("name", sorted(result_params()))
def test_one_changed_byte_anywhere_is_a_forgery(name: str) -> None:
    params = result_params()
    value = params[name]
    params[name] = value[:-1] + chr(ord(value[-1]) ^ 1)
    with pytest.raises(ForgedMessage):
        gateway_at("https://pay.example").verify_callback(params)


@pytest.mark.parametrize(
    "params",
    [
        {key: value for key, value in result_params().items() if key != "vnp_SecureHash"},
        result_params(secret="ANOTHERSECRET"),
        {**result_params(), "vnp_SecureHash": ""},
        {**result_params(), "vnp_PromotionCode": "FREE"},  # an unsigned extra parameter
        {key: value for key, value in result_params().items() if key != "vnp_BankCode"},
    ],
    ids=["missing hash", "other secret", "empty hash", "added parameter", "removed parameter"],
)
def test_unsigned_or_otherwise_signed_results_are_forgeries(params: dict[str, str]) -> None:
    gateway = gateway_at("https://pay.example")
    with pytest.raises(ForgedMessage):
        gateway.verify_return(params)
    with pytest.raises(ForgedMessage):
        gateway.verify_callback(params)


def test_the_hash_is_read_in_either_case() -> None:
    params = result_params()
    params["vnp_SecureHash"] = params["vnp_SecureHash"].upper()
    assert gateway_at("https://pay.example").verify_callback(params).status is GatewayStatus.PAID


@pytest.mark.parametrize(
    ("response_code", "transaction_status", "status"),
    [
        ("24", "02", GatewayStatus.FAILED),  # the payer cancelled
        ("51", "02", GatewayStatus.FAILED),  # not enough money
        ("11", "02", GatewayStatus.FAILED),  # expired
        ("07", "07", GatewayStatus.PENDING),  # money taken, held as suspected fraud
        ("00", "01", GatewayStatus.PENDING),  # not finished
    ],
)
def test_other_results_map_to_the_ledgers_words(
    response_code: str, transaction_status: str, status: GatewayStatus
) -> None:
    overrides = {"vnp_ResponseCode": response_code, "vnp_TransactionStatus": transaction_status}
    if response_code == "24":
        overrides |= {"vnp_TransactionNo": "0", "vnp_BankTranNo": ""}
    result = gateway_at("https://pay.example").verify_callback(result_params(**overrides))
    assert (result.status, result.code, result.paid_at) == (status, response_code, None)
    if response_code == "24":
        assert result.gateway_transaction == ""


@pytest.mark.parametrize(
    "overrides",
    [
        {"vnp_Amount": "15000050"},  # not whole dong
        {"vnp_Amount": "-100"},
        {"vnp_TmnCode": "OTHERTMN"},
        {"vnp_TxnRef": ""},
        {"vnp_PayDate": "yesterday"},
    ],
)
def test_signed_but_unreadable_results_are_refused(overrides: dict[str, str]) -> None:
    with pytest.raises(MalformedMessage) as raised:
        gateway_at("https://pay.example").verify_callback(result_params(**overrides))
    assert raised.value.code == "message_malformed"


@pytest.mark.parametrize(
    ("outcome", "code", "message"),
    [
        ("ok", "00", "Confirm Success"),
        ("unknown_payment", "01", "Order not found"),
        ("already_settled", "02", "Order already confirmed"),
        ("amount_mismatch", "04", "Invalid amount"),
        ("signature_invalid", "97", "Invalid signature"),
        ("retry", "99", "Unknown error"),
        ("something new", "99", "Unknown error"),  # VNPAY sends it again rather than lose it
    ],
)
def test_callback_response(outcome: str, code: str, message: str) -> None:
    status, body = gateway_at("https://pay.example").callback_response(outcome)
    assert (status, body) == (200, {"RspCode": code, "Message": message})


# --- querydr and refund against the sandbox ------------------------------------------------------


def refund_request(
    params: dict[str, str], *, refund_reference: str, amount: int, full: bool = False
) -> RefundRequest:
    return RefundRequest(
        reference=params["vnp_TxnRef"],
        refund_reference=refund_reference,
        amount_minor=amount,
        full=full,
        gateway_transaction=params.get("vnp_TransactionNo", ""),
        paid_at=datetime.now(UTC),
        reason="Hoàn phí: hồ sơ bị từ chối",
        requested_by="officer-7",
        requester_ip="10.0.0.1",
    )


def test_query_follows_the_payment(running: Running) -> None:
    gateway, start = running.gateway, payment_start("CVQ1")
    unknown = gateway.query(reference="CVQ1", created_at=start.created_at, requester_ip="10.0.0.1")
    assert (unknown.status, unknown.amount_minor, unknown.code) == (GatewayStatus.UNKNOWN, None, "91")

    url = gateway.start(start)
    assert http_get(url).status == 200
    opened = gateway.query(reference="CVQ1", created_at=start.created_at, requester_ip="10.0.0.1")
    assert (opened.status, opened.amount_minor) == (GatewayStatus.PENDING, 150_000)

    params = pay(running.base, url)
    paid = gateway.query(reference="CVQ1", created_at=start.created_at, requester_ip="10.0.0.1")
    assert paid.status is GatewayStatus.PAID
    assert (paid.amount_minor, paid.currency, paid.code) == (150_000, "VND", "00")
    assert paid.gateway_transaction == params["vnp_TransactionNo"]
    assert paid.paid_at == vnpay.parse_time(params["vnp_PayDate"])


def test_query_of_a_cancelled_payment(running: Running) -> None:
    start = payment_start("CVQ2")
    pay(running.base, running.gateway.start(start), action="cancel")
    result = running.gateway.query(reference="CVQ2", created_at=start.created_at, requester_ip="10.0.0.1")
    assert (result.status, result.gateway_transaction) == (GatewayStatus.FAILED, "")


def test_refunds(running: Running) -> None:
    gateway = running.gateway
    params = pay(running.base, gateway.start(payment_start("CVR1")))

    partial = gateway.refund(refund_request(params, refund_reference="RF-1", amount=50_000))
    assert (partial.refund_reference, partial.accepted, partial.code) == ("RF-1", True, "00")
    assert partial.gateway_transaction and partial.gateway_transaction != params["vnp_TransactionNo"]

    too_much = gateway.refund(refund_request(params, refund_reference="RF-2", amount=100_100))
    assert (too_much.accepted, too_much.code) == (False, "02")

    with pytest.raises(GatewayError) as repeated:
        gateway.refund(refund_request(params, refund_reference="RF-1", amount=50_000))
    assert repeated.value.code == "refund_duplicate"
    assert running.sandbox.transaction("CVR1")["refunded"] == 5_000_000  # type: ignore[index]

    cancelled = pay(running.base, gateway.start(payment_start("CVR2")), action="cancel")
    refused = gateway.refund(refund_request(cancelled, refund_reference="RF-3", amount=10_000))
    assert (refused.accepted, refused.code) == (False, "95")


def test_a_forged_api_answer_is_refused(running: Running) -> None:
    running.sandbox.set_faults(forge_responses=True)
    with pytest.raises(ForgedMessage):
        running.gateway.query(reference="CVF1", created_at=NOW, requester_ip="10.0.0.1")


def test_gateway_down_slow_or_answering_garbage(running: Running) -> None:
    closed = gateway_at(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(GatewayError) as refused:
        closed.query(reference="CV1", created_at=NOW, requester_ip="10.0.0.1")
    assert refused.value.code == "gateway_unavailable"

    running.sandbox.set_faults(down=True)
    with pytest.raises(GatewayError) as down:
        running.gateway.query(reference="CV1", created_at=NOW, requester_ip="10.0.0.1")
    assert down.value.code == "gateway_unavailable"

    running.sandbox.set_faults(down=False, garbage=True)
    with pytest.raises(GatewayError) as garbage:
        running.gateway.refund(refund_request({"vnp_TxnRef": "CV1"}, refund_reference="RF-G", amount=1000))
    assert garbage.value.code == "gateway_bad_response"

    running.sandbox.set_faults(garbage=False, delay_ms=1500)
    with pytest.raises(GatewayError) as slow:
        gateway_at(running.base, timeout=0.3).query(reference="CV1", created_at=NOW, requester_ip="10.0.0.1")
    assert slow.value.code == "gateway_timeout"


def test_api_errors_are_gateway_errors(running: Running) -> None:
    wrong_terminal = VnpayGateway.at(running.base, tmn_code="OTHERTMN", hash_secret=SECRET)
    with pytest.raises(GatewayError) as unknown_terminal:
        wrong_terminal.query(reference="CV1", created_at=NOW, requester_ip="10.0.0.1")
    assert unknown_terminal.value.code == "vnpay_02"

    wrong_secret = VnpayGateway.at(running.base, tmn_code=TMN, hash_secret="NOTTHESECRET")
    with pytest.raises(ForgedMessage):  # 97, signed with the secret this gateway lacks
        wrong_secret.query(reference="CV1", created_at=NOW, requester_ip="10.0.0.1")

    with pytest.raises(GatewayError) as bad_format:
        running.gateway.query(reference="CV1", created_at=NOW, requester_ip="")
    assert bad_format.value.code == "vnpay_03"
