import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand

from civicore.core import demo


class Command(BaseCommand):
    help = "Demo tools: `demo load` loads the demo province; `demo serve` runs the web server and worker."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("load", help="Load agencies, catalogue, services and demo users")
        serve = sub.add_parser("serve", help="Run the web server (gunicorn) and the background worker")
        serve.add_argument("--port", type=int, default=8000)
        serve.add_argument("--workers", type=int, default=2)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "load":
            self._load()
        else:
            self._serve(options["port"], options["workers"])

    def _load(self) -> None:
        logins = demo.load()
        self.stdout.write(self.style.SUCCESS("Demo data loaded. Logins (password, then the TOTP code):"))
        for login in logins:
            self.stdout.write(
                f"  {login.role:<32} {login.email:<55} password: {login.password}"
                f"  TOTP secret: {login.totp_secret}"
            )
        self.stdout.write("  Add the TOTP secret to an authenticator app, or: oathtool --totp -b SECRET")

    def _serve(self, port: int, workers: int) -> None:
        bin_dir = os.path.dirname(sys.executable)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.base"),
        }
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
        worker = subprocess.Popen([os.path.join(bin_dir, "civicore"), "worker"], env=env)  # noqa: S603
        self.stdout.write(
            self.style.SUCCESS(f"Civicore is running on http://127.0.0.1:{port}/ (Ctrl-C stops it)")
        )
        children = [web, worker]

        def stop(signum: int, frame: Any) -> None:
            for child in children:
                if child.poll() is None:
                    child.terminate()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        stop(0, None)
        for child in children:
            child.wait(timeout=30)
