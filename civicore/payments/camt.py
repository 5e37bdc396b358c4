"""ISO 20022 bank-to-customer cash reports: camt.053 statements and camt.054 notifications, versions
001.02 and 001.08, read from files that come from outside and written for tests and the demo.

Invariants: no DTD, entity or network access is ever used and every refusal is a `CamtError` with a
stable code; amounts are exact integer minor units of their `Ccy`; the file is read as a stream, so
memory grows with the lines kept, not with the file.

Facts used, from the ISO 20022 message definitions (https://www.iso20022.org, "Bank-to-Customer Cash
Management", camt.053.001.02/.08 and camt.054.001.02/.08, their XSDs) and the ISO 4217 currency list
(maintained by SIX, https://www.six-group.com/en/products-services/financial-information/data-standards.html):
- the message is told by the namespace `urn:iso:std:iso:20022:tech:xsd:camt.05x.001.0y` of `Document`;
- an entry (`Ntry`) has `Amt` with a `Ccy` attribute (a decimal of at most 18 digits, never negative:
  the direction is `CdtDbtInd` CRDT/DBIT), `Sts` (001.02: the code as text; 001.08: `Sts/Cd` or
  `Sts/Prtry`), optional `BookgDt`/`ValDt` as `Dt` or `DtTm`, `AcctSvcrRef`, and `NtryDtls/TxDtls`;
- a transaction's own amount is `TxDtls/Amt` (001.08) or `TxDtls/AmtDtls/TxAmt/Amt` (both versions);
  its debtor is `RltdPties/Dbtr/Nm` (001.02) or `RltdPties/Dbtr/Pty/Nm` (001.08);
- ISO 4217 gives each currency's minor unit: most have 2 decimals, those listed below 0, 3 or 4.

A batched entry whose transactions each carry an amount becomes one line per transaction; a line
without its own `AcctSvcrRef` then gets the entry's with `/<position>` added, so that the bank's
reference stays unique per line. Times written without an offset are taken in `assume_tz`
(Vietnamese banks write local time, UTC+7).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal, Protocol

from lxml import etree

from civicore.core.errors import ApplicationError

DEFAULT_MAX_BYTES: Final = 200 * 1024 * 1024
VIETNAM_TIME: Final = timezone(timedelta(hours=7), "ICT")

Kind = Literal["camt.053", "camt.054"]
Version = Literal["001.02", "001.08"]

_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
_MESSAGES: Final[dict[str, tuple[Kind, Version]]] = {
    f"{_PREFIX}camt.053.001.02": ("camt.053", "001.02"),
    f"{_PREFIX}camt.053.001.08": ("camt.053", "001.08"),
    f"{_PREFIX}camt.054.001.02": ("camt.054", "001.02"),
    f"{_PREFIX}camt.054.001.08": ("camt.054", "001.08"),
}
# Kind -> (the message element under Document, the element of one account's report).
_LAYOUT: Final = {"camt.053": ("BkToCstmrStmt", "Stmt"), "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}

# ISO 4217 minor units that are not 2; the codes with no minor unit at all (metals, units of account,
# "no currency") cannot be amounts of a transfer.
_EXPONENTS: Final[dict[str, int]] = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}
_NO_MINOR_UNIT: Final = frozenset("XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XTS XUA XXX".split())

_CURRENCY = re.compile(r"[A-Z]{3}")
# xs:decimal without a sign other than "+" (the schema sets minInclusive 0): no exponent, NaN or
# infinity, which Decimal() would accept.
_AMOUNT = re.compile(r"\+?([0-9]*)(?:\.([0-9]*))?")
_DATE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:Z|[+-][0-9]{2}:[0-9]{2})?")
_DATETIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_STATUS = re.compile(r"[A-Z]{4}")  # ExternalEntryStatus1Code: BOOK, PDNG, INFO, FUTR, and later ones
_STATUSES = frozenset(("BOOK", "PDNG", "INFO", "FUTR"))
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}")
_MAX_TOTAL_DIGITS = 18
_CHUNK = 64 * 1024  # small pieces: each entry is read and dropped while still in the CPU cache


class Readable(Protocol):
    """A binary stream (an open file, an upload): only `read` is used."""

    def read(self, size: int = ..., /) -> bytes: ...


class CamtError(ApplicationError):
    """The bank file cannot be read. `code` is one of camt_malformed, camt_unsupported, camt_invalid
    or camt_too_large; `details` names the element path and entry number where there is one."""

    status = 422

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details or {}, code=code)
        self.details: dict[str, Any] = details or {}


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    scheme: Literal["IBAN", "OTHER"]
    currency: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementLine:
    """One credit or debit as the bank reported it. `amount` is minor units, never negative; `credit`
    says which way the money went. Money received is a credit with status BOOK and no reversal; a
    credit the bank takes back comes as a debit with `reversal` set."""

    amount: int
    currency: str
    credit: bool
    status: str = "BOOK"
    reversal: bool = False
    entry_reference: str | None = None
    servicer_reference: str | None = None
    booking_date: date | None = None
    value_date: date | None = None
    end_to_end_id: str | None = None
    remittance_info: str = ""
    creditor_reference: str | None = None
    debtor_name: str | None = None
    debtor_account: str | None = None
    additional_info: str = ""


@dataclass(frozen=True, slots=True)
class AccountReport:
    """One `Stmt` (camt.053) or `Ntfctn` (camt.054): an account and its lines."""

    id: str
    created_at: datetime | None
    account: Account
    lines: tuple[StatementLine, ...]


@dataclass(frozen=True, slots=True)
class Statement:
    message_id: str
    created_at: datetime
    kind: Kind
    version: Version
    reports: tuple[AccountReport, ...]

    @property
    def lines(self) -> tuple[StatementLine, ...]:
        return tuple(line for report in self.reports for line in report.lines)


def statement_checksum(data: bytes) -> str:
    """What an importer keeps to refuse the same file twice."""
    return hashlib.sha256(data).hexdigest()


def minor_units(text: str, currency: str) -> int:
    """An ISO 20022 amount ("1234.50") in minor units of `currency`, exactly; ValueError if it is not
    a plain non-negative decimal of at most 18 digits or has a non-zero digit past the currency's
    minor unit ("10.005" EUR). Trailing zeros are not digits that count ("50000.00" VND is fine)."""
    text = text.strip()
    exponent = currency_exponent(currency)
    if text.isascii() and text.isdigit() and len(text) <= _MAX_TOTAL_DIGITS:
        return int(text) * 10**exponent  # whole units, by far the most common (every VND amount)
    match = _AMOUNT.fullmatch(text)
    if match is None or not (match.group(1) or match.group(2)):
        raise ValueError("not a non-negative decimal number")
    whole = match.group(1).lstrip("0") or "0"
    fraction = (match.group(2) or "").rstrip("0")
    if len(whole) + len(fraction) > _MAX_TOTAL_DIGITS:
        raise ValueError("more than 18 digits")
    if len(fraction) > exponent:
        raise ValueError(f"more decimals than {currency} has ({exponent})")
    # At most 18 digits: exact within Decimal's default 28-digit precision.
    return int(Decimal(f"{whole}.{fraction or 0}").scaleb(exponent))


def currency_exponent(currency: str) -> int:
    if not _CURRENCY.fullmatch(currency) or currency in _NO_MINOR_UNIT:
        raise ValueError(f"{currency!r} is not a currency of payments")
    return _EXPONENTS.get(currency, 2)


def format_amount(amount: int, currency: str) -> str:
    """Minor units as the decimal text ISO 20022 expects: 5000000 VND -> "5000000", 1234 EUR -> "12.34"."""
    exponent = currency_exponent(currency)
    if exponent == 0:
        return str(amount)
    units, cents = divmod(amount, 10**exponent)
    return f"{units}.{cents:0{exponent}d}"


# ---------------------------------------------------------------------------------------------------
# Reading


def read_statement(
    source: bytes | bytearray | memoryview | Readable,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    assume_tz: tzinfo = VIETNAM_TIME,
) -> Statement:
    """Read a camt.053 or camt.054 file (001.02 or 001.08). Raises `CamtError`, and nothing else, on
    anything that is not such a file: the caller may hand over whatever was uploaded."""
    reader = _Reader(assume_tz=assume_tz)
    parser = etree.XMLPullParser(
        events=("end",),
        tag=["{*}GrpHdr", "{*}Acct", "{*}Ntry", "{*}Stmt", "{*}Ntfctn"],
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        remove_blank_text=True,
        collect_ids=False,
    )
    try:
        for chunk in _chunks(source, max_bytes):
            parser.feed(chunk)
            for _event, element in parser.read_events():
                reader.element(element)
        root = parser.close()
        for _event, element in parser.read_events():
            reader.element(element)
    except etree.LxmlError as exc:
        raise CamtError("camt_malformed", f"Not a well-formed XML document: {str(exc)[:300]}") from None
    except RecursionError:
        raise CamtError("camt_malformed", "The document is nested too deeply.") from None
    return reader.finish(root)


def _chunks(source: bytes | bytearray | memoryview | Readable, max_bytes: int) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        data = memoryview(source).cast("B")
        if len(data) > max_bytes:
            raise _too_large(max_bytes)
        for start in range(0, len(data), _CHUNK):
            yield bytes(data[start : start + _CHUNK])
        return
    total = 0
    while chunk := source.read(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(max_bytes)
        yield chunk


def _too_large(max_bytes: int) -> CamtError:
    return CamtError(
        "camt_too_large", f"The file is larger than {max_bytes} bytes.", {"max_bytes": max_bytes}
    )


def _invalid(path: str, problem: str, entry: int | None = None) -> CamtError:
    details: dict[str, Any] = {"path": path}
    where = path
    if entry is not None:
        details["entry"] = entry
        where = f"{path} (entry {entry})"
    return CamtError("camt_invalid", f"{where}: {problem}", details)


class _Bad(Exception):
    """A value is wrong. `where` is relative to the element being read; whoever catches it knows the
    rest of the path (paths are only built for errors: reading a line must stay cheap)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(where, problem)
        self.where = where
        self.problem = problem


