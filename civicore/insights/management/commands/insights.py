"""`civicore insights rebuild [--check]`: recompute the scorecards' tallies from the data."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from civicore.insights import services


class Command(BaseCommand):
    help = "Service performance: recompute every tally from the applications, cases and payments."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        rebuild = sub.add_parser("rebuild", help="recompute every counted tally")
        rebuild.add_argument(
            "--check", action="store_true", help="only compare with the running tallies; change nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["check"]:
            written = services.tallies_rebuild()
            self.stdout.write(f"{written} tallies written")
            return
        computed = {key: value for key, value in services.tallies_compute().items() if value}
        running = {
            (t.month, t.agency_id, t.service_key, t.metric): t.value
            for t in services.counted_tallies()
            if t.value
        }
        differing = sorted(set(computed) | set(running), key=str)
        differing = [key for key in differing if computed.get(key, 0) != running.get(key, 0)]
        for key in differing[:50]:
            self.stdout.write(f"{key}: running {running.get(key, 0)}, recomputed {computed.get(key, 0)}")
        if differing:
            raise CommandError(f"{len(differing)} tallies differ")
        self.stdout.write("the running tallies match the data")
