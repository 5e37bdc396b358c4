"""Applications that owe a fee, and payments for them."""

from __future__ import annotations

import itertools
from typing import Any

from civicore.agencies.models import Agency
from civicore.applications.models import Application
from civicore.applications.tests.factories import make_service, make_submitted
from civicore.identity.models import Person
from civicore.identity.tests.factories import make_citizen
from civicore.payments import services
from civicore.payments.models import CollectionAccount, Payment

FEE = {"amount": 50000, "currency": "VND"}
_accounts = itertools.count(1)


def collection_account(agency: Agency, **fields: Any) -> CollectionAccount:
    values = {
        "bank_bin": "970436",
        "bank_name": "Vietcombank",
        "account_number": f"0011{next(_accounts):08d}",
        "account_name": "KHO BAC NHA NUOC",
        **fields,
    }
    return CollectionAccount.objects.create(agency=agency, **values)


def application_with_fee(person: Person | None = None, *, account: bool = True, **fee: Any) -> Application:
    """A submitted application whose service charges `fee` (50,000 VND by default), to an agency
    that takes bank transfers (unless `account` is False)."""
    service = make_service(fee={**FEE, **fee})
    if account:
        collection_account(service.agency)
    return make_submitted(person or make_citizen(), service)


def make_payment(
    application: Application | None = None, *, method: str = Payment.Method.VIETQR, **kwargs: Any
) -> Payment:
    application = application or application_with_fee()
    return services.payment_start(
        application=application, payer=application.applicant, method=method, **kwargs
    )
