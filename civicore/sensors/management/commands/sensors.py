"""`civicore sensors ...`: the city sensor platform's operator commands."""

from __future__ import annotations

import logging
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "City sensors: ingest readings over MQTT, and manage the broker and devices."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        ingest = sub.add_parser(
            "ingest", help="Subscribe to devices' readings and acknowledgements and store them"
        )
        ingest.add_argument(
            "--client-id", help="MQTT client id; keep it stable so the session survives a restart"
        )
        ingest.add_argument("--group", help="Shared-subscription group (default SENSOR_SHARE_GROUP)")
        ingest.add_argument("--seconds", type=float, help="Stop after this many seconds")
        ingest.add_argument("--url", help="Broker URL (default MQTT_URL)")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        handler = getattr(self, "_" + action.replace("-", "_"))
        handler(options)

    def _ingest(self, options: dict[str, Any]) -> None:
        from civicore.sensors.ingest import IngestProcess, broker_address

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        try:
            address = broker_address(options.get("url"))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        process = IngestProcess(address, client_id=options.get("client_id"), group=options.get("group"))

        def stop(signum: int, frame: Any) -> None:
            process.stop_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"Ingesting from {address.host}:{address.port} as {process.client_id}")
        process.run(seconds=options.get("seconds"))
        stats = process.ingestor.stats
        self.stdout.write(
            f"Stopped: {stats['messages']} messages, {stats['accepted']} readings stored, "
            f"{stats['duplicates']} duplicates, {stats['rejected']} rejected"
        )
