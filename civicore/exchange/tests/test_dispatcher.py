from __future__ import annotations

import datetime as dt
import hashlib
import time

import pytest
from django.utils import timezone

from civicore.audit.models import AuditEntry
from civicore.exchange import services
from civicore.exchange.dispatcher import Dispatcher
from civicore.exchange.models import Delivery
from civicore.exchange.tests.factories import change, make_subscriber
from civicore.exchange.tests.receivers import always, fails_half, free_port, unlucky
from civicore.exchange.transport import HttpTransport, InProcessTransport, Outgoing
from civicore.identity.models import ProfileItem
from civicore.identity.tests.factories import make_citizen
from civicore.registry.models import MessageLogEntry

pytestmark = pytest.mark.django_db


def deliver_all(rounds: int = 50) -> None:
    """Run the dispatcher until nothing is pending (retries are due within a few hundredths)."""
    for _ in range(rounds):
        Dispatcher(worker_id="test").run(until_idle=True)
        if not Delivery.objects.filter(status=Delivery.Status.PENDING).exists():
            return
        Delivery.objects.filter(status=Delivery.Status.PENDING).update(next_attempt_at=timezone.now())
    raise AssertionError("deliveries still pending")


def test_a_change_is_delivered_signed_with_the_current_value_and_logged(receivers):
    receiver = receivers()
    person = make_citizen()
    app = make_subscriber(receiver.url, items=["address"])
    ProfileItem.objects.filter(person=person, key="address").update(value="5 Đường Hai Bà Trưng, xã Tân Lập")
    event = change(person, ["address"])

    deliver_all()

    delivery = Delivery.objects.get(event=event)
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 1
    assert delivery.delivered_at is not None and delivery.last_status == 200
    assert receiver.invalid == []
    [arrival] = receiver.arrivals
    assert arrival.webhook_id == delivery.webhook_id
    payload = arrival.payload
    assert payload["type"] == "person.changed"
    assert payload["data"]["event_id"] == str(event.uuid)
    assert payload["data"]["person"] == {"national_id": person.national_id}
    assert payload["data"]["items"]["address"]["value"] == "5 Đường Hai Bà Trưng, xã Tân Lập"
    assert set(payload["data"]["items"]) == {"address"}  # never more than what changed

    entry = AuditEntry.objects.get(action="exchange.change.delivered")
    assert entry.person_id == person.pk and entry.agency_id == app.agency_id
    assert entry.details["client_id"] == app.client_id
    assert entry.details["items"] == ["address"] and entry.details["event"] == str(event.uuid)
    log = MessageLogEntry.objects.get(operation="change.deliver")
    assert log.direction == "out" and log.application_id == app.pk and log.status == 200
    assert log.message_id == delivery.webhook_id and log.audit_entry_id == entry.pk
    assert log.request_digest == hashlib.sha256(arrival.body).hexdigest()
    assert log.response_digest == hashlib.sha256(b"ok").hexdigest()


def test_failures_are_retried_with_the_same_webhook_id_until_confirmed(receivers):
    receiver = receivers(behaviour=fails_half(times=2))
    person = make_citizen()
    make_subscriber(receiver.url)
    events = [change(person, ["address"]) for _ in range(16)]

    deliver_all()

    deliveries = Delivery.objects.filter(event__in=events)
    assert {d.status for d in deliveries} == {Delivery.Status.DELIVERED}
    for d in deliveries:
        assert d.attempts == (3 if unlucky(d.webhook_id) else 1)
        assert receiver.seen[d.webhook_id] == d.attempts
    # Each retry is the same message (same id and body) with a fresh timestamp and signature.
    retried = next(d for d in deliveries if d.attempts == 3)
    arrivals = [a for a in receiver.arrivals if a.webhook_id == retried.webhook_id]
    assert len({a.body for a in arrivals}) == 1
    assert AuditEntry.objects.filter(action="exchange.change.delivered").count() == len(events)


