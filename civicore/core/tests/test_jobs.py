from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from civicore.core import jobs
from civicore.core.models import Job

pytestmark = pytest.mark.django_db

calls: list[dict] = []


@jobs.job("test.record")
def _record(**payload):
    calls.append(payload)


@jobs.job("test.flaky")
def _flaky(fail_times: int, key: str):
    calls.append({"key": key})
    if sum(1 for c in calls if c.get("key") == key) <= fail_times:
        raise RuntimeError("receiver down")


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()


def test_enqueued_job_runs_once_and_is_done():
    job = jobs.enqueue("test.record", value=1)
    assert jobs.work(once=True) == 1
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and calls == [{"value": 1}]
    assert jobs.work(once=True) == 0


def test_failures_retry_with_backoff_then_succeed():
    job = jobs.enqueue("test.flaky", fail_times=2, key="a")
    jobs.work(once=True)
    job.refresh_from_db()
    assert job.status == Job.Status.PENDING and job.attempts == 1 and "receiver down" in job.last_error
    assert job.run_after > timezone.now()
    for _ in range(2):
        Job.objects.filter(pk=job.pk).update(run_after=timezone.now())
        jobs.work(once=True)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.attempts == 3


def test_exhausted_job_is_dead_and_replay_runs_it_again():
    job = jobs.enqueue("test.flaky", fail_times=100, key="b")
    Job.objects.filter(pk=job.pk).update(max_attempts=2)
    for _ in range(2):
        Job.objects.filter(pk=job.pk).update(run_after=timezone.now())
        jobs.work(once=True)
    job.refresh_from_db()
    assert job.status == Job.Status.DEAD
    jobs.replay(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.PENDING and job.attempts == 0


def test_a_lease_left_by_a_killed_worker_expires_and_the_job_runs():
    job = jobs.enqueue("test.record", value=2)
    # A worker claimed it and died: the lease is still in the future.
    Job.objects.filter(pk=job.pk).update(
        locked_until=timezone.now() + dt.timedelta(minutes=1), locked_by="dead"
    )
    assert jobs.work(once=True) == 0
    Job.objects.filter(pk=job.pk).update(locked_until=timezone.now() - dt.timedelta(seconds=1))
    assert jobs.work(once=True) == 1
    assert calls == [{"value": 2}]


def test_unknown_job_name_is_refused_at_enqueue():
    with pytest.raises(KeyError):
        jobs.enqueue("no.such.job")


def test_backoff_grows_and_is_capped():
    assert jobs.backoff(1) < jobs.backoff(2) < jobs.backoff(5)
    assert jobs.backoff(50) == dt.timedelta(hours=1)
