from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from civicore.exchange import selectors, services
from civicore.exchange.models import Delivery


class Command(BaseCommand):
    help = (
        "`deliveries status` counts change notifications by status and agency system; "
        "`deliveries replay --all-dead | ID ...` sends failed ones again at once."
    )

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("status", help="Deliveries by status, per agency system")
        replay = sub.add_parser("replay", help="Send dead (or failing) deliveries again now")
        replay.add_argument("ids", nargs="*", type=int, help="Delivery IDs")
        replay.add_argument("--all-dead", action="store_true", help="Every dead delivery")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "status":
            self._status()
        elif options["action"] == "replay":
            self._replay(options["ids"], options["all_dead"])
        else:
            raise CommandError("Unknown action")

    def _status(self) -> None:
        counts = selectors.status_counts()
        self.stdout.write(
            f"pending {counts['pending']} (failing {counts['failing']}), "
            f"delivered {counts['delivered']}, dead {counts['dead']}"
        )
        now = timezone.now()
        for row in selectors.status_by_application():
            oldest = row["oldest_pending"]
            age = f", oldest pending {int((now - oldest).total_seconds())}s" if oldest else ""
            self.stdout.write(
                f"  {row['client_id']}: pending {row['pending']}, delivered {row['delivered']}, "
                f"dead {row['dead']}{age}"
            )

    def _replay(self, ids: list[int], all_dead: bool) -> None:
        if bool(ids) == all_dead:
            raise CommandError("Give delivery IDs or --all-dead (not both).")
        if all_dead:
            qs = Delivery.objects.filter(status=Delivery.Status.DEAD)
        else:
            qs = Delivery.objects.filter(pk__in=ids)
            missing = sorted(set(ids) - set(qs.values_list("pk", flat=True)))
            if missing:
                raise CommandError(f"No such deliveries: {', '.join(map(str, missing))}")
        count = services.deliveries_replay(actor=None, deliveries=qs)
        self.stdout.write(self.style.SUCCESS(f"Replayed {count} deliveries"))
