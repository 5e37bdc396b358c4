"""Open311 API keys: created on the command line and shown once, stored as a hash, revoked by
prefix, listed read-only in the admin."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from civicore.agencies.tests.factories import AgencyFactory, back_office_client
from civicore.audit.models import AuditEntry
from civicore.core.errors import NotFound, ValidationFailed
from civicore.open311.models import Open311Client
from civicore.open311.services import (
    open311_client_authenticate,
    open311_client_create,
    open311_client_revoke,
)

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("open311", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_create_key_prints_it_once_and_stores_only_its_hash() -> None:
    agency = AgencyFactory(code="ubnd-xa-an-binh")
    key, note = run("create-key", "Ứng dụng 311 An Bình", "--agency", "ubnd-xa-an-binh")
    assert key.startswith("o311_") and len(key) > 40
    assert "shown once" in note
    client = Open311Client.objects.get()
    assert client.name == "Ứng dụng 311 An Bình" and client.agency == agency and client.active
    assert client.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert client.prefix == key[:12]
    assert key not in str(list(Open311Client.objects.values()))
    assert AuditEntry.objects.filter(action="open311.client.create", subject_id=str(client.pk)).exists()
    assert open311_client_authenticate(key) == client
    listing, _err = run("list-keys")
    assert client.prefix in listing and "active" in listing and key not in listing


def test_revoke_key_by_prefix() -> None:
    _client, key = open311_client_create(name="App")
    out, _err = run("revoke-key", key[:12])
    assert "Revoked App" in out
    client = Open311Client.objects.get()
    assert not client.active and client.revoked_at is not None
    assert open311_client_authenticate(key) is None
    assert AuditEntry.objects.filter(action="open311.client.revoke").count() == 1


@pytest.mark.parametrize(
    "args",
    [
        ("revoke-key", "o311_unknown"),
        ("revoke-key", "o311"),
        ("create-key", "App", "--agency", "no-such-agency"),
        ("create-key", "x" * 101),
        ("create-key", "   "),
    ],
)
def test_command_errors_exit_2(args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError) as raised:
        run(*args)
    assert raised.value.returncode == 2
    assert not Open311Client.objects.filter(active=True).exists()


def test_service_errors() -> None:
    with pytest.raises(ValidationFailed):
        open311_client_create(name="")
    with pytest.raises(NotFound):
        open311_client_revoke(prefix="o311_abcdefg")
    _client, key = open311_client_create(name="App")
    open311_client_revoke(prefix=key[:12])
    with pytest.raises(NotFound):
        open311_client_revoke(prefix=key[:12])


@pytest.mark.parametrize("secret", ["", "o311_", "Bearer x", "o311_" + "a" * 200, "cvc_whatever"])
def test_malformed_keys_authenticate_nobody(secret: str) -> None:
    open311_client_create(name="App")
    assert open311_client_authenticate(secret) is None


def test_admin_lists_keys_read_only_and_revokes(settings: Any) -> None:
    _client, key = open311_client_create(name="App")
    staff = get_user_model().objects.create_superuser(
        username="root", email="root@example.test", password="x-Very-Long-Password-1"
    )
    browser = back_office_client(staff)  # the admin, like the back office, wants a second factor
    listing = browser.get("/admin/open311/open311client/")
    assert listing.status_code == 200 and key[:12] in listing.content.decode()
    client = Open311Client.objects.get()
    page = browser.get(f"/admin/open311/open311client/{client.pk}/change/").content.decode()
    assert client.key_hash in page and 'name="key_hash"' not in page, "the hash is shown, never editable"
    assert browser.get("/admin/open311/open311client/add/").status_code == 403
    response = browser.post(
        "/admin/open311/open311client/",
        {"action": "revoke", "_selected_action": [client.pk]},
    )
    assert response.status_code == 302
    client.refresh_from_db()
    assert not client.active
