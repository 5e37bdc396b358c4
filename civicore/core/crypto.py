"""Encryption of personal data at rest (envelope encryption) and keyed hashes for looking it up.

A value is sealed with AES-256-GCM under a data-encryption key (DEK, a `DataKey` row) and bound
to its column: `enc2:<DEK id>:<b64(nonce+ciphertext)>`. DEKs are stored only wrapped under
key-encryption keys (KEKs) that live in the environment (FIELD_ENCRYPTION_KEYS, newest first),
so rotating a KEK re-wraps a handful of rows and no data (`civicore keys rotate`). Values from
before envelope encryption (`enc1:<KEK id>:...`) are sealed directly under a KEK and still open.
Identifiers are found by HMAC-SHA256 under LOOKUP_HASH_KEY, never by decrypting a table.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, partial
from time import monotonic
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import IntegrityError, models, transaction
from django.db.models import Count, Q, Value
from django.db.models.functions import Cast, Substr

if TYPE_CHECKING:
    from civicore.core.models import DataKey

logger = logging.getLogger(__name__)

PREFIX = "enc2"  # sealed under a DEK
LEGACY_PREFIX = "enc1"  # sealed directly under a KEK, written before envelope encryption
DEK_ID_LENGTH = 16
# Running processes pick up a new active DEK (after `keys rotate`) within this many seconds.
ACTIVE_RECHECK_SECONDS = 60.0
_NONCE_BYTES = 12


class KeyUnavailable(ImproperlyConfigured):
    """A key needed to read encrypted data is missing or wrong; the message names it."""

    code = "encryption_key_unavailable"


class DecryptionFailed(ValueError):
    """The value was altered, or belongs to another column (wrong context)."""

    code = "decryption_failed"


# --- key-encryption keys (environment) ---------------------------------------------------------


@cache
def _kek_ring() -> tuple[str, dict[str, AESGCM]]:
    entries = settings.FIELD_ENCRYPTION_KEYS
    if not entries:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is not set (see .env.example)")
    keks: dict[str, AESGCM] = {}
    for entry in entries:
        kek_id, _, encoded = entry.strip().partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            key = b""
        if len(key) != 32 or not kek_id:
            raise ImproperlyConfigured("Each FIELD_ENCRYPTION_KEYS entry must be id:base64(32 bytes)")
        if kek_id in keks:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS lists the key id {kek_id!r} twice")
        keks[kek_id] = AESGCM(key)
    newest = entries[0].strip().partition(":")[0]
    return newest, keks


def kek_ids() -> list[str]:
    """The configured key-encryption key ids, newest first."""
    return list(_kek_ring()[1])


def _kek(kek_id: str) -> AESGCM:
    kek = _kek_ring()[1].get(kek_id)
    if kek is None:
        raise KeyUnavailable(
            f"Key-encryption key {kek_id!r} is not in FIELD_ENCRYPTION_KEYS; put it back to read "
            "the data it protects."
        )
    return kek


def _wrap_context(dek_id: str) -> bytes:
    # Binds a wrapped DEK to its row, so a wrapped key copied onto another row does not open.
    return f"civicore.datakey:{dek_id}".encode()


def _wrap(dek: bytes, *, dek_id: str, kek_id: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    return base64.b64encode(nonce + _kek(kek_id).encrypt(nonce, dek, _wrap_context(dek_id))).decode()


def _unwrap(row: DataKey) -> bytes:
    keks = _kek_ring()[1]
    if row.kek_id not in keks:
        raise KeyUnavailable(
            f"Data key {row.id} is wrapped under key-encryption key {row.kek_id!r}, which is not in "
            f"FIELD_ENCRYPTION_KEYS: add {row.kek_id!r} back (after the newest key) and run "
            "`civicore keys rotate` before removing it again."
        )
    raw = base64.b64decode(row.wrapped_key)
    try:
        return keks[row.kek_id].decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _wrap_context(row.id))
    except InvalidTag as exc:
        raise KeyUnavailable(
            f"Data key {row.id} does not open with key-encryption key {row.kek_id!r}: the key listed "
            "under that id in FIELD_ENCRYPTION_KEYS is not the one that wrapped it."
        ) from exc


# --- data-encryption keys (database, cached per process) ---------------------------------------

# Unwrapped DEKs by id. Never stale: a DEK's bytes never change and ids are random, so an id seen
# once (even in a transaction that rolled back) always means the same key.
_deks: dict[str, AESGCM] = {}
# (recheck after, id, cipher) of the DEK that seals new values; None until first needed.
_active: tuple[float, str, AESGCM] | None = None
# DEKs this process created whose transaction has not committed yet. Such a DEK may seal values
# in that same transaction (they commit or vanish together) but must not be remembered as the
# active one, or a rollback would leave later writes sealed under a key that does not exist.
_uncommitted: set[str] = set()


def reset_keyring() -> None:
    """Forget every cached key (after FIELD_ENCRYPTION_KEYS changed, or in tests)."""
    global _active
    _kek_ring.cache_clear()
    _deks.clear()
    _active = None


def forget_active_data_key() -> None:
    """Look the active DEK up again on next use (after a restore or a test's flush removed it)."""
    global _active
    _active = None


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "FIELD_ENCRYPTION_KEYS":
        reset_keyring()


setting_changed.connect(_on_setting_changed, dispatch_uid="civicore.core.crypto.keyring")


def _dek(dek_id: str) -> AESGCM:
    cipher = _deks.get(dek_id)
    if cipher is None:
        from civicore.core.models import DataKey

        row = DataKey.objects.filter(pk=dek_id).first()
        if row is None:
            raise KeyUnavailable(f"Data key {dek_id} is not in this database's core_datakey table.")
        cipher = _deks[dek_id] = AESGCM(_unwrap(row))
    return cipher


def _active_dek() -> tuple[str, AESGCM]:
    active = _active
    if active is not None and active[0] > monotonic():
        return active[1], active[2]
    return _active_dek_refresh()


def _active_dek_refresh() -> tuple[str, AESGCM]:
    global _active
    from civicore.core.models import DataKey

    row = DataKey.objects.filter(active=True).first()
    if row is None:
        row = _first_data_key_create()
    cipher = _deks.get(row.id)
    if cipher is None:
        cipher = _deks[row.id] = AESGCM(_unwrap(row))
    # A row this process has not seen committed is its own pending one: use it, don't keep it.
    if row.id not in _uncommitted:
        _active = (monotonic() + ACTIVE_RECHECK_SECONDS, row.id, cipher)
    return row.id, cipher


def _first_data_key_create() -> DataKey:
    from civicore.core.models import DataKey

    try:
        with transaction.atomic():  # a savepoint: losing the race must not break the caller's transaction
            return data_key_create(active=True)
    except IntegrityError:
        # Another process created it first and has committed (its insert held ours until then).
        row = DataKey.objects.filter(active=True).first()
        if row is None:
            raise
        return row


def data_key_create(*, active: bool) -> DataKey:
    """A fresh random DEK, wrapped under the newest KEK. The caller retires any active one first."""
    from civicore.core.models import DataKey, new_data_key_id

    newest = _kek_ring()[0]
    dek = AESGCM.generate_key(bit_length=256)
    dek_id = new_data_key_id()
    _uncommitted.add(dek_id)
    try:
        row = DataKey.objects.create(
            id=dek_id, wrapped_key=_wrap(dek, dek_id=dek_id, kek_id=newest), kek_id=newest, active=active
        )
    except BaseException:
        _uncommitted.discard(dek_id)
        raise
    transaction.on_commit(partial(_uncommitted.discard, dek_id))
    _deks[dek_id] = AESGCM(dek)
    logger.info("Created data key %s (wrapped under %s, active=%s)", dek_id, newest, active)
    return row


# --- sealing values ----------------------------------------------------------------------------


def encrypt(plaintext: str, *, context: str = "") -> str:
    dek_id, cipher = _active_dek()
    return _seal(plaintext, context=context, dek_id=dek_id, cipher=cipher)


def _seal(plaintext: str, *, context: str, dek_id: str, cipher: AESGCM) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = cipher.encrypt(nonce, plaintext.encode(), context.encode())
    return f"{PREFIX}:{dek_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(token: str, *, context: str = "") -> str:
    prefix, key_id, body = token.split(":", 2)
    if prefix == PREFIX:
        cipher = _deks.get(key_id) or _dek(key_id)
    elif prefix == LEGACY_PREFIX:
        cipher = _kek(key_id)
    else:
        raise ValueError("Not an encrypted value")
    raw = base64.urlsafe_b64decode(body)
    try:
        return cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()).decode()
    except InvalidTag as exc:
        raise DecryptionFailed(
            f"A value sealed under {prefix}:{key_id} does not open as {context!r}: it was altered "
            "or belongs to another column."
        ) from exc


