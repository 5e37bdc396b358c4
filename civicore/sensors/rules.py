"""Rules engine (being written)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from civicore.sensors.types import StoredReading


def evaluate(readings: Sequence[StoredReading], *, now: datetime) -> None:
    """Run the enabled rules over readings just stored (in time order per device)."""


def check_offline(*, now: datetime) -> None:
    """Fire missing-data rules for devices silent for longer than their rule allows."""
