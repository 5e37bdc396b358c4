"""The request id: one short token per web request, carried by every log line it causes.

An incoming X-Request-ID (from a proxy or the caller) is kept when it is 1-64 characters of
[A-Za-z0-9._-]; anything else is replaced by a fresh id and never logged. The id lives in a
context variable for the request, and jobs enqueued meanwhile store it so the worker can set it
again while it runs them (civicore.core.jobs).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "X-Request-ID"
MAX_LENGTH = 64
_ALLOWED = re.compile(r"[A-Za-z0-9._-]{1,64}")

_current: ContextVar[str] = ContextVar("civicore_request_id", default="")


def get() -> str:
    """The id of the request (or job) being handled; "" outside any."""
    return _current.get()


def set_current(value: str) -> None:
    _current.set(value)


def new() -> str:
    return uuid.uuid4().hex


def accepted(value: str | None) -> str | None:
    """`value` when it is a well-formed id, else None."""
    if value is not None and _ALLOWED.fullmatch(value):
        return value
    return None


def from_header(value: str | None) -> str:
    """The id for a request that sent `value` in X-Request-ID (or nothing)."""
    return accepted(value) or new()


@contextmanager
def bound(value: str) -> Iterator[None]:
    """Run a block (a job) under `value`, restoring the previous id afterwards."""
    token = _current.set(value)
    try:
        yield
    finally:
        _current.reset(token)


def clear(**kwargs: object) -> None:
    """request_finished receiver: the thread's next work is not this request's."""
    _current.set("")
