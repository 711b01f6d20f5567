"""A `crm-platform worker` outlives a Redis outage: it stays up while Redis is gone, logging its
reconnection attempts, and takes jobs again once Redis is back (also those enqueued meanwhile,
which waited as pending rows); SIGTERM still stops it while it waits for Redis.

Each test starts a redis-server of its own on a free port (stopping it disturbs no other test);
skipped when redis-server is not installed.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_platform.engine import jobs
from crm_platform.engine.site import Site
from tests.conftest import FIXTURE_PACKS, REPO
from tests.engine.jobs_testing import marks
from tests.engine.test_jobs_redis import WorkerProcess, status, wait_for
from tests.faults.test_kill_and_restart import RedisServer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
                                reason="needs redis-server and redis-cli")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    yield redis
    if redis.ping():
        redis.stop()


@pytest.fixture
def site(kit: Site, redis_server: RedisServer) -> Site:
    """The testkit site, delivering its jobs through arq on this test's Redis."""
    kit.settings = dataclasses.replace(kit.settings, redis_url=redis_server.url,
                                       extra={"job_queue": f"crm-outage:{secrets.token_hex(4)}"})
    return kit


@pytest.fixture
def worker(site: Site, database_url: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") or k.startswith("CRM_TEST_")}
    env.update({
        "CRM_DATABASE_URL": database_url, "CRM_VAR_DIR": str(tmp_path / "worker-var"), "CRM_SECRET_KEY": "test",
        "CRM_PACKS": "testkit", "CRM_PACKS_PATH": str(FIXTURE_PACKS), "CRM_REDIS_URL": site.settings.redis_url or "",
        "CRM_JOB_QUEUE": site.settings.extra["job_queue"], "CRM_JOB_MODULES": "tests.engine.jobs_testing",
        "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    })
    process = WorkerProcess(env, tmp_path / "worker.log").wait_ready()
    yield process
    process.stop()


def _lost_redis(worker: WorkerProcess) -> bool:
    return "is unreachable" in worker.output() or worker.proc.poll() is not None


@pytest.mark.timeout(90)
def test_the_worker_survives_redis_going_away_and_takes_jobs_when_it_is_back(
        site: Site, redis_server: RedisServer, worker: WorkerProcess) -> None:
    before = jobs.enqueue(site, "test_mark", key="before")
    wait_for(lambda: status(site, before) == "done", 15, "the job before the outage", worker)

    redis_server.stop()
    wait_for(lambda: _lost_redis(worker), 20, "the worker to notice Redis is gone", worker)
    time.sleep(2.5)  # a few reconnection attempts (1 s, 2 s)
    assert worker.proc.poll() is None, f"the worker exited without Redis:\n{worker.output()}"
    assert "next attempt in" in worker.output()
    during = jobs.enqueue(site, "test_mark", key="during")  # cannot reach Redis: stays a pending row
    time.sleep(1)
    assert status(site, during) == "pending"

    redis_server.start()  # empty: it kept nothing
    wait_for(lambda: "is back after" in worker.output(), 30, "the worker to reconnect", worker)
    after = jobs.enqueue(site, "test_mark", key="after")
    wait_for(lambda: status(site, after) == "done", 15, "a job enqueued after Redis came back", worker)
    wait_for(lambda: status(site, during) == "done", 15, "the job enqueued during the outage", worker)
    assert worker.proc.poll() is None
    assert [marks(site, key) for key in ("before", "during", "after")] == [
        ["jobmark:before:1:done"], ["jobmark:during:1:done"], ["jobmark:after:1:done"]]


@pytest.mark.timeout(60)
def test_sigterm_stops_a_worker_waiting_for_redis(redis_server: RedisServer, worker: WorkerProcess) -> None:
    redis_server.stop()
    wait_for(lambda: _lost_redis(worker), 20, "the worker to notice Redis is gone", worker)
    assert worker.proc.poll() is None, worker.output()
    started = time.monotonic()
    worker.stop()  # SIGTERM, SIGKILL after 10 s
    assert worker.proc.returncode == 0, f"exit status {worker.proc.returncode}:\n{worker.output()}"
    assert time.monotonic() - started < 5
