import signal
from typing import Any

from django.core.management.base import BaseCommand

from civicore.core import jobs


class Command(BaseCommand):
    help = "Run background jobs (notifications, result documents) until stopped."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="Exit when no job is due.")

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = False

        def request_stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.stdout.write("Civicore worker started")
        count = jobs.work(once=options["once"], stop=lambda: stopping)
        self.stdout.write(f"Civicore worker stopped after {count} jobs")