def test_a_delivery_that_keeps_failing_is_dead_after_max_attempts(receivers, settings):
    settings.EXCHANGE_MAX_ATTEMPTS = 3
    receiver = receivers(behaviour=always(503))
    person = make_citizen()
    make_subscriber(receiver.url)
    event = change(person, ["address"])

    deliver_all()

    delivery = Delivery.objects.get(event=event)
    assert delivery.status == Delivery.Status.DEAD and delivery.attempts == 3
    assert delivery.last_status == 503 and delivery.last_error == "HTTP 503"
    assert receiver.seen[delivery.webhook_id] == 3
    assert not AuditEntry.objects.filter(action="exchange.change.delivered").exists()


def test_410_gone_is_dead_at_once(receivers):
    receiver = receivers(behaviour=always(410))
    make_subscriber(receiver.url)
    event = change(make_citizen(), ["address"])
    deliver_all()
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == Delivery.Status.DEAD and delivery.attempts == 1 and delivery.last_status == 410


def test_an_unreachable_receiver_is_retried_with_back_off(settings):
    settings.EXCHANGE_BACKOFF_BASE_SECONDS = 60.0
    settings.EXCHANGE_BACKOFF_MAX_SECONDS = 600.0
    make_subscriber(f"http://127.0.0.1:{free_port()}/down")
    event = change(make_citizen(), ["address"])
    before = timezone.now()
    Dispatcher(worker_id="test").run(until_idle=True)
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == Delivery.Status.PENDING and delivery.attempts == 1
    assert delivery.last_status is None and delivery.last_error == "connection refused"
    assert before + dt.timedelta(seconds=44) < delivery.next_attempt_at < before + dt.timedelta(seconds=80)
    assert delivery.locked_by == "" and delivery.locked_until is None


def test_a_slow_receiver_times_out_and_is_retried(receivers, settings):
    settings.EXCHANGE_TIMEOUT_SECONDS = 0.2
    settings.EXCHANGE_BACKOFF_BASE_SECONDS = 60.0
    receiver = receivers(delay=0.5)
    make_subscriber(receiver.url)
    event = change(make_citizen(), ["address"])
    Dispatcher(worker_id="test").run(until_idle=True)
    delivery = Delivery.objects.get(event=event)
    assert delivery.status == Delivery.Status.PENDING and delivery.last_error == "timeout"


def test_a_lease_held_by_another_worker_is_respected_until_it_runs_out(receivers):
    receiver = receivers()
    make_subscriber(receiver.url)
    event = change(make_citizen(), ["address"])
    claimed = services.deliveries_claim(worker_id="crashed", limit=10)
    assert [c.event_id for c in claimed] == [event.pk]
    delivery = Delivery.objects.get(event=event)
    assert delivery.locked_by == "crashed" and delivery.next_attempt_at > timezone.now()

    Dispatcher(worker_id="test").run(until_idle=True)
    assert receiver.arrivals == []  # the crashed worker's lease still stands

    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    Dispatcher(worker_id="test").run(until_idle=True)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and len(receiver.arrivals) == 1


def test_leases_are_renewed_while_deliveries_wait_and_released_on_stop(receivers):
    receiver = receivers()
    make_subscriber(receiver.url)
    change(make_citizen(), ["address"])
    dispatcher = Dispatcher(transport=HttpTransport(threads=1), worker_id="test")
    services.deliveries_claim(worker_id="test", limit=10)  # held by "test" without being sent
    held = Delivery.objects.get()
    dispatcher._in_flight[held.pk] = None  # type: ignore[assignment]
    Delivery.objects.filter(pk=held.pk).update(next_attempt_at=timezone.now())
    dispatcher.renew_leases(force=True)
    held.refresh_from_db()
    assert held.next_attempt_at > timezone.now() + dt.timedelta(seconds=30)
    dispatcher.run(stop=lambda: True)  # stopping at once: what it held is given back
    held.refresh_from_db()
    assert held.locked_by == "" and held.next_attempt_at <= timezone.now()


def test_a_recorded_delivery_is_not_overwritten_by_a_late_duplicate(receivers):
    receiver = receivers()
    make_subscriber(receiver.url)
    event = change(make_citizen(), ["address"])
    deliver_all()
    delivery = Delivery.objects.get(event=event)
    late = services.Attempt(
        delivery_id=delivery.pk, attempts_before=0, status=500, error="HTTP 500",
        finished_at=timezone.now(), application_id=delivery.application_id, agency_id=None,
        client_id="x", person_id=None, event_uuid=str(event.uuid), items=["address"],
        webhook_id=delivery.webhook_id,
    )  # fmt: skip
    services.deliveries_record(attempts=[late])
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.last_status == 200


