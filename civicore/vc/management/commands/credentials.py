import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from civicore.agencies.models import Agency
from civicore.core.errors import ApplicationError
from civicore.vc import keys, services
from civicore.vc.models import Credential, IssuerKey


class Command(BaseCommand):
    help = (
        "Agencies' credential keys: `credentials keys` lists them; `credentials rotate AGENCY` "
        "publishes the next key; `credentials compromised KID --since ISO-TIME --reason TEXT` marks "
        "a key and re-issues what it signed from then on."
    )

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("keys", help="List every agency's issuer keys")
        rotate = sub.add_parser("rotate", help="Publish an agency's next key (it signs after PUBLISH_AHEAD)")
        rotate.add_argument("agency", help="the agency's code")
        rotate.add_argument("--now", action="store_true", help="sign with the new key at once")
        bad = sub.add_parser("compromised", help="Mark a key compromised and re-issue what it signed since")
        bad.add_argument("kid")
        bad.add_argument("--since", required=True, help="ISO 8601 time from which it is not to be trusted")
        bad.add_argument("--reason", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "keys":
                self._list()
            elif options["action"] == "rotate":
                agency = Agency.objects.filter(code=options["agency"]).first()
                if agency is None:
                    raise CommandError(f"No agency {options['agency']!r}", returncode=2)
                row = keys.issuer_key_rotate(agency=agency, immediately=options["now"])
                self.stdout.write(
                    f"New key {row.kid} for {agency.code}, signing from {row.activates_at:%Y-%m-%d %H:%M %Z}"
                )
            else:
                self._compromised(options["kid"], options["since"], options["reason"])
        except ApplicationError as exc:
            raise CommandError(exc.message, returncode=2) from exc

    def _list(self) -> None:
        for row in IssuerKey.objects.select_related("agency").order_by("agency__code", "activates_at"):
            state = "compromised" if row.compromised_since else ("retired" if row.retired_at else "active")
            self.stdout.write(f"{row.agency.code}\t{row.kid}\t{row.activates_at:%Y-%m-%d %H:%M}\t{state}")

    def _compromised(self, kid: str, since_text: str, reason: str) -> None:
        try:
            since = dt.datetime.fromisoformat(since_text)
        except ValueError:
            raise CommandError(
                "--since is an ISO 8601 time, e.g. 2026-12-01T08:00+07:00", returncode=2
            ) from None
        if timezone.is_naive(since):
            since = timezone.make_aware(since)
        row = keys.issuer_key_compromised(kid=kid, since=since, reason=reason)
        affected = Credential.objects.filter(issuer_key=row, issued_at__gte=since).exclude(
            status=Credential.Status.REVOKED
        )
        count = 0
        for credential_id in affected.values_list("pk", flat=True).iterator():
            services.credential_reissue(credential_id=credential_id)
            count += 1
        self.stdout.write(
            f"Key {kid} marked compromised since {since.isoformat()}; {count} credentials re-issued"
        )
