"""Recovering an account does not weaken it: a password reset by e-mail still needs the second
factor before anyone is logged in, and each recovery code works once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.core import mail
from django.test import Client

from civicore.identity.selectors import session_amr
from civicore.identity.tests.factories import PASSWORD, TOTP_SECRET, make_citizen

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase 7"  # noqa: S105 - test value


@pytest.fixture
def protected():  # type: ignore[no-untyped-def]
    """A citizen with an authenticator app and recovery codes."""
    person = make_citizen()
    TOTP.activate(person.user, TOTP_SECRET)
    RecoveryCodes.activate(person.user)
    return person.user


def _reset_password(client: Client, email: str) -> Any:
    assert client.post("/accounts/password/reset/", {"email": email}).status_code == 302
    link = re.search(r"http://[^/\s]+(/accounts/password/reset/key/\S+/)", mail.outbox[-1].body)
    assert link, mail.outbox[-1].body
    form_url = client.get(link.group(1))["Location"]  # allauth hides the key behind a redirect
    return client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})


def test_password_reset_by_email_still_needs_the_second_factor(protected) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    done = _reset_password(client, protected.email)
    assert done.status_code == 302
    assert "_auth_user_id" not in client.session  # the e-mail link alone logs nobody in
    protected.refresh_from_db()
    assert protected.check_password(NEW_PASSWORD)

    response = client.post("/accounts/login/", {"login": protected.email, "password": NEW_PASSWORD})
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert "_auth_user_id" not in client.session
    assert client.get("/applications/")["Location"].startswith("/accounts/login/")


def test_even_logging_in_on_reset_stops_at_the_second_factor(protected, settings: Any) -> None:  # type: ignore[no-untyped-def]
    settings.ACCOUNT_LOGIN_ON_PASSWORD_RESET = True
    client = Client()
    done = _reset_password(client, protected.email)
    assert done["Location"] == "/accounts/2fa/authenticate/"
    assert "_auth_user_id" not in client.session
    code = RecoveryCodes(Authenticator.objects.get(user=protected, type="recovery_codes")).get_unused_codes()[
        0
    ]
    finished = client.post("/accounts/2fa/authenticate/", {"code": code})
    assert finished.status_code == 302
    assert client.session["_auth_user_id"] == str(protected.pk)


def test_a_recovery_code_works_once(protected) -> None:  # type: ignore[no-untyped-def]
    codes = RecoveryCodes(Authenticator.objects.get(user=protected, type="recovery_codes"))
    code = codes.get_unused_codes()[0]

    first = Client()
    first.post("/accounts/login/", {"login": protected.email, "password": PASSWORD})
    assert first.post("/accounts/2fa/authenticate/", {"code": code}).status_code == 302
    assert first.session["_auth_user_id"] == str(protected.pk)
    fresh = RecoveryCodes(Authenticator.objects.get(user=protected, type="recovery_codes"))
    assert code not in fresh.get_unused_codes()
    assert len(fresh.get_unused_codes()) == len(codes.generate_codes()) - 1

    again = Client()
    again.post("/accounts/login/", {"login": protected.email, "password": PASSWORD})
    refused = again.post("/accounts/2fa/authenticate/", {"code": code})
    assert refused.status_code == 200
    assert "Incorrect code" in refused.content.decode() or "id_code-error" in refused.content.decode()
    assert "_auth_user_id" not in again.session


def test_a_recovery_code_counts_as_a_one_time_password(protected, rf) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    code = RecoveryCodes(Authenticator.objects.get(user=protected, type="recovery_codes")).get_unused_codes()[
        0
    ]
    client.post("/accounts/login/", {"login": protected.email, "password": PASSWORD})
    client.post("/accounts/2fa/authenticate/", {"code": code})
    request = rf.get("/")
    request.user = protected
    request.session = client.session
    assert session_amr(request) == ["pwd", "otp", "mfa"]
