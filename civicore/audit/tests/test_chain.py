from __future__ import annotations

import pytest
from django.core.management import call_command

from civicore.audit import services
from civicore.audit.models import AuditEntry
from civicore.identity.tests.factories import make_citizen

pytestmark = pytest.mark.django_db


def _entries(n=5):
    person = make_citizen()
    for i in range(n):
        services.record(
            actor=person.user, action="case.view", subject=person, person=person, details={"i": i}
        )
    services.seal()
    return person


def test_intact_chain_verifies_and_command_exits_zero(capsys):
    _entries()
    assert services.verify() is None
    call_command("audit", "verify")
    assert "intact" in capsys.readouterr().out


def test_edited_row_is_found_and_command_exits_non_zero(capsys):
    _entries()
    third = AuditEntry.objects.get(seq=3)
    AuditEntry.objects.filter(pk=third.pk).update(details={"i": 99})
    broken = services.verify()
    assert broken is not None and broken.seq == 3
    with pytest.raises(SystemExit) as exited:
        call_command("audit", "verify")
    assert exited.value.code == 1
    assert "#3" in capsys.readouterr().err


def test_deleted_row_is_found():
    _entries()
    AuditEntry.objects.filter(seq=2).delete()
    assert services.verify().seq == 2


def test_recomputed_hash_still_breaks_the_next_link():
    _entries()
    entry = AuditEntry.objects.get(seq=2)
    entry.actor_label = "someone else"
    entry.hash = services._digest(entry)
    entry.save()
    assert services.verify().seq == 3


def test_entries_are_sealed_in_order_after_commit(capsys):
    person = make_citizen()
    first = services.record(actor=person.user, action="a", subject=person, person=person)
    assert first.seq is None and first.hash == ""
    call_command("audit", "verify")
    assert "1 new entries not sealed yet" in capsys.readouterr().out
    services.record(actor=None, action="b", subject=person)
    assert services.seal() == 2
    assert list(AuditEntry.objects.order_by("seq").values_list("action", flat=True)) == ["a", "b"]
    services.record(actor=None, action="c", subject=person)
    assert services.seal() == 1 and services.verify() is None
    assert AuditEntry.objects.get(action="c").prev_hash == AuditEntry.objects.get(action="b").hash


def test_worker_seals_the_log():
    from civicore.core import jobs

    person = make_citizen()
    services.record(actor=None, action="x", subject=person)
    jobs.work(once=True)
    assert services.unsealed_count() == 0
