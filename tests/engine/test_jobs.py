"""Jobs run in-process (no Redis): immediate runs, idempotent keys, retries with backoff, timers
on the movable clock, jobs written in a caller's transaction, abandoned jobs taken over."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_platform.engine import jobs
from crm_platform.engine.clock import CLOCK, Clock
from crm_platform.engine.jobs import store
from crm_platform.engine.jobs.delivery import run
from crm_platform.engine.jobs.runner import JobContext, LeaseLost, execute
from crm_platform.engine.site import Site
from tests.conftest import FIXTURE_PACKS, REPO
from tests.engine.jobs_testing import marks

T0 = dt.datetime(2030, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> Iterator[Clock]:
    """The platform clock, frozen at T0 for the test and restored afterwards."""
    with CLOCK.scope():
        CLOCK.set(T0)
        yield CLOCK


def job_row(site: Site, job_id: int) -> dict:
    row = jobs.get_job(site, job_id)
    assert row is not None
    return row


def test_a_due_job_runs_at_once_and_is_done(kit: Site, clock: Clock) -> None:
    job_id = jobs.enqueue(kit, "test_mark", {"value": "hello"}, key="k1")
    row = job_row(kit, job_id)
    assert (row["status"], row["attempts"], row["name"], row["payload"]) == ("done", 1, "test_mark", {"value": "hello"})
    assert row["finished_at"] == T0 and row["created_at"] == T0
    assert marks(kit, "k1") == ["jobmark:k1:1:done"]


def test_the_same_key_twice_does_the_work_once(kit: Site, clock: Clock) -> None:
    first = jobs.enqueue(kit, "test_mark", {"value": "a"}, key="dup")
    second = jobs.enqueue(kit, "test_mark", {"value": "b"}, key="dup")
    assert first == second
    # Delivered again (a duplicate message, a second worker): nothing more happens.
    assert run(kit, first).status == "skipped"
    assert execute(kit, first).status == "skipped"
    assert marks(kit, "dup") == ["jobmark:dup:1:done"]
    assert job_row(kit, first)["payload"] == {"value": "a"}


def test_two_deliveries_at_the_same_time_run_the_job_once(kit: Site, clock: Clock) -> None:
    with kit.engine.begin() as conn:
        job_id = jobs.enqueue(kit, "test_mark", key="race", conn=conn)  # written, not delivered
    results: list[str] = []
    barrier = threading.Barrier(4)

    def deliver() -> None:
        barrier.wait()
        results.append(execute(kit, job_id).status)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["done", "skipped", "skipped", "skipped"]
    assert marks(kit, "race") == ["jobmark:race:1:done"]


def test_a_failing_job_is_retried_with_backoff_then_failed(kit: Site, clock: Clock) -> None:
    job_id = jobs.enqueue(kit, "test_boom", {"value": "x"}, key="boom")
    row = job_row(kit, job_id)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert row["run_at"] == T0 + dt.timedelta(seconds=10)
    assert "ValueError: boom x" in row["last_error"]

    assert jobs.run_due(kit) == []  # not due yet
    clock.advance(10)
    assert [o.status for o in jobs.run_due(kit)] == ["retry"]
    assert job_row(kit, job_id)["run_at"] == T0 + dt.timedelta(seconds=30)  # 10 s, then 20 s
    clock.advance(20)
    assert [o.status for o in jobs.run_due(kit)] == ["failed"]

    row = job_row(kit, job_id)
    assert (row["status"], row["attempts"], row["finished_at"]) == ("failed", 3, T0 + dt.timedelta(seconds=30))
    assert "ValueError: boom x" in row["last_error"]
    assert [j["id"] for j in jobs.list_jobs(kit, "failed")] == [job_id]
    assert jobs.job_counts(kit)["failed"] == 1
    clock.advance(3600)
    assert jobs.run_due(kit) == []  # failed jobs stay failed


def test_retry_from_the_monitoring_screen_runs_a_failed_job_again(kit: Site, clock: Clock) -> None:
    job_id = jobs.enqueue(kit, "test_flaky", {"fail_times": 4}, key="flaky", max_attempts=2)
    clock.advance(1)
    jobs.run_due(kit)
    assert job_row(kit, job_id)["status"] == "failed"
    assert jobs.retry(kit, job_id) is True  # attempt 3 runs now and fails; one more is allowed
    row = job_row(kit, job_id)
    assert (row["status"], row["attempts"], row["max_attempts"]) == ("pending", 3, 6)
    for _ in range(2):  # attempt 4 fails, attempt 5 succeeds
        clock.advance(60)
        jobs.run_due(kit)
    row = job_row(kit, job_id)
    assert (row["status"], row["attempts"]) == ("done", 5)
    assert marks(kit, "flaky") == ["jobmark:flaky:5:done"]
    assert jobs.retry(kit, job_id) is False  # done jobs are not retried
    with pytest.raises(ValueError, match="unknown job status"):
        jobs.list_jobs(kit, "nonsense")


def test_a_timer_runs_when_the_clock_reaches_it(kit: Site, clock: Clock) -> None:
    job_id = jobs.enqueue(kit, "test_mark", key="sla", run_at=dt.timedelta(hours=4))
    row = job_row(kit, job_id)
    assert (row["status"], row["run_at"]) == ("pending", T0 + dt.timedelta(hours=4))
    clock.advance(dt.timedelta(hours=3, minutes=59))
    assert jobs.run_due(kit) == []
    clock.advance(60)
    assert [o.status for o in jobs.run_due(kit)] == ["done"]
    assert marks(kit, "sla") == ["jobmark:sla:1:done"]
    # An absolute time (naive means UTC) works the same way.
    later = jobs.enqueue(kit, "test_mark", key="at", run_at=dt.datetime(2030, 3, 2, 9, 0))
    assert job_row(kit, later)["run_at"] == dt.datetime(2030, 3, 2, 9, 0, tzinfo=dt.UTC)


def test_a_cancelled_timer_never_runs(kit: Site, clock: Clock) -> None:
    job_id = jobs.enqueue(kit, "test_mark", key="remind", run_at=dt.timedelta(days=30))
    assert jobs.cancel(kit, "remind") is True
    assert jobs.cancel(kit, "remind") is False
    clock.advance(dt.timedelta(days=31))
    assert jobs.run_due(kit) == []
    assert job_row(kit, job_id)["status"] == "cancelled"
    assert marks(kit, "remind") == []


def test_jobs_written_in_a_transaction_follow_it(kit: Site, clock: Clock) -> None:
    with pytest.raises(RuntimeError), kit.engine.begin() as conn:
        jobs.enqueue(kit, "test_mark", key="rolled", conn=conn)
        raise RuntimeError("the transition failed")
    assert jobs.get_job(kit, key="rolled") is None

    with jobs.after_commit(kit) as later:
        with kit.engine.begin() as conn:
            job_id = later.enqueue(conn, "test_mark", key="committed")
        assert marks(kit, "committed") == []  # nothing runs before the block ends
    assert job_row(kit, job_id)["status"] == "done"

    # Written but never delivered: the sweep runs it.
    with kit.engine.begin() as conn:
        forgotten = jobs.enqueue(kit, "test_mark", key="forgotten", conn=conn)
    assert job_row(kit, forgotten)["status"] == "pending"
    assert [o.job_id for o in jobs.run_due(kit)] == [forgotten]


def test_an_abandoned_job_is_taken_over_after_its_lease(kit: Site, clock: Clock) -> None:
    table = kit.schema.system["crm_job"]
    with kit.engine.begin() as conn:
        job_id = jobs.enqueue(kit, "test_mark", key="orphan", conn=conn)
        # A worker takes it and dies: the row stays running with a lease.
        first = store.claim(conn, table, job_id, clock.now(), dt.timedelta(seconds=300))
    assert first is not None and first.attempts == 1
    assert jobs.run_due(kit) == []  # still leased
    clock.advance(301)
    assert [o.status for o in jobs.run_due(kit)] == ["done"]
    row = job_row(kit, job_id)
    assert (row["status"], row["attempts"]) == ("done", 2)
    assert marks(kit, "orphan") == ["jobmark:orphan:2:done"]
    # The first attempt waking up late cannot complete the job a second time.
    late = JobContext(kit, job_id, "orphan", "test_mark", {}, attempt=1, max_attempts=5)
    with pytest.raises(LeaseLost), kit.engine.begin() as conn:
        late.complete(conn)


def test_an_abandoned_job_without_attempts_left_is_failed(kit: Site, clock: Clock) -> None:
    table = kit.schema.system["crm_job"]
    with kit.engine.begin() as conn:
        job_id = jobs.enqueue(kit, "test_mark", key="lastgo", conn=conn, max_attempts=1)
        store.claim(conn, table, job_id, clock.now(), dt.timedelta(seconds=10))
    clock.advance(11)
    assert [o.status for o in jobs.run_due(kit)] == ["skipped"]
    row = job_row(kit, job_id)
    assert row["status"] == "failed" and "abandoned" in row["last_error"]


def test_unknown_jobs_and_bad_payloads_are_refused(kit: Site) -> None:
    with pytest.raises(LookupError, match="no job function named 'nope'"):
        jobs.enqueue(kit, "nope", {})
    with pytest.raises(TypeError, match="JSON values only"):
        jobs.enqueue(kit, "test_mark", {"value": object()})


def test_a_job_whose_function_is_missing_fails_with_a_clear_error(kit: Site, clock: Clock) -> None:
    table = kit.schema.system["crm_job"]
    with kit.engine.begin() as conn:
        store.insert(conn, table, key="ghost", name="removed_job", payload={}, run_at=clock.now(),
                     max_attempts=1, now=clock.now())
    [outcome] = jobs.run_due(kit)
    assert outcome.status == "failed"
    assert "no job function named 'removed_job'" in (outcome.error or "")


def test_the_sweeper_thread_runs_due_timers(kit: Site, clock: Clock) -> None:
    job_id = jobs.enqueue(kit, "test_mark", key="swept", run_at=dt.timedelta(minutes=5))
    sweeper = jobs.Sweeper(kit, interval=0.05).start()
    try:
        time.sleep(0.2)
        assert job_row(kit, job_id)["status"] == "pending"
        clock.advance(dt.timedelta(minutes=5))
        deadline = time.monotonic() + 10
        while job_row(kit, job_id)["status"] != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sweeper.stop()
    assert job_row(kit, job_id)["status"] == "done"
    assert sweeper.sweeps >= 2


def test_the_worker_command_needs_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CRM_REDIS_URL"}
    env.update(CRM_VAR_DIR=str(tmp_path / "var"), CRM_PACKS="testkit", CRM_PACKS_PATH=str(FIXTURE_PACKS))
    result = subprocess.run([str(Path(sys.executable).parent / "crm-platform"), "worker"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "crm-platform worker needs CRM_REDIS_URL" in result.stderr


def test_an_app_lifespan_sweeps_when_there_is_no_redis(kit: Site, clock: Clock) -> None:
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from crm_platform.engine.jobs.sweeper import sweeping

    job_id = jobs.enqueue(kit, "test_mark", key="lifespan", run_at=dt.timedelta(minutes=5))
    clock.advance(dt.timedelta(minutes=5))
    app = Starlette(lifespan=lambda app: sweeping(kit, interval=0.05))
    with TestClient(app):
        deadline = time.monotonic() + 10
        while job_row(kit, job_id)["status"] != "done" and time.monotonic() < deadline:
            time.sleep(0.05)
    assert job_row(kit, job_id)["status"] == "done"
