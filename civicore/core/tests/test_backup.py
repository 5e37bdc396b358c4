"""`civicore backup` and `civicore restore`: a realistic installation restored into an empty
database (SQLite and PostgreSQL, either way round) passes `civicore audit verify` with the same rows,
personal data and files; a damaged or foreign backup, a non-empty target, another schema or other
keys are refused without changing anything."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection, connections

from civicore.applications.models import Application, ApplicationDocument
from civicore.applications.tests import factories as filing
from civicore.audit import services as audit
from civicore.audit.models import AuditEntry
from civicore.core import backup, crypto, demo
from civicore.core.models import DataKey, Job
from civicore.credentials.models import ResultDocument
from civicore.credentials.services import result_issue, signing_material_reset, signing_setup
from civicore.credentials.tests.factories import make_application
from civicore.identity.models import Person, ProfileItem
from civicore.identity.services import person_find_by_national_id
from civicore.identity.tests.factories import make_citizen

REPO = Path(__file__).resolve().parents[3]
BACKUP_KEY = base64.b64encode(b"b" * 32).decode()
OTHER_KEY = base64.b64encode(b"o" * 32).decode()
DEMO_NATIONAL_ID = "079090001234"
TARGET_DATABASE = "civicore_backup_restore"


@pytest.fixture(autouse=True)
def _backup_key(settings: Any) -> Iterator[None]:
    settings.BACKUP_ENCRYPTION_KEY = [BACKUP_KEY]
    # A transactional test's flush deletes data keys, which never happens in service: forget the
    # active one this process remembers, or values would be sealed under a key that is gone.
    crypto.reset_keyring()
    yield
    crypto.reset_keyring()


@pytest.fixture
def signing(tmp_path: Path, settings: Any) -> Iterator[Path]:
    directory = tmp_path / "signing"
    signing_setup(directory=directory)
    settings.SIGNING_DIR = directory
    signing_material_reset()
    yield directory
    signing_material_reset()


def restore_fails(path: Path, *args: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        call_command("restore", str(path), *args, verbosity=0)
    return caught.value


def take_backup(path: Path, *, chunk_bytes: int = backup.DEFAULT_CHUNK_BYTES) -> dict[str, Any]:
    return backup.backup_create(path, chunk_bytes=chunk_bytes).manifest


def row_counts() -> dict[str, int]:
    return {model._meta.label_lower: model._base_manager.count() for model in backup.backed_up_models()}


# --- a realistic installation ------------------------------------------------------------------------

LARGE_UPLOAD = filing.PDF_BYTES[:-6] + os.urandom(2_500_000) + b"%%EOF\n"


def build_installation() -> dict[str, Any]:
    """The demo province, applications filed with uploads (one larger than a chunk), an issued
    and signed result document, jobs, and audit entries sealed into the chain plus one waiting."""
    demo.load()
    citizen = person_find_by_national_id(DEMO_NATIONAL_ID)
    assert citizen is not None
    service = filing.make_service(
        documents=[{**filing.DEFINITION["documents"][0], "max_bytes": 4 * 1024 * 1024}]
    )
    filed = [filing.make_submitted(citizen, service) for _ in range(2)]
    large = filing.services.application_start(person=citizen, service=service)
    filing.services.document_attach(
        application=large, requirement="birth-certificate", upload=filing.pdf_upload(data=LARGE_UPLOAD)
    )
    filed.append(filing.services.application_submit(application=large, answers=dict(filing.VALID_ANSWERS)))
    result = result_issue(application_id=make_application(applicant=citizen).pk)
    audit.seal()
    audit.record(actor=None, action="backup.test", subject_type="test", subject_id="waiting")
    assert Job.objects.exists() and AuditEntry.objects.filter(seq__isnull=False).count() > 10
    return {
        "references": sorted(application.reference for application in filed),
        "result_serial": str(result.serial),
    }


def personal_data() -> dict[str, Any]:
    """What a restore must give back, read through the application's own decryption."""
    files = {
        document.file.name: hashlib.sha256(document.file.read()).hexdigest()
        for document in [*ApplicationDocument.objects.all(), *ResultDocument.objects.all()]
    }
    return {
        "national_ids": sorted(Person.objects.values_list("national_id", flat=True)),
        "profile_values": sorted(ProfileItem.objects.values_list("value", flat=True)),
        "answers": {a.reference: a.answers for a in Application.objects.order_by("reference")},
        "files": files,
        "data_keys": sorted(DataKey.objects.values_list("pk", flat=True)),
        "result_serials": sorted(
            str(serial) for serial in ResultDocument.objects.values_list("serial", flat=True)
        ),
        "found_by_national_id": person_find_by_national_id(DEMO_NATIONAL_ID).pk,  # type: ignore[union-attr]
    }


