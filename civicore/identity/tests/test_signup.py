"""Sign-up: name, national ID number, e-mail (verified before the account works), optional phone
and a strong password. The person starts at assurance level 1 with what they declared; a number
already registered is refused without saying by whom, and checks are rate limited."""

from __future__ import annotations

import re
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client

from civicore.audit.models import AuditEntry
from civicore.identity.models import Person, ProfileItem, ProfileItemChange, User
from civicore.identity.tests.factories import make_citizen, next_national_id

pytestmark = pytest.mark.django_db

PASSPHRASE = "a long enough passphrase 9"  # noqa: S105 - test value


@pytest.fixture
def client() -> Client:
    return Client(HTTP_ACCEPT_LANGUAGE="en")


def _form(**changes: Any) -> dict[str, Any]:
    data = {
        "full_name": "Nguyễn Thị Mai",
        "national_id": next_national_id(),
        "email": "mai@example.test",
        "phone": "",
        "password1": PASSPHRASE,
        "password2": PASSPHRASE,
    }
    data.update(changes)
    return data


def _errors(html: str, field: str) -> str:
    match = re.search(rf'<span class="usa-error-message" id="id_{field}-error">(.*?)</span>', html, re.S)
    return match.group(1) if match else ""


def test_the_form_asks_for_name_national_id_email_phone_and_password(client: Client) -> None:
    html = client.get("/accounts/signup/").content.decode()
    order = [
        html.index(f'for="id_{name}"') for name in ("full_name", "national_id", "email", "phone", "password1")
    ]
    assert order == sorted(order)
    national_id = re.search(r'<input[^>]*id="id_national_id"[^>]*>', html)
    assert national_id and 'inputmode="numeric"' in national_id.group(0)
    phone = re.search(r'<input[^>]*id="id_phone"[^>]*>', html)
    assert phone and 'type="tel"' in phone.group(0) and "required" not in phone.group(0)
    assert "Phone number (optional)" in html
    assert 'id="id_national_id-hint"' in html