def _text(value: str | None, limit: int, where: str) -> str | None:
    """Trimmed text, None when absent or blank; longer than the schema allows is refused, since what
    is read here ends up in database columns of that size."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > limit:
        raise _Bad(where, f"longer than {limit} characters")
    return value


def _amount(element: Any, where: str) -> tuple[int, str]:
    currency = element.get("Ccy")
    if currency is None:
        raise _Bad(f"{where}/@Ccy", "missing")
    text = element.text or ""
    try:
        return minor_units(text, currency), currency
    except (ValueError, InvalidOperation) as exc:
        raise _Bad(where, f"bad amount {text.strip()[:40]!r} {currency[:3]!r}: {exc}") from None


def _direction(text: str | None, where: str) -> bool:
    code = (text or "").strip()
    if code == "CRDT":
        return True
    if code == "DBIT":
        return False
    raise _Bad(where, "must be CRDT or DBIT")


def _boolean(text: str | None, where: str) -> bool:
    value = (text or "").strip()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise _Bad(where, "must be true or false")


@dataclass(slots=True)
class _Transaction:
    amount: Any  # its own Amt element, or None
    credit: bool | None
    end_to_end_id: str | None
    servicer_reference: str | None
    ustrd: list[str]
    creditor_reference: str | None
    debtor_name: str | None
    debtor_account: str | None
    additional_info: str | None


class _Reader:
    """Turns the parser's events into a Statement. Each entry is dropped from the tree once it is a
    line, so only the lines stay in memory. Elements are only changed after their end event: the
    parser may still be building what follows them."""

    def __init__(self, *, assume_tz: tzinfo) -> None:
        self.assume_tz = assume_tz
        self.namespace: str | None = None
        self.root: Any = None
        self.kind: Kind = "camt.053"
        self.version: Version = "001.02"
        self.message_id: str | None = None
        self.created_at: datetime | None = None
        self.reports: list[AccountReport] = []
        # The Stmt/Ntfctn being read (its proxy is kept, so `getparent() is self.container` holds).
        self.container: Any = None
        self.report: tuple[str, datetime | None, Account] | None = None
        self.lines: list[StatementLine] = []
        self.entries = 0  # in the whole document, for error messages
        self.entries_in_report = 0
        self.dates: dict[str, date] = {}

    # -- structure --------------------------------------------------------------------------------

    def start(self, root: Any) -> None:
        docinfo = root.getroottree().docinfo
        if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
            raise CamtError(
                "camt_malformed", "A document type declaration is not allowed.", {"reason": "doctype"}
            )
        name = etree.QName(root)
        known = _MESSAGES.get(name.namespace or "")
        if known is None or name.localname != "Document":
            raise CamtError(
                "camt_unsupported",
                "Not a camt.053.001.02/.08 or camt.054.001.02/.08 document.",
                {"namespace": (name.namespace or "")[:200], "element": name.localname[:100]},
            )
        self.root = root
        self.namespace = name.namespace
        self.kind, self.version = known
        message, container = _LAYOUT[self.kind]
        ns = "{" + (self.namespace or "") + "}"
        self.message_tag = ns + message
        self.container_name = container
        self.container_tag = ns + container
        # Local name -> qualified name (`q["Ntry"] == "{urn:...}Ntry"`), and back.
        self.q = {local: ns + local for local in _LOCAL_NAMES}
        self.local = {qualified: local for local, qualified in self.q.items()}

    def element(self, element: Any) -> None:
        if self.namespace is None:
            self.start(element.getroottree().getroot())
        tag = element.tag
        q = self.q
        if tag == q["Ntry"]:
            self.entry(element)
        elif tag == self.container_tag:
            self.close_report(element)
        elif tag == q["Acct"]:
            self.account(element)
        elif tag == q["GrpHdr"]:
            self.header(element)

    def in_message(self, element: Any) -> bool:
        """Whether `element` is a child of Document/<message>: the same names nested anywhere else (a
        hostile file could) are not the message's."""
        parent = element.getparent()
        return parent is not None and parent.tag == self.message_tag and parent.getparent() is self.root

    def here(self) -> str:
        return f"{self.container_name}[{len(self.reports) + 1}]"

    def header(self, element: Any) -> None:
        if not self.in_message(element):
            return
        if self.message_id is not None:
            raise _invalid("GrpHdr", "more than one")
        q = self.q
        try:
            message_id = _text(_node_text(_first(element, q["MsgId"])), 35, "MsgId")
            created = _node_text(_first(element, q["CreDtTm"]))
            if message_id is None:
                raise _Bad("MsgId", "missing")
            if created is None:
                raise _Bad("CreDtTm", "missing")
            self.created_at = self.datetime(created, "CreDtTm")
        except _Bad as bad:
            raise _invalid(f"GrpHdr/{bad.where}", bad.problem) from None
        self.message_id = message_id

    def account(self, element: Any) -> None:
        container = element.getparent()
        if container is None or container.tag != self.container_tag or not self.in_message(container):
            return
        if container is self.container:
            raise _invalid(f"{self.here()}/Acct", "more than one")
        q = self.q
        try:
            report_id = _text(_node_text(_first(container, q["Id"])), 35, "Id")
            if report_id is None:
                raise _Bad("Id", "missing")
            created = _node_text(_first(container, q["CreDtTm"]))
            created_at = self.datetime(created, "CreDtTm") if created and created.strip() else None
            found = self.account_id(_first(element, q["Id"]), "Acct/Id")
            if found is None:
                raise _Bad("Acct/Id", "no IBAN or Othr/Id")
            currency = _text(_node_text(_first(element, q["Ccy"])), 3, "Acct/Ccy")
            if currency is not None and not _CURRENCY.fullmatch(currency):
                raise _Bad("Acct/Ccy", "not a currency code")
        except _Bad as bad:
            raise _invalid(f"{self.here()}/{bad.where}", bad.problem) from None
        scheme, identifier = found
        self.container = container
        self.report = (report_id, created_at, Account(identifier, scheme, currency))
        self.lines = []
        self.entries_in_report = 0

    def close_report(self, element: Any) -> None:
        if not self.in_message(element):
            return
        if self.report is None or element is not self.container:
            raise _invalid(f"{self.here()}/Acct", "missing")
        report_id, created_at, account = self.report
        self.reports.append(AccountReport(report_id, created_at, account, tuple(self.lines)))
        self.report = self.container = None
        self.lines = []
        element.clear()
        _drop_earlier_siblings(element)

    def finish(self, root: Any) -> Statement:
        if self.namespace is None:
            self.start(root)
        if self.message_id is None or self.created_at is None:
            raise _invalid("GrpHdr", "missing")
        if not self.reports:
            raise _invalid(self.container_name, "missing")
        return Statement(self.message_id, self.created_at, self.kind, self.version, tuple(self.reports))

    # -- entries ----------------------------------------------------------------------------------

    def entry(self, entry: Any) -> None:
        parent = entry.getparent()
        if parent is not self.container or parent is None:
            if parent is not None and parent.tag == self.container_tag and self.in_message(parent):
                self.entries += 1
                raise _invalid(f"{self.here()}/Acct", "missing before the entries", self.entries)
            return  # an Ntry somewhere else is no entry of this message
        self.entries += 1
        self.entries_in_report += 1
        try:
            self.read_entry(entry)
        except _Bad as bad:
            path = f"{self.here()}/Ntry[{self.entries_in_report}]/{bad.where}"
            raise _invalid(path, bad.problem, self.entries) from None
        entry.clear()
        _drop_earlier_siblings(entry)

    def read_entry(self, entry: Any) -> None:
        local = self.local
        amount_element = credit = status_element = booking = value = None
        entry_reference = servicer_reference = reversal = additional = None
        transactions: list[Any] = []
        for child in entry:
            name = local.get(child.tag)
            if name is None:
                continue
            if name == "Amt":
                amount_element = child
            elif name == "CdtDbtInd":
                credit = child.text
            elif name == "Sts":
                status_element = child
            elif name == "BookgDt":
                booking = child
            elif name == "ValDt":
                value = child
            elif name == "AcctSvcrRef":
                servicer_reference = child.text
            elif name == "NtryRef":
                entry_reference = child.text
            elif name == "RvslInd":
                reversal = child.text
            elif name == "NtryDtls":
                transactions.extend(child.iterchildren(self.q["TxDtls"]))
            elif name == "AddtlNtryInf":
                additional = child.text

        if amount_element is None:
            raise _Bad("Amt", "missing")
        amount, currency = _amount(amount_element, "Amt")
        is_credit = _direction(credit, "CdtDbtInd")
        status = self.status(status_element)
        is_reversal = False if reversal is None else _boolean(reversal, "RvslInd")
        booking_date = None if booking is None else self.choice_date(booking, "BookgDt")
        value_date = None if value is None else self.choice_date(value, "ValDt")
        entry_reference = _text(entry_reference, 35, "NtryRef")
        servicer_reference = _text(servicer_reference, 35, "AcctSvcrRef")
        additional = _text(additional, 500, "AddtlNtryInf")
        details = []
        for index, tx in enumerate(transactions, 1):
            try:
                details.append(self.transaction(tx))
            except _Bad as bad:
                raise _Bad(f"NtryDtls/TxDtls[{index}]/{bad.where}", bad.problem) from None

        split = self.split(details, currency, is_credit) if len(details) > 1 else None
        if split is not None:
            total = 0
            for index, (tx, tx_amount, tx_credit) in enumerate(split, 1):
                total += tx_amount if tx_credit else -tx_amount
                self.lines.append(
                    StatementLine(
                        amount=tx_amount,
                        currency=currency,
                        credit=tx_credit,
                        status=status,
                        reversal=is_reversal,
                        entry_reference=entry_reference,
                        servicer_reference=tx.servicer_reference or _numbered(servicer_reference, index),
                        booking_date=booking_date,
                        value_date=value_date,
                        end_to_end_id=tx.end_to_end_id,
                        remittance_info=_join(tx.ustrd),
                        creditor_reference=tx.creditor_reference,
                        debtor_name=tx.debtor_name,
                        debtor_account=tx.debtor_account,
                        additional_info=_join([additional, tx.additional_info]),
                    )
                )
            # A batch that adds up to more than was booked would credit money that never came.
            if total != (amount if is_credit else -amount):
                raise _Bad("NtryDtls", "the transactions' amounts do not add up to the entry's")
            return
        first = details[0] if details else None
        self.lines.append(
            StatementLine(
                amount=amount,
                currency=currency,
                credit=is_credit,
                status=status,
                reversal=is_reversal,
                entry_reference=entry_reference,
                servicer_reference=servicer_reference,
                booking_date=booking_date,
                value_date=value_date,
                end_to_end_id=first.end_to_end_id if first else None,
                remittance_info=_join([u for tx in details for u in tx.ustrd]),
                creditor_reference=next(
                    (tx.creditor_reference for tx in details if tx.creditor_reference), None
                ),
                debtor_name=first.debtor_name if first else None,
                debtor_account=first.debtor_account if first else None,
                additional_info=_join([additional, *(tx.additional_info for tx in details)]),
            )
        )

    @staticmethod
    def split(
        details: list[_Transaction], currency: str, entry_credit: bool
    ) -> list[tuple[_Transaction, int, bool]] | None:
        """The batch's transactions with their own amounts, when each has one in the entry's currency;
        otherwise None and the entry stays one line (its amount is what reached the account)."""
        split = []
        for index, tx in enumerate(details, 1):
            if tx.amount is None:
                return None
            try:
                tx_amount, tx_currency = _amount(tx.amount, "Amt")
            except _Bad as bad:
                raise _Bad(f"NtryDtls/TxDtls[{index}]/{bad.where}", bad.problem) from None
            if tx_currency != currency:
                return None
            split.append((tx, tx_amount, entry_credit if tx.credit is None else tx.credit))
        return split

    def transaction(self, tx: Any) -> _Transaction:
        local = self.local
        q = self.q
        amount = direct_amount = credit = end_to_end = servicer = None
        creditor_reference = debtor_name = debtor_account = additional = None
        ustrd: list[str] = []
        for child in tx:
            name = local.get(child.tag)
            if name is None:
                continue
            if name == "Refs":
                for ref in child:
                    ref_name = local.get(ref.tag)
                    if ref_name == "EndToEndId":
                        end_to_end = _text(ref.text, 35, "Refs/EndToEndId")
                    elif ref_name == "AcctSvcrRef":
                        servicer = _text(ref.text, 35, "Refs/AcctSvcrRef")
            elif name == "Amt":
                direct_amount = child
            elif name == "CdtDbtInd":
                credit = _direction(child.text, "CdtDbtInd")
            elif name == "AmtDtls" and direct_amount is None:
                tx_amount = _first(child, q["TxAmt"])
                if tx_amount is not None:
                    amount = _first(tx_amount, q["Amt"])
            elif name == "RltdPties":
                for party in child:
                    party_name = local.get(party.tag)
                    if party_name == "Dbtr":
                        holder = _first(party, q["Pty"])  # 001.08 wraps the party
                        debtor_name = _text(
                            _node_text(_first(party if holder is None else holder, q["Nm"])),
                            140,
                            "RltdPties/Dbtr/Nm",
                        )
                    elif party_name == "DbtrAcct":
                        found = self.account_id(_first(party, q["Id"]), "RltdPties/DbtrAcct/Id")
                        if found is not None:
                            debtor_account = found[1]
            elif name == "RmtInf":
                for info in child:
                    info_name = local.get(info.tag)
                    if info_name == "Ustrd":
                        text = _text(info.text, 140, "RmtInf/Ustrd")
                        if text:
                            ustrd.append(text)
                    elif info_name == "Strd" and creditor_reference is None:
                        reference = _first(info, q["CdtrRefInf"])
                        if reference is not None:
                            creditor_reference = _text(
                                _node_text(_first(reference, q["Ref"])), 35, "RmtInf/Strd/CdtrRefInf/Ref"
                            )
            elif name == "AddtlTxInf":
                additional = _text(child.text, 500, "AddtlTxInf")
        return _Transaction(
            amount=direct_amount if direct_amount is not None else amount,
            credit=credit,
            end_to_end_id=end_to_end,
            servicer_reference=servicer,
            ustrd=ustrd,
            creditor_reference=creditor_reference,
            debtor_name=debtor_name,
            debtor_account=debtor_account,
            additional_info=additional,
        )

    # -- values -----------------------------------------------------------------------------------

    def status(self, element: Any) -> str:
        if element is None:
            raise _Bad("Sts", "missing")
        code = element.text  # 001.02: <Sts>BOOK</Sts>
        if len(element):  # 001.08: <Sts><Cd>BOOK</Cd></Sts> or <Sts><Prtry>...</Prtry></Sts>
            found = _first(element, self.q["Cd"])
            if found is None and _first(element, self.q["Prtry"]) is not None:
                return "PRTRY"
            code = None if found is None else found.text
        code = (code or "").strip()
        if code not in _STATUSES and not _STATUS.fullmatch(code):
            raise _Bad("Sts", "not an entry status code")
        return code

    def choice_date(self, element: Any, where: str) -> date:
        for child in element:
            name = self.local.get(child.tag)
            if name == "Dt":
                return self.date(child.text, f"{where}/Dt")
            if name == "DtTm":
                return self.datetime(child.text, f"{where}/DtTm").date()
        raise _Bad(where, "has neither Dt nor DtTm")

    def date(self, text: str | None, where: str) -> date:
        text = (text or "").strip()
        known = self.dates.get(text)
        if known is not None:
            return known
        match = _DATE.fullmatch(text)
        try:
            if match is None:
                raise ValueError(text)
            value = date.fromisoformat(match.group(1))
        except ValueError:
            raise _Bad(where, f"not a date: {text[:40]!r}") from None
        if len(self.dates) < 10_000:  # statements span a few days; a hostile file gets no bigger cache
            self.dates[text] = value
        return value

    def datetime(self, text: str | None, where: str) -> datetime:
        text = (text or "").strip()
        match = _DATETIME.fullmatch(text)
        try:
            if match is None:
                raise ValueError(text)
            stamp, fraction, offset = match.groups()
            # datetime keeps microseconds; ISO 20022 allows any number of fraction digits.
            value = datetime.fromisoformat(
                stamp + (f".{fraction[:6]:0<6}" if fraction else "") + (offset or "")
            )
        except ValueError:
            raise _Bad(where, f"not a date and time: {text[:40]!r}") from None
        return value if value.tzinfo is not None else value.replace(tzinfo=self.assume_tz)

    def account_id(self, identification: Any, where: str) -> tuple[Literal["IBAN", "OTHER"], str] | None:
        """`Id` of an account: `IBAN` or `Othr/Id` (a choice, so one child)."""
        if identification is None:
            return None
        for choice in identification:
            name = self.local.get(choice.tag)
            if name == "IBAN":
                iban = _text(choice.text, 34, f"{where}/IBAN")
                if iban is not None:
                    return "IBAN", iban
            elif name == "Othr":
                other = _text(_node_text(_first(choice, self.q["Id"])), 34, f"{where}/Othr/Id")
                if other is not None:
                    return "OTHER", other
        return None
        q = self.q
        iban = _text(_node_text(_first(identification, q["IBAN"])), 34, f"{where}/IBAN")
        if iban is not None:
            return "IBAN", iban
        other = _first(identification, q["Othr"])
        if other is not None:
            value = _text(_node_text(_first(other, q["Id"])), 34, f"{where}/Othr/Id")
            if value is not None:
                return "OTHER", value
        return None