# The same figures, read in the restored installation by a separate process.
CHECK_SCRIPT = """
import json, django
django.setup()
from civicore.core.tests.test_backup import personal_data, row_counts
counts = row_counts()
data = personal_data()
# The restored database takes new writes: its sequences continue after the restored rows.
from civicore.audit import services as audit
from civicore.identity.tests.factories import make_citizen
make_citizen()
audit.record(actor=None, action="restore.check", subject_type="test", subject_id="1")
print("RESULT " + json.dumps({"counts": counts, "data": data}, default=str))
"""


# --- round trip into an empty database ------------------------------------------------------------------


def _postgres_admin_url() -> str:
    if connection.vendor == "postgresql":
        db = django_settings.DATABASES["default"]
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres"
    return os.environ.get("BACKUP_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def _fresh_postgres_database() -> str:
    import psycopg
    from psycopg import sql

    admin = _postgres_admin_url()
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            name = sql.Identifier(TARGET_DATABASE)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server to restore into: {exc}")
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(admin)._replace(path=f"/{TARGET_DATABASE}"))


def _drop_postgres_database() -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(_postgres_admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TARGET_DATABASE))
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def target(
    request: Any, tmp_path: Path, settings: Any
) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """A separate installation with an empty, newly migrated database, and a way to run commands there."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    else:
        url = _fresh_postgres_database()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DATABASE_URL": url,
        "CIVICORE_VAR_DIR": str(tmp_path / "target-var"),
        "PRIVATE_STORAGE_DIR": str(tmp_path / "target-private"),
        "SECRET_KEY": "restored-installation-secret",
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "LOOKUP_HASH_KEY": settings.LOOKUP_HASH_KEY,
        "BACKUP_ENCRYPTION_KEY": BACKUP_KEY,
        "CACHE_URL": "",
        "PYTHONPATH": str(REPO),
    }

    # Migrating takes a while: it runs while the test builds the installation to back up.
    migrate = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "civicore", "migrate", "--no-input", "--verbosity", "0"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    migrated: list[str] = []

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if not migrated:
            migrated.append(migrate.communicate()[0])
            assert migrate.returncode == 0, f"migrate failed:\n{migrated[0]}"
        result = subprocess.run(  # noqa: S603 - our own commands
            [sys.executable, *args], env=env, cwd=REPO, capture_output=True, text=True, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    yield run
    if not migrated:
        migrate.kill()
        migrate.communicate()
    if request.param == "postgresql":
        _drop_postgres_database()


@pytest.mark.django_db(transaction=True)
def test_restore_into_an_empty_database_gives_back_everything_and_the_audit_chain_verifies(
    target: Any, signing: Path, tmp_path: Path
) -> None:
    facts = build_installation()
    path = tmp_path / "civicore.backup"
    call_command("backup", str(path), verbosity=0)
    expected_counts = row_counts()
    expected = personal_data()
    assert len(expected["files"]) == 6 and expected["answers"]  # the demo adds an upload and a result

    restored = target("-m", "civicore", "restore", str(path))
    assert f"Restored {sum(expected_counts.values())} rows and 6 files" in restored.stdout
    assert "Audit log intact" in restored.stdout and "1 entries wait for the worker" in restored.stdout
    assert "audit.auditentry" in restored.stderr  # progress, on standard error

    verified = target("-m", "civicore", "audit", "verify")
    assert verified.returncode == 0
    assert "Audit log intact (1 new entries not sealed yet)" in verified.stdout

    checked = target("-c", CHECK_SCRIPT)
    result = json.loads(checked.stdout.split("RESULT ", 1)[1])
    assert result["counts"] == expected_counts
    data = result["data"]
    assert data["national_ids"] == expected["national_ids"]
    assert DEMO_NATIONAL_ID in data["national_ids"]
    assert data["profile_values"] == expected["profile_values"]
    assert data["answers"] == json.loads(json.dumps(expected["answers"]))
    assert set(facts["references"]) <= set(data["answers"])
    assert data["files"] == expected["files"]
    assert data["data_keys"] == expected["data_keys"]
    assert data["result_serials"] == expected["result_serials"]
    assert facts["result_serial"] in data["result_serials"]  # beside the demo's own result
    assert data["found_by_national_id"] == expected["found_by_national_id"]

    again = target("-m", "civicore", "restore", str(path), check=False)
    assert again.returncode == backup.TargetNotEmpty.exit_code
    assert "The target is not empty" in again.stderr


@pytest.mark.django_db(transaction=True)
def test_backup_reads_one_snapshot_while_the_service_writes(tmp_path: Path) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a second connection to the in-memory test database sees the same transaction")
    make_citizen()
    audit.seal()
    before = AuditEntry.objects.count()
    written: list[int] = []

    def write_elsewhere() -> None:
        try:
            for n in range(3):
                audit.record(actor=None, action="during.backup", subject_type="test", subject_id=str(n))
            written.append(AuditEntry.objects.count())
        finally:
            connections.close_all()

    def progress(message: str) -> None:
        if not written:  # after the first table: later ones must not show the new entries
            thread = threading.Thread(target=write_elsewhere)
            thread.start()
            thread.join()

    order = [model._meta.label_lower for model in backup.backed_up_models()]
    assert order.index("audit.auditentry") > order.index("identity.user")
    manifest = backup.backup_create(tmp_path / "during.backup", progress=progress).manifest

    assert written == [before + 3]
    assert manifest["tables"]["audit.auditentry"]["rows"] == before
    assert AuditEntry.objects.count() == before + 3


# --- damaged, foreign and mismatched backups change nothing ---------------------------------------------


SMALL_UPLOAD = filing.PDF_BYTES + os.urandom(40_000)  # incompressible: about ten 4 KiB chunks


@pytest.fixture
def small_backup(db: Any, tmp_path: Path, settings: Any) -> Path:
    """A few citizens and an upload, sealed in 4 KiB chunks so the file has many of them."""
    for _ in range(3):
        make_citizen()
    upload = Path(settings.MEDIA_ROOT) / "documents" / "upload.pdf"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(SMALL_UPLOAD)
    path = tmp_path / "small.backup"
    take_backup(path, chunk_bytes=4096)
    return path


def chunks(data: bytes) -> list[tuple[int, int]]:
    """(offset, length word included) of each sealed chunk."""
    spans, at = [], backup._HEADER.size
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big") & ~backup._FINAL
        spans.append((at, 4 + length))
        at += 4 + length
    return spans


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _swap_first_two(data: bytes) -> bytes:
    (a, la), (b, lb) = chunks(data)[:2]
    return data[:a] + data[b : b + lb] + data[a : a + la] + data[b + lb :]


DAMAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "byte flipped in a chunk": (lambda d: _flip(d, chunks(d)[2][0] + 50), "chunk 3 fails authentication"),
    "byte flipped in the header's salt": (lambda d: _flip(d, backup._HEADER.size - 5), "chunk 1 fails"),
    "chunks reordered": (_swap_first_two, "chunk 1 fails authentication"),
    "cut inside a chunk": (lambda d: d[: chunks(d)[3][0] + 100], "truncated in chunk 4"),
    "final chunk missing": (lambda d: d[: chunks(d)[-1][0]], "without its final chunk"),
    "cut after the header": (lambda d: d[: backup._HEADER.size], "without its final chunk"),
    "bytes appended": (lambda d: d + b"\x00", "data follows its final chunk"),
    "not a backup": (lambda d: b"PK\x03\x04" + d[4:], "not a Civicore backup"),
    "length word altered": (
        lambda d: d[: chunks(d)[1][0]] + (999_999).to_bytes(4, "big") + d[chunks(d)[1][0] + 4 :],
        "impossible length",
    ),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damaged_backup_is_refused_and_changes_nothing(
    damage: str, small_backup: Path, tmp_path: Path, settings: Any
) -> None:
    alter, message = DAMAGE[damage]
    damaged = tmp_path / "damaged.backup"
    damaged.write_bytes(alter(small_backup.read_bytes()))
    before = row_counts()
    ids = sorted(Person.objects.values_list("national_id", flat=True))
    upload = Path(settings.MEDIA_ROOT) / "documents" / "upload.pdf"

    error = restore_fails(damaged, "--force")

    assert error.returncode == backup.BackupUnreadable.exit_code
    assert message in str(error)
    assert row_counts() == before
    assert sorted(Person.objects.values_list("national_id", flat=True)) == ids
    assert upload.exists()
    assert [p.name for p in Path(settings.MEDIA_ROOT).iterdir()] == ["documents"]  # no staging left


def test_backup_under_another_key_is_refused_and_an_older_key_still_opens_it(
    small_backup: Path, settings: Any, capsys: Any
) -> None:
    settings.BACKUP_ENCRYPTION_KEY = [OTHER_KEY]
    error = restore_fails(small_backup, "--check")
    assert error.returncode == backup.BackupUnreadable.exit_code
    assert "sealed under a backup key with fingerprint" in str(error)
    assert "BACKUP_ENCRYPTION_KEY does not hold" in str(error)

    settings.BACKUP_ENCRYPTION_KEY = [OTHER_KEY, BACKUP_KEY]  # rotated: the old key opens old backups
    call_command("restore", str(small_backup), "--check", verbosity=0)
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["tables"]["identity.person"]["rows"] == 3
    assert manifest["files"] == {"count": 1, "bytes": len(SMALL_UPLOAD)}
    assert len(manifest["sha256"]) == 64 and manifest["format"] == backup.FORMAT_VERSION
    assert manifest["migrations"]["core"] and manifest["database"] == connection.vendor


def test_a_backup_key_that_is_not_32_bytes_is_a_clear_error(settings: Any, tmp_path: Path) -> None:
    settings.BACKUP_ENCRYPTION_KEY = [base64.b64encode(b"short").decode()]
    with pytest.raises(
        CommandError, match="BACKUP_ENCRYPTION_KEY entry 1 is not the base64 form of 32 bytes"
    ):
        call_command("backup", str(tmp_path / "x.backup"), verbosity=0)
    settings.BACKUP_ENCRYPTION_KEY = []
    with pytest.raises(CommandError, match="BACKUP_ENCRYPTION_KEY is not set"):
        call_command("backup", str(tmp_path / "x.backup"), verbosity=0)
    assert not list(tmp_path.iterdir())


def test_restore_refuses_a_target_that_holds_data(small_backup: Path) -> None:
    make_citizen()
    before = row_counts()
    error = restore_fails(small_backup)
    assert error.returncode == backup.TargetNotEmpty.exit_code
    assert "identity.person (4 rows)" in str(error)
    assert "private storage holds files" in str(error)
    assert "--force" in str(error)
    assert row_counts() == before


def _rewrite(source: Path, destination: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """The same content under a changed header and manifest: a genuine, well-sealed backup."""
    keys = backup.backup_keys()
    with source.open("rb") as handle, destination.open("wb") as out:
        writer = backup.BackupWriter(out, keys[0])
        for kind, payload in backup.read_records(handle, keys):
            if kind == backup.HEADER:
                header = json.loads(payload)
                change(header)
                writer.record_json(kind, header)
            elif kind == backup.MANIFEST:
                manifest = json.loads(payload)
                change(manifest)
                writer.finish({k: v for k, v in manifest.items() if k not in ("sha256", "content_bytes")})
            else:
                writer.record(kind, payload)


def test_restore_refuses_a_backup_from_another_schema(small_backup: Path, tmp_path: Path) -> None:
    older = tmp_path / "older.backup"
    latest_core: list[str] = []

    def drop_latest(document: dict[str, Any]) -> None:
        latest_core[:] = document["migrations"]["core"][-1:]
        document["migrations"]["core"] = document["migrations"]["core"][:-1]

    _rewrite(small_backup, older, drop_latest)
    error = restore_fails(older)
    assert error.returncode == backup.MigrationMismatch.exit_code
    assert f"not applied: core.{latest_core[0]}" in str(error)
    assert "Restore it with the Civicore version that made it" in str(error)

    newer = tmp_path / "newer.backup"
    _rewrite(small_backup, newer, lambda d: d["migrations"]["core"].append("9999_from_a_later_version"))
    error = restore_fails(newer, "--force")
    assert error.returncode == backup.MigrationMismatch.exit_code
    assert "unknown to this version of Civicore: core.9999_from_a_later_version" in str(error)


def test_restore_refuses_when_the_personal_data_keys_do_not_match(small_backup: Path, settings: Any) -> None:
    configured = list(settings.FIELD_ENCRYPTION_KEYS)
    settings.FIELD_ENCRYPTION_KEYS = ["k9:" + base64.b64encode(b"9" * 32).decode()]
    error = restore_fails(small_backup, "--check")
    assert error.returncode == backup.KeysMissing.exit_code
    assert "wrapped under key-encryption key 'k1', which is not in FIELD_ENCRYPTION_KEYS" in str(error)

    settings.FIELD_ENCRYPTION_KEYS = ["k1:" + base64.b64encode(b"9" * 32).decode()]  # same id, other key
    error = restore_fails(small_backup, "--check")
    assert "does not open with key-encryption key 'k1'" in str(error)

    settings.FIELD_ENCRYPTION_KEYS = configured
    settings.LOOKUP_HASH_KEY = "another-lookup-key"
    error = restore_fails(small_backup, "--check")
    assert error.returncode == backup.KeysMissing.exit_code
    assert "made under another LOOKUP_HASH_KEY" in str(error)


def test_backup_never_overwrites_by_accident(small_backup: Path) -> None:
    before = small_backup.read_bytes()
    with pytest.raises(CommandError, match="already exists"):
        call_command("backup", str(small_backup), verbosity=0)
    assert small_backup.read_bytes() == before
    call_command("backup", str(small_backup), "--force", verbosity=0)
    assert small_backup.read_bytes() != before  # a fresh salt: every backup file differs
    assert oct(small_backup.stat().st_mode & 0o777) == "0o600"


def test_a_backup_written_into_private_storage_leaves_itself_out(small_backup: Path, settings: Any) -> None:
    inside = Path(settings.MEDIA_ROOT) / "backups" / "nightly.backup"
    inside.parent.mkdir()
    take_backup(inside)
    manifest = backup.backup_create(inside, overwrite=True).manifest
    assert manifest["files"] == {"count": 1, "bytes": len(SMALL_UPLOAD)}
    assert [p.name for p in inside.parent.iterdir()] == ["nightly.backup"]  # no partial file left


@pytest.mark.django_db(transaction=True)
def test_force_replaces_the_database_and_private_storage(tmp_path: Path, settings: Any) -> None:
    kept = make_citizen()
    media = Path(settings.MEDIA_ROOT)
    (media / "documents").mkdir(parents=True)
    (media / "documents" / "kept.pdf").write_bytes(filing.PDF_BYTES)
    audit.seal()
    path = tmp_path / "before.backup"
    take_backup(path)
    expected = row_counts()

    later = make_citizen()
    (media / "documents" / "later.pdf").write_bytes(filing.PDF_BYTES)
    (media / "results").mkdir()
    (media / "results" / "later.pdf").write_bytes(filing.PDF_BYTES)

    call_command("restore", str(path), "--force", verbosity=0)

    assert row_counts() == expected
    assert not Person.objects.filter(pk=later.pk).exists()
    assert Person.objects.get(pk=kept.pk).national_id == kept.national_id
    assert sorted(p.relative_to(media).as_posix() for p in media.rglob("*") if p.is_file()) == [
        "documents/kept.pdf"
    ]
    assert audit.verify() is None
    crypto.reset_keyring()
    assert make_citizen().national_id  # new writes after the restore: keys and sequences work
