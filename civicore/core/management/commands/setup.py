"""`civicore setup <part>`: one-time preparation of an installation, each part idempotent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from civicore.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Prepare this installation (run again safely: existing material is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parts = parser.add_subparsers(dest="part", required=True, metavar="part")
        signing = parts.add_parser(
            "signing",
            help="Create the root CA and the document-signing key and certificate in SIGNING_DIR.",
        )
        signing.add_argument(
            "--force",
            action="store_true",
            help="Rotate the document-signing key and certificate (the root CA is kept).",
        )
        signing.add_argument("--directory", help="Where to write them (default: SIGNING_DIR).")
        parts.add_parser(
            "keys",
            help="Create the platform's JWKS signing keys (ES256, EdDSA, RS256) that do not exist yet "
            "(`migrate` does this on a new installation).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["part"] == "signing":
            self._signing(options)
        elif options["part"] == "keys":
            self._keys()

    def _keys(self) -> None:
        from civicore.core.jose import ensure_signing_keys, public_jwks

        created = ensure_signing_keys()
        for key in created:
            self.stdout.write(self.style.SUCCESS(f"Created the {key.alg} signing key {key.kid}"))
        self.stdout.write(f"The JWKS publishes {len(public_jwks()['keys'])} keys.")

    def _signing(self, options: dict[str, Any]) -> None:
        from civicore.credentials.services import signing_setup

        directory = Path(options.get("directory") or settings.SIGNING_DIR)
        try:
            material = signing_setup(directory=directory, force=options["force"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if material.created_ca:
            self.stdout.write(self.style.SUCCESS(f"Created the root CA: {material.ca_cert}"))
        if material.created_signing:
            self.stdout.write(
                self.style.SUCCESS(f"Created the document-signing certificate: {material.signing_cert}")
            )
        else:
            self.stdout.write(
                f"Signing material already present in {directory}; nothing to do (use --force to rotate)."
            )
        self.stdout.write("Keep the *.key files secret and back them up; never commit them.")
