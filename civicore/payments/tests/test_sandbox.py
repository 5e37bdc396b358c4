"""The local VNPAY over real HTTP on 127.0.0.1: a payment from the signed URL through the hosted
page to the signed return and the IPN (retried until the merchant confirms), querydr and refunds,
hostile requests answered with a stable code, the fault drills and the `paysandbox` command."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.core.management.base import CommandError

from civicore.core.tests.accessibility import Check, axe_in_chromium
from civicore.payments import vnpay
from civicore.payments.gateways import ForgedMessage, GatewayError, GatewayStatus
from civicore.payments.sandbox import ADMIN_HEADER, Faults, IpnAttempt, VnpaySandbox, admin_signature
from civicore.payments.tests.test_vnpay import (
    RETURN_URL,
    SECRET,
    TMN,
    Page,
    closed_port,
    http_get,
    http_post,
    pay,
    payment_start,
    refund_request,
    submit,
)
from civicore.payments.vnpay import VnpayGateway

SCHEDULE = (0.05, 0.1, 0.2)


# --- the merchant's IPN endpoint -----------------------------------------------------------------


@dataclass
class Arrival:
    params: dict[str, str]
    answered: str  # the RspCode sent back
    status: GatewayStatus | None  # None: the signature did not verify


@dataclass
class IpnReceiver:
    """The merchant's IPN URL: verifies each call with the adapter, as the ledger's view would, and
    answers the RspCodes it is told to, in turn (the last one from then on)."""

    gateway: VnpayGateway
    answers: list[str] = field(default_factory=lambda: ["00"])
    arrivals: list[Arrival] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/payments/vnpay/ipn"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
                try:
                    status: GatewayStatus | None = receiver.gateway.verify_callback(params).status
                    outcome = ""
                except ForgedMessage:
                    status, outcome = None, "signature_invalid"
                with receiver._lock:
                    turn = len([arrival for arrival in receiver.arrivals if arrival.status is not None])
                    code = (
                        vnpay.ipn_answer(outcome)["RspCode"]
                        if outcome
                        else receiver.answers[min(turn, len(receiver.answers) - 1)]
                    )
                    receiver.arrivals.append(Arrival(params, code, status))
                body = json.dumps({"RspCode": code, "Message": "test"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def wait_until(check: Callable[[], bool], *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


@dataclass
class Setup:
    sandbox: VnpaySandbox
    base: str
    gateway: VnpayGateway
    receiver: IpnReceiver

    def attempts(self, txn_ref: str) -> list[IpnAttempt]:
        return self.sandbox.ipn_attempts(txn_ref)


@pytest.fixture
def make_setup() -> Iterator[Callable[..., Setup]]:
    stops: list[Callable[[], None]] = []

    def make(*, answers: tuple[str, ...] = ("00",), ipn_url: str | None = None, **options: Any) -> Setup:
        merchant = VnpayGateway(
            tmn_code=TMN, hash_secret=SECRET, payment_url="http://x/", api_url="http://x/"
        )
        receiver = IpnReceiver(merchant, answers=list(answers))
        receiver.start()
        stops.append(receiver.stop)
        sandbox = VnpaySandbox(
            tmn_code=TMN,
            hash_secret=SECRET,
            ipn_url=ipn_url or receiver.url,
            ipn_schedule=SCHEDULE,
            **options,
        )
        base, stop = sandbox.start_in_thread()
        stops.append(stop)
        return Setup(
            sandbox, base, VnpayGateway.at(base, tmn_code=TMN, hash_secret=SECRET, timeout=2), receiver
        )

    yield make
    for stop in reversed(stops):
        stop()


@pytest.fixture
def setup(make_setup: Callable[..., Setup]) -> Setup:
    return make_setup()


# --- the whole flow ------------------------------------------------------------------------------


def test_a_payment_end_to_end(setup: Setup) -> None:
    start = payment_start("CVE2E00000001", amount=150_000)
    url = setup.gateway.start(start)

    page = http_get(url)
    assert page.status == 200
    assert '<html lang="vi">' in page.body and "<main>" in page.body
    assert "150.000 ₫" in page.body and "CVE2E00000001" in page.body
    assert page.body.count('<button type="submit"') == 3

    answer = submit(setup.base, page.body, "pay", bank="NCB")
    assert answer.status == 302
    location = answer.headers["Location"]
    assert location.startswith(RETURN_URL + "&")
    returned = setup.gateway.verify_return(dict(parse_qsl(urlsplit(location).query)))
    assert returned.status is GatewayStatus.PAID
    assert (returned.reference, returned.amount_minor) == ("CVE2E00000001", 150_000)

    wait_until(lambda: len(setup.attempts("CVE2E00000001")) == 1)
    [arrival] = setup.receiver.arrivals
    assert arrival.status is GatewayStatus.PAID
    notified = setup.gateway.verify_callback(arrival.params)
    assert notified.gateway_transaction == returned.gateway_transaction != ""
    assert notified.paid_at == returned.paid_at
    [attempt] = setup.attempts("CVE2E00000001")
    assert (attempt.kind, attempt.http_status, attempt.rsp_code) == ("ipn", 200, "00")

    queried = setup.gateway.query(
        reference="CVE2E00000001", created_at=start.created_at, requester_ip="10.0.0.1"
    )
    assert (queried.status, queried.gateway_transaction) == (GatewayStatus.PAID, returned.gateway_transaction)


def test_the_ipn_is_sent_again_until_the_merchant_confirms(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup(answers=("99", "00"))
    pay(setup.base, setup.gateway.start(payment_start("CVRETRY1")))
    wait_until(lambda: len(setup.attempts("CVRETRY1")) == 2)
    time.sleep(sum(SCHEDULE))  # nothing more once confirmed
    attempts = setup.attempts("CVRETRY1")
    assert [attempt.rsp_code for attempt in attempts] == ["99", "00"]
    assert attempts[1].at >= attempts[0].at
    assert setup.receiver.arrivals[0].params == setup.receiver.arrivals[1].params


def test_already_confirmed_also_ends_the_retries(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup(answers=("02",))
    pay(setup.base, setup.gateway.start(payment_start("CVTWICE1")))
    wait_until(lambda: len(setup.attempts("CVTWICE1")) == 1)
    time.sleep(sum(SCHEDULE))
    assert [attempt.rsp_code for attempt in setup.attempts("CVTWICE1")] == ["02"]


def test_an_unreachable_merchant_is_tried_on_schedule_then_given_up(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup(ipn_url=f"http://127.0.0.1:{closed_port()}/ipn")
    pay(setup.base, setup.gateway.start(payment_start("CVGONE1")))
    wait_until(lambda: len(setup.attempts("CVGONE1")) == 1 + len(SCHEDULE))
    time.sleep(0.3)
    attempts = setup.attempts("CVGONE1")
    assert len(attempts) == 1 + len(SCHEDULE)
    assert all(attempt.http_status is None and attempt.error for attempt in attempts)


def test_a_cancelled_payment(setup: Setup) -> None:
    params = pay(setup.base, setup.gateway.start(payment_start("CVCANCEL1")), action="cancel")
    returned = setup.gateway.verify_return(params)
    assert (returned.status, returned.code) == (GatewayStatus.FAILED, "24")
    wait_until(lambda: len(setup.receiver.arrivals) == 1)
    assert setup.receiver.arrivals[0].status is GatewayStatus.FAILED


def test_leaving_the_page_changes_nothing(setup: Setup) -> None:
    url = setup.gateway.start(payment_start("CVLEAVE1", locale="en"))
    page = http_get(url)
    assert '<html lang="en">' in page.body and "150,000 VND" in page.body
    left = http_get(setup.base + "/paymentv2/leave?lang=en")
    assert left.status == 200 and "Nothing was paid" in left.body
    time.sleep(0.2)
    assert setup.sandbox.transaction("CVLEAVE1")["status"] == "01"  # type: ignore[index]
    assert setup.receiver.arrivals == []
    # The same request opens the same page again; once finished it cannot be paid again.
    again = http_get(url)
    assert again.status == 200 and submit(setup.base, again.body, "pay", bank="VCB").status == 302
    finished = http_get(url)
    assert (finished.status, finished.headers["X-Sandbox-Error"]) == (400, "01 transaction_exists")


# --- querydr and refund --------------------------------------------------------------------------


def signed_api(body: dict[str, str], *, command: str) -> dict[str, str]:
    fields = vnpay.QUERY_REQUEST_FIELDS if command == "querydr" else vnpay.REFUND_REQUEST_FIELDS
    return {**body, "vnp_SecureHash": vnpay.sign_fields(body, fields=fields, secret=SECRET)}


def call_api(base: str, body: bytes) -> dict[str, str]:
    answer = http_post(base, vnpay.API_PATH, body=body, content_type="application/json")
    assert answer.status == 200
    decoded: dict[str, str] = json.loads(answer.body)
    command = decoded["vnp_Command"]
    vnpay.verify_fields(decoded, fields=vnpay.RESPONSE_FIELDS[command], secret=SECRET)
    return decoded


def query_body(txn_ref: str, request_id: str = "Q1") -> dict[str, str]:
    now = vnpay.format_time(datetime.now(UTC))
    return {
        "vnp_RequestId": request_id, "vnp_Version": "2.1.0", "vnp_Command": "querydr", "vnp_TmnCode": TMN,
        "vnp_TxnRef": txn_ref, "vnp_TransactionDate": now, "vnp_CreateDate": now, "vnp_IpAddr": "10.0.0.1",
        "vnp_OrderInfo": "Query",
    }  # fmt: skip


def test_partial_refunds_add_up_to_the_amount_paid_and_no_more(setup: Setup) -> None:
    gateway = setup.gateway
    params = pay(setup.base, gateway.start(payment_start("CVREFUND1", amount=150_000)))

    first = gateway.refund(refund_request(params, refund_reference="RFA", amount=50_000))
    rest = gateway.refund(refund_request(params, refund_reference="RFB", amount=100_000))
    assert (first.accepted, rest.accepted) == (True, True)
    more = gateway.refund(refund_request(params, refund_reference="RFC", amount=1_000))
    assert (more.accepted, more.code) == (False, "02")
    record = setup.sandbox.transaction("CVREFUND1")
    assert record is not None and record["refunded"] == 15_000_000
    assert [refund["type"] for refund in record["refunds"]] == ["03", "03"]

    # A full refund is refused after a partial one, and accepted on a payment not refunded yet.
    full_after = gateway.refund(refund_request(params, refund_reference="RFD", amount=150_000, full=True))
    assert (full_after.accepted, full_after.code) == (False, "04")
    other = pay(setup.base, gateway.start(payment_start("CVREFUND2", amount=80_000)))
    wrong_full = gateway.refund(refund_request(other, refund_reference="RFE", amount=10_000, full=True))
    assert (wrong_full.accepted, wrong_full.code) == (False, "93")
    full = gateway.refund(refund_request(other, refund_reference="RFF", amount=80_000, full=True))
    assert (full.accepted, full.code) == (True, "00")
    assert full.raw["vnp_TransactionType"] == "02"

    # Still paid for the ledger: refunds are its own business.
    queried = gateway.query(reference="CVREFUND1", created_at=datetime.now(UTC), requester_ip="10.0.0.1")
    assert queried.status is GatewayStatus.PAID


def test_a_repeated_request_id_is_refused(setup: Setup) -> None:
    params = pay(setup.base, setup.gateway.start(payment_start("CVREPEAT1")))
    body = json.dumps(signed_api(query_body("CVREPEAT1", "SAMEID"), command="querydr")).encode()
    assert call_api(setup.base, body)["vnp_ResponseCode"] == "00"
    assert call_api(setup.base, body)["vnp_ResponseCode"] == "94"

    setup.gateway.refund(refund_request(params, refund_reference="RF-ONCE", amount=10_000))
    with pytest.raises(GatewayError) as repeated:
        setup.gateway.refund(refund_request(params, refund_reference="RF-ONCE", amount=10_000))
    assert repeated.value.code == "refund_duplicate"
    assert setup.sandbox.transaction("CVREPEAT1")["refunded"] == 1_000_000  # type: ignore[index]


def signed_query_json(**changes: str) -> bytes:
    return json.dumps(signed_api({**query_body("CV1"), **changes}, command="querydr")).encode()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", "03"),
        (b"[1, 2]", "03"),
        (json.dumps({"vnp_Command": "pay"}).encode(), "03"),
        (json.dumps({**query_body("CV1"), "vnp_SecureHash": "00"}).encode(), "97"),
        (signed_query_json(vnp_TmnCode="OTHERTMN"), "02"),
        (signed_query_json(vnp_IpAddr=""), "03"),
        (signed_query_json(vnp_CreateDate="now"), "03"),
        (signed_query_json(vnp_TxnRef="CVNOSUCH1"), "91"),
    ],
    ids=["not json", "not an object", "unknown command", "bad checksum", "other terminal", "missing field",
         "bad date", "unknown transaction"],
)  # fmt: skip
def test_hostile_api_requests_get_a_signed_answer_with_a_code(setup: Setup, body: bytes, code: str) -> None:
    assert call_api(setup.base, body)["vnp_ResponseCode"] == code


# --- hostile requests to the payment page --------------------------------------------------------


OTHER_HASH = vnpay.sign("anything", secret="another secret")


def tampered(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(params)}"


def resigned(url: str, **changes: str | None) -> str:
    """The request changed by someone holding the secret: valid signature, bad content."""
    params = dict(parse_qsl(urlsplit(tampered(url, **changes)).query))
    base = url.split("?", 1)[0]
    return f"{base}?{vnpay.signed_query(params, secret=SECRET)}"


@pytest.mark.parametrize(
    ("change", "code", "reason"),
    [
        (lambda url: tampered(url, vnp_Amount="100"), "97", "invalid_signature"),
        (lambda url: tampered(url, vnp_SecureHash=OTHER_HASH), "97", "invalid_signature"),
        (lambda url: tampered(url, vnp_SecureHash=None), "97", "invalid_signature"),
        (lambda url: resigned(url, vnp_ReturnUrl=None), "03", "missing_field"),
        (lambda url: resigned(url, vnp_Amount="15000050"), "03", "invalid_amount"),
        (lambda url: resigned(url, vnp_Amount="0"), "03", "invalid_amount"),
        (lambda url: resigned(url, vnp_Amount="-1500000"), "03", "invalid_amount"),
        (lambda url: resigned(url, vnp_TmnCode="OTHERTMN"), "02", "unknown_merchant"),
        (lambda url: resigned(url, vnp_ExpireDate="20200101000000"), "03", "invalid_date"),
        (lambda url: resigned(url, vnp_CreateDate="yesterday"), "03", "invalid_date"),
        (lambda url: resigned(url, vnp_ReturnUrl="javascript:alert(1)"), "03", "invalid_parameter"),
        (lambda url: resigned(url, vnp_OrderInfo="<script>"), "03", "invalid_parameter"),
        (lambda url: url + "&vnp_Amount=100", "03", "duplicate_parameter"),
    ],
    ids=["tampered amount", "other secret", "no hash", "missing field", "not whole dong", "zero",
         "negative", "unknown terminal", "expire before create", "bad date", "script url", "markup",
         "repeated parameter"],
)  # fmt: skip
def test_hostile_payment_requests_get_a_400_with_a_code(
    setup: Setup, change: Callable[[str], str], code: str, reason: str
) -> None:
    page = http_get(change(setup.gateway.start(payment_start("CVHOSTILE1"))))
    assert page.status == 400
    assert page.headers["X-Sandbox-Error"] == f"{code} {reason}"
    assert f'Mã lỗi: <strong class="code">{code}</strong>' in page.body
    assert "<script>" not in page.body
    assert setup.sandbox.transaction("CVHOSTILE1") is None


def test_an_expired_request_is_refused(setup: Setup) -> None:
    start = payment_start("CVEXPIRED1", created_at=datetime.now(UTC) - timedelta(hours=1))
    page = http_get(setup.gateway.start(start))
    assert (page.status, page.headers["X-Sandbox-Error"]) == (400, "11 expired")


def test_hostile_form_posts(setup: Setup) -> None:
    page = http_get(setup.gateway.start(payment_start("CVFORM1")))
    forged_token = submit(
        setup.base, page.body.replace('name="token" value="', 'name="token" value="x'), "pay"
    )
    assert (forged_token.status, forged_token.headers["X-Sandbox-Error"]) == (400, "03 invalid_token")
    no_bank = submit(setup.base, page.body, "pay", bank="NOBANK")
    assert no_bank.headers["X-Sandbox-Error"] == "03 invalid_bank"
    unknown = http_post(setup.base, "/paymentv2/pay", body=b"session=nope&token=nope", content_type="x")
    assert (unknown.status, unknown.headers["X-Sandbox-Error"]) == (400, "03 unknown_transaction")
    assert http_get(setup.base + "/paymentv2/pay").status == 405
    assert http_get(setup.base + "/nowhere").status == 404
    assert setup.sandbox.transaction("CVFORM1")["status"] == "01"  # type: ignore[index]


# --- fault drills --------------------------------------------------------------------------------


def test_each_ipn_twice(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup(faults=Faults(duplicate_ipn=True))
    pay(setup.base, setup.gateway.start(payment_start("CVDUP1")))
    wait_until(lambda: len(setup.attempts("CVDUP1")) == 2)
    assert sorted(attempt.kind for attempt in setup.attempts("CVDUP1")) == ["duplicate", "ipn"]
    assert [arrival.status for arrival in setup.receiver.arrivals] == [GatewayStatus.PAID] * 2


def test_a_forged_ipn_before_the_real_one(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup(faults=Faults(forge_ipn=True))
    pay(setup.base, setup.gateway.start(payment_start("CVFORGE1")))
    wait_until(lambda: len(setup.attempts("CVFORGE1")) == 2)
    by_kind = {attempt.kind: attempt.rsp_code for attempt in setup.attempts("CVFORGE1")}
    assert by_kind == {"forged": "97", "ipn": "00"}
    statuses = sorted(str(arrival.status) for arrival in setup.receiver.arrivals)
    assert statuses == ["None", "paid"]


def test_held_ipns_wait_until_released(make_setup: Callable[..., Setup]) -> None:
    setup = make_setup(faults=Faults(hold_ipn=True))
    pay(setup.base, setup.gateway.start(payment_start("CVHOLD1")))
    time.sleep(0.3)
    assert setup.receiver.arrivals == [] and setup.attempts("CVHOLD1") == []
    setup.sandbox.set_faults(hold_ipn=False)
    # The sandbox records its attempt once the answer is back, a moment after the receiver saw it.
    wait_until(lambda: len(setup.receiver.arrivals) == 1 and len(setup.attempts("CVHOLD1")) == 1)
    assert setup.attempts("CVHOLD1")[0].rsp_code == "00"


def admin(base: str, path: str, payload: dict[str, Any] | None = None, *, secret: str = SECRET) -> Page:
    body = json.dumps(payload).encode() if payload is not None else b""
    method = "POST" if payload is not None else "GET"
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        signature = admin_signature(secret, method=method, path=path, body=body)
        connection.request(method, path, body=body or None, headers={ADMIN_HEADER: signature})
        response = connection.getresponse()
        return Page(response.status, response.read().decode(), dict(response.getheaders()))
    finally:
        connection.close()


def test_the_admin_endpoint_sets_faults_only_for_the_secret_holder(setup: Setup) -> None:
    assert admin(setup.base, "/_sandbox/faults", {"down": True}, secret="guess").status == 403
    assert setup.sandbox.faults.down is False

    answer = admin(setup.base, "/_sandbox/faults", {"down": True, "delay_ms": 10})
    assert answer.status == 200 and json.loads(answer.body)["down"] is True
    down = http_get(setup.gateway.start(payment_start("CVADMIN1")))
    assert down.status == 503
    with pytest.raises(GatewayError):
        setup.gateway.query(reference="CVADMIN1", created_at=datetime.now(UTC), requester_ip="10.0.0.1")

    assert admin(setup.base, "/_sandbox/faults", {"down": "yes"}).status == 400
    assert admin(setup.base, "/_sandbox/faults", {"explode": True}).status == 400
    assert admin(setup.base, "/_sandbox/faults", {"down": False}).status == 200
    pay(setup.base, setup.gateway.start(payment_start("CVADMIN2")))
    state = admin(setup.base, "/_sandbox/transactions/CVADMIN2")
    assert state.status == 200 and json.loads(state.body)["status"] == "00"
    assert "token" not in json.loads(state.body)
    assert admin(setup.base, "/_sandbox/release-ipns", {}).status == 200
    assert VnpaySandbox(tmn_code=TMN, hash_secret=SECRET, admin=False).faults == Faults()


# --- accessibility, in a real browser ------------------------------------------------------------


@pytest.mark.browser
def test_the_pages_pass_axe(setup: Setup) -> None:
    # Back to a page of the sandbox itself: the browser never leaves 127.0.0.1.
    landing = setup.base + "/paymentv2/leave?lang=vi"
    url = setup.gateway.start(payment_start("CVAXE1", return_url=landing))

    def pay_with_the_keyboard(page: Any, check: Check) -> None:
        """The first field shows that it has the focus; paying returns to the merchant."""
        page.goto(url)
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "document.activeElement.tagName + ':' + getComputedStyle(document.activeElement).outlineStyle"
        )
        assert focused == "INPUT:solid"
        page.get_by_role("button", name="Thanh toán").click()
        page.wait_for_url(landing + "&vnp_*")
        assert setup.sandbox.transaction("CVAXE1")["status"] == "00"  # type: ignore[index]

    found = axe_in_chromium(
        base_url=setup.base,
        languages=("vi",),
        pages={
            "payment": url,
            "tampered": tampered(url, vnp_Amount="1"),
            "leave": setup.base + "/paymentv2/leave",
        },
        actions=[pay_with_the_keyboard],
    )
    assert len(found) == 3


# --- the command ---------------------------------------------------------------------------------


def run_command(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[dict[str, Any], str]:
    from io import StringIO

    from civicore.payments.management.commands import paysandbox

    seen: dict[str, Any] = {}

    def fake_serve(port: int, *, sandbox: VnpaySandbox, host: str, ready: Callable[[str], None]) -> None:
        seen.update(port=port, sandbox=sandbox, host=host)
        ready(f"http://{host}:{port}")

    monkeypatch.setattr(paysandbox, "serve", fake_serve)
    out = StringIO()
    command = paysandbox.Command(stdout=out)
    options = command.create_parser("civicore", "paysandbox").parse_args(list(argv))
    command.execute(**{**vars(options), "skip_checks": True})
    return seen, out.getvalue()


def test_the_command_reads_the_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_VNPAY_SECRET", SECRET)
    seen, out = run_command(
        monkeypatch, "serve", "--port", "8099", "--ipn-url", "http://127.0.0.1:8000/ipn",
        "--tmn-code", "DEMOTMN1", "--hash-secret-env", "DEMO_VNPAY_SECRET", "--ipn-schedule", "1,3",
    )  # fmt: skip
    sandbox = seen["sandbox"]
    assert (seen["port"], seen["host"], sandbox.tmn_code) == (8099, "127.0.0.1", "DEMOTMN1")
    assert (sandbox.ipn_url, sandbox.ipn_schedule) == ("http://127.0.0.1:8000/ipn", (1.0, 3.0))
    assert "listening on http://127.0.0.1:8099" in out and SECRET not in out
    # The sandbox signs with the secret from the environment.
    gateway = VnpayGateway.at("http://127.0.0.1:8099", tmn_code="DEMOTMN1", hash_secret=SECRET)
    page = sandbox._open(dict(parse_qsl(urlsplit(gateway.start(payment_start("CVCMD1"))).query)))
    assert page.txn_ref == "CVCMD1"

    monkeypatch.delenv("DEMO_VNPAY_SECRET")
    with pytest.raises(CommandError, match="DEMO_VNPAY_SECRET"):
        run_command(
            monkeypatch, "serve", "--ipn-url", "http://x/ipn", "--hash-secret-env", "DEMO_VNPAY_SECRET"
        )
    monkeypatch.setenv("VNPAY_HASH_SECRET", SECRET)
    with pytest.raises(CommandError):
        run_command(monkeypatch, "serve", "--ipn-url", "ftp://x/ipn")
    with pytest.raises(CommandError):
        run_command(monkeypatch, "serve", "--ipn-url", "http://x/ipn", "--ipn-schedule", "soon")
