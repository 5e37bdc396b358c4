from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from civicore.exchange import services
from civicore.exchange.models import ChangeEvent, Delivery
from civicore.exchange.tests.factories import change, make_subscriber
from civicore.identity.tests.factories import make_citizen
from civicore.notify.models import Notification

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/hook"


def _login(user, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def _settle(delivery: Delivery, status: str) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(
        status=status, attempts=1, delivered_at=timezone.now() if status == "delivered" else None
    )


def test_one_receipt_per_change_once_every_delivery_is_settled():
    person = make_citizen(preferred_language="en")
    first = make_subscriber(URL)
    second = make_subscriber(URL)
    event = change(person, ["address"])
    assert event is not None
    d1, d2 = Delivery.objects.filter(event=event).order_by("application_id")

    _settle(d1, "delivered")
    assert services.receipts_send() == 0  # the second agency has not answered yet
    _settle(d2, "dead")
    assert services.receipts_send() == 1
    assert services.receipts_send() == 0  # never twice

    [notification] = Notification.objects.filter(user=person.user)
    assert notification.link == f"/my-data/changes/{event.uuid}/"
    assert first.agency.name in notification.body and "confirmed" in notification.body
    assert second.agency.name in notification.body and "could not reach" in notification.body
    event.refresh_from_db()
    assert event.receipt_sent_at is not None

    # Replayed later and confirmed: the page shows it, no second message.
    Delivery.objects.filter(pk=d2.pk).update(status="pending")
    _settle(d2, "delivered")
    assert services.receipts_send() == 0
    assert Notification.objects.filter(user=person.user).count() == 1


def test_a_change_nobody_subscribes_to_gets_a_receipt_saying_so():
    person = make_citizen(preferred_language="en")
    event = change(person, ["phone"])
    assert event is not None
    assert services.receipts_send() == 1
    [notification] = Notification.objects.filter(user=person.user)
    assert "no agency needed telling" in notification.body


def test_the_receipt_is_in_the_citizens_language():
    vietnamese = make_citizen(preferred_language="vi")
    english = make_citizen(preferred_language="en")
    app = make_subscriber(URL)
    for person in (vietnamese, english):
        event = change(person, ["address"])
        Delivery.objects.filter(event=event).update(
            status="delivered", attempts=1, delivered_at=timezone.now()
        )
    services.receipts_send()
    assert app.agency.name_vi in Notification.objects.get(user=vietnamese.user).body
    assert app.agency.name_en in Notification.objects.get(user=english.user).body


def test_the_receipt_page_lists_each_agency_and_when_it_confirmed():
    person = make_citizen()
    told = make_subscriber(URL)
    waiting = make_subscriber(URL)
    event = change(person, ["address"])
    assert event is not None
    _settle(Delivery.objects.get(event=event, application=told), "delivered")

    page = _login(person.user).get(f"/my-data/changes/{event.uuid}/")
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    html = page.content.decode()
    assert told.agency.name in html and waiting.agency.name in html
    assert "Confirmed" in html and "Being sent" in html and "still telling" in html
    assert "<caption>" in html and 'scope="col"' in html

    listing = _login(person.user).get("/my-data/changes/").content.decode()
    assert str(event.uuid) in listing and "1 of 2 confirmed" in listing

    vietnamese = _login(person.user, "vi").get(f"/my-data/changes/{event.uuid}/")
    assert vietnamese.status_code == 200 and 'lang="vi"' in vietnamese.content.decode()


def test_a_change_with_no_subscriber_says_no_agency_needed_telling():
    person = make_citizen()
    event = change(person, ["phone"])
    assert event is not None
    html = _login(person.user).get(f"/my-data/changes/{event.uuid}/").content.decode()
    assert "no agency needed telling" in html


def test_only_the_citizen_sees_their_receipt():
    person = make_citizen()
    make_subscriber(URL)
    event = change(person, ["address"])
    assert event is not None
    other = make_citizen()
    assert _login(other.user).get(f"/my-data/changes/{event.uuid}/").status_code == 404
    anonymous = Client().get(f"/my-data/changes/{event.uuid}/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert ChangeEvent.objects.count() == 1
