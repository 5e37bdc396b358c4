"""`civicore restore FILE`: load a backup into an empty, migrated database and private storage,
then check the audit chain. Nothing changes unless the whole file checks out."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from civicore.core import backup

EXIT_CODES = f"""exit status: 0 restored (or, with --check, restorable); 1 other failure
(configuration, file missing, database error); 3 not a Civicore backup, altered, truncated or
sealed under another key; 4 the target is not empty (see --force); 5 the backup's migrations differ
from this version's, or the target is not migrated; 6 FIELD_ENCRYPTION_KEYS or LOOKUP_HASH_KEY do
not match the backup's; {backup.AUDIT_BROKEN_EXIT_CODE} restored, but the audit chain does not verify."""


class Command(BaseCommand):
    help = (
        "Restore a backup made by `civicore backup` into this installation's database "
        "(DATABASE_URL; run `civicore migrate` on it first, with web and worker processes stopped) "
        "and private storage. It needs the backup's BACKUP_ENCRYPTION_KEY, and the same "
        "FIELD_ENCRYPTION_KEYS (the key-encryption keys that wrap the backup's data keys) and "
        "LOOKUP_HASH_KEY as the installation that made it. The whole file is authenticated before "
        "anything changes and loaded in one transaction; then `audit verify` runs. Works across "
        "SQLite and PostgreSQL."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return super().create_parser(prog_name, subcommand, epilog=EXIT_CODES, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The backup file.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Delete every row in the database and every file in private storage before loading "
            "(a restore normally refuses a target that holds data).",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Only check: the file is intact and authentic, fits this version's migrations and "
            "opens with the configured keys. Prints the manifest as JSON; changes nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbose = options["verbosity"] > 0

        def progress(message: str) -> None:
            if verbose:
                self.stderr.write(message)

        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path} does not exist or is not a file.")
        started = time.monotonic()
        try:
            if options["check"]:
                inspection = backup.restore_check(path)
                self.stdout.write(json.dumps(inspection.manifest, indent=2, ensure_ascii=False))
                manifest = inspection.manifest
                progress(
                    f"{path} is intact and restorable here: {manifest['rows']} rows, "
                    f"{manifest['files']['count']} files, made {manifest['created_at']}."
                )
                return
            result = backup.backup_restore(path, force=options["force"], progress=progress)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        except backup.BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored {result.rows} rows and {result.files} files from the backup made "
                f"{result.manifest['created_at']} in {time.monotonic() - started:.1f}s."
            )
        )
        if result.audit_broken_at is not None:
            self.stderr.write(
                f"Audit log broken at entry #{result.audit_broken_at}: {result.audit_reason} "
                "(the backup holds the log as it was when the backup was made)."
            )
            sys.exit(backup.AUDIT_BROKEN_EXIT_CODE)
        waiting = (
            f"; {result.audit_unsealed} entries wait for the worker to seal them"
            if result.audit_unsealed
            else ""
        )
        self.stdout.write(f"Audit log intact: {result.audit_sealed} sealed entries verified{waiting}.")
