"""Progressive throttling of failed attempts (logins, one-time codes, signed API requests).

Each scope counts failures per key kind ("address", "subject", "source", ...) in the Django cache;
after `Limit.free` failures the key is locked, each further failure locks it for the next step
(1, 5, 15 minutes, then 1 hour every time) and the count is forgotten `Limit.decay` seconds after
the last failure. A *trusted source* (a device cookie, or an address that has succeeded before for
that subject) is limited only by its own failures, so an attacker elsewhere cannot lock it out.

Use it like this (see docs/decisions/0014-login-protection-and-headers.md):

    address = throttle.client_address(request)
    keys = throttle.keys_for(subject=client_id, address=address, realm="oauth_token")
    decision = throttle.check("oauth_token", keys)
    if not decision.allowed:
        return throttle.api_response(decision)
    ... on a failed attempt:   throttle.fail("oauth_token", keys)
    ... on a successful one:   throttle.succeed("oauth_token", keys)
                               throttle.trust("oauth_token", subject=client_id, address=address)

Counters are atomic on the local-memory and Redis caches (native increments); on the database
cache (whose increment is a read and a write) a short lock taken with `cache.add` serialises them.
Call these functions outside database transactions: the database cache must commit to be shared.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.core import metrics

logger = logging.getLogger("civicore.throttle")

AUDIT_ACTION = "auth.lockout"
MINUTE, HOUR, DAY = 60, 3600, 86400
STEPS = (1 * MINUTE, 5 * MINUTE, 15 * MINUTE, 1 * HOUR)
TRUST_SECONDS = 180 * DAY

# Replaced in tests to move time forward; cache expiry only ever runs later than this clock.
clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class Limit:
    """How one kind of key is throttled.

    free: failures tolerated before the first lock; steps: successive lock lengths in seconds, the
    last one repeating; decay: seconds after the last failure when the count is forgotten;
    personal: a lock of this key concerns one person (the audit entry names them);
    cleared_by_success: a success forgets this key's failures (only keys that belong to the one
    who succeeded: a trusted source, a session, never an address or an account as a whole)."""

    free: int
    steps: tuple[int, ...] = STEPS
    decay: int = 12 * HOUR
    personal: bool = False
    cleared_by_success: bool = False

    def lock_seconds(self, failures: int) -> int:
        if failures < self.free:
            return 0
        return self.steps[min(failures - self.free, len(self.steps) - 1)]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0
    limiter: str = ""
    locked: tuple[str, ...] = field(default=(), compare=False)

    @property
    def retry_at(self) -> datetime:
        return datetime.fromtimestamp(clock() + self.retry_after, tz=timezone.get_current_timezone())


ALLOWED = Decision(allowed=True)

_ADDRESS = Limit(free=20, decay=1 * HOUR)
_SUBJECT = Limit(free=5, personal=True)
_SOURCE = Limit(free=10, personal=True, cleared_by_success=True)

# Every scope in one table, so the limits can be read and tuned in one place. Key kinds:
# address: one client address, whatever it tries; subject: one account or API client, from
# sources it does not know; source: one subject from one trusted device or known address;
# session: one signed-in session.
SCOPES: dict[str, dict[str, Limit]] = {
    # Password step of the sign-in.
    "login": {"address": _ADDRESS, "subject": _SUBJECT, "source": _SOURCE},
    # Second factor (TOTP, recovery code, security key) or an e-mailed sign-in code.
    "mfa": {"address": _ADDRESS, "subject": _SUBJECT, "source": _SOURCE},
    # Passkey sign-in: the account is only claimed by the browser, so only the address counts.
    "passkey_login": {"address": _ADDRESS},
    # Confirming the password or a factor again while signed in.
    "reauthenticate": {
        "session": Limit(free=5, personal=True, cleared_by_success=True),
    },
    # Every request counts: each one sends an e-mail.
    "password_reset": {
        "address": Limit(free=10, steps=(5 * MINUTE, 15 * MINUTE, HOUR), decay=HOUR),
        "subject": Limit(free=3, steps=(5 * MINUTE, 15 * MINUTE, HOUR), decay=DAY, personal=True),
    },
    # Every sign-up form sent counts; generous, as a commune office kiosk serves many people.
    "signup": {"address": Limit(free=20, steps=(5 * MINUTE, 15 * MINUTE, HOUR), decay=HOUR)},
    # Agency systems: requests whose signature does not verify (civicore.identity.exchange_api).
    "agency_api": {
        "address": _ADDRESS,
        "subject": Limit(free=50, decay=1 * HOUR),
        "source": Limit(free=50, decay=1 * HOUR, cleared_by_success=True),
    },
    # The Prometheus endpoint: wrong metrics tokens (civicore.core.views.metrics).
    "metrics": {"address": Limit(free=10, decay=1 * HOUR)},
    # OAuth token endpoint: failed client assertions and grants (civicore.consent).
    "oauth_token": {
        "address": _ADDRESS,
        "subject": Limit(free=20, decay=1 * HOUR),
        "source": Limit(free=20, decay=1 * HOUR, cleared_by_success=True),
    },
}


def register(scope: str, **limits: Limit) -> None:
    """Add or replace a scope (start-up code and tests)."""
    SCOPES[scope] = dict(limits)


# --- keys ----------------------------------------------------------------------------------------


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the address the last of TRUSTED_PROXY_COUNT proxies
    of ours saw (X-Forwarded-For, counted from the right). IPv6 is cut to its /64, as an
    attacker holds the whole prefix."""
    address = request.META.get("REMOTE_ADDR", "") or ""
    proxies = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    return normalise_address(address)


