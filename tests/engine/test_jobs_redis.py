"""Jobs through arq on a real Redis, run by real `crm-platform worker` processes: exactly once,
also when delivered twice and when the worker is killed (SIGKILL) mid-job and restarted;
timers (real delay, and the moved clock shared with the worker); retries; email.

Needs CRM_TEST_REDIS_URL (./test starts a Redis and sets it); skipped without it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crm_platform.engine import jobs
from crm_platform.engine.clock import CLOCK
from crm_platform.engine.jobs.delivery import ARQ_FUNCTION, redis_settings
from crm_platform.engine.site import Site
from tests.conftest import FIXTURE_PACKS, REPO
from tests.engine.jobs_testing import marks
from tests.engine.smtp_testing import smtp_server

REDIS_URL = os.environ.get("CRM_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs a Redis server: set CRM_TEST_REDIS_URL (./test does)")
BIN = Path(sys.executable).parent


def wait_for(predicate: Callable[[], object], timeout: float, what: str, worker: WorkerProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f"\n{worker.output()}" if worker else ""))


class WorkerProcess:
    """One `crm-platform worker` subprocess, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen([str(BIN / "crm-platform"), "worker", "--sweep-seconds", "0.3"],
                                         env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        self.ready_mark = log.read_text(encoding="utf-8", errors="replace").count("worker ready")

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self) -> WorkerProcess:
        wait_for(lambda: self.output().count("worker ready") > self.ready_mark or self.proc.poll() is not None,
                 20, "the worker to start", self)
        assert self.proc.poll() is None, f"the worker exited with {self.proc.returncode}:\n{self.output()}"
        return self

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def queue() -> Iterator[str]:
    """An arq queue of this test's own; its keys are removed afterwards."""
    import redis

    name = f"crm-test:{secrets.token_hex(4)}"
    yield name
    client = redis.Redis.from_url(REDIS_URL or "")
    try:
        keys = list(client.scan_iter(match=f"*{name}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def site(kit: Site, queue: str) -> Site:
    """The testkit site, delivering its jobs through arq on the test Redis."""
    kit.settings = dataclasses.replace(kit.settings, redis_url=REDIS_URL, extra={"job_queue": queue})
    return kit


@pytest.fixture
def worker_env(site: Site, database_url: str, tmp_path: Path, queue: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_SMTP_", "CRM_CLOCK_"))}
    env.update({
        "CRM_DATABASE_URL": database_url, "CRM_VAR_DIR": str(tmp_path / "worker-var"), "CRM_SECRET_KEY": "test",
        "CRM_PACKS": "testkit", "CRM_PACKS_PATH": str(FIXTURE_PACKS), "CRM_REDIS_URL": REDIS_URL or "",
        "CRM_JOB_QUEUE": queue, "CRM_JOB_MODULES": "tests.engine.jobs_testing",
        "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    })
    return env


@pytest.fixture
def start_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(**extra_env: str) -> WorkerProcess:
        worker = WorkerProcess({**worker_env, **extra_env}, tmp_path / "worker.log")
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()


def status(site: Site, job_id: int) -> str:
    job = jobs.get_job(site, job_id)
    assert job is not None
    return str(job["status"])


def arq_push(queue: str, arq_id: str, job_id: int) -> None:
    """Deliver crm_job `job_id` once more, as arq would after a duplicate enqueue."""
    from arq.connections import create_pool

    async def push() -> None:
        redis = await create_pool(redis_settings(REDIS_URL or ""), default_queue_name=queue)
        try:
            assert await redis.enqueue_job(ARQ_FUNCTION, job_id, _job_id=arq_id, _queue_name=queue) is not None
        finally:
            await redis.aclose()

    # A fresh thread has no event loop (Playwright's sync API may run one in this one).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, push()).result(30)


def arq_idle(queue: str, arq_id: str) -> bool:
    import redis

    client = redis.Redis.from_url(REDIS_URL or "")
    try:
        return not client.exists(f"arq:job:{arq_id}") and not client.exists(f"arq:in-progress:{arq_id}")
    finally:
        client.close()


@pytest.mark.timeout(60)
def test_a_job_enqueued_here_runs_once_in_the_worker(site: Site, start_worker: Callable[..., WorkerProcess], queue: str) -> None:
    worker = start_worker()
    job_id = jobs.enqueue(site, "test_mark", {"value": "w"}, key="w1")
    wait_for(lambda: status(site, job_id) == "done", 15, "the worker to run the job", worker)
    assert jobs.enqueue(site, "test_mark", key="w1") == job_id  # the same key: nothing new
    arq_push(queue, f"{queue}:again", job_id)  # and a second delivery of the same job
    wait_for(lambda: arq_idle(queue, f"{queue}:again"), 15, "the second delivery to be consumed", worker)
    assert marks(site, "w1") == ["jobmark:w1:1:done"]
    assert jobs.get_job(site, job_id)["attempts"] == 1


@pytest.mark.timeout(60)
def test_a_worker_killed_mid_job_is_replaced_and_the_job_completes_once(
        site: Site, start_worker: Callable[..., WorkerProcess]) -> None:
    first = start_worker()
    job_id = jobs.enqueue(site, "test_sleep_then_mark", {"seconds": 2.5}, key="kill")
    wait_for(lambda: marks(site, "kill", "started"), 15, "the job to start", first)
    first.kill()  # SIGKILL while the job sleeps
    job = jobs.get_job(site, job_id)
    assert (job["status"], job["attempts"]) == ("running", 1)
    assert marks(site, "kill") == []
    second = start_worker()
    wait_for(lambda: status(site, job_id) == "done", 20, "the restarted worker to finish the job", second)
    job = jobs.get_job(site, job_id)
    assert (job["status"], job["attempts"]) == ("done", 2)
    assert marks(site, "kill", "started") == ["jobmark:kill:1:started", "jobmark:kill:2:started"]
    assert marks(site, "kill") == ["jobmark:kill:2:done"]


@pytest.mark.timeout(60)
def test_timers_run_when_due_by_real_time_or_by_the_moved_clock(
        site: Site, start_worker: Callable[..., WorkerProcess], tmp_path: Path) -> None:
    clock_file = tmp_path / "clock.json"
    with CLOCK.scope():
        CLOCK.share(clock_file)
        try:
            worker = start_worker(CRM_CLOCK_FILE=str(clock_file))
            soon = jobs.enqueue(site, "test_mark", key="soon", run_at=dt.timedelta(seconds=1.5))
            later = jobs.enqueue(site, "test_mark", key="later", run_at=dt.timedelta(hours=2))
            assert status(site, soon) == "pending"
            wait_for(lambda: status(site, soon) == "done", 15, "the 1.5 s timer", worker)
            time.sleep(0.7)  # two sweeps of the worker
            assert status(site, later) == "pending"
            CLOCK.advance(dt.timedelta(hours=2))  # the worker shares this clock through the file
            wait_for(lambda: status(site, later) == "done", 15, "the 2 h timer after moving the clock", worker)
        finally:
            CLOCK.share(None)
    assert marks(site, "later") == ["jobmark:later:1:done"]


@pytest.mark.timeout(60)
def test_a_failed_attempt_is_retried_by_the_worker(site: Site, start_worker: Callable[..., WorkerProcess]) -> None:
    worker = start_worker()
    job_id = jobs.enqueue(site, "test_flaky", {"fail_times": 2}, key="flaky")
    wait_for(lambda: status(site, job_id) == "done", 20, "the flaky job to succeed", worker)
    job = jobs.get_job(site, job_id)
    assert job["attempts"] == 3 and "flaky failure on attempt 2" in job["last_error"]
    assert marks(site, "flaky") == ["jobmark:flaky:3:done"]


@pytest.mark.timeout(60)
def test_the_worker_sends_outbox_email_over_smtp(site: Site, start_worker: Callable[..., WorkerProcess]) -> None:
    with smtp_server() as (inbox, port):
        worker = start_worker(CRM_SMTP_HOST="127.0.0.1", CRM_SMTP_PORT=str(port), CRM_SMTP_FROM="crm@example.com")
        queued = jobs.queue_email(site, "manager@example.com", "SR-0042 escalated", "Nobody took it in 4 hours.",
                                  key="sr-42-escalated")
        wait_for(lambda: inbox.messages, 15, "the email to arrive", worker)
        wait_for(lambda: status(site, queued.job_id) == "done", 15, "the send job to finish", worker)
    assert [(m["Subject"], m["To"]) for m in inbox.messages] == [("SR-0042 escalated", "manager@example.com")]
    [row] = jobs.list_outbox(site)
    assert row["status"] == "sent"
