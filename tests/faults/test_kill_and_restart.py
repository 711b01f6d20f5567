"""Faults on a served site (real `crm-platform serve` and `worker` processes on loopback):

- the server killed with SIGKILL while clients write, on the test database (SQLite or
  PostgreSQL), then restarted: the database is intact (SQLite `PRAGMA integrity_check` = ok,
  `db plan` has nothing to do, the app answers) and every write a client was acknowledged (201,
  each with its id and a unique marker) is there; nothing else was written but the requests that
  were in flight when the server died, and those completely or not at all;
- Redis stopped while the app and a worker run (with CRM_TEST_REDIS_URL; the test starts a
  redis-server of its own so other tests keep theirs): the app keeps serving reads and writes; an
  email a workflow transition queues meanwhile waits as a pending job; the worker stays up and,
  once Redis is back, reconnects and sends it.

A worker killed mid-job is tests/engine/test_jobs_redis.py
(test_a_worker_killed_mid_job_is_replaced_and_the_job_completes_once).
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from crm_platform.engine import jobs
from crm_platform.engine.site import Site
from tests.conftest import REPO

BIN = Path(sys.executable).parent / "crm-platform"
REDIS_URL = os.environ.get("CRM_TEST_REDIS_URL")
START_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout: float, what: str, output: Callable[[], str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f"\n{output()}" if output else ""))


class Process:
    """A `crm-platform` subprocess whose output goes to a log file shared by its restarts."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.log = log
        self.mark = log.read_text(errors="replace").count("\n") if log.exists() else 0
        with log.open("ab") as out:
            out.write(f"---- crm-platform {' '.join(args)}\n".encode())
            self.proc = subprocess.Popen([str(BIN), *args], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def new_output(self) -> str:
        return "\n".join(self.output().splitlines()[self.mark:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class Server(Process):
    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        super().__init__(["serve", "--port", str(self.port)], env, log)

    def wait_ready(self) -> Server:
        def ready() -> bool:
            assert self.alive(), f"the server exited with {self.proc.returncode}:\n{self.new_output()}"
            try:
                return httpx.get(self.base + "/api/v1/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, START_TIMEOUT, "the server to answer", self.new_output)
        return self


def site_env(site: Site, database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of this site's server and CLI processes: no CRM_* of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_") or k.startswith("CRM_TEST_")}
    env.update({"CRM_DATABASE_URL": database_url, "CRM_VAR_DIR": str(site.settings.var_dir),
                "CRM_PACKS": "crm_standard", "CRM_SECRET_KEY": site.settings.secret_key, **extra})
    return env


def make_user(site: Site, username: str, roles: list[str], email: str | None = None) -> str:
    """A user holding `roles`; returns an API token of theirs."""
    user_id = site.users.create_user(username, f"{username}-password-1", username, email)
    for role in roles:
        site.permissions.assign_role(user_id, role)
    token, _ = site.users.create_token(user_id, "fault-test")
    return token


def company_name() -> str:
    """A made-up name unlike the others (a similar one is refused as a possible duplicate)."""
    letters = "".join(random.choice("bcdfghjklmnpqrstvwz") + random.choice("aeiou") for _ in range(5))
    return f"{''.join(random.choices('华南东西海山江河金银宝丰盛兴泰安康明光星云天宏博嘉瑞祥', k=4))} {letters.capitalize()}"


# ------------------------------------------------------------------------------------------------
# The server killed during writes


@dataclass
class Writers:
    """Client threads creating accounts and follow-ups as fast as the server answers.

    Each 201 is recorded with its id and marker. A request that fails on the connection (the
    server died) is `in_flight`: its outcome is unknown, and that writer stops."""

    base: str
    token: str
    run: str
    count: int = 4
    acked: list[tuple[str, int, str]] = field(default_factory=list)
    in_flight: list[tuple[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._write, args=(n,), daemon=True) for n in range(self.count)]
        for thread in self.threads:
            thread.start()

    def _write(self, writer: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=30) as client:
            for n in range(1, 100_000):
                marker = f"{self.run}-w{writer}-{n}"
                if n % 2:
                    entity, body = "account", {"name": company_name(), "customer_type": "dealer", "notes": marker}
                else:
                    entity, body = "activity", {"subject": f"Call {marker}", "kind": "call", "status": "done",
                                                "occurred_at": "2026-03-02T10:00:00+00:00", "details": marker}
                try:
                    response = client.post(f"/api/v1/records/{entity}", json=body)
                except httpx.TransportError:
                    with self.lock:
                        self.in_flight.append((entity, marker))
                    return
                with self.lock:
                    if response.status_code == 201:
                        self.acked.append((entity, response.json()["id"], marker))
                    else:
                        self.refused.append(f"{entity} {marker}: {response.status_code} {response.text[:300]}")
                        return

    def join(self) -> None:
        for thread in self.threads:
            thread.join(30)
            assert not thread.is_alive(), "a writer is still writing to a killed server"


def stored_markers(site: Site, run: str) -> dict[tuple[str, str], int]:
    """(entity, marker) -> id of every stored record carrying one of this run's markers."""
    found: dict[tuple[str, str], int] = {}
    with site.engine.connect() as conn:
        for entity, column in (("account", "notes"), ("activity", "details")):
            table = site.schema.table(entity)
            rows = conn.execute(sa.select(table.c.id, table.c[column]).where(table.c[column].like(f"{run}-%"),
                                                                             table.c.deleted_at.is_(None)))
            found.update({(entity, marker): record_id for record_id, marker in rows})
        conn.rollback()
    return found


def created_history(site: Site, entity: str, record_id: int) -> int:
    history = site.schema.system["crm_history"]
    with site.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(history).where(
            history.c.entity == entity, history.c.record_id == record_id, history.c.action == "create")).scalar_one()
        conn.rollback()
    return int(count)


def listed_markers(client: httpx.Client, entity: str, field_name: str, run: str) -> dict[str, int]:
    """What the restarted app lists with this run's markers: marker -> id."""
    markers: dict[str, int] = {}
    page = 1
    while True:
        response = client.get(f"/api/v1/records/{entity}", params={f"{field_name}__startswith": run, "page_size": 200, "page": page})
        assert response.status_code == 200, response.text
        body = response.json()
        markers.update({r[field_name]: r["id"] for r in body["data"]})
        if page >= body["pages"]:
            return markers
        page += 1


@pytest.mark.timeout(150)
def test_server_killed_during_writes_restarts_intact_with_every_acknowledged_write(
        site: Site, database_url: str, tmp_path: Path) -> None:
    token = make_user(site, "writer.rep", ["sales_rep"])
    env = site_env(site, database_url, tmp_path)
    log = tmp_path / "server.log"
    server = Server(env, log).wait_ready()
    run = f"kill{secrets.token_hex(3)}"
    writers = Writers(server.base, token, run)
    try:
        writers.start()
        # Kill at a moment of its own once the writers are well under way.
        wait_for(lambda: len(writers.acked) >= 30 or writers.refused, 40, "30 acknowledged writes", server.new_output)
        time.sleep(random.uniform(0, 0.5))
        assert not writers.refused, writers.refused
        server.kill()
        writers.join()
    finally:
        server.stop()
    assert not writers.refused, writers.refused
    assert writers.in_flight, "no writer had a request in flight: the kill did not happen during writes"
    acked_before_restart = len(writers.acked)

    # What the crash left on disk: an intact database.
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.split("///", 1)[1]) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []

    restarted = Server(env, log)
    try:
        plan = subprocess.run([str(BIN), "db", "plan"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert plan.returncode == 0, plan.stderr
        assert "nothing to do" in plan.stdout, plan.stdout
        restarted.wait_ready()
        with httpx.Client(base_url=restarted.base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            listed = {("account", m): i for m, i in listed_markers(client, "account", "notes", run).items()}
            listed |= {("activity", m): i for m, i in listed_markers(client, "activity", "details", run).items()}
            # Every acknowledged write is served after the restart, with the acknowledged id.
            missing = [(e, i, m) for e, i, m in writers.acked if listed.get((e, m)) != i]
            assert not missing, f"{len(missing)} of {len(writers.acked)} acknowledged writes are missing: {missing[:10]}"
            # ... and the restarted app takes writes again.
            after = client.post("/api/v1/records/account", json={"name": company_name(), "customer_type": "dealer",
                                                                 "notes": f"{run}-after"})
            assert after.status_code == 201, after.text
            assert client.get(f"/api/v1/records/account/{after.json()['id']}").status_code == 200
    finally:
        restarted.stop()

    # In the database: the acknowledged writes, plus at most the requests in flight at the kill,
    # each of those whole (the record with its created history) or not there at all.
    stored = stored_markers(site, run)
    stored.pop(("account", f"{run}-after"))
    acked = {(e, m): i for e, i, m in writers.acked}
    assert len(acked) == acked_before_restart
    assert {k: stored.get(k) for k in acked} == acked
    extra = set(stored) - set(acked)
    assert extra <= set(writers.in_flight), f"records nobody wrote: {extra - set(writers.in_flight)}"
    for entity, marker in extra:
        assert created_history(site, entity, stored[(entity, marker)]) > 0, f"{entity} {marker} without its history"


# ------------------------------------------------------------------------------------------------
# Redis stopped while the app runs


class RedisServer:
    """A redis-server of this test's own on a free port (stopping it disturbs no other test)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        folder.mkdir(parents=True, exist_ok=True)

    def ping(self) -> bool:
        result = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "ping"],
                                capture_output=True, text=True, timeout=10)
        return result.stdout.strip() == "PONG"

    def start(self) -> None:
        subprocess.run(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "yes",
                        "--save", "", "--appendonly", "no", "--dir", str(self.folder),
                        "--pidfile", str(self.folder / "redis.pid"), "--logfile", str(self.folder / "redis.log")],
                       check=True, timeout=10)
        wait_for(self.ping, 10, f"redis-server on port {self.port}")

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "shutdown", "nosave"],
                       capture_output=True, timeout=10)
        wait_for(lambda: not self.ping(), 10, "redis-server to stop")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if not REDIS_URL:
        pytest.skip("needs Redis: set CRM_TEST_REDIS_URL (./test does)")
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("CRM_TEST_REDIS_URL is set but redis-server / redis-cli are not installed")
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    yield redis
    if redis.ping():
        redis.stop()


def email_jobs(site: Site) -> dict[int, str]:
    """The send-email jobs: id -> status."""
    return {j["id"]: j["status"] for j in jobs.list_jobs(site, name="send_email")}


@pytest.mark.timeout(150)
def test_redis_stopped_the_app_serves_and_queued_email_goes_out_when_redis_is_back(
        redis_server: RedisServer, site: Site, database_url: str, tmp_path: Path) -> None:
    from tests.engine.smtp_testing import smtp_server

    token = make_user(site, "svc.manager", ["service_manager", "sales_rep"], email="svc.manager@example.com")
    queue = f"crm-fault:{secrets.token_hex(4)}"
    log = tmp_path / "processes.log"
    with smtp_server() as (inbox, smtp_port):
        env = site_env(site, database_url, tmp_path, CRM_REDIS_URL=redis_server.url, CRM_JOB_QUEUE=queue,
                       CRM_SMTP_HOST="127.0.0.1", CRM_SMTP_PORT=str(smtp_port), CRM_SMTP_FROM="crm@example.com",
                       CRM_JOB_SWEEP_SECONDS="0.5")
        server = Server(env, log)
        worker = Process(["worker"], env, log)
        workers = [worker]
        try:
            server.wait_ready()
            wait_for(lambda: "worker ready" in worker.new_output() or not worker.alive(), START_TIMEOUT,
                     "the worker to start", worker.new_output)
            assert worker.alive(), worker.new_output()
            with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:

                def escalated_request(subject: str) -> dict[str, Any]:
                    """Create a service request and escalate it: the escalation emails the service manager."""
                    account = client.post("/api/v1/records/account", json={"name": company_name(), "customer_type": "dealer"})
                    assert account.status_code == 201, account.text
                    request = client.post("/api/v1/records/service_request", json={
                        "subject": subject, "account": account.json()["id"], "opened_at": "2026-03-02T10:00:00+00:00"})
                    assert request.status_code == 201, request.text
                    moved = client.post(f"/api/v1/records/service_request/{request.json()['id']}/transitions/escalate",
                                        json={"comment": "the customer called twice"})
                    assert moved.status_code == 200, moved.text
                    return dict(moved.json())

                # With Redis: the escalation email goes out through the worker.
                escalated_request("Tiles cracked after a week")
                wait_for(lambda: email_jobs(site) and set(email_jobs(site).values()) == {"done"}, 30,
                         "the first escalation email to be sent", worker.new_output)
                sent_before = email_jobs(site)
                wait_for(lambda: len(inbox.messages) == len(sent_before), 10, "the first escalation email to arrive")

                redis_server.stop()
                # The worker stays up without Redis, reconnecting with a growing delay, and takes no
                # jobs until Redis is back.
                wait_for(lambda: "is unreachable" in worker.new_output() or not worker.alive(), 30,
                         "the worker to notice Redis is gone", worker.new_output)
                assert worker.alive(), worker.new_output()

                # Without Redis the app serves reads and writes, each answered promptly.
                started = time.monotonic()
                listed = client.get("/api/v1/records/service_request", params={"q": "Tiles", "sort": "-opened_at"})
                assert listed.status_code == 200 and listed.json()["total"] == 1, listed.text
                second = escalated_request("Glaze colour differs from the sample")
                changed = client.patch(f"/api/v1/records/service_request/{second['id']}",
                                       json={"version": second["version"], "description": "photos attached"})
                assert changed.status_code == 200, changed.text
                assert client.get(f"/api/v1/records/service_request/{second['id']}").json()["description"] == "photos attached"
                assert time.monotonic() - started < 30, "the app stalled without Redis"
                assert "could not enqueue" in server.new_output()

                # The email it queued waits as a pending job.
                waiting = {i: s for i, s in email_jobs(site).items() if i not in sent_before}
                assert waiting and set(waiting.values()) == {"pending"}, waiting
                time.sleep(1)
                assert {i: email_jobs(site)[i] for i in waiting} == waiting
                assert len(inbox.messages) == len(sent_before)

                # Redis back (empty: it kept nothing): the same worker reconnects and the email goes
                # out, once.
                redis_server.start()
                wait_for(lambda: all(email_jobs(site)[i] == "done" for i in waiting), START_TIMEOUT,
                         "the queued email to be sent after Redis came back", worker.new_output)
                wait_for(lambda: len(inbox.messages) == len(sent_before) + len(waiting), 10, "the email to arrive")
                assert all((jobs.get_job(site, i) or {}).get("attempts") == 1 for i in waiting)
                assert sorted(m["To"] for m in inbox.messages) == ["svc.manager@example.com"] * len(inbox.messages)
                # The app, which never restarted, hands new jobs to Redis again.
                escalated_request("Wrong tile size delivered")
                wait_for(lambda: len(inbox.messages) == len(email_jobs(site)), 30, "the email of a new escalation",
                         worker.new_output)
        finally:
            for process in [server, *workers]:
                process.stop()
