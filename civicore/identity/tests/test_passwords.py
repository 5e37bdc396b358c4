"""Password rules: at least 12 characters, not common, not breached (nor a small change to a
breached one), not absurdly long; stored with Argon2, older hashes upgraded at login."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.hashers import identify_hasher, make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from civicore.identity.passwords import BreachedPasswordValidator, MaximumLengthValidator, is_breached
from civicore.identity.tests.factories import PASSWORD, UserFactory
from config.settings import base as base_settings

pytestmark = pytest.mark.django_db

BREACHED = [
    "password1234",  # in Django's list as it is
    "Password2024!",  # a listed word with a year and a symbol
    "P@ssw0rd12345",  # look-alike symbols
    "Matkhau@2024!",  # Vietnamese "password", from Civicore's list
    "Mật khẩu 2024!!",  # with its diacritics
    "anh yeu em 123456",  # "I love you", spaced out
    "Nguyen17051990",  # a family name and a birth date
    "passwordpassword",  # a word repeated
    "dragondragon2024",
    "qwertyuiopas",  # a keyboard row
    "abcabcabcabc",  # a short unit repeated
    "zxcvbnm,./1234",
    "a1234567890!",  # one letter around a run of digits
    "aaaaaaaaaaaaaaaa",  # too few different characters
    "iloveyou123456789",  # a listed word padded with a listed run
    "emyeuanh2024",
]

STRONG = [
    "correct horse battery staple 42",
    "a long enough passphrase 9",
    "Hôm nay trời đẹp lắm",
    "Sunflower-Garden-7",
    "mua he xanh 2019 o Hue",
    "Tr4n-Quang-H4i-88",
    "x83920174625",  # random digits after one letter
]


@pytest.mark.parametrize("password", BREACHED)
def test_breached_passwords_and_small_changes_to_them_are_refused(password: str) -> None:
    with pytest.raises(ValidationError) as exc:
        BreachedPasswordValidator().validate(password)
    assert exc.value.code == "password_breached"
    assert "data breaches" in exc.value.messages[0]


@pytest.mark.parametrize("password", STRONG)
def test_passphrases_and_random_passwords_pass(password: str) -> None:
    assert not is_breached(password)
    BreachedPasswordValidator().validate(password)


def test_the_configured_validators_refuse_short_common_breached_and_overlong_passwords() -> None:
    def codes(password: str) -> set[str]:
        try:
            validate_password(password)
        except ValidationError as exc:
            return {error.code for error in exc.error_list}
        return set()

    assert "password_too_short" in codes("Xq7#kLm2pW9")  # 11 characters
    assert codes("Xq7#kLm2pW9z") == set()  # 12
    assert "password_too_common" in codes("password1234")
    assert codes("Matkhau@2024!") == {"password_breached"}
    assert "password_too_long" in codes("Xq7#kLm2pW9z" * 20)
    assert codes("a long enough passphrase 9") == set()


def test_the_length_ceiling_is_generous() -> None:
    MaximumLengthValidator().validate("x" * 128)
    with pytest.raises(ValidationError):
        MaximumLengthValidator().validate("x" * 129)


def test_the_shipped_list_names_its_sources() -> None:
    from civicore.identity import passwords

    assert "common-passwords.txt.gz" in (passwords.__doc__ or "")
    text = passwords.CIVICORE_LIST.read_text(encoding="utf-8")
    assert text.startswith("# Civicore's own list")
    assert "matkhau" in text.split()


def test_signup_explains_the_breached_rule_next_to_the_password() -> None:
    html = Client(HTTP_ACCEPT_LANGUAGE="en").get("/accounts/signup/").content.decode()
    assert "exposed in a data breach" in html
    assert 'id="id_password1-hint"' in html


# --- hashing -----------------------------------------------------------------------------------


def test_argon2_is_the_preferred_hasher_in_every_deployment() -> None:
    assert base_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    # Older hashes must still verify, so they can be upgraded.
    assert "django.contrib.auth.hashers.PBKDF2PasswordHasher" in base_settings.PASSWORD_HASHERS


def test_new_passwords_are_hashed_with_argon2id(settings: Any) -> None:
    settings.PASSWORD_HASHERS = base_settings.PASSWORD_HASHERS
    encoded = make_password("a long enough passphrase 9")
    assert identify_hasher(encoded).algorithm == "argon2"
    assert encoded.startswith("argon2$argon2id$")


def test_a_pbkdf2_hash_is_upgraded_to_argon2_at_login(settings: Any) -> None:
    settings.PASSWORD_HASHERS = base_settings.PASSWORD_HASHERS
    user = UserFactory()
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])

    wrong = Client().post("/accounts/login/", {"login": user.email, "password": "not the password"})
    assert wrong.status_code == 200
    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sha256$")  # a failed login changes nothing

    response = Client().post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password(PASSWORD)
