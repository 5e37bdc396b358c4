import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

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
            "Mosquitto, sensor ingestion and the park simulator; with VNPAY_PAYMENT_URL on this "
            "machine, also the VNPAY sandbox gateway",
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
        paysandbox = self._start_paysandbox(civicore=civicore, env=env, web_port=port)
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
        if paysandbox is not None:
            self.stdout.write(
                f"Payments: the VNPAY sandbox gateway runs at {_origin(settings.VNPAY_PAYMENT_URL)}; "
                "card and e-wallet payments go through its payment page and its callbacks to "
                f"http://127.0.0.1:{port}{CALLBACK_PATH} (log: {settings.VAR_DIR / 'paysandbox.log'})."
            )
        # Stopped in reverse order of starting: the broker last, after its clients; the payment
        # sandbox after the web server it calls back.
        children = [
            *([broker] if broker is not None else []),
            *([paysandbox] if paysandbox is not None else []),
            web,
            worker,
            *sensors,
        ]

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

    def _start_paysandbox(
        self, *, civicore: str, env: dict[str, str], web_port: int
    ) -> subprocess.Popen[bytes] | None:
        """Start `civicore paysandbox serve` where VNPAY_PAYMENT_URL points, when that is this
        machine, with the terminal's code and hash secret and its IPNs to this demo's callback
        URL. None when it is not started here (a gateway elsewhere, no secret, the port taken):
        the demo then runs without card payments, saying why."""
        target = urlsplit(settings.VNPAY_PAYMENT_URL)
        host = target.hostname or ""
        if host not in LOCAL_HOSTS:
            return None  # a real VNPAY, or a sandbox run elsewhere
        port = target.port or (443 if target.scheme == "https" else 80)
        if not settings.VNPAY_HASH_SECRET:
            self.stderr.write(
                "The payment sandbox is not started: VNPAY_HASH_SECRET is not set "
                "(python -m civicore.core.envfile var/secrets.env adds one). Card payments are off."
            )
            return None
        if _listening(host, port):
            self.stderr.write(
                f"The payment sandbox is not started: something already listens on {host}:{port} "
                "(another Civicore demo?). Stop it, or point VNPAY_PAYMENT_URL and VNPAY_API_URL at "
                "another port. The demo runs without card payments."
            )
            return None
        log = settings.VAR_DIR / "paysandbox.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = [
            civicore,
            "paysandbox",
            "serve",
            "--host",
            host,
            "--port",
            str(port),
            "--tmn-code",
            settings.VNPAY_TMN_CODE,
            "--ipn-url",
            f"http://127.0.0.1:{web_port}{CALLBACK_PATH}",
        ]
        # The secret goes through the environment, never the command line (`ps` shows that).
        child_env = {**env, "VNPAY_HASH_SECRET": settings.VNPAY_HASH_SECRET}
        with log.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 - fixed argument list
                command, env=child_env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process.poll() is None:
            if _listening(host, port):
                return process
            time.sleep(0.1)
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
        self.stderr.write(f"The payment sandbox did not start; see {log}. Card payments are off.")
        return None

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
        if address.host not in LOCAL_HOSTS:
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


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# Where the gateway's server-to-server callback (IPN) reaches the web server (civicore.payments.urls).
CALLBACK_PATH = "/payments/gateways/vnpay/callback/"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
