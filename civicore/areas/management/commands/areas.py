"""`civicore areas load FILE.geojson [--code-property P] [--name-property P]` replaces the districts
and files every report under its district again; `civicore areas list` shows them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser

from civicore.areas import services
from civicore.areas.models import Area


class Command(BaseCommand):
    help = "Districts: load their boundaries from GeoJSON, or list them."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("load", help="replace every district with a GeoJSON FeatureCollection's")
        load.add_argument("file", type=Path)
        load.add_argument("--code-property", default="code", help="the feature property with the code")
        load.add_argument("--name-property", default="name", help="the feature property with the name")
        sub.add_parser("list", help="the districts loaded now")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            for area in Area.objects.order_by("code"):
                self.stdout.write(f"{area.code}\t{area.name}")
            return
        path: Path = options["file"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from exc
        try:
            boundaries = services.parse(
                data, code_property=options["code_property"], name_property=options["name_property"]
            )
        except services.InvalidBoundaries as exc:
            raise CommandError(f"{path}: {exc.message} Nothing was changed.") from exc
        count = services.load(boundaries)
        self.stdout.write(f"{count} districts loaded")
        if apps.is_installed("civicore.reports"):
            from civicore.reports.services import districts_reassign

            self.stdout.write(f"{districts_reassign()} reports moved to another district")
