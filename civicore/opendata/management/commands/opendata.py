"""`civicore opendata refresh [NAME ...] [--if-due]`: regenerate the open datasets now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from civicore.opendata import services


class Command(BaseCommand):
    help = "Open data: regenerate the published datasets from live data."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        refresh = sub.add_parser("refresh", help="regenerate datasets (all, or those named)")
        refresh.add_argument("names", nargs="*", help="dataset names or generator keys")
        refresh.add_argument("--if-due", action="store_true", help="only datasets older than their frequency")

    def handle(self, *args: Any, **options: Any) -> None:
        done = services.datasets_refresh(only=options["names"] or None, force=not options["if_due"])
        for dataset in done:
            rows = sum(r.row_count for r in dataset.resources.all())
            self.stdout.write(f"{dataset.name}: {rows} rows")
