"""The citizen's profile page: provenance, history, declaring and correcting, safely."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from civicore.identity.models import ProfileItem
from civicore.identity.services import profile_item_declare, profile_item_record
from civicore.identity.tests.factories import UserFactory, make_citizen, make_register

pytestmark = pytest.mark.django_db

PAGE = "/my-profile/"


def client_for(person, language: str = "en") -> Client:  # type: ignore[no-untyped-def]
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(person.user)
    return client


def section(html: str, key: str) -> str:
    match = re.search(rf'<section[^>]*id="item-{key}".*?</section>', html, re.S)
    assert match, f"no section for {key}"
    return match.group(0)


def test_anonymous_visitors_are_sent_to_log_in():
    response = Client().get(PAGE)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_user_without_a_citizen_profile_sees_an_explanation():
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(UserFactory())
    response = client.get(PAGE)
    assert response.status_code == 200
    assert "not linked to a citizen profile" in response.content.decode()


def test_page_lists_every_item_with_value_source_verified_date_and_history():
    person = make_citizen(full_name="Lê Thị Hoa")
    civil = make_register("Civil status register", "Sở Tư pháp tỉnh Bình An")
    profile_item_record(person=person, key="marital_status", value="single", agency=civil)
    profile_item_record(person=person, key="marital_status", value="married", agency=civil)
    profile_item_declare(person=person, key="education", value={"level": "bachelor", "year": 2012})
    html = client_for(person).get(PAGE).content.decode()
    for key in ProfileItem.Key.values:
        section(html, key)
    name = section(html, "full_name")
    assert "Lê Thị Hoa" in name and "National Population Database" in name
    assert re.search(r'<time datetime="\d{4}-\d{2}-\d{2}T', name)
    marital = section(html, "marital_status")
    assert "Married" in marital and "Civil status register" in marital
    assert "History of Marital status: 2 changes" in marital
    assert marital.index("Single") < marital.index("Married", marital.index("<table"))
    education = section(html, "education")
    assert "Declared by you" in education and "University degree" in education and "2012" in education
    assert "Not verified by an agency" in education
    assert "Not on your profile yet." in section(html, "vehicle")


def test_page_speaks_vietnamese_by_default():
    person = make_citizen()
    profile_item_record(
        person=person, key="marital_status", value="married", agency=make_register(name_vi="Sở Tư pháp")
    )
    html = client_for(person, "vi").get(PAGE).content.decode()
    marital = section(html, "marital_status")
    assert "Tình trạng hôn nhân" in marital and "Đã kết hôn" in marital and "Sở Tư pháp" in marital
    assert "Cơ sở dữ liệu quốc gia về dân cư" in section(html, "full_name")


def test_only_editable_items_have_a_form():
    person = make_citizen()
    html = client_for(person).get(PAGE).content.decode()
    for key in ("current_address", "phone", "email", "education"):
        assert f'action="/my-profile/{key}/"' in section(html, key)
    for key in (
        "full_name",
        "date_of_birth",
        "national_id",
        "address",
        "gender",
        "marital_status",
        "vehicle",
    ):
        assert "<form" not in section(html, key)


def test_declared_html_is_escaped_on_the_page():
    person = make_citizen()
    profile_item_declare(
        person=person, key="current_address", value='<script>alert("x")</script><img src=x onerror=alert(1)>'
    )
    profile_item_declare(
        person=person,
        key="education",
        value={"level": "bachelor", "institution": "<b onmouseover=alert(1)>Uni</b>"},
    )
    html = client_for(person).get(PAGE).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html and "<b onmouseover" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&lt;b onmouseover=alert(1)&gt;Uni&lt;/b&gt;" in html


def test_another_persons_data_is_never_shown():
    person, neighbour = make_citizen(), make_citizen()
    profile_item_declare(person=neighbour, key="current_address", value="Bí mật của hàng xóm")
    profile_item_record(person=neighbour, key="marital_status", value="divorced", agency=make_register())
    html = client_for(person).get(PAGE).content.decode()
    assert "Bí mật của hàng xóm" not in html and "Divorced" not in html
    assert neighbour.national_id not in html and person.national_id in html


def test_citizen_declares_education_with_a_plain_form():
    person = make_citizen()
    client = client_for(person)
    response = client.post(
        "/my-profile/education/",
        {"value.level": "bachelor", "value.institution": "Đại học Cần Thơ", "value.year": "2012"},
    )
    assert response.status_code == 302 and response["Location"].endswith("/my-profile/#item-education")
    item = person.items.get(key="education")
    assert json.loads(item.value) == {"level": "bachelor", "institution": "Đại học Cần Thơ", "year": 2012}
    assert item.source_kind == "declared"
    assert "Saved: Education." in client.get(PAGE).content.decode()


def test_citizen_corrects_a_phone_number_with_htmx():
    person = make_citizen()
    profile_item_record(
        person=person, key="phone", value="0901234567", agency=make_register("Telecom register")
    )
    response = client_for(person).post(
        "/my-profile/phone/", {"value": "0912 345 678"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="civicore-panel" id="item-phone"')
    assert "<html" not in html and "Saved: Phone number." in html and "data-focus-after-swap" in html
    assert "0912345678" in html and "Declared by you" in html and "Telecom register" in html  # history
    assert person.items.get(key="phone").value == "0912345678"


def test_an_invalid_value_is_shown_next_to_its_field_and_nothing_is_saved():
    person = make_citizen()
    client = client_for(person)
    response = client.post("/my-profile/phone/", {"value": "12345<script>"})
    assert response.status_code == 422
    phone = section(response.content.decode(), "phone")
    assert 'id="phone-value-error"' in phone
    assert "Enter a Vietnamese phone number" in phone
    assert 'aria-invalid="true"' in phone and 'value="12345&lt;script&gt;"' in phone
    assert '<details class="margin-top-2" open>' in phone
    assert not person.items.filter(key="phone").exists()


def test_structured_errors_sit_next_to_their_sub_field_with_htmx():
    person = make_citizen()
    response = client_for(person, "vi").post(
        "/my-profile/education/", {"value.level": "", "value.year": "hai nghìn"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'id="education-value-level-error">[^<]+<', html)
    assert re.search(r'id="education-value-year-error">[^<]+<', html)
    assert 'role="alert"' in html and "data-focus-after-swap" in html
    assert not person.items.filter(key="education").exists()


@pytest.mark.parametrize("key", ["full_name", "date_of_birth", "national_id", "address", "marital_status"])
def test_posting_to_an_agency_item_is_forbidden(key):
    person = make_citizen()
    before = {i.key: i.value for i in person.items.all()}
    response = client_for(person).post(f"/my-profile/{key}/", {"value": "1990-01-01"})
    assert response.status_code == 403
    assert {i.key: i.value for i in person.items.all()} == before


def test_unknown_item_is_404():
    person = make_citizen()
    assert client_for(person).post("/my-profile/password/", {"value": "x"}).status_code == 404


def test_sql_looking_text_is_kept_verbatim():
    person = make_citizen()
    hostile = "1'; DROP TABLE identity_profileitem; --"
    client_for(person).post("/my-profile/current_address/", {"value": hostile})
    assert person.items.get(key="current_address").value == hostile


def test_posting_needs_a_csrf_token():
    person = make_citizen()
    client = Client(enforce_csrf_checks=True)
    client.force_login(person.user)
    assert client.post("/my-profile/phone/", {"value": "0912345678"}).status_code == 403
    assert not person.items.filter(key="phone").exists()


def test_get_on_the_item_url_is_not_allowed():
    person = make_citizen()
    assert client_for(person).get("/my-profile/phone/").status_code == 405


def test_profile_page_query_count_does_not_grow_with_items_or_history(django_assert_max_num_queries):
    person = make_citizen()
    client = client_for(person)
    client.get(PAGE)  # warm up: session, signing key and other one-time reads
    with django_assert_max_num_queries(8):
        assert client.get(PAGE).status_code == 200
    register = make_register()
    for value in ("single", "married", "divorced", "married"):
        profile_item_record(person=person, key="marital_status", value=value, agency=register)
    profile_item_record(
        person=person, key="vehicle", value=[{"plate": "93H1-123.45", "kind": "motorbike"}], agency=register
    )
    profile_item_declare(person=person, key="education", value={"level": "bachelor"})
    profile_item_declare(person=person, key="phone", value="0912345678")
    with django_assert_max_num_queries(8):
        assert client.get(PAGE).status_code == 200


def test_htmx_declare_of_an_item_an_agency_took_over_explains_why():
    person = make_citizen()
    profile_item_record(
        person=person,
        key="education",
        value={"level": "bachelor"},
        agency=make_register("Ministry of Education"),
    )
    response = client_for(person).post(
        "/my-profile/education/", {"value.level": "postgraduate"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="alert"' in html and "Ministry of Education holds this item" in html
    assert "<form" not in html
    assert json.loads(person.items.get(key="education").value) == {"level": "bachelor"}