def key_id_of(token: str) -> str:
    """The id of the key that sealed `token`: a DEK id (enc2) or, for enc1, a KEK id."""
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


# --- rotation (services and selectors behind `civicore keys`) ----------------------------------


@dataclass(frozen=True)
class EncryptedColumn:
    model: type[models.Model]
    field: str
    context: str  # the associated data every value in the column is sealed with

    @property
    def label(self) -> str:
        return self.context


# Columns that hold ciphertext without being an EncryptedTextField (their code calls encrypt()).
_PLAIN_COLUMNS_WITH_CIPHERTEXT = (("core.SigningKey", "private_jwk", "core.signingkey.private_jwk"),)


def encrypted_columns() -> list[EncryptedColumn]:
    """Every column holding encrypted values, found in the app registry."""
    from django.apps import apps

    columns = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for model_field in model._meta.local_concrete_fields:
            if isinstance(model_field, EncryptedTextField):
                columns.append(EncryptedColumn(model, model_field.name, model_field._context()))
    for label, name, context in _PLAIN_COLUMNS_WITH_CIPHERTEXT:
        columns.append(EncryptedColumn(apps.get_model(label), name, context))
    return columns


def _raw_values(column: EncryptedColumn) -> models.QuerySet[Any]:
    """The column's stored text as `raw`, bypassing the field's decryption."""
    return column.model._base_manager.annotate(raw=Cast(column.field, models.TextField()))


