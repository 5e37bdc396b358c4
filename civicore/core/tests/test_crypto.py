from __future__ import annotations

import base64
import os
import threading
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import connection, transaction
from django.test import override_settings

from civicore.core import crypto
from civicore.core.models import DataKey
from civicore.identity.models import Person, User

pytestmark = pytest.mark.django_db

NATIONAL_ID = "identity.person.national_id"
K1 = "k1:" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # config.settings.test


def new_kek(kek_id: str) -> str:
    return f"{kek_id}:{base64.b64encode(os.urandom(32)).decode()}"


@pytest.fixture(autouse=True)
def _fresh_keyring(settings: Any) -> Any:
    """Keys cached by earlier tests may name data keys their rolled-back transactions removed."""
    settings.FIELD_ENCRYPTION_KEYS = [K1]
    crypto.reset_keyring()
    yield
    crypto.reset_keyring()


def another_process_creates_data_key() -> DataKey:
    """An active data key committed by some other process (this one has never seen it)."""
    dek_id = os.urandom(8).hex()
    wrapped = crypto._wrap(os.urandom(32), dek_id=dek_id, kek_id="k1")
    return DataKey.objects.create(id=dek_id, wrapped_key=wrapped, kek_id="k1", active=True)


def make_person(national_id: str) -> Person:
    user = User.objects.create(username=f"u{national_id}", email=f"{national_id}@example.test")
    return Person.objects.create(
        user=user,
        national_id=national_id,
        national_id_hash=crypto.lookup_hash(national_id, purpose="national_id"),
    )


def stored(person: Person) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT national_id FROM identity_person WHERE id = %s", [person.pk])
        return cursor.fetchone()[0]


def enc1(plaintext: str, *, context: str, kek: str = K1) -> str:
    """A value as the pre-envelope code wrote it: sealed directly under the KEK."""
    kek_id, _, encoded = kek.partition(":")
    nonce = os.urandom(12)
    sealed = AESGCM(base64.b64decode(encoded)).encrypt(nonce, plaintext.encode(), context.encode())
    return f"enc1:{kek_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def test_round_trip_and_context_binding():
    token = crypto.encrypt("079090001234", context=NATIONAL_ID)
    assert "079090001234" not in token
    assert token.startswith(f"enc2:{DataKey.objects.get(active=True).pk}:")
    assert crypto.decrypt(token, context=NATIONAL_ID) == "079090001234"
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(token, context="another.field")


def tamper(token: str) -> str:
    prefix, key_id, body = token.split(":", 2)
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    return f"{prefix}:{key_id}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"


def test_tampered_ciphertext_is_refused():
    token = crypto.encrypt("Nguyễn Văn An", context=NATIONAL_ID)
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(tamper(token), context=NATIONAL_ID)


def test_the_first_data_key_is_created_once_and_reused():
    assert not DataKey.objects.exists()
    first = crypto.encrypt("a", context="x")
    second = crypto.encrypt("b", context="x")
    assert crypto.key_id_of(first) == crypto.key_id_of(second)
    key = DataKey.objects.get()
    assert key.active and key.kek_id == "k1" and len(key.pk) == 16
    assert base64.b64decode(key.wrapped_key) != b""  # stored wrapped, never in clear


def test_values_written_before_envelope_encryption_still_decrypt():
    legacy = enc1("079090001234", context=NATIONAL_ID)
    assert crypto.decrypt(legacy, context=NATIONAL_ID) == "079090001234"
    person = make_person("079090005678")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE identity_person SET national_id = %s WHERE id = %s", [legacy, person.pk])
    assert Person.objects.get(pk=person.pk).national_id == "079090001234"


def test_the_database_never_holds_the_plaintext():
    person = make_person("079090001234")
    raw = stored(person)
    assert raw.startswith("enc2:") and "079090001234" not in raw
    assert Person.objects.get(pk=person.pk).national_id == "079090001234"


def test_a_data_key_is_bound_to_its_row():
    crypto.encrypt("a", context="x")
    key = DataKey.objects.get()
    DataKey.objects.filter(pk=key.pk).update(active=False)
    crypto.reset_keyring()
    crypto.encrypt("b", context="x")
    other = DataKey.objects.get(active=True)
    DataKey.objects.filter(pk=other.pk).update(wrapped_key=key.wrapped_key)  # swapped wrapping
    crypto.reset_keyring()
    with pytest.raises(crypto.KeyUnavailable, match=other.pk):
        crypto.encrypt("c", context="x")


