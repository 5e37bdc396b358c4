"""Backups of a whole installation: every table of every installed app and the private files,
in one encrypted, authenticated file that restores into an empty database on SQLite or PostgreSQL.

Rows are streamed per model in a database-neutral JSON form, read in one snapshot transaction;
personal data stays sealed exactly as stored (restoring needs the same FIELD_ENCRYPTION_KEYS).
The file is zlib-compressed, then sealed in AES-256-GCM chunks under BACKUP_ENCRYPTION_KEY
(docs/decisions/0015-backup-format.md). A restore reads the file twice: once to check all of it,
once to load it in one transaction, so a damaged file or a wrong key changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import hashlib
import hmac
import json
import os
import shutil
import struct
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.color import no_style
from django.db import DatabaseError, connection, models, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.duration import duration_iso_string

FORMAT_VERSION = 1
MAGIC = b"CIVICORE-BACKUP\n"
# magic, format version, plaintext bytes per chunk, key fingerprint, salt of the file key
_HEADER = struct.Struct(">16sBI8s32s")
_TAG_BYTES = 16
_FINAL = 0x80000000  # set in a chunk's length word (and bound into its nonce) on the last chunk
DEFAULT_CHUNK_BYTES = 1024 * 1024
_MAX_CHUNK_BYTES = 64 * 1024 * 1024
_RECORD = struct.Struct(">cI")
_MAX_RECORD_BYTES = 16 * 1024 * 1024
_ROWS_PER_RECORD = 1000
_FILE_PIECE_BYTES = 1024 * 1024
_COMPRESSION_LEVEL = 6
_STAGING_PREFIX = ".restore-"

# Record kinds in the compressed stream.
HEADER, TABLE, ROWS, FILE, DATA, FILE_END, MANIFEST = b"H", b"T", b"R", b"F", b"D", b"E", b"M"

# Tables `migrate` fills by itself: a database holding rows only here counts as empty, and a
# restore replaces these rows with the backup's.
MIGRATE_CREATED = frozenset(
    {"contenttypes.contenttype", "auth.permission", "core.datakey", "core.signingkey"}
)

Progress = Callable[[str], None]


# --- errors: each has a stable code and an exit status operators can script against ------------


class BackupError(Exception):
    code = "backup_failed"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BackupUnreadable(BackupError):
    """Not a Civicore backup, altered, truncated, or sealed under a key we do not hold."""

    code = "backup_unreadable"
    exit_code = 3


class TargetNotEmpty(BackupError):
    code = "target_not_empty"
    exit_code = 4


class MigrationMismatch(BackupError):
    code = "migration_mismatch"
    exit_code = 5


class KeysMissing(BackupError):
    """The backup's personal data would not open with this installation's FIELD_ENCRYPTION_KEYS."""

    code = "encryption_keys_missing"
    exit_code = 6


AUDIT_BROKEN_EXIT_CODE = 7


# --- the backup key ------------------------------------------------------------------------------


def _fingerprint(key: bytes) -> bytes:
    """Names a key in the file's clear header without revealing anything about it."""
    return hmac.new(key, b"civicore backup key fingerprint", hashlib.sha256).digest()[:8]


def backup_keys() -> list[bytes]:
    """BACKUP_ENCRYPTION_KEY: base64 32-byte keys, comma separated; the first seals new backups,
    any of them opens old ones (keep a retired key while backups made under it are kept)."""
    entries = [entry.strip() for entry in settings.BACKUP_ENCRYPTION_KEY if entry.strip()]
    if not entries:
        raise ImproperlyConfigured(
            'BACKUP_ENCRYPTION_KEY is not set: generate one with `python -c "import base64,os; '
            'print(base64.b64encode(os.urandom(32)).decode())"` and keep it apart from the backups.'
        )
    keys = []
    for number, entry in enumerate(entries, 1):
        try:
            key = base64.b64decode(entry, validate=True)
        except binascii.Error:
            key = b""
        if len(key) != 32:
            raise ImproperlyConfigured(
                f"BACKUP_ENCRYPTION_KEY entry {number} is not the base64 form of 32 bytes."
            )
        keys.append(key)
    return keys


def _file_key(key: bytes, salt: bytes) -> AESGCM:
    # A fresh key per file (random salt), so chunk nonces can simply count from zero.
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"civicore backup v1").derive(key)
    return AESGCM(derived)


