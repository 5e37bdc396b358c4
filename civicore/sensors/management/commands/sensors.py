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
        self._add_broker_arguments(sub)
        self._add_simulate_arguments(sub)

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

    # --- the broker and devices' credentials ---------------------------------------------------

    def _add_broker_arguments(self, sub: Any) -> None:
        config = sub.add_parser(
            "broker-config",
            help="Write mosquitto.conf (and dynamic-security.json with the admin when missing) into DIR",
        )
        config.add_argument("--dir", required=True, help="Directory for the configuration and persistence")
        config.add_argument("--port", type=int, default=1883, help="Port to listen on (default 1883)")
        config.add_argument("--bind", default="127.0.0.1", help="Address to listen on (default 127.0.0.1)")
        config.add_argument("--plugin", help="Path of mosquitto_dynamic_security.so (found when omitted)")
        config.add_argument("--user", help="Account the broker switches to when started as root")
        for name, text in (
            ("provision", "Give a registered device its MQTT password and HTTPS token (shown once)"),
            ("rotate", "Issue new credentials to a device; the old ones stop working at once"),
            ("revoke", "Cut a device off: the broker disconnects it and refuses it from now on"),
        ):
            sub.add_parser(name, help=text).add_argument("device_id")

    def _broker_config(self, options: dict[str, Any]) -> None:
        from django.conf import settings

        from civicore.sensors.mosquitto import BrokerConfigError, broker_config_write

        try:
            config = broker_config_write(
                directory=options["dir"],
                port=options["port"],
                bind=options["bind"],
                admin_username=settings.MQTT_ADMIN_USERNAME,
                admin_password=settings.MQTT_ADMIN_PASSWORD,
                plugin=options.get("plugin"),
                user=options.get("user"),
            )
        except BrokerConfigError as exc:
            raise CommandError(str(exc)) from exc
        created = "created with the admin" if config.dynsec_created else "kept as it was"
        self.stdout.write(f"Wrote {config.conf}; {config.dynsec.name} {created}.")
        self.stdout.write(f"Start the broker:  {' '.join(config.start_command())}")
        self.stdout.write(f"Then set MQTT_URL={config.url} for Civicore and run `civicore sensors ingest`.")
        self.stdout.write(
            f"The broker writes into {config.directory}: run it as that directory's owner (started as "
            "root, Mosquitto switches to the account named by --user, or to `mosquitto`)."
        )

    def _credentials(self, options: dict[str, Any], action: str) -> None:
        from civicore.core.errors import ApplicationError
        from civicore.sensors import services
        from civicore.sensors.models import Device

        device = Device.objects.filter(device_id=options["device_id"]).first()
        if device is None:
            raise CommandError(f"No device {options['device_id']!r}.")
        try:
            if action == "revoke":
                services.device_revoke(device=device, reason="civicore sensors revoke")
                self.stdout.write(f"Revoked {device.device_id}: disconnected and refused from now on.")
                return
            if action == "provision":
                credentials = services.device_provision(device=device)
            else:
                credentials = services.device_rotate_credentials(device=device)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write("Credentials, shown this once (give them to the device now):")
        self.stdout.write(f"  MQTT client id and user name  {credentials.mqtt_username}")
        self.stdout.write(f"  MQTT password                 {credentials.mqtt_password}")
        self.stdout.write(f"  HTTPS token                   {credentials.http_token}")
        self.stdout.write(f"  Credential version            {credentials.credential_version}")

    def _provision(self, options: dict[str, Any]) -> None:
        self._credentials(options, "provision")

    def _rotate(self, options: dict[str, Any]) -> None:
        self._credentials(options, "rotate")

    def _revoke(self, options: dict[str, Any]) -> None:
        self._credentials(options, "revoke")

    # --- the park simulator (demo) ---------------------------------------------------------------

    def _add_simulate_arguments(self, sub: Any) -> None:
        simulate = sub.add_parser(
            "simulate",
            help="Play the demo's park devices as MQTT clients (new credentials for each on start)",
        )
        simulate.add_argument(
            "--speed", type=float, default=60.0, help="How much faster the parks' physics run (1-300)"
        )
        simulate.add_argument(
            "--park", action="append", default=[], metavar="GROUP", help="Only this group (repeatable)"
        )
        simulate.add_argument("--duration", type=float, help="Stop after this many seconds")
        simulate.add_argument("--url", help="Broker URL (default MQTT_URL)")
        simulate.add_argument(
            "--seed", type=int, default=0, help="Seed of the weather and the sensors' noise"
        )
        simulate.add_argument("--no-rain", action="store_true", help="Keep the weather dry")

    def _simulate(self, options: dict[str, Any]) -> None:
        import threading

        from civicore.core.errors import ApplicationError
        from civicore.sensors.simulator import simulate

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        if not 1 <= options["speed"] <= 300:
            raise CommandError("--speed must be from 1 to 300.")
        if options.get("duration") is not None and options["duration"] <= 0:
            raise CommandError("--duration must be positive.")
        stop_event = threading.Event()

        def stop(signum: int, frame: Any) -> None:
            stop_event.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            runner = simulate(
                speed=options["speed"],
                groups=options["park"],
                duration=options.get("duration"),
                url=options.get("url"),
                seed=options["seed"],
                rain=not options["no_rain"],
                stop_event=stop_event,
            )
        except (ApplicationError, LookupError, ConnectionError) as exc:
            raise CommandError(getattr(exc, "message", None) or str(exc)) from exc
        self.stdout.write(f"Stopped: {runner.published} messages published.")
