"""`civicore backup FILE`: the whole installation (database and private files) in one encrypted
file, taken from one consistent snapshot while the service keeps running."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from civicore.core import backup

EXIT_CODES = """exit status: 0 written; 1 failed (no key, file exists, cannot write, database error)."""


class Command(BaseCommand):
    help = (
        "Write every table of every installed app and the files in private storage (uploads, "
        "issued result documents) to FILE ('-' for standard output), sealed with AES-256-GCM "
        "under the first BACKUP_ENCRYPTION_KEY. Personal data stays encrypted as stored: restoring "
        "needs the same FIELD_ENCRYPTION_KEYS and LOOKUP_HASH_KEY, which the backup does not "
        "contain, and neither does it hold SIGNING_DIR; keep those with your secrets. Progress goes "
        "to standard error."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        return super().create_parser(prog_name, subcommand, epilog=EXIT_CODES, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Where to write the backup, or '-' for standard output.")
        parser.add_argument("--force", action="store_true", help="Replace FILE if it exists.")

    def handle(self, *args: Any, **options: Any) -> None:
        verbose = options["verbosity"] > 0

        def progress(message: str) -> None:
            if verbose:
                self.stderr.write(message)

        started = time.monotonic()
        to_stdout = options["file"] == "-"
        progress("Backing up the database (one snapshot) and private storage ...")
        try:
            if to_stdout:
                result = backup.backup_write(sys.stdout.buffer, progress=progress)
                sys.stdout.buffer.flush()
            else:
                result = backup.backup_create(
                    Path(options["file"]), overwrite=options["force"], progress=progress
                )
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        except backup.BackupError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from exc
        manifest = result.manifest
        for name in result.missing_files:
            self.stderr.write(
                f"WARNING: {name} is referenced in the database but was not in private storage."
            )
        summary = (
            f"Backup written{'' if to_stdout else ' to ' + options['file']}: {len(manifest['tables'])} "
            f"tables, {manifest['rows']} rows, {manifest['files']['count']} files, "
            f"{result.bytes_written} bytes in {time.monotonic() - started:.1f}s; content SHA-256 "
            f"{manifest['sha256']}."
        )
        if to_stdout:
            self.stderr.write(summary)  # standard output carries the backup itself
        else:
            self.stdout.write(self.style.SUCCESS(summary))
