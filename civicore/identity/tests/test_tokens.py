import io

import pytest
from django.core.management import call_command
from django.test import Client

from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db


def test_operator_creates_and_revokes_a_token():
    person = make_citizen()
    out = io.StringIO()
    call_command("tokens", "create", person.user.email, "my app", stdout=out)
    secret = out.getvalue().strip()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/applications").status_code == 200
    call_command("tokens", "revoke", secret[:12], stdout=io.StringIO())
    assert client.get("/api/v1/applications").status_code == 401