@dataclass(frozen=True)
class Rotation:
    kek_id: str
    rewrapped: list[str]  # DEK ids moved under kek_id
    unchanged: int  # DEKs that already were under it
    active: str  # the fresh DEK for new writes
    retired: str | None  # the DEK it replaces, still opening what it sealed


@transaction.atomic
def data_keys_rotate() -> Rotation:
    """Re-wrap every DEK under the newest KEK and start a fresh active DEK; no value is touched."""
    from civicore.core.models import DataKey

    newest = _kek_ring()[0]
    rows = list(DataKey.objects.select_for_update().order_by("created_at", "id"))
    # Unwrap everything before writing anything: a missing KEK aborts with nothing changed.
    plain = {row.id: _unwrap(row) for row in rows if row.kek_id != newest}
    for row in rows:
        if row.id in plain:
            row.wrapped_key = _wrap(plain[row.id], dek_id=row.id, kek_id=newest)
            row.kek_id = newest
            row.save(update_fields=["wrapped_key", "kek_id"])
    retired = next((row.id for row in rows if row.active), None)
    DataKey.objects.filter(active=True).update(active=False)
    active = data_key_create(active=True)
    forget_active_data_key()  # this process switches now; the others within ACTIVE_RECHECK_SECONDS
    return Rotation(
        kek_id=newest,
        rewrapped=list(plain),
        unchanged=len(rows) - len(plain),
        active=active.id,
        retired=retired,
    )


@dataclass
class Reencryption:
    column: str
    moved: int = 0
    batches: int = 0


def values_reencrypt(
    *, batch_size: int = 500, progress: Callable[[Reencryption], None] | None = None
) -> list[Reencryption]:
    """Move every encrypted value not sealed by the active DEK onto it, one batch per transaction.

    Safe while the system serves (each batch locks only its own rows, briefly) and resumable:
    a second run picks up whatever the first did not reach.
    """
    forget_active_data_key()  # seal under the DEK active now, not one cached before a rotation
    results = []
    for column in encrypted_columns():
        result = Reencryption(column=column.label)
        for moved in _column_batches(column, batch_size=batch_size):
            result.moved += moved
            result.batches += 1
            if progress is not None:
                progress(result)
        results.append(result)
    return results


