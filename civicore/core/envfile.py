"""Create the local secrets file for a single-machine install (run before Django starts).

`python -m civicore.core.envfile var/secrets.env` writes fresh random secrets once and never
overwrites them: losing FIELD_ENCRYPTION_KEYS makes encrypted personal data unreadable. Settings
added by a later release (the city sensors' broker, the payment sandbox's terminal) are appended
to an existing file; what is there already, even an empty value, is kept as it is.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

SENSORS_COMMENT = "# City sensors: the demo's own Mosquitto and the admin of its dynamic-security plugin."
PAYMENTS_COMMENT = "# Payments: a VNPAY terminal; these name the demo's own sandbox gateway (paysandbox)."
# The sandbox's port; VNPAY_PAYMENT_URL and VNPAY_API_URL name it, and `demo serve` reads it there.
PAYSANDBOX_PORT = 8090


def _sensor_settings() -> dict[str, str]:
    # Port 1884: a system Mosquitto (Debian starts one when it is installed) holds 1883.
    return {"MQTT_URL": "mqtt://127.0.0.1:1884", "MQTT_ADMIN_PASSWORD": secrets.token_urlsafe(32)}


def _payment_settings() -> dict[str, str]:
    # The paths are VNPAY's (civicore.payments.vnpay.PAY_PATH and API_PATH); Django is not loaded yet.
    base = f"http://127.0.0.1:{PAYSANDBOX_PORT}"
    return {
        "VNPAY_TMN_CODE": "CIVICORE",
        # Letters and digits like VNPAY's own secrets, so the file stays safe to `source`.
        "VNPAY_HASH_SECRET": secrets.token_hex(32).upper(),
        "VNPAY_PAYMENT_URL": f"{base}/paymentv2/vpcpay.html",
        "VNPAY_API_URL": f"{base}/merchant_webapi/api/transaction",
    }


# Settings a release added after the first one, in the order they came, each under its comment.
ADDED_LATER: tuple[tuple[str, Callable[[], dict[str, str]]], ...] = (
    (SENSORS_COMMENT, _sensor_settings),
    (PAYMENTS_COMMENT, _payment_settings),
)


def _append_missing(target: Path) -> None:
    text = target.read_text()
    present = {line.removeprefix("export ").split("=", 1)[0].strip() for line in text.splitlines()}
    lines: list[str] = []
    for comment, make in ADDED_LATER:
        missing = {name: value for name, value in make().items() if name not in present}
        if missing:
            lines += [comment, *(f"{name}={value}" for name, value in missing.items())]
    if not lines:
        return
    with target.open("a") as handle:
        handle.write(("" if text.endswith("\n") or not text else "\n") + "\n".join(lines) + "\n")


def main(path: str) -> None:
    target = Path(path)
    if target.exists():
        _append_missing(target)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    key = base64.b64encode(os.urandom(32)).decode()
    lines = [
        "# Generated once for this installation. Keep it secret; back it up with the database.",
        f"SECRET_KEY={secrets.token_urlsafe(50)}",
        f"FIELD_ENCRYPTION_KEYS=k{secrets.token_hex(4)}:{key}",
        f"LOOKUP_HASH_KEY={secrets.token_urlsafe(32)}",
        "# Seals `civicore backup` files. Keep a copy away from the backups, or they cannot be read.",
        f"BACKUP_ENCRYPTION_KEY={base64.b64encode(os.urandom(32)).decode()}",
    ]
    for comment, make in ADDED_LATER:
        lines += [comment, *(f"{name}={value}" for name, value in make().items())]
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "var/secrets.env")