def test_a_withdrawn_application_or_item_is_not_sent(receivers):
    receiver = receivers()
    person = make_citizen()
    withdrawn = make_subscriber(receiver.url)
    narrowed = make_subscriber(receiver.url, items=["address", "full_name"])
    event = change(person, ["address", "full_name"])
    withdrawn.active = False
    withdrawn.save()
    narrowed.allowed_items = ["full_name"]
    narrowed.subscribed_items = ["full_name"]
    narrowed.save()

    deliver_all()

    dead = Delivery.objects.get(event=event, application=withdrawn)
    assert dead.status == Delivery.Status.DEAD and "inactive" in dead.last_error
    [arrival] = receiver.arrivals
    assert set(arrival.payload["data"]["items"]) == {"full_name"}


def test_claims_and_outcomes_take_a_fixed_number_of_queries(receivers, django_assert_max_num_queries):
    receiver = receivers()
    people = [make_citizen() for _ in range(10)]
    for _ in range(3):
        make_subscriber(receiver.url)
    for person in people:
        change(person, ["address"])
    dispatcher = Dispatcher(worker_id="test")
    dispatcher.claim_and_send()  # creates the signing key on first use
    Delivery.objects.update(status=Delivery.Status.PENDING, next_attempt_at=timezone.now())
    dispatcher.transport.close()
    dispatcher = Dispatcher(worker_id="test")
    with django_assert_max_num_queries(10):
        assert dispatcher.claim_and_send() == 30
    deadline = timezone.now() + dt.timedelta(seconds=10)
    while dispatcher._results.qsize() < 30 and timezone.now() < deadline:
        pass
    with django_assert_max_num_queries(8):
        assert dispatcher.record_results() == 30
    dispatcher.transport.close()
    assert Delivery.objects.filter(status=Delivery.Status.DELIVERED).count() == 30


def test_a_receiver_with_a_full_backlog_does_not_hold_up_the_others(settings):
    settings.EXCHANGE_TRANSPORT = "civicore.exchange.transport.InProcessTransport"
    settings.EXCHANGE_CONNECTIONS_PER_RECEIVER = 1  # a backlog of 32 per receiver
    settings.EXCHANGE_CLAIM_BATCH = 32
    InProcessTransport.reset()
    slow = make_subscriber("http://slow.example/hook")
    people = [make_citizen() for _ in range(40)]
    for person in people:
        change(person, ["address"])
    fast = make_subscriber("http://fast.example/hook")
    change(people[0], ["address"])
    dispatcher = Dispatcher(worker_id="test")
    assert dispatcher.claim_and_send() == 32  # all the slow receiver's: they were due first
    assert dispatcher.claim_and_send() == 1  # its backlog is full, so the next claim skips it
    assert [r.url for r in InProcessTransport.sent[-1:]] == ["http://fast.example/hook"]
    dispatcher.record_results()
    assert Delivery.objects.filter(status=Delivery.Status.DELIVERED, application=fast).count() == 1
    assert Delivery.objects.filter(status=Delivery.Status.DELIVERED, application=slow).count() == 32
    InProcessTransport.reset()


def test_a_request_waiting_behind_a_slow_receiver_is_signed_when_it_is_sent(receivers):
    receiver = receivers(delay=0.2)
    transport = HttpTransport(threads=4, per_receiver=1)
    signed_at: list[float] = []
    done: list[int | None] = []

    def sign() -> dict[str, str]:
        signed_at.append(time.monotonic())
        return {}

    submitted = time.monotonic()
    for n in range(3):
        transport.submit(Outgoing(n, receiver.url, {}, b"{}", sign), lambda r: done.append(r.status))
    deadline = time.monotonic() + 10
    while len(done) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    transport.close()
    assert len(done) == 3
    # One connection to this receiver: the third request waited for the first two to be answered.
    assert signed_at[2] - submitted >= 0.35
