from __future__ import annotations

import re

import pytest
from django.urls import reverse

SEARCH = "/services/"


def get(client, url, lang="en", **headers):
    return client.get(url, HTTP_ACCEPT_LANGUAGE=lang, **headers)


def assert_no_inline_script_or_style(html: str) -> None:
    assert " style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def test_search_page_lists_online_services_first(client, catalogue):
    response = get(client, SEARCH + "?q=khai+sinh")
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("catalogue:search") == SEARCH
    assert "Birth registration" in html
    assert "Online" in html
    assert 'href="/services/birth-registration/"' in html
    assert 'hx-get="/services/"' in html and 'hx-target="#search-results"' in html
    assert 'hx-push-url="true"' in html
    assert '<label class="usa-sr-only" for="catalogue-q">' in html
    assert_no_inline_script_or_style(html)


def test_search_without_diacritics_in_vietnamese(client, catalogue):
    html = get(client, SEARCH + "?q=dang+ky+khai+sinh", lang="vi").content.decode()
    assert "Đăng ký khai sinh" in html


def test_services_come_before_procedures(client, catalogue):
    html = get(client, SEARCH + "?q=nghia+vu+quan+su+lan+dau").content.decode()
    service = html.index("/services/military-service-registration/")
    procedure = html.index("/services/procedures/1.013133/")
    assert service < procedure


def test_results_are_paginated_twenty_a_page(client, catalogue):
    html = get(client, SEARCH).content.decode()
    assert html.count('class="usa-collection__item"') == 20
    assert "213 services and procedures" in html
    assert "Page 1 of 11" in html
    last = get(client, SEARCH + "?page=11").content.decode()
    assert last.count('class="usa-collection__item"') == 13
    assert get(client, SEARCH + "?page=999").status_code == 200
    assert "Page 1 of 11" in get(client, SEARCH + "?page=abc").content.decode()


def test_page_two_continues_from_services_into_procedures(client, catalogue):
    first = re.findall(r'href="(/services/[^"]+)"', get(client, SEARCH).content.decode())
    second = re.findall(r'href="(/services/[^"]+)"', get(client, SEARCH + "?page=2").content.decode())
    first_items = {u for u in first if u.count("/") >= 3 and u != SEARCH}
    second_items = {u for u in second if u.count("/") >= 3 and u != SEARCH}
    assert first_items.isdisjoint(second_items)


def test_htmx_request_gets_only_the_results(client, catalogue):
    response = get(client, SEARCH + "?q=birth", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert "Birth registration" in html
    assert 'id="search-status"' in html and 'hx-swap-oob="true"' in html


def test_no_results_says_so(client, catalogue):
    html = get(client, SEARCH + "?q=zzzzqqq").content.decode()
    assert "Nothing matches your search" in html
    assert "0 results for “zzzzqqq”" in html


@pytest.mark.parametrize("q", ["' OR 1=1 --", "a" * 5000, "🚀 <b>bold</b>", "%25%00", "khai\x00sinh"])
def test_hostile_search_renders(client, catalogue, q):
    response = client.get(SEARCH, {"q": q})
    assert response.status_code == 200
    assert "<b>bold</b>" not in response.content.decode()


def test_search_page_query_count_is_fixed(client, catalogue, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        assert get(client, SEARCH).status_code == 200


def test_service_detail_shows_what_an_applicant_needs(client, catalogue):
    response = get(client, "/services/household-business-registration/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Household business registration" in html
    assert "An Binh Commune Economic Office" in html
    assert "100,000 VND" in html
    assert "3 working days" in html
    assert "Right to use the business premises" in html
    assert "required" in html and "optional" in html
    assert "PDF, JPEG, PNG, up to 5.0\xa0MB" in html
    assert "Owner&#x27;s full name" in html or "Owner's full name" in html
    assert "Household business registration certificate" in html
    assert 'action="/applications/start/household-business-registration/"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "Start application" in html
    assert_no_inline_script_or_style(html)


def test_service_detail_in_vietnamese_uses_vietnamese_number_format(client, catalogue):
    html = get(client, "/services/household-business-registration/", lang="vi").content.decode()
    assert "Đăng ký thành lập hộ kinh doanh" in html
    assert "100.000 VND" in html


def test_free_service_says_free(client, catalogue):
    html = get(client, "/services/birth-registration/").content.decode()
    assert "Free" in html
    assert "1 working day" in html


def test_service_detail_links_its_procedure_and_legal_basis(client, catalogue):
    html = get(client, "/services/military-service-registration/").content.decode()
    assert 'href="/services/procedures/1.013133/"' in html
    assert "Luật Cư trú 2020" in html


def test_unknown_service_is_404(client, catalogue):
    assert get(client, "/services/no-such-service/").status_code == 404


def test_procedure_detail(client, catalogue):
    response = get(client, "/services/procedures/1.013133/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Thủ tục đăng ký nghĩa vụ quân sự lần đầu" in html
    assert "Cấp Xã" in html and "Nghĩa vụ quân sự" in html
    assert "Ban chỉ huy quân sự cấp Xã" in html
    assert "1 Ngày làm việc" in html
    assert "Phiếu tự khai sức khỏe nghĩa vụ quân sự" in html
    assert "Nghị định 13/2016/NĐ-CP" in html
    assert "Giấy chứng nhận đăng ký nghĩa vụ quân sự" in html
    assert 'href="/services/military-service-registration/"' in html
    assert "dichvucong.gov.vn" in html
    assert_no_inline_script_or_style(html)


@pytest.mark.parametrize("code", ["9.999999", "'; DROP TABLE x; --", "%00"])
def test_unknown_procedure_is_404(client, catalogue, code):
    assert client.get(f"/services/procedures/{code}/").status_code == 404


def test_headings_are_in_order(client, catalogue):
    for url in ["/services/", "/services/birth-registration/", "/services/procedures/1.013133/"]:
        html = get(client, url).content.decode()
        levels = [int(n) for n in re.findall(r"<h([1-6])", html)]
        assert levels[0] == 1 and levels.count(1) == 1
        assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), url
