from __future__ import annotations

import base64
import os

import pytest

from civicore.core import crypto


def test_round_trip_and_context_binding():
    token = crypto.encrypt("079090001234", context="identity.person.national_id")
    assert "079090001234" not in token
    assert crypto.decrypt(token, context="identity.person.national_id") == "079090001234"
    with pytest.raises(Exception):  # noqa: B017 - any authentication failure
        crypto.decrypt(token, context="another.field")


def test_old_keys_still_decrypt_after_rotation(settings):
    old = crypto.encrypt("Nguyễn Văn An")
    new_key = "k2:" + base64.b64encode(os.urandom(32)).decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS]
    crypto.reset_keyring()
    try:
        assert crypto.decrypt(old) == "Nguyễn Văn An"
        assert crypto.key_id_of(crypto.encrypt("x")) == "k2"
    finally:
        settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[1:]
        crypto.reset_keyring()


def test_lookup_hash_ignores_spacing_and_depends_on_key(settings):
    a = crypto.lookup_hash("0790 9000 1234", purpose="national_id")
    assert a == crypto.lookup_hash("079090001234", purpose="national_id")
    settings.LOOKUP_HASH_KEY = "another-key"
    assert crypto.lookup_hash("079090001234", purpose="national_id") != a