_LOCAL_NAMES: Final = (
    "Acct AcctSvcrRef AddtlNtryInf AddtlTxInf Amt AmtDtls BookgDt Ccy Cd CdtDbtInd CdtrRefInf CreDtTm "
    "Dbtr DbtrAcct Dt DtTm EndToEndId GrpHdr IBAN Id MsgId Nm Ntry NtryDtls NtryRef Othr Prtry Pty Ref "
    "Refs RltdPties RmtInf RvslInd Strd Sts TxAmt TxDtls Ustrd ValDt"
).split()


def _first(element: Any, tag: str) -> Any:
    # Most wanted children come first where the schema puts them; a search in C otherwise
    # (Element.find() would go through ElementPath in Python, five times slower).
    if len(element):
        child = element[0]
        if child.tag == tag:
            return child
    for child in element.iterchildren(tag):
        return child
    return None


def _node_text(element: Any) -> str | None:
    return None if element is None else element.text


def _drop_earlier_siblings(element: Any) -> None:
    parent = element.getparent()
    if parent is None:
        return
    while element.getprevious() is not None:
        del parent[0]


def _numbered(reference: str | None, index: int) -> str | None:
    return f"{reference}/{index}" if reference else None


def _join(parts: Iterable[str | None]) -> str:
    return " ".join(part for part in parts if part)


