import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from civicore.audit import services


class Command(BaseCommand):
    help = "Audit log tools. `audit verify` checks the hash chain and exits non-zero when broken."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify", help="Check every entry's hash and link")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "verify":
            broken = services.verify()
            if broken is None:
                self.stdout.write(self.style.SUCCESS("Audit log intact"))
                return
            self.stderr.write(f"Audit log broken at entry #{broken.seq}: {broken.reason}")
            sys.exit(1)
        raise CommandError("Unknown action")
