"""Applications that owe a fee, and payments for them."""

from __future__ import annotations

from typing import Any

from civicore.applications.models import Application
from civicore.applications.tests.factories import make_service, make_submitted
from civicore.identity.models import Person
from civicore.identity.tests.factories import make_citizen
from civicore.payments import services
from civicore.payments.models import Payment

FEE = {"amount": 50000, "currency": "VND"}


def application_with_fee(person: Person | None = None, **fee: Any) -> Application:
    """A submitted application whose service charges `fee` (50,000 VND by default)."""
    service = make_service(fee={**FEE, **fee})
    return make_submitted(person or make_citizen(), service)


def make_payment(
    application: Application | None = None, *, method: str = Payment.Method.VIETQR, **kwargs: Any
) -> Payment:
    application = application or application_with_fee()
    return services.payment_start(
        application=application, payer=application.applicant, method=method, **kwargs
    )
