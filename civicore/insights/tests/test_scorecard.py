"""The tallies as events happen (a realistic mixed run), the scorecard they give, the rebuild
that recomputes them, and the scorecard's reads not growing with the number of applications."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from civicore.agencies.tests.factories import make_officer
from civicore.applications import services as applications
from civicore.applications.tests.factories import VALID_ANSWERS, make_service, make_submitted, pdf_upload
from civicore.cases import services as cases
from civicore.cases.models import Case
from civicore.core import jobs
from civicore.core.models import Job
from civicore.credentials.tests.conftest import signing_dir  # noqa: F401 - a fixture
from civicore.identity.tests.factories import make_citizen
from civicore.insights import events, selectors, services
from civicore.insights.models import Tally
from civicore.insights.selectors import Scope
from civicore.payments import services as payments
from civicore.payments.tests.factories import FEE, collection_account, make_payment

pytestmark = pytest.mark.django_db


def _run_jobs(name: str) -> None:
    for pk in list(Job.objects.filter(name=name).values_list("pk", flat=True)):
        jobs.run_one(pk)


def mixed_run() -> dict[str, Any]:
    """Applications abandoned at each step, submitted, paid, decided on time and late, rated."""
    officer = make_officer()
    agency = officer.agency
    plain = make_service(agency)
    with_fee = make_service(agency, fee=FEE)
    collection_account(agency)
    applications.application_start(person=make_citizen(), service=plain)  # left at "started"
    saved = applications.application_start(person=make_citizen(), service=plain, use_profile=False)
    applications.application_save_draft(application=saved, answers={"child_full_name": "Lê Văn An"})
    applications.application_save_draft(application=saved, answers={"child_gender": "male"})  # not again
    attached = applications.application_start(person=make_citizen(), service=plain)
    applications.application_save_draft(application=attached, answers=dict(VALID_ANSWERS))
    applications.document_attach(application=attached, requirement="birth-certificate", upload=pdf_upload())
    applications.document_attach(application=attached, requirement="birth-certificate", upload=pdf_upload())
    approved = make_submitted(make_citizen(), plain)
    typed = applications.application_start(person=make_citizen(), service=plain, use_profile=False)
    applications.document_attach(application=typed, requirement="birth-certificate", upload=pdf_upload())
    late = applications.application_submit(
        application=typed, answers={**VALID_ANSWERS, "applicant_full_name": "Trần Thị Bình"}
    )
    paid = make_submitted(make_citizen(), with_fee)
    payment = make_payment(paid)
    payments.payment_settle(
        reference=payment.reference, amount_minor=payment.amount_minor, currency=payment.currency,
        source="gateway_callback", key="test:1", at=timezone.now(),
    )  # fmt: skip
    _run_jobs("payments.paid")
    _run_jobs("payments.paid")  # a rerun counts nothing more
    for application in (approved, late, paid):
        cases.case_claim(case=application.case, officer=officer)
    cases.case_approve(case=approved.case, officer=officer)
    Case.objects.filter(pk=late.case.pk).update(due_at=timezone.now() - dt.timedelta(days=1))
    cases.case_reject(case=late.case, officer=officer, reason="Thiếu giấy tờ")
    cases.case_approve(case=paid.case, officer=officer)
    _run_jobs("credentials.issue")
    for score in (5, 5, 3):
        events.record(events.RATINGS, agency_id=agency.pk, service_id=plain.pk)
        events.record(f"{events.RATINGS_SCORE}{score}", agency_id=agency.pk, service_id=plain.pk)
    return {"officer": officer, "agency": agency, "plain": plain, "with_fee": with_fee}


def _figure(card: selectors.Scorecard, key: str) -> tuple[int, int]:
    found = {f.key: f for f in card.figures} | {f.key: f for f in vars(card.catalogue).values()}
    return found[key].numerator, found[key].denominator


def test_a_mixed_run_gives_exact_figures(signing_dir: Any) -> None:  # noqa: F811
    world = mixed_run()
    card = selectors.scorecard(Scope(selectors.AGENCY, agency=world["agency"]))
    assert dict((step, count) for step, _label, count in card.funnel) == {
        "started": 6, "answers_saved": 5, "documents_attached": 4, "submitted": 3, "paid": 1,
    }  # fmt: skip
    assert _figure(card, "completion") == (3, 6)
    assert _figure(card, "sla") == (2, 3)  # the rejection came a day late
    # The rejection, and the approval whose signed result was issued; the paid one's result too.
    assert _figure(card, "end_to_end") == (3, 3)
    assert _figure(card, "prefilled") == (2, 3)  # one applicant typed their answers
    assert _figure(card, "satisfied") == (2, 3)
    assert _figure(card, "e_payment") == (1, 1)
    assert _figure(card, "prefill_services") == (2, 2)
    assert card.median_days == 0
    assert [band.count for band in card.backlog] == [0, 0, 0, 0]
    only_fee = selectors.scorecard(selectors.service_scope(world["with_fee"].code))
    assert dict((s, c) for s, _l, c in only_fee.funnel)["paid"] == 1
    assert _figure(only_fee, "completion") == (1, 1)


def test_an_approval_without_its_signed_result_is_not_end_to_end() -> None:
    officer = make_officer()
    application = make_submitted(make_citizen(), make_service(officer.agency))
    cases.case_claim(case=application.case, officer=officer)
    cases.case_approve(case=application.case, officer=officer)  # the result job has not run
    card = selectors.scorecard(Scope(selectors.AGENCY, agency=officer.agency))
    assert _figure(card, "end_to_end") == (0, 1)
    assert [band.count for band in card.backlog] == [0, 0, 0, 0]


def test_rebuild_gives_the_running_tallies(signing_dir: Any) -> None:  # noqa: F811
    mixed_run()
    running = {(t.month, t.agency_id, t.service_key, t.metric): t.value for t in Tally.objects.all()}
    Tally.objects.exclude(metric__startswith="ratings").update(value=999)
    call_command("insights", "rebuild")
    rebuilt = {(t.month, t.agency_id, t.service_key, t.metric): t.value for t in Tally.objects.all()}
    assert rebuilt == running
    call_command("insights", "rebuild", "--check")


def test_open_cases_are_banded_by_age() -> None:
    officer = make_officer()
    service = make_service(officer.agency)
    for age in (1, 7, 15, 30, 31):
        application = make_submitted(make_citizen(), service)
        Case.objects.filter(pk=application.case.pk).update(opened_at=timezone.now() - dt.timedelta(days=age))
    card = selectors.scorecard(Scope(selectors.AGENCY, agency=officer.agency))
    assert [band.count for band in card.backlog] == [1, 1, 1, 2]


def test_the_median_merges_histograms() -> None:
    assert selectors.median_from_histogram({"processing_days_1": 2, "processing_days_9": 1}) == 1
    assert selectors.median_from_histogram({"processing_days_1": 1, "processing_days_9": 2}) == 9
    assert selectors.median_from_histogram({"decided": 3}) is None


def test_the_scorecard_reads_do_not_grow_with_applications(django_assert_max_num_queries: Any) -> None:
    officer = make_officer()
    service = make_service(officer.agency)
    scope = Scope(selectors.AGENCY, agency=officer.agency)
    make_submitted(make_citizen(), service)
    with django_assert_max_num_queries(4):
        few = selectors.scorecard(scope)
    for _index in range(6):
        make_submitted(make_citizen(), service)
    with django_assert_max_num_queries(4):
        many = selectors.scorecard(scope)
    assert _figure(few, "completion") == (1, 1) and _figure(many, "completion") == (7, 7)


def test_offline_volumes_replace_and_give_take_up() -> None:
    officer = make_officer(roles=("agency_head",))
    service = make_service(officer.agency)
    make_submitted(make_citizen(), service)
    month = events.month_of()
    services.offline_volume_set(officer=officer, service=service, month=month, count=9)
    services.offline_volume_set(officer=officer, service=service, month=month, count=3)
    card = selectors.scorecard(selectors.service_scope(service.code))
    assert _figure(card, "take_up") == (1, 4)
    with pytest.raises(services.InvalidVolume):
        services.offline_volume_set(officer=officer, service=service, month=month, count=-1)
    other = make_officer(roles=("agency_head",))
    with pytest.raises(services.PermissionDenied):
        services.offline_volume_set(officer=other, service=service, month=month, count=1)
    caseworker = make_officer(officer.agency)
    with pytest.raises(services.PermissionDenied):
        services.offline_volume_set(officer=caseworker, service=service, month=month, count=1)


def test_filing_through_the_api_counts_once_per_idempotency_key() -> None:
    from civicore.applications.tests.test_filing_writes import _client, _file

    service = make_service(documents=[])
    client = _client(make_citizen())
    assert _file(client, service, key="one").status_code == 201
    assert _file(client, service, key="one").status_code in (200, 201)  # the retry files nothing
    assert _file(client, service, key="draft", submit=False).status_code == 201
    card = selectors.scorecard(selectors.service_scope(service.code))
    steps = dict((step, count) for step, _label, count in card.funnel)
    assert (steps["started"], steps["answers_saved"], steps["submitted"]) == (2, 2, 1)
