import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from civicore.audit import services


class Command(BaseCommand):
    help = "`audit verify` checks the hash chain (exit 1 if broken); `audit seal` chains new entries."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify", help="Check every sealed entry's hash and link")
        sub.add_parser("seal", help="Seal entries the worker has not sealed yet")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "seal":
            self.stdout.write(f"Sealed {services.seal()} entries")
            return
        if options["action"] == "verify":
            broken = services.verify()
            if broken is None:
                waiting = services.unsealed_count()
                note = f" ({waiting} new entries not sealed yet)" if waiting else ""
                self.stdout.write(self.style.SUCCESS(f"Audit log intact{note}"))
                return
            self.stderr.write(f"Audit log broken at entry #{broken.seq}: {broken.reason}")
            sys.exit(1)
        raise CommandError("Unknown action")
