import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from civicore.core import demo


class Command(BaseCommand):
    help = "Demo tools: `demo load` loads the demo province; `demo serve` runs the web server and worker."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("load", help="Load agencies, catalogue, services and demo users")
        serve = sub.add_parser(
            "serve",
            help="Run the web server (gunicorn) and the background worker; with MQTT_URL set, also "
            "Mosquitto, sensor ingestion and the park simulator",
        )
        serve.add_argument("--port", type=int, default=8000)
        serve.add_argument("--workers", type=int, default=2)
        serve.add_argument(
            "--sensor-speed", type=float, default=60.0, help="How much faster the simulated parks run"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "load":
            self._load()
        else:
            self._serve(options["port"], options["workers"], options["sensor_speed"])

    def _load(self) -> None:
        logins = demo.load()
        self.stdout.write(self.style.SUCCESS("Demo data loaded. Logins (password, then the TOTP code):"))
        for login in logins:
            self.stdout.write(
                f"  {login.role:<32} {login.email:<55} password: {login.password}"
                f"  TOTP secret: {login.totp_secret}"
            )
        self.stdout.write("  Add the TOTP secret to an authenticator app, or: oathtool --totp -b SECRET")

    def _serve(self, port: int, workers: int, sensor_speed: float = 60.0) -> None:
        bin_dir = os.path.dirname(sys.executable)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.base"),
        }
        civicore = os.path.join(bin_dir, "civicore")
        broker, with_sensors = self._start_broker() if settings.MQTT_URL else (None, False)
        web = subprocess.Popen(  # noqa: S603 - fixed argument list
            [
                os.path.join(bin_dir, "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--access-logfile",
                "-",
            ],
            env=env,
        )
        worker = subprocess.Popen([civicore, "worker"], env=env)  # noqa: S603
        # The web server and the worker are the demo: if one ends, everything stops. The sensor
        # processes may end on their own (a broker that is not there) without taking it down.
        essential = [web, worker]
        sensors: list[subprocess.Popen[bytes]] = []
        if with_sensors:
            sensors.append(
                subprocess.Popen(  # noqa: S603 - fixed argument list
                    [civicore, "sensors", "ingest", "--client-id", "civicore-demo-ingest"], env=env
                )
            )
            sensors.append(
                subprocess.Popen(  # noqa: S603 - fixed argument list
                    [civicore, "sensors", "simulate", "--speed", f"{sensor_speed:g}"], env=env
                )
            )
        self.stdout.write(
            self.style.SUCCESS(f"Civicore is running on http://127.0.0.1:{port}/ (Ctrl-C stops it)")
        )
        if sensors:
            self.stdout.write(
                f"City sensors: the park simulator plays the demo's devices at {sensor_speed:g} times "
                f"speed; watch them at http://127.0.0.1:{port}/office/sensors/ (sensor engineer login)."
            )
        # Stopped in reverse order of starting: the broker last, after its clients.
        children = [*([broker] if broker is not None else []), web, worker, *sensors]

        def stop(signum: int, frame: Any) -> None:
            for child in reversed(children):
                if child.poll() is None:
                    child.terminate()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while all(child.poll() is None for child in essential):
            time.sleep(0.5)
        stop(0, None)
        for child in reversed(children):
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=5)

    def _start_broker(self) -> tuple[subprocess.Popen[bytes] | None, bool]:
        """Start the demo's own Mosquitto when MQTT_URL names this machine, configured as
        `sensors broker-config` does (dynamic security, the admin) under var/mosquitto. Returns
        the broker process, if started here, and whether to run sensor ingestion and the park
        simulator (with a broker elsewhere, they use that one)."""
        from civicore.core.errors import ApplicationError
        from civicore.sensors.broker import broker_address
        from civicore.sensors.mosquitto import BrokerConfigError, broker_config_write

        try:
            address = broker_address()
        except ApplicationError as exc:
            self.stderr.write(f"City sensors are not started: {exc.message}")
            return None, False
        if address.host not in ("127.0.0.1", "localhost", "::1"):
            return None, True
        mosquitto = shutil.which("mosquitto") or next(
            (path for path in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(path)),
            None,
        )
        if mosquitto is None:
            self.stderr.write(
                "City sensors are not started: Mosquitto is not installed (apt-get install mosquitto)."
            )
            return None, False
        if _listening(address.host, address.port):
            self.stderr.write(
                f"City sensors are not started: something already listens on {address.host}:{address.port} "
                "(another Civicore demo?). Stop it, or set MQTT_URL to another port."
            )
            return None, False
        try:
            config = broker_config_write(
                directory=settings.VAR_DIR / "mosquitto",
                port=address.port,
                bind=address.host,
                admin_username=settings.MQTT_ADMIN_USERNAME,
                admin_password=settings.MQTT_ADMIN_PASSWORD,
                # As root, Mosquitto would switch to its own account, which cannot read var/.
                user=getpass.getuser() if os.geteuid() == 0 else None,
            )
        except BrokerConfigError as exc:
            self.stderr.write(f"City sensors are not started: {exc}")
            return None, False
        log = config.directory / "mosquitto.log"
        with log.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 - fixed argument list
                [mosquitto, "-c", str(config.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            if _listening(address.host, address.port):
                self.stdout.write(f"Mosquitto is listening on {config.url} (log: {log}).")
                return process, True
            time.sleep(0.1)
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
        self.stderr.write(f"City sensors are not started: Mosquitto did not start; see {log}.")
        return None, False


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
