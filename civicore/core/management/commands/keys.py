"""`civicore keys <action>`: rotate the keys that protect personal data and sign what we send.

Procedure for a new key-encryption key (docs/decisions/0007-envelope-encryption.md): put it first
in FIELD_ENCRYPTION_KEYS keeping the old one, restart every process, `keys rotate`, check
`keys status`, then remove the old key and restart again.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from civicore.core import crypto


class Command(BaseCommand):
    help = (
        "`keys rotate` re-wraps data keys under the newest FIELD_ENCRYPTION_KEYS entry; "
        "`keys reencrypt` moves stored values to the active data key; `keys status` shows which "
        "keys protect what (exit 1 if some data cannot be read); `keys rotate-signing` replaces "
        "the platform signing key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="action")
        sub.add_parser(
            "rotate",
            help="Re-wrap every data key under the newest key-encryption key and start a fresh "
            "data key for new writes (no data rows touched).",
        )
        reencrypt = sub.add_parser(
            "reencrypt",
            help="Move stored values onto the active data key, one transaction per batch "
            "(safe while serving; run again to resume).",
        )
        reencrypt.add_argument("--batch", type=int, default=500, help="Rows per transaction (default 500).")
        sub.add_parser("status", help="Configured keys, data keys, and which key seals how many values.")
        signing = sub.add_parser(
            "rotate-signing",
            help="Publish the next platform signing key (JWKS); it signs once relying parties' cached "
            "key sets have expired.",
        )
        signing.add_argument("--alg", choices=["ES256", "EdDSA", "RS256"], default="ES256")
        signing.add_argument(
            "--immediately",
            action="store_true",
            help="Sign with the new key at once: for a compromised key (relying parties holding a "
            "cached key set reject new signatures until they fetch it again).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "rotate":
                self._rotate()
            elif action == "reencrypt":
                self._reencrypt(batch_size=options["batch"], verbose=options["verbosity"] > 1)
            elif action == "status":
                self._status()
            elif action == "rotate-signing":
                self._rotate_signing(alg=options["alg"], immediately=options["immediately"])
            else:
                raise CommandError("Unknown action")
        except ImproperlyConfigured as exc:  # a key missing or malformed: say which, no traceback
            raise CommandError(str(exc)) from exc

    def _rotate(self) -> None:
        rotation = crypto.data_keys_rotate()
        older = [kek_id for kek_id in crypto.kek_ids() if kek_id != rotation.kek_id]
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-wrapped {len(rotation.rewrapped)} data keys under key-encryption key "
                f"{rotation.kek_id!r} ({rotation.unchanged} already were)."
            )
        )
        retired = f"; {rotation.retired} keeps opening what it sealed" if rotation.retired else ""
        self.stdout.write(
            f"New values are sealed under data key {rotation.active}{retired}. Running processes "
            f"switch within {crypto.ACTIVE_RECHECK_SECONDS:.0f} seconds."
        )
        if older:
            names = ", ".join(repr(kek_id) for kek_id in older)
            self.stdout.write(
                f"Before removing {names} from FIELD_ENCRYPTION_KEYS, check `civicore keys status` "
                "shows no warnings (values sealed directly under an old key need `civicore keys "
                "reencrypt`)."
            )

    def _reencrypt(self, *, batch_size: int, verbose: bool) -> None:
        if batch_size < 1:
            raise CommandError("--batch must be at least 1")

        def progress(result: crypto.Reencryption) -> None:
            if verbose:
                self.stdout.write(f"  {result.column}: {result.moved} values moved so far")

        results = crypto.values_reencrypt(batch_size=batch_size, progress=progress)
        for result in results:
            if result.moved:
                self.stdout.write(f"{result.column}: moved {result.moved} values ({result.batches} batches)")
        total = sum(result.moved for result in results)
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted {total} values in {len(results)} columns under the active data key."
            )
        )

    def _status(self) -> None:
        status = crypto.key_status()
        self.stdout.write("Key-encryption keys (FIELD_ENCRYPTION_KEYS, newest first):")
        for index, kek_id in enumerate(status.keks):
            newest = " (newest: wraps new data keys)" if index == 0 else ""
            self.stdout.write(f"  {kek_id}{newest}: wraps {status.wrapped_under(kek_id)} data keys")
        self.stdout.write("Data keys:")
        for key in status.data_keys:
            state = "active" if key.active else "retired"
            missing = " (NOT CONFIGURED)" if not key.kek_configured else ""
            self.stdout.write(
                f"  {key.id} {state}, wrapped under {key.kek_id}{missing}, created "
                f"{key.created_at:%Y-%m-%d %H:%M}"
            )
        if not status.data_keys:
            self.stdout.write("  none yet (the first is created on the first write)")
        self.stdout.write("Values by sealing key:")
        for label, counts in status.columns.items():
            shown = ", ".join(f"{count} {key_ref}" for key_ref, count in counts.items()) or "empty"
            self.stdout.write(f"  {label}: {shown}")
        for warning in status.warnings:
            self.stdout.write(self.style.WARNING(f"WARNING: {warning}"))
        for error in status.errors:
            self.stderr.write(f"ERROR: {error}")
        if status.errors:
            sys.exit(1)
        removable = [
            kek_id
            for kek_id in status.keks[1:]
            if not status.wrapped_under(kek_id)
            and not any(f"{crypto.LEGACY_PREFIX}:{kek_id}" in counts for counts in status.columns.values())
        ]
        if removable:
            names = ", ".join(repr(kek_id) for kek_id in removable)
            self.stdout.write(
                f"Nothing depends on {names} any more: it can be removed from FIELD_ENCRYPTION_KEYS."
            )

    def _rotate_signing(self, *, alg: str, immediately: bool) -> None:
        from civicore.core.jose import RETIRED_PUBLISHED, signing_key_rotate

        key = signing_key_rotate(alg=alg, immediately=immediately)
        self.stdout.write(
            self.style.SUCCESS(
                f"New {key.alg} signing key {key.kid}, published now, signs from "
                f"{key.activates_at.isoformat(timespec='seconds')}; the one it replaces stays in the "
                f"JWKS for {RETIRED_PUBLISHED.days} days after that."
            )
        )
