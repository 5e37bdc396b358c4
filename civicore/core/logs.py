"""Log formatting: plain text (the default) or one JSON object per line (LOG_FORMAT=json), both
carrying the request id (civicore.core.request_ids) so that every line a request or its jobs
write can be found together.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from civicore.core import request_ids


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id` ("-" outside a request) for text formats that name it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_ids.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, UTC), level, logger, message, request_id (null
    outside a request) and, when there is one, the exception with its traceback. Newlines in a
    message stay inside the JSON string (escaped, as is anything outside ASCII), so a line of
    output is always exactly one record."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        if not request_id or request_id == "-":
            request_id = request_ids.get() or None
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)
