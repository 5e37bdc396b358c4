"""Rating rules: only the owner, only once the transaction is finished, only once; the comment
kept encrypted and screened; the scorecards counted in the same transaction."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import translation

from civicore.cases.models import Case
from civicore.feedback import services
from civicore.feedback.models import Rating
from civicore.feedback.selectors import SubjectNotFound
from civicore.feedback.tests.factories import decided_application, paid_payment, resolved_report
from civicore.identity.tests.factories import make_citizen
from civicore.insights.models import Tally
from civicore.payments.models import Payment
from civicore.reports.models import Report

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english() -> None:
    translation.activate("en")


def tallies(agency_id: int | None = None) -> dict[tuple[str, int], int]:
    """The rating counts (other apps count their own events too)."""
    found = Tally.objects.filter(metric__startswith="ratings")
    if agency_id is not None:
        found = found.filter(agency_id=agency_id)
    return {(tally.metric, tally.service_key): tally.value for tally in found}


def test_a_decided_application_is_rated_once_and_counted_for_its_service() -> None:
    application = decided_application()
    user = application.applicant.user
    rating = services.rating_submit(
        user=user, kind="application", public_id=application.public_id, score=4, comment="Nhanh, gọn."
    )
    assert (rating.score, rating.service_id, rating.agency_id) == (
        4,
        application.service_id,
        application.case.agency_id,
    )
    assert tallies(application.case.agency_id) == {
        ("ratings", application.service_id): 1,
        ("ratings_score_4", application.service_id): 1,
    }
    with pytest.raises(services.AlreadyRated):
        services.rating_submit(user=user, kind="application", public_id=application.public_id, score=1)
    assert Rating.objects.count() == 1
    assert tallies(application.case.agency_id)[("ratings", application.service_id)] == 1


def test_a_rejected_application_can_be_rated_too() -> None:
    application = decided_application(state=Case.State.REJECTED)
    rating = services.rating_submit(
        user=application.applicant.user, kind="application", public_id=application.public_id, score=1
    )
    assert rating.score == Rating.Score.VERY_DISSATISFIED


def test_a_resolved_report_is_counted_for_its_agency_without_a_service() -> None:
    citizen = make_citizen()
    report = resolved_report(citizen.user)
    services.rating_submit(user=citizen.user, kind="report", public_id=report.public_id, score=5)
    assert tallies(report.agency_id) == {("ratings", 0): 1, ("ratings_score_5", 0): 1}
    assert Rating.objects.get().service_id is None


def test_a_paid_fee_is_counted_for_the_payment_service() -> None:
    payment = paid_payment()
    services.rating_submit(user=payment.payer.user, kind="payment", public_id=payment.public_id, score=3)
    assert tallies(payment.agency_id) == {
        ("ratings", payment.service_id): 1,
        ("ratings_score_3", payment.service_id): 1,
    }


@pytest.mark.parametrize(
    "make",
    [
        lambda person: ("application", decided_application(person, state=Case.State.IN_REVIEW).public_id),
        lambda person: ("report", resolved_report(person.user, status=Report.Status.IN_PROGRESS).public_id),
        lambda person: ("payment", paid_payment(person, paid=False).public_id),
    ],
    ids=["application in review", "report in progress", "payment unpaid"],
)
def test_what_is_not_finished_cannot_be_rated(make: Any) -> None:
    citizen = make_citizen()
    kind, public_id = make(citizen)
    with pytest.raises(services.NotRateable) as refused:
        services.rating_submit(user=citizen.user, kind=kind, public_id=public_id, score=5)
    assert refused.value.code == "not_rateable" and refused.value.status == 409
    assert not Rating.objects.exists() and not tallies()


def test_a_refunded_payment_was_paid_and_can_be_rated() -> None:
    payment = paid_payment()
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.REFUNDED)
    services.rating_submit(user=payment.payer.user, kind="payment", public_id=payment.public_id, score=2)
    assert Rating.objects.get().score == 2


def test_someone_elses_transaction_is_not_found() -> None:
    application = decided_application()
    stranger = make_citizen()
    with pytest.raises(SubjectNotFound) as refused:
        services.rating_submit(
            user=stranger.user, kind="application", public_id=application.public_id, score=5
        )
    assert refused.value.status == 404
    # the same answer as for a transaction that does not exist at all
    with pytest.raises(SubjectNotFound):
        services.rating_submit(
            user=stranger.user, kind="application", public_id="00000000-0000-0000-0000-000000000000", score=5
        )
    # a report's public id is not an application's
    report = resolved_report(application.applicant.user)
    with pytest.raises(SubjectNotFound):
        services.rating_submit(
            user=application.applicant.user, kind="application", public_id=report.public_id, score=5
        )


@pytest.mark.parametrize("score", [0, 6, -1, "", "abc", "4.5", 4.5, True, None, "５", "99999999999"])
def test_a_score_outside_1_to_5_is_refused(score: Any) -> None:
    application = decided_application()
    with pytest.raises(services.InvalidRating) as refused:
        services.rating_submit(
            user=application.applicant.user, kind="application", public_id=application.public_id, score=score
        )
    assert refused.value.code == "invalid_request" and refused.value.status == 422
    assert not Rating.objects.exists()


def test_a_score_sent_by_a_form_as_text_is_read() -> None:
    application = decided_application()
    rating = services.rating_submit(
        user=application.applicant.user, kind="application", public_id=application.public_id, score=" 5 "
    )
    assert rating.score == 5


def test_a_comment_over_1000_characters_is_refused_and_nothing_is_saved() -> None:
    application = decided_application()
    with pytest.raises(services.InvalidRating) as refused:
        services.rating_submit(
            user=application.applicant.user,
            kind="application",
            public_id=application.public_id,
            score=5,
            comment="ạ" * 1001,
        )
    assert "1001" in refused.value.message
    assert not Rating.objects.exists() and not tallies()
    rating = services.rating_submit(
        user=application.applicant.user,
        kind="application",
        public_id=application.public_id,
        score=5,
        comment="  " + "ạ" * 1000 + "\n ",
    )
    assert rating.comment == "ạ" * 1000


def test_the_comment_is_encrypted_at_rest_and_screened_for_everyone_else() -> None:
    application = decided_application()
    comment = (
        "Cán bộ gọi lại số 0912 345 678, email an@example.vn. Hồ sơ HCM-2026-000123 xong ngày 15/01/2026."
    )
    rating = services.rating_submit(
        user=application.applicant.user,
        kind="application",
        public_id=application.public_id,
        score=5,
        comment=comment,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT comment, comment_screened FROM feedback_rating WHERE id = %s", [rating.pk])
        stored, screened = cursor.fetchone()
    assert "0912" not in stored and "Cán bộ" not in stored
    assert Rating.objects.get().comment == comment
    assert "0912" not in screened and "an@example.vn" not in screened
    assert "HCM-2026-000123" in screened and "15/01/2026" in screened


def test_control_characters_are_dropped_from_the_comment() -> None:
    application = decided_application()
    rating = services.rating_submit(
        user=application.applicant.user,
        kind="application",
        public_id=application.public_id,
        score=4,
        comment="Tốt\x00 lắm\r\nCảm ơn\x1b",
    )
    rating.refresh_from_db()
    assert rating.comment == "Tốt lắm\nCảm ơn" and "\x00" not in rating.comment_screened


def test_two_racing_ratings_leave_one_and_count_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second of two requests that both passed the "already rated?" check is refused by the
    unique constraint, as `already_rated`, and counts nothing."""
    application = decided_application()
    user = application.applicant.user
    services.rating_submit(user=user, kind="application", public_id=application.public_id, score=5)
    monkeypatch.setattr(services, "_already_rated", lambda kind, public_id: False)
    with pytest.raises(services.AlreadyRated):
        services.rating_submit(user=user, kind="application", public_id=application.public_id, score=1)
    assert list(Rating.objects.values_list("score", flat=True)) == [5]
    counts = tallies(application.case.agency_id)
    assert (
        counts[("ratings", application.service_id)] == 1
        and ("ratings_score_1", application.service_id) not in counts
    )


def test_the_database_refuses_a_second_rating_of_the_same_transaction() -> None:
    application = decided_application()
    fields = {
        "kind": "application",
        "subject": application.public_id,
        "agency_id": application.case.agency_id,
    }
    Rating.objects.create(score=5, **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(score=4, **fields)


def test_the_database_refuses_a_score_outside_the_scale() -> None:
    application = decided_application()
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(
            kind="application", subject=application.public_id, agency_id=application.case.agency_id, score=6
        )
