from __future__ import annotations

from typing import Any

import pytest


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "fault: crash-and-recovery test with a real worker process (PostgreSQL only, about a minute)",
    )


@pytest.fixture
def jwks(db: Any) -> dict[str, Any]:
    """The platform's published keys, with the EdDSA webhook key created."""
    from civicore.core import jose

    jose.reset_cache()
    jose.signing_key("EdDSA")
    return jose.public_jwks()


@pytest.fixture(autouse=True)
def _fast_exchange(settings: Any) -> None:
    settings.EXCHANGE_BACKOFF_BASE_SECONDS = 0.01
    settings.EXCHANGE_BACKOFF_MAX_SECONDS = 0.05
    settings.EXCHANGE_TIMEOUT_SECONDS = 2.0
    settings.EXCHANGE_POLL_SECONDS = 0.02
    settings.EXCHANGE_TRANSPORT = "civicore.exchange.transport.HttpTransport"


@pytest.fixture
def receivers(jwks: dict[str, Any]) -> Any:
    from civicore.exchange.tests.receivers import Receiver

    started: list[Receiver] = []

    def start(**kwargs: Any) -> Receiver:
        receiver = Receiver(jwks=jwks, **kwargs).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()