def test_a_rolled_back_first_data_key_is_not_kept_as_active():
    with pytest.raises(RuntimeError), transaction.atomic():
        doomed = crypto.key_id_of(crypto.encrypt("a", context="x"))
        raise RuntimeError("the request failed")
    assert not DataKey.objects.filter(pk=doomed).exists()
    survivor = crypto.key_id_of(crypto.encrypt("b", context="x"))
    assert survivor != doomed and DataKey.objects.filter(pk=survivor, active=True).exists()


def test_losing_the_race_for_the_first_data_key_uses_the_winners():
    winner = another_process_creates_data_key()
    # Our lookup ran just before the other process committed, so we try to create one as well.
    assert crypto._first_data_key_create() == winner
    assert DataKey.objects.count() == 1
    assert crypto.key_id_of(crypto.encrypt("b", context="x")) == winner.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent transactions")
def test_two_processes_creating_the_first_data_key_agree():
    created = threading.Event()
    results: dict[str, str] = {}

    def first() -> None:
        with transaction.atomic():
            results["first"] = crypto.key_id_of(crypto.encrypt("a", context="x"))
            created.set()
            threading.Event().wait(0.5)  # the second insert waits on our uncommitted row
        connection.close()

    def second() -> None:
        created.wait(5)
        results["second"] = crypto.key_id_of(crypto.encrypt("b", context="x"))
        connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results["first"] == results["second"]
    assert DataKey.objects.filter(active=True).count() == 1


def test_running_processes_pick_up_a_new_active_key_within_a_minute(monkeypatch):
    first = another_process_creates_data_key()
    assert crypto.key_id_of(crypto.encrypt("a", context="x")) == first.pk
    DataKey.objects.update(active=False)  # and another process rotates
    replacement = another_process_creates_data_key()
    assert crypto.key_id_of(crypto.encrypt("b", context="x")) == first.pk
    later = crypto.monotonic() + crypto.ACTIVE_RECHECK_SECONDS + 1
    monkeypatch.setattr(crypto, "monotonic", lambda: later)
    assert crypto.key_id_of(crypto.encrypt("c", context="x")) == replacement.pk


def test_encrypting_and_decrypting_with_a_cached_key_does_not_query(django_assert_num_queries):
    another_process_creates_data_key()
    token = crypto.encrypt("warm", context="x")
    with django_assert_num_queries(0):
        for _ in range(6):
            crypto.decrypt(crypto.encrypt("079090001234", context=NATIONAL_ID), context=NATIONAL_ID)
        crypto.decrypt(token, context="x")


def test_a_data_key_wrapped_under_a_removed_kek_names_it(settings):
    token = crypto.encrypt("079090001234", context=NATIONAL_ID)
    settings.FIELD_ENCRYPTION_KEYS = [new_kek("k2")]  # k1 removed without `keys rotate`
    with pytest.raises(crypto.KeyUnavailable, match="'k1'") as excinfo:
        crypto.decrypt(token, context=NATIONAL_ID)
    assert crypto.key_id_of(token) in str(excinfo.value)


def test_an_enc1_value_under_a_removed_kek_names_it(settings):
    legacy = enc1("079090001234", context=NATIONAL_ID)
    settings.FIELD_ENCRYPTION_KEYS = [new_kek("k2")]
    with pytest.raises(crypto.KeyUnavailable, match="'k1'"):
        crypto.decrypt(legacy, context=NATIONAL_ID)


def test_changing_the_keys_setting_forgets_cached_keys():
    token = crypto.encrypt("079090001234", context=NATIONAL_ID)
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_kek("k2")]):
        with pytest.raises(crypto.KeyUnavailable):  # the unwrapped data key was not kept
            crypto.decrypt(token, context=NATIONAL_ID)
    assert crypto.decrypt(token, context=NATIONAL_ID) == "079090001234"


def test_lookup_hash_ignores_spacing_and_depends_on_key(settings):
    a = crypto.lookup_hash("0790 9000 1234", purpose="national_id")
    assert a == crypto.lookup_hash("079090001234", purpose="national_id")
    settings.LOOKUP_HASH_KEY = "another-key"
    assert crypto.lookup_hash("079090001234", purpose="national_id") != a
