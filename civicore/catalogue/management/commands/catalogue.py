from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from civicore.catalogue import services


class Command(BaseCommand):
    help = (
        "Catalogue tools. `catalogue import` loads the national procedure catalogue; "
        "`catalogue agencies` loads the agencies list. Both are idempotent."
    )

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        importer = sub.add_parser("import", help="Create or update procedures by code from a JSON file")
        importer.add_argument(
            "--file", type=Path, default=services.PROCEDURES_FILE, help="defaults to the shipped vn-tthc.json"
        )
        agencies = sub.add_parser("agencies", help="Create or update agencies by code from a YAML file")
        agencies.add_argument(
            "--file", type=Path, default=services.AGENCIES_FILE, help="defaults to the shipped agencies.yaml"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        if options["action"] == "import":
            try:
                result = services.procedures_import(path=path)
            except (ValueError, KeyError, TypeError, ValidationError) as exc:
                raise CommandError(f"{path.name} is not a procedure catalogue: {exc}") from exc
            summary = f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged"
            self.stdout.write(self.style.SUCCESS(f"Procedures: {summary}"))
        elif options["action"] == "agencies":
            try:
                count = services.agencies_load(path=path)
            except (yaml.YAMLError, KeyError, TypeError, AttributeError, ValidationError) as exc:
                raise CommandError(f"{path.name} is not an agencies list: {exc}") from exc
            self.stdout.write(self.style.SUCCESS(f"Agencies: {count} loaded"))
        else:
            raise CommandError("Unknown action")