# ---------------------------------------------------------------------------------------------------
# Writing (tests, the demo and the benchmark; a bank's file never comes from here)


def write_camt053(
    *,
    message_id: str,
    account: str,
    currency: str,
    lines: Sequence[StatementLine],
    created_at: datetime,
    version: Version = "001.08",
    statement_id: str | None = None,
    opening_balance: int = 0,
) -> bytes:
    """A camt.053 end-of-day statement with one `Stmt`, valid against the ISO 20022 XSD. The opening
    and closing booked balances are written (the schema wants at least one); the closing one is the
    opening plus the booked lines (a reversal is booked too, the other way). Times are written to the
    second."""
    return _write(
        kind="camt.053",
        message_id=message_id,
        account=account,
        currency=currency,
        lines=lines,
        created_at=created_at,
        version=version,
        report_id=statement_id or message_id,
        opening_balance=opening_balance,
    )


def write_camt054(
    *,
    message_id: str,
    account: str,
    currency: str,
    lines: Sequence[StatementLine],
    created_at: datetime,
    version: Version = "001.08",
    notification_id: str | None = None,
) -> bytes:
    """A camt.054 debit/credit notification with one `Ntfctn`, valid against the ISO 20022 XSD.
    Times are written to the second."""
    return _write(
        kind="camt.054",
        message_id=message_id,
        account=account,
        currency=currency,
        lines=lines,
        created_at=created_at,
        version=version,
        report_id=notification_id or message_id,
        opening_balance=0,
    )