def normalise_address(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False).network_address)
    return str(ip)


def keys_for(*, subject: str | None, address: str, realm: str, device: str | None = None) -> dict[str, str]:
    """The keys one attempt is counted against. A trusted source (a device the subject's owner
    verified, or an address that succeeded for the subject before) answers only for itself;
    anyone else is counted per address and per subject."""
    if subject and device:
        return {"source": f"{subject}|device:{device}"}
    if subject and is_trusted(realm, subject=subject, address=address):
        return {"source": f"{subject}|address:{address}"}
    keys = {"address": address}
    if subject:
        keys["subject"] = subject
    return keys


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _key(scope: str, kind: str, value: str, part: str) -> str:
    return f"throttle:{scope}:{kind}:{_digest(value)}:{part}"


def _cache() -> BaseCache:
    return caches[getattr(settings, "THROTTLE_CACHE", "default")]


def _limits(scope: str, keys: Mapping[str, str | None]) -> Iterator[tuple[str, str, Limit]]:
    try:
        limits = SCOPES[scope]
    except KeyError:
        raise ValueError(f"Unknown throttle scope {scope!r}") from None
    for kind, value in keys.items():
        if value is None or value == "":
            continue
        if kind not in limits:
            raise ValueError(f"Scope {scope!r} has no limit for {kind!r}")
        yield kind, str(value), limits[kind]


# --- the three calls -----------------------------------------------------------------------------


def check(
    scope: str,
    keys: Mapping[str, str | None],
    *,
    person: Any = None,
    details: Mapping[str, Any] | None = None,
) -> Decision:
    """Whether an attempt may go ahead now. Locks found expired are reported as lifted."""
    cache = _cache()
    entries = [
        (kind, value, limit, _key(scope, kind, value, "lock")) for kind, value, limit in _limits(scope, keys)
    ]
    records = cache.get_many([lock_key for *_rest, lock_key in entries]) if entries else {}
    now = clock()
    refused: Decision = ALLOWED
    for kind, value, limit, lock_key in entries:
        record = records.get(lock_key)
        if not isinstance(record, dict):
            continue
        until = float(record.get("until", 0))
        if until > now:
            wait = max(1, math.ceil(until - now))
            if wait > refused.retry_after:
                refused = Decision(allowed=False, retry_after=wait, limiter=kind)
        elif cache.delete(lock_key):
            _report(
                scope, kind, value, limit, event="unlocked", reason="expired", person=person, details=details
            )
    return refused


def fail(
    scope: str,
    keys: Mapping[str, str | None],
    *,
    person: Any = None,
    details: Mapping[str, Any] | None = None,
) -> Decision:
    """Count one failure against every key; lock those past their free allowance. Returns the
    decision for the next attempt. `person` (or a callable returning it) is named in the audit
    entry of a personal lock; `details` (say, the address) are added to it."""
    cache = _cache()
    now = clock()
    locked: list[str] = []
    longest: Decision = ALLOWED
    for kind, value, limit in _limits(scope, keys):
        failures = _increment(cache, _key(scope, kind, value, "n"), limit.decay)
        seconds = limit.lock_seconds(failures)
        if not seconds:
            continue
        until = now + seconds
        cache.set(
            _key(scope, kind, value, "lock"), {"until": until, "failures": failures}, seconds + limit.decay
        )
        locked.append(kind)
        if seconds > longest.retry_after:
            longest = Decision(allowed=False, retry_after=seconds, limiter=kind)
        _report(
            scope,
            kind,
            value,
            limit,
            event="locked",
            reason="failures",
            person=person,
            details={**(details or {}), "failures": failures, "seconds": seconds},
        )
    if not locked:
        return ALLOWED
    metrics.LOCKOUTS.inc()  # once per attempt that locked, however many of its keys
    return Decision(
        allowed=False, retry_after=longest.retry_after, limiter=longest.limiter, locked=tuple(locked)
    )


def succeed(scope: str, keys: Mapping[str, str | None], *, person: Any = None) -> None:
    """A successful attempt: forget the failures of the keys that belong to whoever succeeded
    (`Limit.cleared_by_success`); the others decay on their own."""
    _clear(scope, keys, person=person, reason="success", only_cleared_by_success=True)


