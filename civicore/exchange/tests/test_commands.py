from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from civicore.audit.models import AuditEntry
from civicore.exchange.models import Delivery
from civicore.exchange.tests.factories import change, make_subscriber
from civicore.exchange.transport import InProcessTransport
from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_status_and_replay_from_the_command_line():
    app = make_subscriber("http://127.0.0.1:9/hook")
    for _ in range(3):
        change(make_citizen(), ["address"])
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    Delivery.objects.filter(id__in=ids[:2]).update(status=Delivery.Status.DEAD, attempts=8)

    status = _run("deliveries", "status")
    assert "pending 1 (failing 0), delivered 0, dead 2" in status and app.client_id in status

    assert "Replayed 1 deliveries" in _run("deliveries", "replay", str(ids[0]))
    assert "Replayed 1 deliveries" in _run("deliveries", "replay", "--all-dead")
    assert not Delivery.objects.filter(status=Delivery.Status.DEAD).exists()
    assert AuditEntry.objects.filter(action="exchange.delivery.replay", actor_label="system").count() == 2
    with pytest.raises(CommandError):
        _run("deliveries", "replay")
    with pytest.raises(CommandError):
        _run("deliveries", "replay", "999999")


def test_the_worker_delivers_with_the_configured_transport(settings):
    settings.EXCHANGE_TRANSPORT = "civicore.exchange.transport.InProcessTransport"
    InProcessTransport.reset()
    InProcessTransport.handlers = {"http://gone.example": lambda request: 410}
    ok = make_subscriber("http://ok.example/hook")
    gone = make_subscriber("http://gone.example/hook")
    event = change(make_citizen(), ["address"])

    output = _run("worker", "--once", "--deliveries-only")

    assert "2 delivery attempts" in output
    assert Delivery.objects.get(event=event, application=ok).status == Delivery.Status.DELIVERED
    assert Delivery.objects.get(event=event, application=gone).status == Delivery.Status.DEAD
    assert len(InProcessTransport.sent) == 2
    InProcessTransport.reset()
