import sys
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError

from civicore.catalogue import services
from civicore.catalogue.definitions import load_file
from civicore.core.errors import ApplicationError


class Command(BaseCommand):
    help = "E-service definitions. `services load FILE...` validates and loads YAML definitions."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        loader = sub.add_parser("load", help="Validate and load service definitions (YAML)")
        loader.add_argument("files", nargs="+", type=Path, metavar="FILE")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] != "load":
            raise CommandError("Unknown action")
        failed = 0
        for path in options["files"]:
            try:
                definition = load_file(path)
                outcome = services.service_load_outcome(definition=definition)
            except (OSError, ValueError, yaml.YAMLError) as exc:
                failed += 1
                self.stderr.write(f"{path}: cannot read: {exc}")
                continue
            except ApplicationError as exc:
                failed += 1
                self.stderr.write(f"{path}: {exc.message}")
                details = exc.details if isinstance(exc.details, list) else []
                for line in details:
                    self.stderr.write(f"  - {line}")
                continue
            version = outcome.version
            message = {
                "created": f"created {version.service.code} at version {version.number}",
                "updated": f"{version.service.code} now at version {version.number}",
                "unchanged": f"{version.service.code} version {version.number} unchanged",
            }[outcome.action]
            self.stdout.write(f"{path}: {message}")
        if failed:
            self.stderr.write(f"{failed} of {len(options['files'])} definitions not loaded")
            sys.exit(1)
