from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from civicore.core.errors import ApplicationError
from civicore.reports.categories import DEFAULT_FILE, categories_load


class Command(BaseCommand):
    help = "Problem reports: `reports load-categories FILE` creates or updates the report categories."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("load-categories", help="Create or update categories from a YAML file")
        load.add_argument("file", nargs="?", default=str(DEFAULT_FILE))

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            created, updated = categories_load(Path(options["file"]))
        except ApplicationError as exc:
            raise CommandError(exc.message, returncode=2) from exc
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(self.style.SUCCESS(f"Categories: {created} created, {updated} updated."))