def _write(
    *,
    kind: Kind,
    message_id: str,
    account: str,
    currency: str,
    lines: Sequence[StatementLine],
    created_at: datetime,
    version: Version,
    report_id: str,
    opening_balance: int,
) -> bytes:
    if version not in ("001.02", "001.08"):
        raise ValueError(f"unsupported version {version!r}")
    if created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    currency_exponent(currency)
    namespace = f"{_PREFIX}{kind}.{version}"
    message, container = _LAYOUT[kind]
    writer = _Writer(namespace, version)
    document = etree.Element(writer.q("Document"), nsmap={None: namespace})
    body = writer.sub(document, message)
    header = writer.sub(body, "GrpHdr")
    writer.sub(header, "MsgId", _max(message_id, 35, "message_id"))
    writer.sub(header, "CreDtTm", created_at.isoformat(timespec="seconds"))
    report = writer.sub(body, container)
    writer.sub(report, "Id", _max(report_id, 35, "report id"))
    writer.sub(report, "CreDtTm", created_at.isoformat(timespec="seconds"))
    acct = writer.sub(report, "Acct")
    writer.account_id(acct, account)
    writer.sub(acct, "Ccy", currency)
    if kind == "camt.053":
        closing = opening_balance + sum(
            (line.amount if line.credit else -line.amount)
            for line in lines
            if line.status == "BOOK" and line.currency == currency
        )
        day = created_at.date().isoformat()
        writer.balance(report, "OPBD", opening_balance, currency, day)
        writer.balance(report, "CLBD", closing, currency, day)
    for line in lines:
        writer.entry(report, line)
    return bytes(etree.tostring(document, xml_declaration=True, encoding="UTF-8"))


