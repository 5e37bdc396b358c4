from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection, connections
from django.utils import timezone

from civicore.core import jobs
from civicore.core.models import Job
from civicore.core.tests.database_sessions import postgresql_only, terminate_session

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


@jobs.job("test.enqueue_then_fail")
def _enqueue_then_fail(value: int):
    calls.append({"value": value})
    jobs.enqueue("test.record", value=value)
    raise RuntimeError("mail server refused")


class WorkerKilled(BaseException):
    """What SIGKILL does to a worker, as far as the database sees it: the transaction ends unfinished."""


@jobs.job("test.enqueue_then_die")
def _enqueue_then_die(value: int):
    calls.append({"value": value})
    jobs.enqueue("test.record", value=value)
    if len(calls) == 1:
        raise WorkerKilled


def test_a_failed_job_leaves_none_of_its_writes_and_is_retried():
    job = jobs.enqueue("test.enqueue_then_fail", value=3)
    jobs.work(once=True)
    job.refresh_from_db()
    assert job.status == Job.Status.PENDING and job.attempts == 1 and "mail server refused" in job.last_error
    assert list(Job.objects.values_list("name", flat=True)) == ["test.enqueue_then_fail"]


def test_a_job_whose_worker_died_mid_run_is_run_again_at_once_and_done_once():
    job = jobs.enqueue("test.enqueue_then_die", value=4)
    with pytest.raises(WorkerKilled):
        jobs.work(once=True)
    # Nothing of the first run survived: no follow-up job, no attempt counted, no lease to wait for.
    job.refresh_from_db()
    assert job.status == Job.Status.PENDING and job.attempts == 0 and job.locked_until is None
    assert Job.objects.count() == 1
    assert jobs.work(once=True) == 2  # the job, then the one it enqueued
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.attempts == 1
    assert calls == [{"value": 4}, {"value": 4}, {"value": 4}]
    assert Job.objects.filter(name="test.record", status=Job.Status.DONE).count() == 1


def test_run_one_runs_a_job_once():
    job = jobs.enqueue("test.record", value=5)
    assert jobs.run_one(job.pk) is True
    assert jobs.run_one(job.pk) is True
    assert calls == [{"value": 5}]
    assert jobs.run_one(987654) is False


_slow_started, _slow_release = threading.Event(), threading.Event()


@jobs.job("test.slow")
def _slow(key: str):
    calls.append({"key": key})
    _slow_started.set()
    _slow_release.wait(10)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_job_being_run_is_left_to_its_worker_and_done_once():
    _slow_started.clear()
    _slow_release.clear()
    job = jobs.enqueue("test.slow", key="slow")
    outcome: list[bool] = []

    def first_worker() -> None:
        try:
            outcome.append(jobs.run_one(job.pk))
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_worker)
    thread.start()
    try:
        assert _slow_started.wait(10)
        # A second worker neither waits for the locked job nor runs it.
        began = time.monotonic()
        assert jobs.work(once=True) == 0
        assert jobs.run_one(job.pk) is False
        assert time.monotonic() - began < 5
    finally:
        _slow_release.set()
        thread.join(10)
    assert outcome == [True]
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.attempts == 1
    assert jobs.work(once=True) == 0
    assert calls == [{"key": "slow"}]


@jobs.job("test.lose_connection")
def _lose_connection(key: str):
    calls.append({"key": key})
    jobs.enqueue("test.record", value=key)
    if len(calls) == 1:
        terminate_session(connection)
        Job.objects.count()  # the first query after it fails


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_worker_reconnects_when_the_database_ends_its_session_mid_job():
    job = jobs.enqueue("test.lose_connection", key="cut")
    assert jobs.work(once=True, idle_sleep=0.01) == 2  # the job, once more, and what it enqueued
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.attempts == 1
    assert Job.objects.filter(name="test.record").count() == 1
    assert calls == [{"key": "cut"}, {"key": "cut"}, {"value": "cut"}]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_worker_reconnects_when_the_database_ended_its_idle_session():
    job = jobs.enqueue("test.record", value=6)
    terminate_session(connection)
    assert jobs.work(once=True) == 1
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and calls == [{"value": 6}]


def test_unknown_job_name_is_refused_at_enqueue():
    with pytest.raises(KeyError):
        jobs.enqueue("no.such.job")


def test_backoff_grows_and_is_capped():
    assert jobs.backoff(1) < jobs.backoff(2) < jobs.backoff(5)
    assert jobs.backoff(50) == dt.timedelta(hours=1)
