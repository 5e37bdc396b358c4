"""Encryption of personal data at rest and keyed hashes for looking it up.

Values are sealed with AES-256-GCM under the newest key in FIELD_ENCRYPTION_KEYS and carry
that key's id, so older keys keep decrypting while `reencrypt` moves rows to the newest one.
Identifiers are found by HMAC-SHA256 under LOOKUP_HASH_KEY, never by decrypting a table.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "enc1"


@cache
def _keyring() -> tuple[str, dict[str, bytes]]:
    entries = settings.FIELD_ENCRYPTION_KEYS
    if not entries:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is not set (see .env.example)")
    keys: dict[str, bytes] = {}
    for entry in entries:
        key_id, _, encoded = entry.partition(":")
        key = base64.b64decode(encoded)
        if len(key) != 32 or not key_id:
            raise ImproperlyConfigured("Each FIELD_ENCRYPTION_KEYS entry must be id:base64(32 bytes)")
        keys[key_id] = key
    newest = entries[0].partition(":")[0]
    return newest, keys


def reset_keyring() -> None:
    _keyring.cache_clear()


def encrypt(plaintext: str, *, context: str = "") -> str:
    key_id, keys = _keyring()
    nonce = os.urandom(12)
    sealed = AESGCM(keys[key_id]).encrypt(nonce, plaintext.encode(), context.encode())
    return f"{PREFIX}:{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(token: str, *, context: str = "") -> str:
    prefix, key_id, body = token.split(":", 2)
    if prefix != PREFIX:
        raise ValueError("Not an encrypted value")
    raw = base64.urlsafe_b64decode(body)
    _, keys = _keyring()
    return AESGCM(keys[key_id]).decrypt(raw[:12], raw[12:], context.encode()).decode()


def key_id_of(token: str) -> str:
    return token.split(":", 2)[1]


def lookup_hash(value: str, *, purpose: str) -> str:
    key = settings.LOOKUP_HASH_KEY
    if not key:
        raise ImproperlyConfigured("LOOKUP_HASH_KEY is not set (see .env.example)")
    normalised = "".join(value.split()).upper()
    return hmac.new(key.encode(), f"{purpose}:{normalised}".encode(), hashlib.sha256).hexdigest()


def generate_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


class EncryptedTextField(models.TextField):
    """A text column stored encrypted; the database never sees the plaintext."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return decrypt(value, context=self._context())

    def get_prep_value(self, value: Any) -> Any:
        if value is None or value == "":
            return value
        return encrypt(str(value), context=self._context())

    def _context(self) -> str:
        return f"{self.model._meta.label_lower}.{self.name}"
