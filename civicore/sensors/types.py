"""Plain values passed between ingestion, storage and rules."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class StoredReading(NamedTuple):
    """A reading as stored: the device's primary key and public id, quantity, time and value.

    A named tuple: the ingest path makes one for every reading a rule watches.
    """

    device_pk: int
    device_id: str
    quantity: str
    time: datetime
    value: float
