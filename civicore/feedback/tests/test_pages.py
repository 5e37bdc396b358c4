"""The citizen's rating page and the panel on their own pages, the office's feedback page, and
both checked with axe-core in Chromium in both languages."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from civicore.agencies.tests.factories import AgencyFactory, back_office_client, make_officer
from civicore.cases.models import Case
from civicore.core.tests.accessibility import Check, axe_in_chromium
from civicore.feedback import services
from civicore.feedback.models import Rating
from civicore.feedback.tests.factories import decided_application, paid_payment, resolved_report
from civicore.identity.tests.factories import make_citizen
from civicore.insights.models import Tally

pytestmark = pytest.mark.django_db


def citizen_client(user: Any, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def page_of(response: Any) -> str:
    return response.content.decode()


def rating_url(kind: str, public_id: Any) -> str:
    return f"/feedback/{kind}/{public_id}/"


# --- the citizen's rating page -------------------------------------------------------------------


def test_the_form_shows_the_five_answers_as_radio_buttons_in_a_fieldset() -> None:
    application = decided_application()
    page = page_of(
        citizen_client(application.applicant.user).get(rating_url("application", application.public_id))
    )
    assert (
        "<fieldset" in page
        and "<legend" in page
        and "How satisfied are you with how this was handled?" in page
    )
    for label in (
        "Very satisfied",
        "Satisfied",
        "Neither satisfied nor dissatisfied",
        "Dissatisfied",
        "Very dissatisfied",
    ):
        assert f">{label}</label>" in page
    assert page.count('type="radio"') == 5 and "star" not in page.lower()
    assert application.reference in page


def test_sending_the_form_thanks_and_shows_the_rating_given() -> None:
    application = decided_application()
    client = citizen_client(application.applicant.user)
    url = rating_url("application", application.public_id)
    response = client.post(url, {"score": "4", "comment": "Cán bộ hướng dẫn tận tình."})
    assert response.status_code == 302 and response["Location"] == url
    page = page_of(client.get(url))
    assert "Thank you" in page and "You rated it: Satisfied." in page
    assert "Cán bộ hướng dẫn tận tình." in page and "<form" not in page.split("<main", 1)[1]
    assert Rating.objects.get().score == 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"comment": "Tốt"}, "Choose one of the five answers."),
        ({"score": "0"}, "Choose one of the five answers."),
        ({"score": "6"}, "Choose one of the five answers."),
        ({"score": "abc"}, "Choose one of the five answers."),
        (
            {"score": "5", "comment": "a" * 1001},
            "Your comment is 1001 characters long: shorten it to 1000 or fewer.",
        ),
    ],
)
def test_form_errors_are_shown_and_what_was_typed_is_kept(data: dict[str, str], message: str) -> None:
    application = decided_application()
    response = citizen_client(application.applicant.user).post(
        rating_url("application", application.public_id), data
    )
    assert response.status_code == 422
    page = page_of(response)
    assert message in page and 'class="usa-error-message"' in page
    if "comment" in data:
        assert data["comment"] in page
    assert not Rating.objects.exists()


def test_a_second_post_is_refused_and_the_first_rating_stays() -> None:
    application = decided_application()
    client = citizen_client(application.applicant.user)
    url = rating_url("application", application.public_id)
    client.post(url, {"score": "5"})
    second = client.post(url, {"score": "1"})
    assert second.status_code == 409 and "You have already rated this." in page_of(second)
    assert list(Rating.objects.values_list("score", flat=True)) == [5]


def test_an_undecided_application_says_when_it_can_be_rated() -> None:
    application = decided_application(state=Case.State.IN_REVIEW)
    client = citizen_client(application.applicant.user)
    url = rating_url("application", application.public_id)
    page = page_of(client.get(url))
    assert "You can rate this application once it has been decided." in page and "<fieldset" not in page
    refused = client.post(url, {"score": "5"})
    assert refused.status_code == 409 and not Rating.objects.exists()


def test_someone_elses_or_an_unknown_transaction_is_404() -> None:
    application = decided_application()
    stranger = citizen_client(make_citizen().user)
    assert stranger.get(rating_url("application", application.public_id)).status_code == 404
    assert stranger.post(rating_url("application", application.public_id), {"score": "5"}).status_code == 404
    assert stranger.get(rating_url("case", application.public_id)).status_code == 404
    assert stranger.get(rating_url("payment", application.public_id)).status_code == 404
    assert not Rating.objects.exists()


def test_the_page_needs_a_signed_in_user() -> None:
    application = decided_application()
    response = Client().get(rating_url("application", application.public_id))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_form_is_csrf_protected() -> None:
    application = decided_application()
    client = Client(enforce_csrf_checks=True)
    client.force_login(application.applicant.user)
    assert client.post(rating_url("application", application.public_id), {"score": "5"}).status_code == 403
    assert not Rating.objects.exists()


def test_the_vietnamese_page_is_in_vietnamese() -> None:
    application = decided_application()
    page = page_of(
        citizen_client(application.applicant.user, "vi").get(rating_url("application", application.public_id))
    )
    assert '<html lang="vi"' in page


# --- the panel on the citizen's own pages --------------------------------------------------------


def test_the_application_page_shows_the_panel_once_decided_and_then_the_rating() -> None:
    application = decided_application(state=Case.State.IN_REVIEW)
    client = citizen_client(application.applicant.user)
    page_url = f"/applications/{application.public_id}/"
    assert 'id="rating-panel"' not in page_of(client.get(page_url))
    Case.objects.filter(application=application).update(state=Case.State.APPROVED, closed_at=timezone.now())
    page = page_of(client.get(page_url))
    assert (
        'id="rating-panel"' in page and f'action="{rating_url("application", application.public_id)}"' in page
    )
    client.post(rating_url("application", application.public_id), {"score": "3"})
    page = page_of(client.get(page_url))
    assert (
        "You rated it: Neither satisfied nor dissatisfied. Thank you." in page
        and 'id="rating-form"' not in page
    )


def test_the_payment_page_shows_the_panel_and_a_report_keeps_its_own_verdict_form() -> None:
    citizen = make_citizen()
    report = resolved_report(citizen.user)
    payment = paid_payment(citizen)
    client = citizen_client(citizen.user)
    payment_page = page_of(client.get(f"/payments/{payment.public_id}/"))
    assert f'action="{rating_url("payment", payment.public_id)}"' in payment_page
    # A resolved report asks its reporter "is it fixed?" with 1 to 5 stars: one rating form, not two.
    report_page = page_of(client.get(f"/report/{report.reference}/"))
    assert f"/report/{report.reference}/rate/" in report_page and 'id="rating-panel"' not in report_page
    response = client.post(f"/report/{report.reference}/rate/", {"resolved": "yes", "stars": "5"})
    assert response.status_code in (200, 302)
    # That verdict counts in the agency's scorecard once, and the feedback page no longer takes one.
    figures = dict(
        Tally.objects.filter(agency_id=report.agency_id, service_key=0).values_list("metric", "value")
    )
    assert figures == {"ratings": 1, "ratings_score_5": 1}
    refused = client.post(rating_url("report", report.public_id), {"score": "4"})
    assert refused.status_code == 409 and not Rating.objects.exists()


def test_an_unpaid_payment_page_has_no_panel() -> None:
    payment = paid_payment(paid=False)
    page = page_of(citizen_client(payment.payer.user).get(f"/payments/{payment.public_id}/"))
    assert 'id="rating-panel"' not in page


# --- the office page -----------------------------------------------------------------------------


def rated(agency: Any, score: int, comment: str = "", *, when: dt.datetime | None = None) -> Rating:
    application = decided_application(agency=agency)
    rating = services.rating_submit(
        user=application.applicant.user,
        kind="application",
        public_id=application.public_id,
        score=score,
        comment=comment,
    )
    if when is not None:
        Rating.objects.filter(pk=rating.pk).update(created_at=when)
    return rating


def test_officers_holding_feedback_view_see_figures_and_comments_without_names() -> None:
    agency = AgencyFactory()
    first = rated(agency, 5, "Rất nhanh, gọi 0912345678 để cảm ơn")
    rated(agency, 2, "Chờ lâu")
    citizen = make_citizen()
    report = resolved_report(citizen.user, agency=agency)
    services.rating_submit(user=citizen.user, kind="report", public_id=report.public_id, score=5)
    for role in ("service_quality", "agency_head"):
        response = back_office_client(make_officer(agency, roles=(role,)).user).get("/office/feedback/")
        assert response.status_code == 200
        page = page_of(response)
        assert "Rất nhanh, gọi 0912345678 để cảm ơn" in page and "Chờ lâu" in page  # as written
        assert "Problem reports" in page and "100%" in page and "5.00" in page
        assert first.user.full_name not in page and citizen.user.full_name not in page


def test_each_service_and_month_has_its_count_share_and_average() -> None:
    agency = AgencyFactory()
    five = rated(agency, 5)
    four = rated(agency, 4)
    Rating.objects.filter(pk=four.pk).update(service_id=five.service_id)  # two ratings of one service
    rated(agency, 1)
    page = page_of(
        back_office_client(make_officer(agency, roles=("service_quality",)).user).get("/office/feedback/")
    )
    table = page.split('id="feedback-figures"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 3  # heading + two services
    assert ">2<" in table and "50%" in table and "4.50" in table
    assert ">1<" in table and "0%" in table and "1.00" in table


def test_the_filters_choose_a_service_and_a_month() -> None:
    agency = AgencyFactory()
    old = rated(agency, 1, "Tháng trước", when=timezone.now() - dt.timedelta(days=62))
    new = rated(agency, 5, "Tháng này")
    client = back_office_client(make_officer(agency, roles=("service_quality",)).user)
    old.refresh_from_db()
    month = timezone.localtime(old.created_at).strftime("%Y-%m")
    by_month = page_of(client.get("/office/feedback/", {"month": month}))
    assert "Tháng trước" in by_month and "Tháng này" not in by_month
    by_service = page_of(client.get("/office/feedback/", {"service": new.service_id}))
    assert "Tháng này" in by_service and "Tháng trước" not in by_service
    reports_only = page_of(client.get("/office/feedback/", {"service": "reports"}))
    assert "No comments match these filters." in reports_only


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"month": "2026-13"}, "Choose a month from the list."),
        ({"month": "<script>"}, "Choose a month from the list."),
        ({"service": "abc"}, "Choose a service from the list."),
        ({"service": "99999999999999999999999"}, "Choose a service from the list."),
    ],
)
def test_a_wrong_filter_says_so(query: dict[str, str], message: str) -> None:
    agency = AgencyFactory()
    rated(agency, 4, "Ổn")
    response = back_office_client(make_officer(agency, roles=("service_quality",)).user).get(
        "/office/feedback/", query
    )
    assert (
        response.status_code == 200 and message in page_of(response) and "<script>" not in page_of(response)
    )


def test_comments_are_paginated() -> None:
    agency = AgencyFactory()
    for n in range(23):
        rated(agency, 5, f"Bình luận số {n:02d}", when=timezone.now() - dt.timedelta(minutes=n))
    client = back_office_client(make_officer(agency, roles=("service_quality",)).user)
    first = page_of(client.get("/office/feedback/"))
    assert "Bình luận số 00" in first and "Bình luận số 19" in first and "Bình luận số 20" not in first
    assert "Page 1 of 2" in first
    second = page_of(client.get("/office/feedback/", {"page": "2"}))
    assert "Bình luận số 22" in second and "Bình luận số 00" not in second


def test_other_officers_and_other_agencies_see_nothing() -> None:
    agency = AgencyFactory()
    rated(agency, 5, "Bí mật của cơ quan")
    for roles in (("caseworker",), ("payments_officer",), ("agency_admin",)):
        assert (
            back_office_client(make_officer(agency, roles=roles).user).get("/office/feedback/").status_code
            == 403
        )
    citizen = citizen_client(make_citizen().user)
    assert citizen.get("/office/feedback/").status_code in (302, 403)
    elsewhere = back_office_client(make_officer(AgencyFactory(), roles=("service_quality",)).user)
    service_id = Rating.objects.get().service_id
    page = page_of(elsewhere.get("/office/feedback/", {"service": service_id}))
    assert "Bí mật của cơ quan" not in page and "Choose a service from the list." in page
    assert "Bí mật của cơ quan" not in page_of(elsewhere.get("/office/feedback/"))


def test_the_office_page_reads_in_a_fixed_number_of_queries(django_assert_max_num_queries: Any) -> None:
    agency = AgencyFactory()
    for n in range(8):
        rated(agency, 1 + n % 5, f"Ý kiến {n}")
    client = back_office_client(make_officer(agency, roles=("service_quality",)).user)
    client.get("/office/feedback/")
    with django_assert_max_num_queries(15):
        assert client.get("/office/feedback/").status_code == 200


# --- accessibility, in a real browser ------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_rating_and_office_pages_pass_axe(live_server: Any) -> None:
    agency = AgencyFactory()
    rated(agency, 4, "Cán bộ nhiệt tình")
    application = decided_application(agency=agency)
    base = live_server.url
    rate_url = base + rating_url("application", application.public_id)

    def send_without_answer(page: Any, check: Check) -> None:
        """The error is shown beside the question and the page stays accessible."""
        page.goto(rate_url)
        page.fill("#rating-comment", "Tốt")
        page.click("#rating-send")
        page.wait_for_selector("#rating-score-error")
        check("rate-error")

    found = axe_in_chromium(
        base_url=base,
        session=citizen_client(application.applicant.user).cookies[settings.SESSION_COOKIE_NAME].value,
        pages={"rate": rate_url, "application": f"{base}/applications/{application.public_id}/"},
        actions=[send_without_answer],
    )
    assert len(found) == 2 * 3
    officer = make_officer(agency, roles=("service_quality",))
    found = axe_in_chromium(
        base_url=base,
        session=back_office_client(officer.user).cookies[settings.SESSION_COOKIE_NAME].value,
        pages={"office": f"{base}/office/feedback/"},
    )
    assert len(found) == 2
