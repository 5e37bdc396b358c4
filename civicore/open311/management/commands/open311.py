from typing import Any

from django.core.management.base import BaseCommand, CommandError

from civicore.agencies.models import Agency
from civicore.core.errors import ApplicationError
from civicore.open311.services import open311_client_create, open311_client_revoke


class Command(BaseCommand):
    help = (
        "Open311 API keys: `open311 create-key NAME [--agency CODE]` prints a new key once; "
        "`open311 revoke-key PREFIX` revokes it; `open311 list-keys` lists them."
    )

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create-key", help="Create a key for a 311 client")
        create.add_argument("name")
        create.add_argument("--agency", default="", help="code of the agency the client belongs to")
        revoke = sub.add_parser("revoke-key", help="Revoke a key by its prefix")
        revoke.add_argument("prefix")
        sub.add_parser("list-keys", help="List the clients and their key prefixes")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "create-key":
                self._create(options["name"], options["agency"])
            elif options["action"] == "revoke-key":
                for client in open311_client_revoke(prefix=options["prefix"]):
                    self.stdout.write(f"Revoked {client.name} ({client.prefix}…)")
            else:
                self._list()
        except ApplicationError as exc:
            raise CommandError(exc.message, returncode=2) from exc

    def _create(self, name: str, agency_code: str) -> None:
        agency = None
        if agency_code:
            agency = Agency.objects.filter(code=agency_code).first()
            if agency is None:
                raise CommandError(f"No agency with code {agency_code}", returncode=2)
        client, secret = open311_client_create(name=name, agency=agency)
        self.stderr.write(f"Created Open311 client {client.name} ({client.prefix}…). The key is shown once:")
        self.stdout.write(secret)

    def _list(self) -> None:
        from civicore.open311.models import Open311Client

        for client in Open311Client.objects.select_related("agency"):
            state = "active" if client.active else "revoked"
            used = client.last_used_at.isoformat(timespec="seconds") if client.last_used_at else "never"
            agency = client.agency.code if client.agency else "-"
            self.stdout.write(f"{client.prefix}…  {state:8} {agency:24} last used {used}  {client.name}")
