"""Payment gateways behind one Protocol: the ledger asks a gateway to start a payment, reads
its callbacks and asks it for the status of a payment or to refund one; it never speaks a
gateway's protocol itself. Adapters register under a code (`vnpay`), chosen per deployment by
PAYMENT_GATEWAYS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class GatewayStatus(StrEnum):
    """What a gateway says about a payment, in the ledger's words."""

    PAID = "paid"
    FAILED = "failed"  # refused, cancelled by the payer or abandoned: may be tried again
    PENDING = "pending"  # not finished yet, or the gateway does not know it yet
    UNKNOWN = "unknown"  # the gateway has no such payment


class GatewayError(Exception):
    """The gateway could not be reached or answered something unusable; try again later."""

    def __init__(self, message: str, *, code: str = "gateway_unavailable") -> None:
        super().__init__(message)
        self.code = code


class ForgedMessage(Exception):
    """A callback or response whose signature does not verify: never acted on."""

    code = "signature_invalid"


class UnsupportedPayment(ValueError):
    """The gateway cannot collect this payment (a currency it does not take, an unreadable payer
    address): the payer is told to pay another way; nothing was sent."""

    code = "payment_unsupported"


@dataclass(frozen=True, slots=True)
class PaymentStart:
    """What the ledger asks a gateway to collect."""

    reference: str  # the ledger's payment reference, unique, ASCII letters and digits
    amount_minor: int
    currency: str
    description: str  # shown to the payer by the gateway; ASCII, no personal data
    return_url: str  # where the payer's browser comes back to
    payer_ip: str
    created_at: datetime
    expires_at: datetime
    locale: str = "vi"  # "vi" or "en"


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """A verified statement from the gateway about one payment."""

    reference: str
    status: GatewayStatus
    amount_minor: int | None  # as the gateway reports it; checked against the ledger
    currency: str | None
    gateway_transaction: str = ""  # the gateway's own id for the payment, once it has one
    code: str = ""  # the gateway's response code, kept for officers
    paid_at: datetime | None = None
    raw: Mapping[str, str] = field(default_factory=dict)  # what was verified, for the audit trail


@dataclass(frozen=True, slots=True)
class RefundRequest:
    reference: str  # the payment being refunded
    refund_reference: str  # unique per refund: repeating it must not refund twice
    amount_minor: int
    full: bool
    gateway_transaction: str
    paid_at: datetime
    reason: str  # ASCII, no personal data
    requested_by: str  # an officer's id, as the gateway records who asked
    requester_ip: str


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund_reference: str
    accepted: bool
    code: str
    gateway_transaction: str = ""
    raw: Mapping[str, str] = field(default_factory=dict)


class PaymentGateway(Protocol):
    code: str

    def start(self, payment: PaymentStart) -> str:
        """The URL of the gateway's page where the payer pays."""

    def verify_return(self, params: Mapping[str, str]) -> GatewayResult:
        """Read the parameters the payer's browser brought back; raises ForgedMessage.

        Only tells the payer what happened: the ledger settles on the server-to-server
        callback or a status query, never on what a browser carries."""

    def verify_callback(self, params: Mapping[str, str]) -> GatewayResult:
        """Read a server-to-server callback (IPN); raises ForgedMessage."""

    def callback_response(self, outcome: str) -> tuple[int, dict[str, str]]:
        """The HTTP status and JSON body the gateway expects in answer to a callback.

        `outcome`: "ok", "already_settled", "unknown_payment", "amount_mismatch",
        "signature_invalid" or "retry" (something failed here: the gateway should send again)."""

    def query(self, *, reference: str, created_at: datetime, requester_ip: str) -> GatewayResult:
        """Ask the gateway for the status of a payment; raises GatewayError or ForgedMessage."""

    def refund(self, request: RefundRequest) -> RefundResult:
        """Ask the gateway to refund; raises GatewayError or ForgedMessage."""


def gateway_for(code: str) -> PaymentGateway:
    """The adapter configured under `code` in PAYMENT_GATEWAYS (a dotted path to a callable that
    builds it from its own settings); KeyError when there is none or it lacks its credentials."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    path = settings.PAYMENT_GATEWAYS[code]
    try:
        gateway: PaymentGateway = import_string(path)()
    except ValueError as exc:  # configured without its credentials: not offered
        raise KeyError(code) from exc
    return gateway
