from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from civicore.identity.models import ApiToken, User
from civicore.identity.services import api_token_create


class Command(BaseCommand):
    help = (
        "API tokens: `tokens create EMAIL NAME [--days N]` prints a new token once; `tokens revoke PREFIX`."
    )

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a token for a user")
        create.add_argument("email")
        create.add_argument("name")
        create.add_argument("--days", type=int, default=90, help="lifetime in days (0: no expiry)")
        revoke = sub.add_parser("revoke", help="Revoke tokens by their prefix")
        revoke.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "create":
            user = User.objects.filter(email__iexact=options["email"]).first()
            if user is None:
                raise CommandError(f"No user with e-mail {options['email']}")
            lifetime = timedelta(days=options["days"]) if options["days"] > 0 else None
            _token, secret = api_token_create(user=user, name=options["name"], lifetime=lifetime)
            self.stdout.write(secret)
            return
        count = ApiToken.objects.filter(prefix=options["prefix"], revoked=False).update(revoked=True)
        self.stdout.write(f"Revoked {count} token(s)")
