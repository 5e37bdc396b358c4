"""Background work for payments: refunds sent to gateways, open transfers expired."""

from __future__ import annotations

from django.utils import timezone

from civicore.core.jobs import job, periodic
from civicore.payments import services
from civicore.payments.gateways import RefundRequest, gateway_for
from civicore.payments.models import Payment, Refund


@job("payments.refund_send")
def refund_send(refund_id: int) -> None:
    """Ask the gateway to refund. A gateway that is down raises, and the job is retried with
    back-off; the refund reference is the gateway's request id, so a retry after a lost answer
    cannot refund twice."""
    refund = Refund.objects.select_related("payment", "requested_by").get(pk=refund_id)
    payment = refund.payment
    if refund.status != Refund.Status.REQUESTED or payment.method != Payment.Method.GATEWAY:
        return
    assert payment.paid_at is not None  # noqa: S101 - only paid payments have refunds
    result = gateway_for(payment.gateway).refund(
        RefundRequest(
            reference=payment.reference,
            refund_reference=refund.reference,
            amount_minor=refund.amount_minor,
            full=refund.amount_minor == payment.paid_minor,
            gateway_transaction=payment.gateway_transaction,
            paid_at=payment.paid_at,
            reason="Refund " + refund.reference,
            requested_by=str(refund.requested_by_id or "civicore"),
            requester_ip="127.0.0.1",
        )
    )
    services.refund_complete(refund=refund, accepted=result.accepted, code=result.code)


@job("payments.paid")
def paid(payment_id: int) -> None:
    services.paid_followups_run(payment_id=payment_id)


@job("payments.propose_refund")
def propose_refund(application_id: int, reason: str) -> None:
    services.refund_propose(application_id=application_id, reason=reason)


@periodic(seconds=60)
def expire_transfers() -> None:
    services.payment_expire_due(now=timezone.now())


@periodic(seconds=120)
def reconcile_gateway_payments() -> None:
    """Settle what the gateway's callbacks did not tell us, and expire what was never paid."""
    services.gateway_payments_reconcile(now=timezone.now())