def _nonce(counter: int, final: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


# --- the sealed container ------------------------------------------------------------------------


class _Sealer:
    """Cuts the compressed stream into chunks and seals each; the last one is marked final, so a
    file cut at a chunk boundary is recognised as truncated."""

    def __init__(self, out: IO[bytes], key: bytes, chunk_bytes: int) -> None:
        self.out = out
        self.chunk_bytes = chunk_bytes
        self.header = _HEADER.pack(MAGIC, FORMAT_VERSION, chunk_bytes, _fingerprint(key), os.urandom(32))
        self.aead = _file_key(key, self.header[-32:])
        self.counter = 0
        self.buffer = bytearray()
        self.written = len(self.header)
        out.write(self.header)

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) > self.chunk_bytes:
            self._emit(bytes(self.buffer[: self.chunk_bytes]), final=False)
            del self.buffer[: self.chunk_bytes]

    def close(self) -> None:
        self._emit(bytes(self.buffer), final=True)
        self.buffer.clear()

    def _emit(self, plaintext: bytes, *, final: bool) -> None:
        sealed = self.aead.encrypt(_nonce(self.counter, final), plaintext, self.header)
        self.out.write(struct.pack(">I", len(sealed) | (_FINAL if final else 0)) + sealed)
        self.written += 4 + len(sealed)
        self.counter += 1


def _read_exactly(handle: IO[bytes], size: int) -> bytes:
    data = handle.read(size)
    while len(data) < size:
        more = handle.read(size - len(data))
        if not more:
            break
        data += more
    return data


def _open_chunks(handle: IO[bytes], keys: list[bytes]) -> Iterator[bytes]:
    """The plaintext of each chunk in order, each authenticated before it is returned."""
    header = _read_exactly(handle, _HEADER.size)
    if len(header) < _HEADER.size or not header.startswith(MAGIC):
        raise BackupUnreadable("This is not a Civicore backup file.")
    _magic, version, chunk_bytes, fingerprint, salt = _HEADER.unpack(header)
    if version != FORMAT_VERSION:
        raise BackupUnreadable(
            f"This backup uses format version {version}; this version of Civicore reads version "
            f"{FORMAT_VERSION}."
        )
    if not 0 < chunk_bytes <= _MAX_CHUNK_BYTES:
        raise BackupUnreadable("The backup's header is damaged.")
    key = next((key for key in keys if hmac.compare_digest(_fingerprint(key), fingerprint)), None)
    if key is None:
        known = ", ".join(_fingerprint(key).hex() for key in keys)
        raise BackupUnreadable(
            f"The backup was sealed under a backup key with fingerprint {fingerprint.hex()}, which "
            f"BACKUP_ENCRYPTION_KEY does not hold (it holds {known}). Set the key that made it."
        )
    aead = _file_key(key, salt)
    counter = 0
    while True:
        word = _read_exactly(handle, 4)
        if len(word) < 4:
            raise BackupUnreadable(
                f"The backup is truncated: it ends after chunk {counter} without its final chunk."
            )
        (length,) = struct.unpack(">I", word)
        final = bool(length & _FINAL)
        length &= ~_FINAL
        if not _TAG_BYTES <= length <= chunk_bytes + _TAG_BYTES:
            raise BackupUnreadable(f"The backup is damaged: chunk {counter + 1} has an impossible length.")
        sealed = _read_exactly(handle, length)
        if len(sealed) < length:
            raise BackupUnreadable(f"The backup is truncated in chunk {counter + 1}.")
        try:
            plaintext = aead.decrypt(_nonce(counter, final), sealed, header)
        except InvalidTag:
            raise BackupUnreadable(
                f"The backup was altered or damaged: chunk {counter + 1} fails authentication."
            ) from None
        counter += 1
        yield plaintext
        if final:
            if handle.read(1):
                raise BackupUnreadable("The backup was altered: data follows its final chunk.")
            return


