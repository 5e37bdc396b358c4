"""`civicore payments import FILE ...`: read bank statements (ISO 20022 camt.053 / camt.054) and
match their credits to payments; `civicore payments expire`: expire open transfers past their time;
`civicore payments reconcile`: ask the gateway about open gateway payments it has not told us about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from civicore.core.errors import ApplicationError
from civicore.payments import services


class Command(BaseCommand):
    help = "Import bank statements and match them to payments; expire open transfers."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imports = sub.add_parser("import", help="import camt.053 / camt.054 files")
        imports.add_argument("files", nargs="+", type=Path)
        sub.add_parser("expire", help="expire open bank transfers past their time")
        reconcile = sub.add_parser(
            "reconcile", help="ask the gateway about open gateway payments and apply its answers"
        )
        reconcile.add_argument(
            "--quiet-minutes",
            type=int,
            default=5,
            help="only payments nothing has happened to for this long (0: every open one)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "expire":
            self.stdout.write(f"expired: {services.payment_expire_due()}")
            return
        if options["action"] == "reconcile":
            if options["quiet_minutes"] < 0:
                raise CommandError("--quiet-minutes cannot be negative")
            counts = services.gateway_payments_reconcile(quiet_minutes=options["quiet_minutes"])
            self.stdout.write(", ".join(f"{name}: {value}" for name, value in counts.items()))
            return
        failed = False
        for path in options["files"]:
            try:
                data = path.read_bytes()
                imported = services.statement_import(data=data, filename=path.name)
            except OSError as exc:
                self.stderr.write(f"{path}: cannot be read ({exc.strerror})")
                failed = True
            except ApplicationError as exc:
                self.stderr.write(f"{path}: {exc.code}: {exc.message}")
                failed = True
            else:
                self.stdout.write(
                    f"{path}: {imported.kind} {imported.message_id}: {imported.lines} credits, "
                    f"{imported.matched} matched, {imported.queued} for an officer, "
                    f"{imported.repeated} seen before"
                )
        if failed:
            raise CommandError("some files were not imported")
