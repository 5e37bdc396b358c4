"""LOG_FORMAT=json: one JSON object per line with time, level, logger, message, request_id and
the exception; LOG_FORMAT=text keeps plain lines that still name the request id."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from civicore.core import request_ids
from civicore.core.logs import JsonFormatter, RequestIdFilter


def _record(message: str, *args: object, exc_info: Any = None) -> logging.LogRecord:
    name = "civicore.example"
    return logging.getLogger(name).makeRecord(name, logging.ERROR, __file__, 1, message, args, exc_info)


def test_a_record_becomes_one_json_object_with_the_fields() -> None:
    with request_ids.bound("req-9"):
        line = JsonFormatter().format(_record("filed %s for %s", "A-1", "Nguy\u1ec5n"))
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "civicore.example"
    assert entry["message"] == "filed A-1 for Nguy\u1ec5n"
    assert entry["request_id"] == "req-9"
    when = datetime.fromisoformat(entry["time"])
    assert when.utcoffset() is not None and when.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - when).total_seconds()) < 60
    assert "exception" not in entry
    assert line.isascii()


def test_outside_a_request_the_id_is_null() -> None:
    assert json.loads(JsonFormatter().format(_record("housekeeping")))["request_id"] is None


def test_newlines_in_a_message_cannot_forge_a_second_line() -> None:
    forged = 'x\n{"level": "INFO", "message": "forged"}\r\n\u2028'
    line = JsonFormatter().format(_record("user said %s", forged))
    assert "\n" not in line and "\r" not in line and "\u2028" not in line
    assert json.loads(line)["message"] == "user said " + forged


def test_the_exception_and_its_traceback_are_included() -> None:
    try:
        raise ValueError("bad thing")
    except ValueError:
        entry = json.loads(JsonFormatter().format(_record("it failed", exc_info=sys.exc_info())))
    assert entry["message"] == "it failed"
    assert entry["exception"].startswith("Traceback") and "ValueError: bad thing" in entry["exception"]


def test_the_text_format_names_the_request_id() -> None:
    handler_format = settings.LOGGING["formatters"]["text"]["format"]
    formatter = logging.Formatter(handler_format)
    record = _record("plain")
    with request_ids.bound("req-t"):
        RequestIdFilter().filter(record)
    assert "[req-t] plain" in formatter.format(record)
    outside = _record("plain")
    RequestIdFilter().filter(outside)
    assert "[-] plain" in formatter.format(outside)


def _log_from_a_process(log_format: str) -> subprocess.CompletedProcess[str]:
    script = (
        "import django, logging; django.setup(); "
        "logging.getLogger('civicore.example').warning('hello %s', 'world')"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "LOG_FORMAT": log_format}
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", script],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_log_format_json_configures_the_console() -> None:
    done = _log_from_a_process("json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(
        line["message"] == "hello world" and line["level"] == "WARNING" and line["request_id"] is None
        for line in lines
    ), done.stderr


def test_an_unknown_log_format_is_refused_at_start() -> None:
    done = _log_from_a_process("yaml")
    assert done.returncode != 0
    assert "LOG_FORMAT must be text or json" in done.stderr