class _Inflater:
    """Decompresses the opened chunks with bounded output per step (memory stays flat)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.inflate = zlib.decompressobj()
        self.buffer = bytearray()
        self.done = False

    def read(self, size: int) -> bytes:
        try:
            while len(self.buffer) < size and not self.done:
                pending = self.inflate.unconsumed_tail
                if not pending:
                    pending = next(self.chunks, b"")
                    if not pending:
                        self.buffer += self.inflate.flush()
                        self.done = True
                        break
                self.buffer += self.inflate.decompress(pending, _FILE_PIECE_BYTES)
        except zlib.error as exc:
            raise BackupUnreadable(f"The backup's content is damaged ({exc}).") from exc
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def at_end(self) -> bool:
        return not self.read(1) and self.inflate.eof


def read_records(handle: IO[bytes], keys: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """(kind, payload) of every record, in order. Checks framing only: `replay` checks meaning."""
    stream = _Inflater(_open_chunks(handle, keys))
    while True:
        head = stream.read(_RECORD.size)
        if not head:
            if not stream.at_end():
                raise BackupUnreadable("The backup's content is damaged (stream does not end cleanly).")
            return
        if len(head) < _RECORD.size:
            raise BackupUnreadable("The backup's content is damaged (a record is cut short).")
        kind, size = _RECORD.unpack(head)
        if size > _MAX_RECORD_BYTES:
            raise BackupUnreadable("The backup's content is damaged (a record is too large).")
        payload = stream.read(size)
        if len(payload) < size:
            raise BackupUnreadable("The backup's content is damaged (a record is cut short).")
        yield kind, payload


class BackupWriter:
    """Writes records: compressed, hashed (the manifest's SHA-256) and sealed in chunks."""

    def __init__(self, out: IO[bytes], key: bytes, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        self.sealer = _Sealer(out, key, chunk_bytes)
        self.deflate = zlib.compressobj(_COMPRESSION_LEVEL)
        self.digest = hashlib.sha256()
        self.plain_bytes = 0

    def record(self, kind: bytes, payload: bytes) -> None:
        if kind == MANIFEST:
            raise ValueError("finish() writes the manifest")
        framed = _RECORD.pack(kind, len(payload)) + payload
        self.digest.update(framed)
        self.plain_bytes += len(framed)
        self.sealer.write(self.deflate.compress(framed))

    def record_json(self, kind: bytes, value: Any) -> None:
        self.record(kind, _dumps(value))

    def finish(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Append the manifest (with the SHA-256 of everything before it) and seal the last chunk."""
        manifest = {**manifest, "sha256": self.digest.hexdigest(), "content_bytes": self.plain_bytes}
        payload = _dumps(manifest)
        self.sealer.write(self.deflate.compress(_RECORD.pack(MANIFEST, len(payload)) + payload))
        self.sealer.write(self.deflate.flush())
        self.sealer.close()
        return manifest

    @property
    def bytes_written(self) -> int:
        return self.sealer.written


# --- rows in a database-neutral form --------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return duration_iso_string(value)
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()  # BinaryField.to_python reads this back
    raise TypeError(f"cannot back up a value of type {type(value).__name__}")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode()


def _loads(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise BackupUnreadable(f"The backup's content is damaged ({exc}).") from exc


def _stores_ciphertext(model_field: models.Field[Any, Any]) -> bool:
    """Columns whose field decrypts on read: copied as stored text, never decrypted."""
    from civicore.core.crypto import EncryptedTextField

    return isinstance(model_field, EncryptedTextField)


def _columns(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [f for f in model._meta.local_concrete_fields if not getattr(f, "generated", False)]


def backed_up_models() -> list[type[models.Model]]:
    """Every table Django manages, parents before the tables that refer to them. A model whose
    table does not exist (no migration creates it yet) has no rows to keep."""
    existing = set(connection.introspection.table_names())
    candidates = [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed
        and not model._meta.proxy
        and not model._meta.swapped
        and model._meta.db_table in existing
    ]
    by_label = {model._meta.label_lower: model for model in candidates}
    ordered: list[type[models.Model]] = []
    seen: set[str] = set()

    def visit(model: type[models.Model], path: frozenset[str]) -> None:
        label = model._meta.label_lower
        if label in seen or label in path:  # a cycle: deferred constraints make any order valid
            return
        for model_field in _columns(model):
            target = getattr(model_field, "related_model", None)
            if target is not None and target is not model and target._meta.label_lower in by_label:
                visit(by_label[target._meta.label_lower], path | {label})
        seen.add(label)
        ordered.append(model)

    for model in sorted(candidates, key=lambda m: m._meta.label_lower):
        visit(model, frozenset())
    return ordered


def _row_values(model: type[models.Model]) -> Iterator[tuple[Any, ...]]:
    columns = _columns(model)
    selected = [
        Cast(f.attname, output_field=models.TextField()) if _stores_ciphertext(f) else f.attname
        for f in columns
    ]
    return model._base_manager.order_by("pk").values_list(*selected).iterator(chunk_size=2000)


# --- migration state --------------------------------------------------------------------------------


def applied_migrations() -> dict[str, list[str]]:
    """This database's applied migrations, per app."""
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    state: dict[str, list[str]] = {}
    for app_label, name in loader.applied_migrations:
        state.setdefault(app_label, []).append(name)
    return {app_label: sorted(names) for app_label, names in sorted(state.items())}


@dataclass
class MigrationDifference:
    missing: list[str]  # in the code, not applied
    unknown: list[str]  # applied, not in the code

    def __bool__(self) -> bool:
        return bool(self.missing or self.unknown)

    def describe(self, limit: int = 5) -> str:
        parts = []
        if self.missing:
            parts.append(f"not applied: {', '.join(self.missing[:limit])}")
        if self.unknown:
            parts.append(f"unknown to this version of Civicore: {', '.join(self.unknown[:limit])}")
        more = (
            len(self.missing)
            + len(self.unknown)
            - min(len(self.missing), limit)
            - min(len(self.unknown), limit)
        )
        return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def migration_difference(applied: dict[str, list[str]]) -> MigrationDifference:
    """How `applied` differs from the migrations in this code (squashed ones count as applied
    when everything they replace is)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    done = {(app_label, name) for app_label, names in applied.items() for name in names}
    replaces = {key: set(migration.replaces) for key, migration in loader.replacements.items()}
    missing = [
        f"{app_label}.{name}"
        for app_label, name in sorted(loader.graph.nodes)
        if (app_label, name) not in done
        and not ((app_label, name) in replaces and replaces[(app_label, name)] <= done)
    ]
    known = set(loader.graph.nodes) | set(loader.disk_migrations)
    for replaced in replaces.values():
        known |= replaced
    unknown = [f"{app_label}.{name}" for app_label, name in sorted(done - known)]
    return MigrationDifference(missing, unknown)


# --- taking a backup --------------------------------------------------------------------------------


@dataclass
class BackupResult:
    manifest: dict[str, Any]
    bytes_written: int
    missing_files: list[str] = field(default_factory=list)


@contextmanager
def _snapshot() -> Iterator[None]:
    """One read transaction that sees the database as of its first query, while others write:
    REPEATABLE READ on PostgreSQL; on SQLite a deferred transaction, which in WAL mode reads one
    snapshot without taking the write lock. Called inside a transaction, it reads what that
    transaction sees."""
    if connection.in_atomic_block:
        with transaction.atomic():
            yield
        return
    connection.ensure_connection()
    saved_mode = getattr(connection, "transaction_mode", None)
    if connection.vendor == "sqlite":
        connection.transaction_mode = "DEFERRED"  # type: ignore[attr-defined]
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
    finally:
        if connection.vendor == "sqlite":
            connection.transaction_mode = saved_mode  # type: ignore[attr-defined]


def _media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def _stored_files(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for directory, subdirectories, names in os.walk(root):
        if Path(directory) == root:
            subdirectories[:] = [name for name in subdirectories if not name.startswith(_STAGING_PREFIX)]
        subdirectories.sort()
        for name in sorted(names):
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _referenced_files() -> Iterator[str]:
    for model in backed_up_models():
        for model_field in _columns(model):
            if isinstance(model_field, models.FileField):
                yield from (
                    model._base_manager.exclude(**{model_field.attname: ""})
                    .values_list(model_field.attname, flat=True)
                    .iterator()
                )


def backup_write(
    out: IO[bytes],
    *,
    key: bytes | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Progress | None = None,
    exclude: frozenset[Path] = frozenset(),
) -> BackupResult:
    """Write the whole database (one snapshot) and the private files to `out` (except `exclude`:
    the backup itself, when it is written inside private storage)."""
    say = progress or (lambda message: None)
    writer = BackupWriter(out, key or backup_keys()[0], chunk_bytes=chunk_bytes)
    created_at = timezone.now()
    tables: dict[str, dict[str, Any]] = {}
    with _snapshot():
        migrations = applied_migrations()
        header = {
            "format": FORMAT_VERSION,
            "created_at": created_at.isoformat(),
            "database": connection.vendor,
            "software": _software(),
            "migrations": migrations,
            "lookup_hash_key": _lookup_key_fingerprint(),
        }
        writer.record_json(HEADER, header)
        for model in backed_up_models():
            meta = model._meta
            columns = _columns(model)
            writer.record_json(
                TABLE,
                {"model": meta.label_lower, "table": meta.db_table, "columns": [f.attname for f in columns]},
            )
            count = 0
            batch: list[tuple[Any, ...]] = []
            try:
                for row in _row_values(model):
                    batch.append(row)
                    if len(batch) >= _ROWS_PER_RECORD:
                        writer.record_json(ROWS, batch)
                        count += len(batch)
                        batch = []
            except DatabaseError as exc:
                raise BackupError(
                    f"Reading {meta.label_lower} failed ({exc}); is the database migrated to this "
                    "version of Civicore?"
                ) from exc
            if batch:
                writer.record_json(ROWS, batch)
                count += len(batch)
            tables[meta.label_lower] = {"table": meta.db_table, "rows": count}
            if count:
                say(f"  {meta.label_lower}: {count} rows")
        referenced = set(_referenced_files())
    root = _media_root()
    files = {"count": 0, "bytes": 0}
    for path in _stored_files(root):
        if path.resolve() in exclude:
            continue
        relative = path.relative_to(root).as_posix()
        try:
            handle = path.open("rb")
        except FileNotFoundError:  # deleted since the walk listed it
            continue
        with handle:
            stat = os.fstat(handle.fileno())
            writer.record_json(FILE, {"path": relative, "mtime": stat.st_mtime})
            digest, size = hashlib.sha256(), 0
            while piece := handle.read(_FILE_PIECE_BYTES):
                writer.record(DATA, piece)
                digest.update(piece)
                size += len(piece)
        writer.record_json(FILE_END, {"size": size, "sha256": digest.hexdigest()})
        referenced.discard(relative)
        files["count"] += 1
        files["bytes"] += size
    say(f"  files: {files['count']} ({files['bytes']} bytes)")
    manifest = writer.finish(
        {
            **header,
            "finished_at": timezone.now().isoformat(),
            "tables": tables,
            "rows": sum(table["rows"] for table in tables.values()),
            "files": files,
            "missing_files": sorted(referenced),
        }
    )
    return BackupResult(
        manifest=manifest, bytes_written=writer.bytes_written, missing_files=sorted(referenced)
    )


def _lookup_key_fingerprint() -> str | None:
    """Names LOOKUP_HASH_KEY without revealing it: identifiers are found by hashes made under it,
    so a restore under another key would silently find nobody."""
    key = settings.LOOKUP_HASH_KEY
    if not key:
        return None
    return hmac.new(key.encode(), b"civicore lookup key fingerprint", hashlib.sha256).hexdigest()[:16]


def _software() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import django

    try:
        civicore = version("civicore")
    except PackageNotFoundError:
        civicore = "unknown"
    return {"civicore": civicore, "django": django.__version__}


def backup_create(
    path: Path,
    *,
    overwrite: bool = False,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Progress | None = None,
) -> BackupResult:
    """Write the backup next to `path` and move it there once complete (readable by the owner
    only), so `path` never holds a partial backup."""
    key = backup_keys()[0]
    if path.exists() and not overwrite:
        raise BackupError(f"{path} already exists; choose another name or pass --force to replace it.")
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise BackupError(f"Cannot write {path}: {exc.strerror}.") from exc
    try:
        with os.fdopen(descriptor, "wb") as handle:
            result = backup_write(
                handle,
                key=key,
                chunk_bytes=chunk_bytes,
                progress=progress,
                exclude=frozenset({partial.resolve(), path.resolve()}),
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return result


# --- reading a backup back -----------------------------------------------------------------------------


class _Sink:
    """What replaying a backup does with its records; the base class only checks them."""

    def header(self, header: dict[str, Any]) -> None:
        pass

    def table(self, label: str, columns: list[str]) -> None:
        pass

    def rows(self, label: str, rows: list[list[Any]]) -> None:
        pass

    def file_start(self, path: str, mtime: float) -> None:
        pass

    def file_data(self, data: bytes) -> None:
        pass

    def file_end(self) -> None:
        pass


def _safe_relative(path: Any) -> str:
    if not isinstance(path, str):
        raise BackupUnreadable("The backup's content is damaged (a file has no name).")
    pure = PurePosixPath(path)
    if (
        not path
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in path.split("/"))
        or pure.parts[0].startswith(_STAGING_PREFIX)
        or "\\" in path
        or "\x00" in path
    ):
        raise BackupUnreadable(f"The backup names a file outside private storage: {path!r}.")
    return path


def replay(records: Iterable[tuple[bytes, bytes]], sink: _Sink) -> dict[str, Any]:
    """Feed every record to `sink` in order, checking the structure, the row and file counts and
    the SHA-256 against the manifest; returns the manifest."""
    digest = hashlib.sha256()
    header: dict[str, Any] | None = None
    table: str | None = None
    columns = 0
    rows: dict[str, int] = {}
    file_path: str | None = None
    file_digest, file_size = hashlib.sha256(), 0
    files = {"count": 0, "bytes": 0}
    stream = iter(records)
    for kind, payload in stream:
        if kind == MANIFEST:
            if next(stream, None) is not None:  # also makes the reader check the end of the file
                raise BackupUnreadable("The backup's content is damaged (records follow its manifest).")
            manifest = _loads(payload)
            if file_path is not None or header is None:
                raise BackupUnreadable("The backup's content is damaged (it ends inside a file).")
            if manifest.get("sha256") != digest.hexdigest():
                raise BackupUnreadable("The backup's content does not match the SHA-256 in its manifest.")
            declared = {label: info.get("rows") for label, info in manifest.get("tables", {}).items()}
            if declared != rows or manifest.get("files") != files:
                raise BackupUnreadable("The backup's content does not match the counts in its manifest.")
            return dict(manifest)
        digest.update(_RECORD.pack(kind, len(payload)) + payload)
        if header is None:
            if kind != HEADER:
                raise BackupUnreadable("The backup's content is damaged (no header).")
            header = _loads(payload)
            if header.get("format") != FORMAT_VERSION:
                raise BackupUnreadable(f"Unsupported backup content format {header.get('format')!r}.")
            sink.header(header)
        elif kind == TABLE:
            info = _loads(payload)
            table, names = info.get("model"), info.get("columns")
            if not isinstance(table, str) or not isinstance(names, list) or table in rows or file_path:
                raise BackupUnreadable("The backup's content is damaged (a table is described twice).")
            columns, rows[table] = len(names), 0
            sink.table(table, names)
        elif kind == ROWS:
            batch = _loads(payload)
            if table is None or not isinstance(batch, list) or any(len(row) != columns for row in batch):
                raise BackupUnreadable("The backup's content is damaged (rows do not fit their table).")
            rows[table] += len(batch)
            sink.rows(table, batch)
        elif kind == FILE:
            info = _loads(payload)
            if file_path is not None:
                raise BackupUnreadable("The backup's content is damaged (a file is cut short).")
            table, file_path = None, _safe_relative(info.get("path"))
            file_digest, file_size = hashlib.sha256(), 0
            sink.file_start(file_path, float(info.get("mtime") or 0))
        elif kind == DATA:
            if file_path is None:
                raise BackupUnreadable("The backup's content is damaged (file data outside a file).")
            file_digest.update(payload)
            file_size += len(payload)
            sink.file_data(payload)
        elif kind == FILE_END:
            info = _loads(payload)
            if (
                file_path is None
                or info.get("size") != file_size
                or info.get("sha256") != file_digest.hexdigest()
            ):
                raise BackupUnreadable(f"The backup's copy of {file_path} is damaged.")
            sink.file_end()
            files["count"] += 1
            files["bytes"] += file_size
            file_path = None
        else:
            raise BackupUnreadable(f"The backup's content is damaged (unknown record {kind!r}).")
    raise BackupUnreadable("The backup is incomplete: its manifest is missing.")


class _DataKeyCollector(_Sink):
    """Remembers the backup's data-key rows, to check before loading that they open here."""

    def __init__(self) -> None:
        self.columns: list[str] = []
        self.data_keys: list[dict[str, Any]] = []

    def table(self, label: str, columns: list[str]) -> None:
        self.columns = columns if label == "core.datakey" else []

    def rows(self, label: str, rows: list[list[Any]]) -> None:
        if self.columns:
            self.data_keys.extend(dict(zip(self.columns, row, strict=True)) for row in rows)


@dataclass
class Inspection:
    manifest: dict[str, Any]
    data_keys: list[dict[str, Any]]


def backup_inspect(path: Path, *, keys: list[bytes] | None = None) -> Inspection:
    """Read and check the whole file (authenticity, completeness, manifest); changes nothing."""
    keys = keys or backup_keys()
    collector = _DataKeyCollector()
    try:
        with path.open("rb") as handle:
            manifest = replay(read_records(handle, keys), collector)
    except OSError as exc:
        raise BackupError(f"Cannot read {path}: {exc.strerror}.") from exc
    return Inspection(manifest=manifest, data_keys=collector.data_keys)


def unreadable_data_keys(data_keys: list[dict[str, Any]]) -> list[str]:
    """Why each of these data-key rows would not open under FIELD_ENCRYPTION_KEYS (empty: all do)."""
    from civicore.core import crypto
    from civicore.core.models import DataKey

    problems = []
    for row in data_keys:
        try:
            # Unwrapping proves the configured key under that id is the very key that wrapped it.
            crypto._unwrap(DataKey(id=row["id"], wrapped_key=row["wrapped_key"], kek_id=row["kek_id"]))
        except ImproperlyConfigured as exc:
            problems.append(str(exc))
    return problems


def _check_migrations(manifest: dict[str, Any]) -> None:
    backup = migration_difference(manifest.get("migrations") or {})
    if backup:
        raise MigrationMismatch(
            "The backup's database schema differs from this version of Civicore's ("
            + backup.describe()
            + "). Restore it with the Civicore version that made it "
            f"({manifest.get('software', {}).get('civicore', 'unknown')}), then upgrade."
        )
    target = migration_difference(applied_migrations())
    if target.missing:
        raise MigrationMismatch(
            f"The target database is not fully migrated ({target.describe()}): run `civicore migrate` first."
        )
    if target:
        raise MigrationMismatch(
            f"The target database's schema differs from this code's ({target.describe()})."
        )


# --- restoring ---------------------------------------------------------------------------------------


def occupied_tables() -> dict[str, int]:
    """Tables holding rows other than what `migrate` creates by itself, with their row counts."""
    occupied = {}
    for model in backed_up_models():
        label = model._meta.label_lower
        if label not in MIGRATE_CREATED and model._base_manager.exists():
            occupied[label] = model._base_manager.count()
    return occupied


class _Loader(_Sink):
    """Inserts rows as stored (ciphertext stays ciphertext) and stages files for moving in."""

    def __init__(self, staging: Path, progress: Progress) -> None:
        self.staging = staging
        self.say = progress
        self.models = {model._meta.label_lower: model for model in backed_up_models()}
        self.loaded: dict[str, int] = {}
        self.current: tuple[str, str, list[models.Field[Any, Any]]] | None = None
        self.handle: IO[bytes] | None = None
        self.file_path: Path | None = None
        self.file_mtime = 0.0
        self.as_stored: list[bool] = []

    def table(self, label: str, columns: list[str]) -> None:
        self._report()
        model = self.models.get(label)
        if model is None:
            raise MigrationMismatch(
                f"The backup holds table {label}, which this version of Civicore does not have."
            )
        by_attname = {f.attname: f for f in _columns(model)}
        if sorted(columns) != sorted(by_attname):
            raise MigrationMismatch(
                f"The backup's columns for {label} ({', '.join(columns)}) differ from this code's "
                f"({', '.join(by_attname)})."
            )
        fields = [by_attname[name] for name in columns]
        self.as_stored = [_stores_ciphertext(f) for f in fields]
        quote = connection.ops.quote_name
        sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 - quoted names from the model
            quote(model._meta.db_table),
            ", ".join(quote(str(f.column)) for f in fields),  # concrete fields all have one
            ", ".join(["%s"] * len(fields)),
        )
        self.current = (label, sql, fields)
        self.loaded[label] = 0

    def rows(self, label: str, rows: list[list[Any]]) -> None:
        assert self.current is not None
        _label, sql, fields = self.current
        try:
            params = [
                [
                    value if value is None or raw else f.get_db_prep_save(f.to_python(value), connection)
                    for f, raw, value in zip(fields, self.as_stored, row, strict=True)
                ]
                for row in rows
            ]
            with connection.cursor() as cursor:
                cursor.executemany(sql, params)
        except (DatabaseError, ValueError, TypeError) as exc:
            raise BackupError(f"Loading {label} failed: {exc}") from exc
        self.loaded[label] += len(rows)

    def _report(self) -> None:
        if self.current is not None and self.loaded[self.current[0]]:
            self.say(f"  {self.current[0]}: {self.loaded[self.current[0]]} rows")
        self.current = None

    def file_start(self, path: str, mtime: float) -> None:
        self._report()
        self.file_path = self.staging / path
        self.file_path.parent.mkdir(parents=True, exist_ok=True)
        self.file_mtime = mtime
        self.handle = self.file_path.open("xb")

    def file_data(self, data: bytes) -> None:
        assert self.handle is not None
        self.handle.write(data)

    def file_end(self) -> None:
        assert self.handle is not None and self.file_path is not None
        self.handle.close()
        self.handle = None
        if self.file_mtime:
            os.utime(self.file_path, (self.file_mtime, self.file_mtime))

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


@dataclass
class RestoreResult:
    manifest: dict[str, Any]
    rows: int
    files: int
    audit_broken_at: int | None
    audit_reason: str
    audit_sealed: int
    audit_unsealed: int


def restore_check(path: Path) -> Inspection:
    """Everything a restore checks before it changes anything: the file, the schema, the keys."""
    inspection = backup_inspect(path)
    _check_migrations(inspection.manifest)
    problems = unreadable_data_keys(inspection.data_keys)
    if problems:
        raise KeysMissing(
            "The personal data in this backup would not open with this installation's "
            "FIELD_ENCRYPTION_KEYS: " + " ".join(problems[:3])
        )
    made_under = inspection.manifest.get("lookup_hash_key")
    if made_under and made_under != _lookup_key_fingerprint():
        raise KeysMissing(
            f"The backup was made under another LOOKUP_HASH_KEY (fingerprint {made_under}, this "
            f"installation's is {_lookup_key_fingerprint()}): people could not be found by their "
            "identifiers. Set the LOOKUP_HASH_KEY of the installation that made the backup."
        )
    return inspection


def backup_restore(path: Path, *, force: bool = False, progress: Progress | None = None) -> RestoreResult:
    """Restore `path` into this installation's (empty) database and private storage."""
    from civicore.audit import services as audit
    from civicore.core import crypto

    say = progress or (lambda message: None)
    say(f"Checking {path} ...")
    inspection = restore_check(path)
    manifest = inspection.manifest
    root = _media_root()
    occupied = occupied_tables()
    stored = next(_stored_files(root), None)
    if (occupied or stored is not None) and not force:
        shown = ", ".join(f"{label} ({count} rows)" for label, count in list(occupied.items())[:5])
        what = [
            f"tables hold data: {shown}" if occupied else "",
            "private storage holds files" if stored else "",
        ]
        raise TargetNotEmpty(
            "The target is not empty ("
            + "; ".join(part for part in what if part)
            + "). Restore into a newly migrated database, or pass --force to delete everything in it first."
        )
    if connection.in_atomic_block:
        raise BackupError("A restore must run in its own transaction, not inside another.")
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f"{_STAGING_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
    staging.mkdir()
    loader = _Loader(staging, say)
    try:
        say(f"Loading {manifest['rows']} rows and {manifest['files']['count']} files in one transaction ...")
        with transaction.atomic():
            models_all = backed_up_models()
            flush = connection.ops.sql_flush(
                no_style(), [model._meta.db_table for model in models_all], allow_cascade=True
            )
            with connection.cursor() as cursor:
                for statement in flush:
                    cursor.execute(statement)
            with path.open("rb") as handle:
                replay(read_records(handle, backup_keys()), loader)  # checked again: same file to the end
            loader._report()
            with connection.cursor() as cursor:
                for statement in connection.ops.sequence_reset_sql(no_style(), models_all):
                    cursor.execute(statement)
            crypto.reset_keyring()
            status = crypto.key_status()
            if status.errors:
                raise KeysMissing("Restored data would not open: " + " ".join(status.errors[:3]))
    except BaseException:
        loader.close()
        shutil.rmtree(staging, ignore_errors=True)
        _forget_cached_state()
        raise
    loader.close()
    _move_files_in(staging, root, replace=force)
    _forget_cached_state()
    broken = audit.verify()
    sealed = audit.AuditEntry.objects.filter(seq__isnull=False).count()
    return RestoreResult(
        manifest=manifest,
        rows=sum(loader.loaded.values()),
        files=manifest["files"]["count"],
        audit_broken_at=broken.seq if broken else None,
        audit_reason=broken.reason if broken else "",
        audit_sealed=sealed,
        audit_unsealed=audit.unsealed_count(),
    )


def _move_files_in(staging: Path, root: Path, *, replace: bool) -> None:
    """After the commit: the staged files take the place of whatever was in private storage."""
    if replace:
        for entry in root.iterdir():
            if entry == staging or entry.name.startswith(_STAGING_PREFIX):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    for entry in staging.iterdir():
        os.replace(entry, root / entry.name)
    staging.rmdir()


def _forget_cached_state() -> None:
    """Caches of this process that may hold rows the restore replaced."""
    from django.contrib.contenttypes.models import ContentType

    from civicore.catalogue.selectors import forget_cached_services
    from civicore.core import crypto, jose

    ContentType.objects.clear_cache()
    crypto.reset_keyring()
    jose.reset_cache()
    forget_cached_services()