def test_signup_creates_a_self_registered_person_and_asks_to_verify_the_email(client: Client) -> None:
    data = _form(phone="0901 234 567")
    response = client.post("/accounts/signup/", data)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"

    user = User.objects.get(email="mai@example.test")
    assert user.full_name == "Nguyễn Thị Mai"
    assert user.password.startswith("md5$") or user.has_usable_password()
    person = Person.objects.get(user=user)
    assert person.assurance_level == Person.AssuranceLevel.SELF_REGISTERED
    assert person.assurance_verified_at is None and person.assurance_verified_by is None
    assert person.national_id == data["national_id"]

    items = {item.key: item for item in person.items.all()}
    assert set(items) == {"national_id", "full_name", "email", "phone"}
    assert all(item.source_kind == ProfileItem.Source.DECLARED for item in items.values())
    assert items["phone"].value == "0901234567"
    assert set(ProfileItemChange.objects.filter(item__person=person).values_list("cause", flat=True)) == {
        ProfileItemChange.Cause.SELF_REGISTRATION
    }
    assert AuditEntry.objects.filter(action="person.self_register", subject_id=str(person.pk)).count() == 1

    # allauth's mandatory verification: not logged in, a link is sent, the address is unverified.
    assert "_auth_user_id" not in client.session
    assert not EmailAddress.objects.get(user=user).verified
    assert len(mail.outbox) == 1 and "mai@example.test" in mail.outbox[0].to

    login = client.post("/accounts/login/", {"login": "mai@example.test", "password": PASSPHRASE})
    assert login["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session

    key = re.search(r"/accounts/confirm-email/([^/\s]+)/", mail.outbox[-1].body)
    assert key
    assert client.post(f"/accounts/confirm-email/{key.group(1)}/").status_code == 302
    assert EmailAddress.objects.get(user=user).verified
    client.post("/accounts/login/", {"login": "mai@example.test", "password": PASSPHRASE})
    assert client.session["_auth_user_id"] == str(user.pk)


def test_a_national_id_registered_by_someone_else_is_refused_without_saying_who(client: Client) -> None:
    other = make_citizen(email="holder@example.test", full_name="Phạm Văn Bí Mật")
    response = client.post("/accounts/signup/", _form(national_id=other.national_id))
    html = response.content.decode()
    assert response.status_code == 200
    assert "already linked to an account" in _errors(html, "national_id")
    assert "holder@example.test" not in html and "Bí Mật" not in html and "holder" not in html
    assert not User.objects.filter(email="mai@example.test").exists()
    assert Person.objects.count() == 1


def test_the_national_id_is_compared_after_removing_spaces(client: Client) -> None:
    other = make_citizen()
    spaced = " ".join(re.findall(r"\d{4}", other.national_id))
    html = client.post("/accounts/signup/", _form(national_id=spaced)).content.decode()
    assert "already linked to an account" in _errors(html, "national_id")


def test_national_id_checks_are_rate_limited_per_address(client: Client, settings: Any) -> None:
    settings.SIGNUP_NATIONAL_ID_CHECKS_PER_HOUR = 3
    taken = make_citizen().national_id
    for _attempt in range(3):
        html = client.post("/accounts/signup/", _form(national_id=taken)).content.decode()
        assert "already linked" in _errors(html, "national_id")
    html = client.post("/accounts/signup/", _form(national_id=taken)).content.decode()
    assert "Too many attempts" in _errors(html, "national_id")
    assert "already linked" not in html  # over the limit, the number is not even looked up
    # Another address still has its own allowance.
    elsewhere = Client(HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="203.0.113.9")
    html = elsewhere.post("/accounts/signup/", _form(national_id=taken)).content.decode()
    assert "already linked" in _errors(html, "national_id")


@pytest.mark.parametrize(
    "national_id",
    ["12345", "0790900012345", "07909000123A", "079-090-001-234", "<script>alert(1)", "٠٧٩٠٩٠٠٠١٢٣٤"],
)
def test_invalid_national_id_formats_are_refused(client: Client, national_id: str) -> None:
    """Including the right number of digits in another script, which would hash differently
    from the same number in ASCII digits and so slip past the uniqueness check."""
    response = client.post("/accounts/signup/", _form(national_id=national_id))
    html = response.content.decode()
    assert response.status_code == 200
    assert "12 digits" in _errors(html, "national_id")
    assert "<script>alert" not in html
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("full_name", "<script>alert(1)</script>"),
        ("full_name", '"><img src=x onerror=alert(1)>'),
        ("full_name", "Robert'); DROP TABLE identity_user;--"),
        ("full_name", "A" * 5000),
        ("national_id", "1" * 5000),
        ("email", "a" * 300 + "@example.test"),
        ("email", "<script>@example.test"),
        ("phone", "<b>0901234567</b>"),
        ("phone", "9" * 5000),
        ("password1", "x" * 10_000),
    ],
)
def test_hostile_input_is_refused_and_never_echoed_as_markup(client: Client, field: str, value: str) -> None:
    data = _form(**{field: value})
    if field == "password1":
        data["password2"] = value
    response = client.post("/accounts/signup/", data)
    html = response.content.decode()
    assert response.status_code == 200
    assert _errors(html, field), f"no error shown for {field}"
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>0901" not in html
    assert not User.objects.exists() and not Person.objects.exists()


def test_names_in_any_script_with_vietnamese_diacritics_are_accepted(client: Client) -> None:
    response = client.post("/accounts/signup/", _form(full_name="  H'Hen   Niê  "))
    assert response.status_code == 302
    assert User.objects.get().full_name == "H'Hen Niê"


def test_a_breached_password_is_refused_next_to_the_field(client: Client) -> None:
    html = client.post(
        "/accounts/signup/", _form(password1="Matkhau@2024!", password2="Matkhau@2024!")
    ).content.decode()
    assert "data breaches" in _errors(html, "password1")
    assert not User.objects.exists()


def test_a_password_with_the_national_id_or_name_is_refused(client: Client) -> None:
    national_id = next_national_id()
    with_id = f"my id is {national_id}!"
    html = client.post(
        "/accounts/signup/", _form(national_id=national_id, password1=with_id, password2=with_id)
    ).content.decode()
    assert "national ID number" in _errors(html, "password1")
    with_name = "nguyễnthịmai rocks 2024"
    html = client.post("/accounts/signup/", _form(password1=with_name, password2=with_name)).content.decode()
    assert "your name" in _errors(html, "password1")


def test_a_number_registered_during_signup_rolls_everything_back(client: Client, monkeypatch: Any) -> None:
    """Two sign-ups with one number at the same moment: the form's check passed for both, the
    unique index lets one through, and the other sees the error with nothing left behind."""
    other = make_citizen()
    monkeypatch.setattr("civicore.identity.forms.person_find", lambda **kwargs: None)
    response = client.post("/accounts/signup/", _form(national_id=other.national_id))
    assert response.status_code == 200
    assert "already linked to an account" in _errors(response.content.decode(), "national_id")
    assert not User.objects.filter(email="mai@example.test").exists()
    assert not EmailAddress.objects.filter(email="mai@example.test").exists()
    assert len(mail.outbox) == 0
