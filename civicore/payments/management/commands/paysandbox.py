"""`civicore paysandbox serve`: a local VNPAY (payment page, IPN, querydr and refund) for the demo
and for trying payments without VNPAY. The hash secret is read from the environment only, so it
never shows in a process list or a shell history."""

from __future__ import annotations

import logging
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from civicore.payments.sandbox import DEFAULT_IPN_SCHEDULE, VnpaySandbox, serve


def _schedule(text: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise CommandError(f"--ipn-schedule takes seconds separated by commas, not {text!r}") from exc
    if any(delay < 0 for delay in delays):
        raise CommandError("--ipn-schedule cannot wait a negative time")
    return delays


class Command(BaseCommand):
    help = "A local VNPAY payment gateway: hosted payment page, return redirect, IPN, querydr and refund."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("serve", help="Serve the sandbox gateway until interrupted")
        run.add_argument("--port", type=int, default=8090, help="Port to listen on (default 8090)")
        run.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1)")
        run.add_argument("--ipn-url", required=True, help="Where IPN calls go (the merchant's IPN URL)")
        run.add_argument(
            "--tmn-code", default="CIVICORE", help="Terminal code (vnp_TmnCode, default CIVICORE)"
        )
        run.add_argument(
            "--hash-secret-env",
            default="VNPAY_HASH_SECRET",
            help="Environment variable holding the terminal's hash secret (default VNPAY_HASH_SECRET)",
        )
        run.add_argument(
            "--ipn-schedule",
            default=",".join(f"{delay:g}" for delay in DEFAULT_IPN_SCHEDULE),
            help="Seconds before each IPN retry, comma separated (default 1,2,5,10,30)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] != "serve":
            raise CommandError("Unknown action")
        secret = os.environ.get(options["hash_secret_env"], "")
        if not secret:
            raise CommandError(
                f"Set the terminal's hash secret in the environment variable {options['hash_secret_env']}"
            )
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        try:
            sandbox = VnpaySandbox(
                tmn_code=options["tmn_code"],
                hash_secret=secret,
                ipn_url=options["ipn_url"],
                ipn_schedule=_schedule(options["ipn_schedule"]),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

        def ready(base_url: str) -> None:
            self.stdout.write(
                f"VNPAY sandbox listening on {base_url} (payment page {base_url}/paymentv2/vpcpay.html, "
                f"API {base_url}/merchant_webapi/api/transaction), terminal {options['tmn_code']}, "
                f"IPN to {options['ipn_url']}"
            )
            self.stdout.flush()

        try:
            serve(options["port"], sandbox=sandbox, host=options["host"], ready=ready)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {options['host']}:{options['port']}: {exc}") from exc
        except KeyboardInterrupt:
            self.stdout.write("Stopped")
