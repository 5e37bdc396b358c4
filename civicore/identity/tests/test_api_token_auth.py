"""A bearer token is checked against the database on every request: revoking it, letting it
expire or deactivating its user takes effect on the next request, and the user it yields carries
their person as the filing path needs it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from civicore.identity.models import ApiToken, Person
from civicore.identity.selectors import person_for_user
from civicore.identity.services import api_token_authenticate, api_token_create
from civicore.identity.tests.factories import UserFactory, make_citizen

pytestmark = pytest.mark.django_db

URL = "/api/v1/applications"


def test_the_token_yields_its_user_with_their_person() -> None:
    person = make_citizen()
    _token, secret = api_token_create(user=person.user, name="app")
    user = api_token_authenticate(secret)
    assert user is not None and user.pk == person.user.pk and user.email == person.user.email
    assert user.person.pk == person.pk
    assert user.person.national_id == Person.objects.get(pk=person.pk).national_id
    assert user.person.user is user


def test_a_user_without_a_person_has_none_and_gets_403_on_filing() -> None:
    user = UserFactory()
    _token, secret = api_token_create(user=user, name="app")
    authenticated = api_token_authenticate(secret)
    assert authenticated is not None and person_for_user(authenticated) is None
    response = Client(HTTP_AUTHORIZATION=f"Bearer {secret}").post(
        URL, {"service": "x"}, content_type="application/json"
    )
    assert response.status_code == 403 and response.json()["code"] == "not_a_citizen"


def test_revoking_takes_effect_on_the_next_request() -> None:
    person = make_citizen()
    token, secret = api_token_create(user=person.user, name="app")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(URL).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(revoked=True)
    assert client.get(URL).status_code == 401


def test_an_expired_token_and_a_deactivated_user_are_refused() -> None:
    person = make_citizen()
    token, secret = api_token_create(user=person.user, name="app", lifetime=timedelta(hours=1))
    assert api_token_authenticate(secret) is not None
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_token_authenticate(secret) is None

    _other, other_secret = api_token_create(user=person.user, name="other")
    assert api_token_authenticate(other_secret) is not None
    person.user.is_active = False
    person.user.save(update_fields=["is_active"])
    assert api_token_authenticate(other_secret) is None


def test_unknown_and_malformed_secrets_are_refused() -> None:
    person = make_citizen()
    _token, secret = api_token_create(user=person.user, name="app")
    assert api_token_authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert api_token_authenticate("not-a-token") is None
    assert api_token_authenticate(secret + "x" * 100) is None


def test_use_is_recorded_at_most_every_five_minutes() -> None:
    person = make_citizen()
    token, secret = api_token_create(user=person.user, name="app")
    api_token_authenticate(secret)
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    api_token_authenticate(secret)
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=6))
    api_token_authenticate(secret)
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first
