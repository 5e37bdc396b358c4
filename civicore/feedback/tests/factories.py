"""Finished transactions of a citizen, ready to be rated, and an officer who reads the ratings."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from civicore.agencies.models import Agency, Officer
from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.applications.models import Application
from civicore.applications.tests.factories import make_service, make_submitted
from civicore.cases.models import Case
from civicore.identity.models import Person
from civicore.identity.tests.factories import make_citizen
from civicore.payments import services as payment_services
from civicore.payments.models import Payment, PaymentEvent
from civicore.payments.tests.factories import application_with_fee, make_payment
from civicore.reports.models import Report


def decided_application(
    person: Person | None = None, *, agency: Agency | None = None, state: str = Case.State.APPROVED
) -> Application:
    """A submitted application whose case the agency has decided (or is still at `state`)."""
    application = make_submitted(person or make_citizen(), make_service(agency=agency))
    closed_at = timezone.now() if state in Case.CLOSED_STATES else None
    Case.objects.filter(application=application).update(state=state, closed_at=closed_at)
    application.refresh_from_db()
    return application


def resolved_report(
    user: Any, *, agency: Agency | None = None, status: str = Report.Status.RESOLVED
) -> Report:
    return Report.objects.create(
        reporter=user,
        description="Đèn đường trước số 12 bị hỏng",
        latitude=21.0285,
        longitude=105.8542,
        agency=agency or AgencyFactory(),
        status=status,
        resolved_at=timezone.now() if status == Report.Status.RESOLVED else None,
    )


def paid_payment(person: Person | None = None, *, paid: bool = True) -> Payment:
    payment = make_payment(application_with_fee(person or make_citizen()))
    if paid:
        payment_services.payment_settle(
            reference=payment.reference,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            source=PaymentEvent.Source.STATEMENT,
            key=f"bank:feedback:{payment.reference}",
            at=timezone.now(),
            bank_reference=f"FT{payment.pk:010d}",
        )
    payment.refresh_from_db()
    return payment


def feedback_officer(agency: Agency, roles: tuple[str, ...] = ("service_quality",)) -> Officer:
    return make_officer(agency, roles=roles)


def matrix_objects(world: Any) -> dict[str, Any]:
    """For the authorization matrix: the citizen's application decided and rated by them."""
    from civicore.feedback import services

    Case.objects.filter(pk=world.case.pk).update(state=Case.State.APPROVED, closed_at=timezone.now())
    rating = services.rating_submit(
        user=world.application.applicant.user,
        kind="application",
        public_id=world.application.public_id,
        score=4,
    )
    return {"rating": rating}