def _max(value: str, limit: int, what: str) -> str:
    if not value or len(value) > limit:
        raise ValueError(f"{what} must have 1 to {limit} characters")
    return value


def _chunk_words(text: str, limit: int = 140) -> list[str]:
    """Split at spaces into pieces of at most `limit` characters, so that joining them with one space
    gives the text back (a word longer than the limit is cut)."""
    pieces: list[str] = []
    rest = " ".join(text.split())
    while len(rest) > limit:
        cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            pieces.append(rest[:limit])
            rest = rest[limit:]
        else:
            pieces.append(rest[:cut])
            rest = rest[cut + 1 :]
    if rest:
        pieces.append(rest)
    return pieces


class _Writer:
    def __init__(self, namespace: str, version: Version) -> None:
        self.ns = "{" + namespace + "}"
        self.v08 = version == "001.08"

    def q(self, name: str) -> str:
        return self.ns + name

    def sub(self, parent: Any, name: str, text: str | None = None, **attributes: str) -> Any:
        element = etree.SubElement(parent, self.ns + name, attributes or None)
        if text is not None:
            element.text = text
        return element

    def account_id(self, parent: Any, identifier: str) -> None:
        ident = self.sub(parent, "Id")
        if _IBAN.fullmatch(identifier):
            self.sub(ident, "IBAN", identifier)
        else:
            self.sub(self.sub(ident, "Othr"), "Id", _max(identifier, 34, "account"))

    def balance(self, parent: Any, code: str, amount: int, currency: str, day: str) -> None:
        balance = self.sub(parent, "Bal")
        self.sub(self.sub(self.sub(balance, "Tp"), "CdOrPrtry"), "Cd", code)
        self.sub(balance, "Amt", format_amount(abs(amount), currency), Ccy=currency)
        self.sub(balance, "CdtDbtInd", "CRDT" if amount >= 0 else "DBIT")
        self.sub(self.sub(balance, "Dt"), "Dt", day)

    def entry(self, parent: Any, line: StatementLine) -> None:
        if line.amount < 0:
            raise ValueError("amounts are positive; `credit` gives the direction")
        if line.status not in ("BOOK", "PDNG", "INFO"):
            raise ValueError(f"status {line.status!r} cannot be written")
        amount = format_amount(line.amount, line.currency)
        direction = "CRDT" if line.credit else "DBIT"
        entry = self.sub(parent, "Ntry")
        if line.entry_reference:
            self.sub(entry, "NtryRef", _max(line.entry_reference, 35, "entry_reference"))
        self.sub(entry, "Amt", amount, Ccy=line.currency)
        self.sub(entry, "CdtDbtInd", direction)
        if line.reversal:
            self.sub(entry, "RvslInd", "true")
        status = self.sub(entry, "Sts")
        if self.v08:
            self.sub(status, "Cd", line.status)
        else:
            status.text = line.status
        if line.booking_date:
            self.sub(self.sub(entry, "BookgDt"), "Dt", line.booking_date.isoformat())
        if line.value_date:
            self.sub(self.sub(entry, "ValDt"), "Dt", line.value_date.isoformat())
        if line.servicer_reference:
            self.sub(entry, "AcctSvcrRef", _max(line.servicer_reference, 35, "servicer_reference"))
        # ISO bank transaction code: payments / received or issued credit transfer / domestic.
        domain = self.sub(self.sub(entry, "BkTxCd"), "Domn")
        self.sub(domain, "Cd", "PMNT")
        family = self.sub(domain, "Fmly")
        self.sub(family, "Cd", "RCDT" if line.credit else "ICDT")
        self.sub(family, "SubFmlyCd", "DMCT")
        if (
            line.end_to_end_id
            or line.remittance_info
            or line.creditor_reference
            or line.debtor_name
            or line.debtor_account
        ):
            self.transaction(self.sub(self.sub(entry, "NtryDtls"), "TxDtls"), line, amount, direction)
        if line.additional_info:
            self.sub(entry, "AddtlNtryInf", _max(line.additional_info, 500, "additional_info"))

    def transaction(self, tx: Any, line: StatementLine, amount: str, direction: str) -> None:
        if line.end_to_end_id:
            self.sub(self.sub(tx, "Refs"), "EndToEndId", _max(line.end_to_end_id, 35, "end_to_end_id"))
        if self.v08:
            self.sub(tx, "Amt", amount, Ccy=line.currency)
            self.sub(tx, "CdtDbtInd", direction)
        self.sub(self.sub(self.sub(tx, "AmtDtls"), "TxAmt"), "Amt", amount, Ccy=line.currency)
        if line.debtor_name or line.debtor_account:
            parties = self.sub(tx, "RltdPties")
            if line.debtor_name:
                debtor = self.sub(parties, "Dbtr")
                if self.v08:
                    debtor = self.sub(debtor, "Pty")
                self.sub(debtor, "Nm", _max(line.debtor_name, 140, "debtor_name"))
            if line.debtor_account:
                self.account_id(self.sub(parties, "DbtrAcct"), line.debtor_account)
        if line.remittance_info or line.creditor_reference:
            info = self.sub(tx, "RmtInf")
            for piece in _chunk_words(line.remittance_info):
                self.sub(info, "Ustrd", piece)
            if line.creditor_reference:
                reference = self.sub(self.sub(info, "Strd"), "CdtrRefInf")
                self.sub(self.sub(self.sub(reference, "Tp"), "CdOrPrtry"), "Cd", "SCOR")
                self.sub(reference, "Ref", _max(line.creditor_reference, 35, "creditor_reference"))


__all__ = [
    "DEFAULT_MAX_BYTES",
    "Account",
    "AccountReport",
    "CamtError",
    "Statement",
    "StatementLine",
    "currency_exponent",
    "format_amount",
    "minor_units",
    "read_statement",
    "statement_checksum",
    "write_camt053",
    "write_camt054",
]
