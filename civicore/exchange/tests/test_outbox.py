from __future__ import annotations

import pytest
from django.db import transaction

from civicore.exchange import services
from civicore.exchange.models import ChangeEvent, Delivery
from civicore.exchange.tests.factories import change, make_subscriber
from civicore.identity.models import ProfileItem
from civicore.identity.signals import profile_items_changed
from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/hook"


def test_a_change_writes_one_event_and_a_delivery_per_interested_subscriber():
    person = make_citizen()
    address = make_subscriber(URL, items=["address"])
    both = make_subscriber(URL, items=["address", "full_name"])
    name_only = make_subscriber(URL, items=["full_name"])
    inactive = make_subscriber(URL, items=["address"])
    inactive.active = False
    inactive.save()

    event = change(person, ["address"], cause="agency.update")

    assert event is not None and event.items == ["address"] and event.cause == "agency.update"
    deliveries = {d.application_id: d for d in Delivery.objects.filter(event=event)}
    assert set(deliveries) == {address.pk, both.pk}
    assert deliveries[both.pk].items == ["address"]  # only what changed, not all it subscribes to
    assert all(d.status == Delivery.Status.PENDING and d.attempts == 0 for d in deliveries.values())
    assert name_only.pk not in deliveries


def test_nothing_but_the_event_is_written_when_nobody_subscribes():
    person = make_citizen()
    make_subscriber(URL, items=["full_name"])
    event = change(person, ["address"])
    assert event is not None
    assert not Delivery.objects.exists()


def test_the_outbox_rolls_back_with_the_change():
    person = make_citizen()
    make_subscriber(URL, items=["address"])
    with pytest.raises(RuntimeError), transaction.atomic():
        profile_items_changed.send(
            sender=ProfileItem,
            person=person,
            changes=[{"key": "address", "source": "declared", "verified_at": None}],
            cause="citizen.declare",
            actor=None,
            agency=None,
        )
        assert Delivery.objects.count() == 1
        raise RuntimeError("the profile change failed")
    assert not ChangeEvent.objects.exists() and not Delivery.objects.exists()


def test_the_webhook_id_is_stable_per_event_and_subscriber_and_unique_otherwise():
    person = make_citizen()
    first = make_subscriber(URL)
    second = make_subscriber(URL)
    event = change(person, ["address"])
    assert event is not None
    ids = dict(Delivery.objects.filter(event=event).values_list("application_id", "webhook_id"))
    assert ids[first.pk] == services.webhook_id_for(event.uuid, first.client_id)
    assert services.webhook_id_for(event.uuid, first.client_id) == services.webhook_id_for(
        event.uuid, first.client_id
    )
    assert ids[first.pk] != ids[second.pk]
    again = change(person, ["address"])
    assert again is not None
    assert services.webhook_id_for(again.uuid, first.client_id) != ids[first.pk]


def test_many_changes_are_written_in_bulk_with_few_queries(django_assert_max_num_queries):
    people = [make_citizen() for _ in range(5)]
    for _ in range(3):
        make_subscriber(URL)
    with django_assert_max_num_queries(6), transaction.atomic():
        events = services.change_events_record(
            changes=[
                services.Change(person=p, changes=[{"key": "address", "source": "declared"}]) for p in people
            ]
        )
    assert len(events) == 5
    assert Delivery.objects.count() == 15


def test_backoff_doubles_with_jitter_up_to_the_cap(settings):
    settings.EXCHANGE_BACKOFF_BASE_SECONDS = 1.0
    settings.EXCHANGE_BACKOFF_MAX_SECONDS = 30.0
    assert [services.backoff(n, jitter=False) for n in range(1, 7)] == [1, 2, 4, 8, 16, 30]
    for attempt in range(1, 5):
        delays = {services.backoff(attempt) for _ in range(50)}
        nominal = 2 ** (attempt - 1)
        assert all(0.75 * nominal <= d <= 1.25 * nominal for d in delays)
        assert len(delays) > 1  # jittered
    assert services.backoff(40) <= 30.0
