"""Plain values passed between ingestion, storage and rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A reading as stored: the device's primary key and public id, quantity, time and value."""

    device_pk: int
    device_id: str
    quantity: str
    time: datetime
    value: float