def reset(scope: str, keys: Mapping[str, str | None], *, person: Any = None, reason: str = "reset") -> None:
    """Forget every failure and lock of these keys (an operator's unlock, a proven owner)."""
    _clear(scope, keys, person=person, reason=reason, only_cleared_by_success=False)


def _clear(
    scope: str, keys: Mapping[str, str | None], *, person: Any, reason: str, only_cleared_by_success: bool
) -> None:
    cache = _cache()
    for kind, value, limit in _limits(scope, keys):
        if only_cleared_by_success and not limit.cleared_by_success:
            continue
        count_key, lock_key = _key(scope, kind, value, "n"), _key(scope, kind, value, "lock")
        found = cache.get_many([count_key, lock_key])  # one read on the common path: nothing to forget
        if not found:
            continue
        cache.delete_many([count_key, lock_key])
        record = found.get(lock_key)
        if isinstance(record, dict) and float(record.get("until", 0)) > clock():
            _report(scope, kind, value, limit, event="unlocked", reason=reason, person=person, details={})


# --- trusted sources -----------------------------------------------------------------------------


def trust(realm: str, *, subject: str, address: str, seconds: int = TRUST_SECONDS) -> None:
    """Remember that `address` succeeded for `subject`: from now on it answers only for itself."""
    _cache().set(_key(realm, "known", f"{subject}|{address}", "t"), 1, seconds)


def is_trusted(realm: str, *, subject: str, address: str) -> bool:
    return bool(_cache().get(_key(realm, "known", f"{subject}|{address}", "t")))


# --- responses -----------------------------------------------------------------------------------


def retry_after_header(decision: Decision) -> dict[str, str]:
    return {"Retry-After": str(max(1, decision.retry_after))}


def api_response(decision: Decision) -> JsonResponse:
    """429 in the API's error shape {code, message, details}, with Retry-After."""
    return JsonResponse(
        {
            "code": "throttled",
            "message": _("Too many failed attempts. Try again in %(seconds)s seconds.")
            % {"seconds": decision.retry_after},
            "details": {"retry_after": decision.retry_after},
        },
        status=429,
        headers=retry_after_header(decision),
    )


# --- counting ------------------------------------------------------------------------------------


def _native_increment(cache: BaseCache) -> bool:
    """Local memory, Redis and memcached increment atomically; BaseCache.incr reads then writes."""
    return type(cache).incr is not BaseCache.incr


def _increment(cache: BaseCache, key: str, ttl: int) -> int:
    if _native_increment(cache):
        for _attempt in range(3):
            cache.add(key, 0, ttl)
            try:
                value = int(cache.incr(key))
            except ValueError:  # expired between add and incr
                continue
            cache.touch(key, ttl)  # the count decays from the last failure
            return value
        return 1
    with _locked(cache, key):
        value = int(cache.get(key) or 0) + 1
        cache.set(key, value, ttl)
        return value


LOCK_WAIT_SECONDS = 2.0


@contextmanager
def _locked(cache: BaseCache, key: str) -> Iterator[None]:
    """A mutex on `key` made of `cache.add`, which is atomic on every backend (the database cache
    relies on its primary key). Past the wait it goes ahead unlocked and says so: an extra
    failure may then be lost, the attempt is never refused for it."""
    lock_key = f"{key}:mutex"
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    delay = 0.002
    acquired = cache.add(lock_key, 1, 10)
    while not acquired and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
        acquired = cache.add(lock_key, 1, 10)
    if not acquired:
        logger.warning(
            "throttle: counter %s stayed locked for %.1fs; counting without the lock", key, LOCK_WAIT_SECONDS
        )
    try:
        yield
    finally:
        if acquired:
            cache.delete(lock_key)


# --- reporting -----------------------------------------------------------------------------------


def _printable(value: Any) -> Any:
    """Details may come from an attacker (a claimed client_id): short, with no control characters
    (no forged log lines, no NUL for PostgreSQL)."""
    if isinstance(value, str):
        return "".join(char for char in value[:200] if char.isprintable())
    return value


def _report(
    scope: str,
    kind: str,
    value: str,
    limit: Limit,
    *,
    event: str,
    reason: str,
    person: Any,
    details: Mapping[str, Any] | None,
) -> None:
    """Log and audit a lock or its end. The audit entry names the person only for personal keys,
    so the citizen sees locks of their own account, not those of an address they shared."""
    from civicore.audit.services import record

    named = person() if callable(person) else person
    if not limit.personal:
        named = None
    payload: dict[str, Any] = {
        "event": event,
        "reason": reason,
        "scope": scope,
        "limiter": kind,
        **{key: _printable(item) for key, item in (details or {}).items()},
    }
    if kind == "address":
        payload["address"] = value
    log = logger.warning if event == "locked" else logger.info
    log("throttle %s: %s", event, " ".join(f"{k}={v}" for k, v in payload.items()))
    record(
        actor=None,
        action=AUDIT_ACTION,
        subject_type="throttle",
        subject_id=f"{scope}:{kind}",
        person=named,
        details=payload,
    )
