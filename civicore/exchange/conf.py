"""Settings of the change-notification exchange, each overridable by an environment variable.

A Django setting of the same name wins (tests set them with pytest-django's `settings`), then the
environment variable, then the default here. Read at use, so a changed setting takes effect at once.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, float | int | str] = {
    # Attempts before a delivery is dead (on the dead-letter list for an officer to replay).
    "EXCHANGE_MAX_ATTEMPTS": 8,
    # Back-off after the n-th failed attempt: base * 2**(n-1) seconds, capped, with +-25% jitter.
    "EXCHANGE_BACKOFF_BASE_SECONDS": 1.0,
    "EXCHANGE_BACKOFF_MAX_SECONDS": 3600.0,
    # A worker holds a claimed delivery this long (renewed while it is queued or in flight); if it
    # dies, another worker sends it again once the lease runs out.
    "EXCHANGE_LEASE_SECONDS": 60.0,
    # Connect and read timeout of one POST.
    "EXCHANGE_TIMEOUT_SECONDS": 10.0,
    # Sender threads per worker, and keep-alive connections (= concurrent requests) per receiver.
    "EXCHANGE_SENDER_THREADS": 32,
    "EXCHANGE_CONNECTIONS_PER_RECEIVER": 4,
    # Deliveries claimed per query, and the most a worker keeps claimed at once.
    "EXCHANGE_CLAIM_BATCH": 500,
    "EXCHANGE_MAX_IN_FLIGHT": 2000,
    # Idle wait between looking for due deliveries (PostgreSQL also wakes the worker on commit).
    "EXCHANGE_POLL_SECONDS": 0.5,
    # Dotted path of the Transport class that sends webhooks.
    "EXCHANGE_TRANSPORT": "civicore.exchange.transport.HttpTransport",
}


def _value(name: str) -> float | int | str:
    if hasattr(settings, name):
        return getattr(settings, name)  # type: ignore[no-any-return]
    default = DEFAULTS[name]
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return type(default)(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"Environment variable {name} must be a {type(default).__name__}") from exc


def get_int(name: str) -> int:
    return int(_value(name))


def get_float(name: str) -> float:
    return float(_value(name))


def get_str(name: str) -> str:
    return str(_value(name))
