"""civicore.core.throttle on the three caches it must work on: local memory, the database table
(the embedded default) and Redis (several machines; skipped when no server answers)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client, RequestFactory

from civicore.audit.models import AuditEntry
from civicore.core import throttle
from civicore.core.throttle import Limit
from civicore.identity.tests.factories import make_citizen

REDIS_URL = "redis://127.0.0.1:6379/15"
ATTACKER = "198.51.100.66"


def _redis_answers() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:  # noqa: BLE001 - any failure means no server to test against
        return False


def cache_settings(backend: str) -> dict[str, Any]:
    if backend == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": uuid.uuid4().hex}
    if backend == "db":
        return {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "civicore_cache"}
    if not _redis_answers():
        pytest.skip("no Redis server at 127.0.0.1:6379")
    # A fresh prefix per test: nothing to clean up, and runs in parallel cannot see each other.
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"civicore-test-{uuid.uuid4().hex}",
    }


@pytest.fixture(params=["locmem", "db", "redis"])
def backend(request: Any, settings: Any, db: Any) -> str:
    settings.CACHES = {"default": cache_settings(request.param)}
    return str(request.param)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(throttle, "clock", fake)
    return fake


@pytest.fixture
def scope(monkeypatch: pytest.MonkeyPatch) -> str:
    """A scope of our own: three free failures, then 60 s, 300 s, and 300 s again."""
    monkeypatch.setitem(throttle.SCOPES, "test", {})
    throttle.register(
        "test",
        address=Limit(free=5, steps=(60,), decay=3600),
        subject=Limit(free=3, steps=(60, 300), decay=3600, personal=True),
        source=Limit(free=3, steps=(60, 300), decay=3600, personal=True, cleared_by_success=True),
    )
    return "test"


def test_lock_lengths_grow_and_are_capped() -> None:
    limit = Limit(free=5)
    assert [limit.lock_seconds(n) for n in range(4, 11)] == [0, 60, 300, 900, 3600, 3600, 3600]


def test_failures_lock_progressively_and_locks_expire(backend: str, clock: Clock, scope: str) -> None:
    keys = {"subject": "user:1"}
    assert throttle.fail(scope, keys).allowed
    assert throttle.fail(scope, keys).allowed
    third = throttle.fail(scope, keys)
    assert not third.allowed and third.retry_after == 60 and third.limiter == "subject"
    assert third.locked == ("subject",)

    clock.advance(30)
    refused = throttle.check(scope, keys)
    assert not refused.allowed and refused.retry_after == 30

    clock.advance(31)
    assert throttle.check(scope, keys).allowed
    # The next failure after a lock locks again at once, for longer; then the last step repeats.
    assert throttle.fail(scope, keys).retry_after == 300
    clock.advance(301)
    assert throttle.fail(scope, keys).retry_after == 300


def test_keys_are_counted_separately(backend: str, clock: Clock, scope: str) -> None:
    for _ in range(3):
        throttle.fail(scope, {"subject": "user:1", "address": "192.0.2.1"})
    assert not throttle.check(scope, {"subject": "user:1"}).allowed
    assert throttle.check(scope, {"subject": "user:2"}).allowed
    assert throttle.check(scope, {"address": "192.0.2.1"}).allowed  # 3 of its 5
    decision = throttle.check(scope, {"subject": "user:2", "address": "192.0.2.1"})
    assert decision.allowed


def test_the_longest_lock_decides(backend: str, clock: Clock, scope: str) -> None:
    for _ in range(3):
        throttle.fail(scope, {"subject": "user:1"})
    clock.advance(61)
    throttle.fail(scope, {"subject": "user:1"})  # 300 s now
    for _ in range(5):
        throttle.fail(scope, {"address": "192.0.2.1"})  # 60 s
    decision = throttle.check(scope, {"subject": "user:1", "address": "192.0.2.1"})
    assert (decision.retry_after, decision.limiter) == (300, "subject")


def test_failures_decay(backend: str, scope: str) -> None:
    throttle.register("test", subject=Limit(free=2, decay=1))
    throttle.fail(scope, {"subject": "user:1"})
    time.sleep(2.1)  # real time: the cache's own expiry does the forgetting
    assert throttle.fail(scope, {"subject": "user:1"}).allowed


def test_success_clears_only_the_sources_own_failures(backend: str, clock: Clock, scope: str) -> None:
    keys = {"source": "user:1|device:abc"}
    for _ in range(3):
        throttle.fail(scope, keys)
    for _ in range(3):
        throttle.fail(scope, {"subject": "user:1"})
    throttle.succeed(scope, {**keys, "subject": "user:1"})
    assert throttle.check(scope, keys).allowed
    assert throttle.fail(scope, keys).allowed  # counting starts again from zero
    assert not throttle.check(scope, {"subject": "user:1"}).allowed  # an account's lock stands


def test_reset_unlocks_and_is_audited(backend: str, clock: Clock, scope: str) -> None:
    person = make_citizen()
    for _ in range(3):
        throttle.fail(scope, {"subject": "user:1"}, person=person)
    throttle.reset(scope, {"subject": "user:1"}, person=person)
    assert throttle.check(scope, {"subject": "user:1"}).allowed
    events = [(e.details["event"], e.details["reason"]) for e in AuditEntry.objects.order_by("id")]
    assert events == [("locked", "failures"), ("unlocked", "reset")]


def test_locks_and_unlocks_are_audited_with_the_person_for_personal_keys(
    backend: str, clock: Clock, scope: str
) -> None:
    person = make_citizen()
    keys = {"subject": "user:1", "address": "192.0.2.7"}
    for _ in range(5):
        throttle.fail(scope, keys, person=lambda: person, details={"address": "192.0.2.7"})
    clock.advance(3601)
    throttle.check(scope, keys, person=person)
    throttle.check(scope, keys, person=person)  # an unlock is reported once

    entries = list(AuditEntry.objects.filter(action="auth.lockout").order_by("id"))
    summary = [(e.details["event"], e.details["limiter"], e.person_id) for e in entries]
    assert summary == [
        ("locked", "subject", person.pk),
        ("locked", "subject", person.pk),
        ("locked", "subject", person.pk),
        ("locked", "address", None),  # an address is not one person's
        ("unlocked", "subject", person.pk),
        ("unlocked", "address", None),
    ]
    assert entries[0].details["failures"] == 3 and entries[0].details["seconds"] == 60
    assert entries[3].details["address"] == "192.0.2.7"


def test_trusted_sources_answer_only_for_themselves(backend: str, scope: str) -> None:
    untrusted = throttle.keys_for(subject="user:1", address="192.0.2.1", realm="test")
    assert untrusted == {"address": "192.0.2.1", "subject": "user:1"}
    throttle.trust("test", subject="user:1", address="192.0.2.1")
    assert throttle.keys_for(subject="user:1", address="192.0.2.1", realm="test") == {
        "source": "user:1|address:192.0.2.1"
    }
    assert throttle.keys_for(subject="user:2", address="192.0.2.1", realm="test")["subject"] == "user:2"
    assert throttle.keys_for(subject="user:1", address="192.0.2.1", realm="other") == untrusted
    with_device = throttle.keys_for(subject="user:1", address="198.51.100.9", realm="test", device="d1")
    assert with_device == {"source": "user:1|device:d1"}
    assert throttle.keys_for(subject=None, address="192.0.2.1", realm="test") == {"address": "192.0.2.1"}


def test_unknown_scopes_and_keys_are_programming_errors(db: Any, scope: str) -> None:
    with pytest.raises(ValueError, match="Unknown throttle scope"):
        throttle.check("nope", {"address": "192.0.2.1"})
    with pytest.raises(ValueError, match="no limit for 'session'"):
        throttle.fail(scope, {"session": "x"})
    assert throttle.check(scope, {"subject": None, "address": ""}).allowed  # absent keys are skipped


@pytest.mark.parametrize("backend_name", ["locmem", "db", "redis"])
@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_are_all_counted(backend_name: str, settings: Any, scope: str) -> None:
    if backend_name == "db" and connection.vendor == "sqlite":
        pytest.skip("threads share one in-memory SQLite database; PostgreSQL runs this")
    settings.CACHES = {"default": cache_settings(backend_name)}
    throttle.register("test", subject=Limit(free=10_000, decay=3600))
    threads, per_thread = 8, 25

    def hammer() -> None:
        try:
            for _ in range(per_thread):
                throttle.fail(scope, {"subject": "user:race"})
        finally:
            connection.close()

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    count = throttle._cache().get(throttle._key(scope, "subject", "user:race", "n"))
    assert count == threads * per_thread
    if backend_name == "db":
        throttle._cache().clear()  # a transactional test leaves the table as it found it


def test_client_address_ignores_forwarded_for_unless_proxies_are_configured(settings: Any) -> None:
    factory = RequestFactory()
    request = factory.get("/", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.1")
    settings.TRUSTED_PROXY_COUNT = 0
    assert throttle.client_address(request) == "203.0.113.5"
    settings.TRUSTED_PROXY_COUNT = 1
    assert throttle.client_address(request) == "198.51.100.1"  # what our proxy saw, not what was claimed
    settings.TRUSTED_PROXY_COUNT = 2
    assert throttle.client_address(request) == "6.6.6.6"
    settings.TRUSTED_PROXY_COUNT = 3  # fewer hops than proxies: the header is not ours
    assert throttle.client_address(request) == "203.0.113.5"


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"),  # a whole /64 is one subscriber
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("not-an-address", "unknown"),
        ("", "unknown"),
    ],
)
def test_addresses_are_normalised(remote: str, expected: str) -> None:
    assert throttle.client_address(RequestFactory().get("/", REMOTE_ADDR=remote)) == expected


def test_api_response_says_when_to_retry() -> None:
    response = throttle.api_response(throttle.Decision(allowed=False, retry_after=42, limiter="address"))
    assert response.status_code == 429
    assert response["Retry-After"] == "42"
    body = json.loads(response.content)
    assert body["code"] == "throttled" and body["details"] == {"retry_after": 42}


# --- the agency API ------------------------------------------------------------------------------

QUERY = "/api/v1/exchange/person-query"


def _query(client: Client, app: Any, key: Any) -> Any:
    from civicore.registry.tests.factories import signed_request

    token = signed_request(
        app,
        key,
        audience=f"http://testserver{QUERY}",
        person={"national_id": "079000000001"},
        items=["address"],
        purpose="benefit",
    )
    return client.post(QUERY, token, content_type="application/jose")


def test_agency_api_throttles_bad_signatures_but_not_the_agencys_own_host(db: Any, clock: Clock) -> None:
    from joserfc.jwk import ECKey

    from civicore.registry.tests.factories import make_application

    app, key = make_application()
    forged = ECKey.generate_key("P-256", auto_kid=True)
    agency_host = Client(REMOTE_ADDR="192.0.2.200")
    assert _query(agency_host, app, key).status_code == 404  # verified; nobody has that number

    attacker = Client(REMOTE_ADDR=ATTACKER)
    statuses = [_query(attacker, app, forged).status_code for _ in range(21)]
    assert statuses == [401] * 20 + [429]
    refused = _query(attacker, app, key)  # even a good signature, from a locked address
    assert refused.status_code == 429 and refused["Retry-After"] == "60"
    assert refused.json()["code"] == "throttled"
    entry = AuditEntry.objects.get(action="auth.lockout", details__limiter="address")
    assert entry.details["client_id"] == app.client_id and entry.details["address"] == ATTACKER

    # Forgeries naming the client from many addresses lock the client for addresses it never
    # used; its own host goes on working.
    for n in range(30):
        _query(Client(REMOTE_ADDR=f"203.0.113.{n}"), app, forged)
    assert _query(Client(REMOTE_ADDR="203.0.113.250"), app, key).status_code == 429
    assert _query(agency_host, app, key).status_code == 404


def test_agency_api_counts_unreadable_bodies_per_address(db: Any, clock: Clock) -> None:
    client = Client(REMOTE_ADDR=ATTACKER)
    statuses = [client.post(QUERY, "x" * n, content_type="text/plain").status_code for n in range(21)]
    assert statuses == [415] * 19 + [429, 429]
    garbage = Client(REMOTE_ADDR="198.51.100.2")
    nul = garbage.post(QUERY, "a.eyJpc3MiOiJ4AHkifQ.b", content_type="application/jose")  # iss "x\0y"
    assert nul.status_code == 401
