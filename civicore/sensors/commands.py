"""Commands to actuators (being written)."""

from __future__ import annotations

from datetime import datetime


def acknowledge(device_id: str, payload: bytes, *, now: datetime) -> None:
    """Record a device's acknowledgement of a command."""


def supervise(*, now: datetime) -> None:
    """Time out, retry and interlock commands."""