def _column_batches(column: EncryptedColumn, *, batch_size: int) -> Iterator[int]:
    last_pk: Any = None
    while True:
        with transaction.atomic():
            dek_id, cipher = _active_dek()
            pending = (
                _raw_values(column)
                .filter(Q(raw__startswith=f"{LEGACY_PREFIX}:") | Q(raw__startswith=f"{PREFIX}:"))
                .exclude(raw__startswith=f"{PREFIX}:{dek_id}:")
                .order_by("pk")
            )
            if last_pk is not None:
                pending = pending.filter(pk__gt=last_pk)
            rows = list(pending.select_for_update().values_list("pk", "raw")[:batch_size])
            if not rows:
                return
            for pk, raw in rows:
                plaintext = decrypt(raw, context=column.context)
                token = _seal(plaintext, context=column.context, dek_id=dek_id, cipher=cipher)
                # A Value with a plain TextField output skips the field's own encryption.
                column.model._base_manager.filter(pk=pk).update(
                    **{column.field: Value(token, output_field=models.TextField())}
                )
            last_pk = rows[-1][0]
        yield len(rows)


@dataclass(frozen=True)
class DataKeyInfo:
    id: str
    kek_id: str
    active: bool
    created_at: datetime
    kek_configured: bool


@dataclass
class KeyStatus:
    keks: list[str]  # configured, newest first
    data_keys: list[DataKeyInfo]
    # column label -> {"enc2:<DEK id>" or "enc1:<KEK id>" or "enc1:?": count}
    columns: dict[str, dict[str, int]]
    errors: list[str] = field(default_factory=list)  # data that cannot be read now
    warnings: list[str] = field(default_factory=list)  # what removing a KEK would break

    def wrapped_under(self, kek_id: str) -> int:
        return sum(1 for key in self.data_keys if key.kek_id == kek_id)


def key_status() -> KeyStatus:
    """Which keys protect which values, and what must happen before a KEK may be removed."""
    from civicore.core.models import DataKey

    newest, keks = _kek_ring()
    data_keys = [
        DataKeyInfo(row.id, row.kek_id, row.active, row.created_at, row.kek_id in keks)
        for row in DataKey.objects.order_by("created_at", "id")
    ]
    known_deks = {key.id for key in data_keys}
    columns: dict[str, dict[str, int]] = {}
    for column in encrypted_columns():
        columns[column.label] = _column_counts(column, list(keks))
    status = KeyStatus(keks=list(keks), data_keys=data_keys, columns=columns)
    for key in data_keys:
        if not key.kek_configured:
            status.errors.append(
                f"Data key {key.id} is wrapped under {key.kek_id!r}, which is not configured: the "
                f"values it sealed cannot be read. Add {key.kek_id!r} back to FIELD_ENCRYPTION_KEYS."
            )
        elif key.kek_id != newest:
            status.warnings.append(
                f"Data key {key.id} is still wrapped under {key.kek_id!r}: run `civicore keys rotate` "
                f"before removing {key.kek_id!r}."
            )
    for label, counts in columns.items():
        for key_ref, count in counts.items():
            kind, _, key_id = key_ref.partition(":")
            if kind == PREFIX and key_id not in known_deks:
                status.errors.append(f"{count} values in {label} name data key {key_id}, which is missing.")
            elif kind == LEGACY_PREFIX and key_id == "?":
                status.errors.append(
                    f"{count} values in {label} are sealed directly under a key that is not configured."
                )
            elif kind == LEGACY_PREFIX:
                status.warnings.append(
                    f"{count} values in {label} are sealed directly under {key_id!r} (enc1): run "
                    f"`civicore keys reencrypt` before removing {key_id!r}."
                )
    return status


def _column_counts(column: EncryptedColumn, kek_ids: list[str]) -> dict[str, int]:
    values = _raw_values(column)
    start = len(PREFIX) + 2
    per_dek = (
        values.filter(raw__startswith=f"{PREFIX}:")
        .annotate(dek=Substr("raw", start, DEK_ID_LENGTH))
        .values("dek")
        .annotate(n=Count("pk"))
        .order_by("dek")
    )
    counts = {f"{PREFIX}:{row['dek']}": row["n"] for row in per_dek}
    legacy = values.filter(raw__startswith=f"{LEGACY_PREFIX}:").count()
    for kek_id in kek_ids:
        if legacy and (n := values.filter(raw__startswith=f"{LEGACY_PREFIX}:{kek_id}:").count()):
            counts[f"{LEGACY_PREFIX}:{kek_id}"] = n
            legacy -= n
    if legacy:
        counts[f"{LEGACY_PREFIX}:?"] = legacy
    return counts
