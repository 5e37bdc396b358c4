from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from civicore.core import crypto, jose
from civicore.core.models import DataKey, SigningKey
from civicore.core.tests.test_crypto import K1, enc1, make_person, new_kek, stored, tamper
from civicore.identity.models import Person

pytestmark = pytest.mark.django_db

NATIONAL_ID = "identity.person.national_id"
K2 = new_kek("k2")


@pytest.fixture(autouse=True)
def _fresh_keyring(settings: Any) -> Any:
    settings.FIELD_ENCRYPTION_KEYS = [K1]
    crypto.reset_keyring()
    jose.reset_cache()
    yield
    crypto.reset_keyring()
    jose.reset_cache()


def keys(*args: str, capsys: Any) -> str:
    call_command("keys", *args)
    return capsys.readouterr().out


def set_raw(person: Person, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE identity_person SET national_id = %s WHERE id = %s", [value, person.pk])


def national_ids() -> list[str]:
    return sorted(Person.objects.values_list("national_id", flat=True))


def test_rotate_rewraps_every_data_key_and_old_values_survive_removing_the_old_kek(settings, capsys):
    make_person("079090000001")
    signing = jose.signing_key()
    crypto.data_keys_rotate()  # an earlier rotation: a second data key, also under k1
    make_person("079090000002")
    before = set(DataKey.objects.values_list("pk", flat=True))
    assert len(before) == 2

    settings.FIELD_ENCRYPTION_KEYS = [K2, K1]  # step 1: new KEK first, old one kept
    out = keys("rotate", capsys=capsys)
    assert "Re-wrapped 2 data keys under key-encryption key 'k2' (0 already were)" in out
    assert "Before removing 'k1'" in out
    assert set(DataKey.objects.filter(kek_id="k2").values_list("pk", flat=True)) >= before
    assert not DataKey.objects.exclude(kek_id="k2").exists()
    fresh = DataKey.objects.get(active=True)
    assert fresh.pk not in before and fresh.pk in out

    settings.FIELD_ENCRYPTION_KEYS = [K2]  # step 3: the old KEK is gone
    assert national_ids() == ["079090000001", "079090000002"]
    row = SigningKey.objects.get(kid=signing.kid)
    assert crypto.decrypt(row.private_jwk, context="core.signingkey.private_jwk")
    assert jose.signing_key().kid == signing.kid
    person = make_person("079090000003")
    assert crypto.key_id_of(stored(person)) == fresh.pk


def test_rotate_refuses_when_a_data_key_is_wrapped_under_a_missing_kek(settings):
    crypto.encrypt("x", context="x")
    settings.FIELD_ENCRYPTION_KEYS = [K2]  # k1 removed too early
    with pytest.raises(CommandError, match="'k1'"):
        call_command("keys", "rotate")
    assert list(DataKey.objects.values_list("kek_id", "active")) == [("k1", True)]


def test_reencrypt_moves_every_value_to_the_active_data_key_and_resumes(settings, capsys):
    people = [make_person(f"07909000001{i}") for i in range(5)]
    set_raw(people[0], enc1("079090000010", context=NATIONAL_ID))  # written before envelopes
    jose.signing_key()
    settings.FIELD_ENCRYPTION_KEYS = [K2, K1]
    crypto.data_keys_rotate()
    active = DataKey.objects.get(active=True).pk
    good = stored(people[3])
    set_raw(people[3], tamper(good))

    with pytest.raises(crypto.DecryptionFailed):  # a damaged row stops the run part-way
        call_command("keys", "reencrypt", "--batch", "2")
    moved = [crypto.key_id_of(stored(person)) == active for person in people]
    assert moved == [True, True, False, False, False]  # the first batch committed, the second not

    set_raw(people[3], good)
    out = keys("reencrypt", "--batch", "2", capsys=capsys)
    assert "identity.person.national_id: moved 3 values (2 batches)" in out
    assert "core.signingkey.private_jwk: moved 1 values (1 batches)" in out
    assert all(crypto.key_id_of(stored(person)) == active for person in people)
    assert "Re-encrypted 0 values" in keys("reencrypt", capsys=capsys)

    settings.FIELD_ENCRYPTION_KEYS = [K2]
    assert national_ids() == [f"07909000001{i}" for i in range(5)]


def test_status_reports_keys_values_and_what_blocks_removing_a_kek(settings, capsys):
    person = make_person("079090000001")
    make_person("079090000002")
    set_raw(person, enc1("079090000001", context=NATIONAL_ID))
    first = DataKey.objects.get().pk
    settings.FIELD_ENCRYPTION_KEYS = [K2, K1]

    out = keys("status", capsys=capsys)
    assert "k2 (newest: wraps new data keys): wraps 0 data keys" in out
    assert "k1: wraps 1 data keys" in out
    assert f"{first} active, wrapped under k1" in out
    assert f"identity.person.national_id: 1 enc2:{first}, 1 enc1:k1" in out
    assert "core.signingkey.private_jwk: empty" in out
    assert f"Data key {first} is still wrapped under 'k1': run `civicore keys rotate`" in out
    assert "sealed directly under 'k1' (enc1): run `civicore keys reencrypt`" in out
    assert "can be removed" not in out

    call_command("keys", "rotate")
    call_command("keys", "reencrypt")
    out = keys("status", capsys=capsys)
    assert "WARNING" not in out
    assert "Nothing depends on 'k1' any more: it can be removed from FIELD_ENCRYPTION_KEYS." in out


def test_status_fails_when_data_cannot_be_read(settings, capsys):
    make_person("079090000001")
    first = DataKey.objects.get().pk
    settings.FIELD_ENCRYPTION_KEYS = [K2]
    with pytest.raises(SystemExit) as exited:
        call_command("keys", "status")
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert f"{first} active, wrapped under k1 (NOT CONFIGURED)" in captured.out
    assert f"ERROR: Data key {first} is wrapped under 'k1', which is not configured" in captured.err


def test_rotate_signing_replaces_the_signing_key(capsys):
    old = jose.signing_key("EdDSA")
    out = keys("rotate-signing", "--alg", "EdDSA", capsys=capsys)
    new = SigningKey.objects.get(alg="EdDSA", retired_at__isnull=True)
    assert new.kid != old.kid and new.kid in out and "signs from" in out
    assert SigningKey.objects.get(kid=old.kid).retired_at == new.activates_at > new.created_at
    assert jose.signing_key("EdDSA").kid == old.kid  # until relying parties have the new key
    assert {key["kid"] for key in jose.public_jwks()["keys"]} >= {old.kid, new.kid}


def test_rotate_signing_immediately_replaces_a_compromised_key(capsys):
    old = jose.signing_key("RS256")
    out = keys("rotate-signing", "--alg", "RS256", "--immediately", capsys=capsys)
    new = SigningKey.objects.get(alg="RS256", retired_at__isnull=True)
    assert new.kid in out and jose.signing_key("RS256").kid == new.kid != old.kid


@pytest.mark.parametrize("entry", ["k2:" + base64.b64encode(os.urandom(16)).decode(), "k2:not base64", "k2"])
def test_a_malformed_kek_is_reported_without_a_traceback(settings, entry):
    settings.FIELD_ENCRYPTION_KEYS = [entry, K1]
    with pytest.raises(CommandError, match=r"id:base64\(32 bytes\)"):
        call_command("keys", "status")
