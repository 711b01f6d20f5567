"""Load test on loopback, bounded in time: N users mixing reads and writes against several server
processes, then every acknowledged write looked up in the database.

    .venv/bin/pip install -e '.[load]'          # locust
    .venv/bin/python loadtest/run_load.py postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python loadtest/run_load.py sqlite --servers 2

What it does:

1. makes a fresh database: on the PostgreSQL server of the URL a new database `crm_load_<time>`
   (the URL's own database is only used to create and drop it), or with `sqlite` a new file in
   the work folder;
2. `crm-platform demo setup` on it (schema, seed and demo data, the demo org's users);
3. N `crm-platform serve` processes, each on its own free loopback port, no proxy in between
   (a proxy process would take one of the machine's cores); the simulated users are spread over
   them round robin, as a reverse proxy's upstream would spread them. `--shared-socket` runs
   `crm-platform serve --workers N` on one port instead: there the first worker to wake accepts
   every pending connection and keep-alive clients stay on it, so connections can pile up on one
   process while another idles; the figures of the two modes compare that;
4. locust, headless, in one process: `--users` simulated sales people (loadtest/locustfile.py),
   spawned at `--spawn-rate` per second, for `--duration` seconds; users still in a request when
   the time is up finish it (`--stop-timeout`) so every answer is known;
5. prints requests, failures, p50/p95/p99 (exact, from every request's time) per request type and
   overall, the requests per second, and each server process's CPU time;
6. counts in the database every write the clients were acknowledged (201 creates, each with its
   unique marker; 200 updates with their value and version; 200 workflow transitions in the
   workflow history) and prints `acknowledged writes: N, found: N`.

Exit status 0 only with no failed request and every acknowledged write found. The database is
dropped afterwards unless `--keep`; the work folder (var/, server.log, locust.log, the samples
and acks, summary.json) is removed after a passing run unless `--keep` or `--workdir` was given.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
SALES_USERS = "li.rep,wang.rep,xu.rep,lin.lead,chen.director"
LOGIN = "POST /auth/token"  # the locustfile's name for a login; argon2 makes it slow on purpose

# entity -> (table, column holding the marker)
MARKED = {
    "account": ("ent_account", "notes"),
    "activity": ("ent_activity", "details"),
    "opportunity": ("ent_opportunity", "description"),
    "token": ("crm_api_token", "name"),
}


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ----------------------------------------------------------------------------- database --

class Database:
    """A fresh database for the run: created here, dropped by `drop()`."""

    def __init__(self, spec: str, workdir: Path, stamp: str) -> None:
        self.spec = spec
        self.admin_url: str | None = None
        if spec.startswith("sqlite:"):
            raise SystemExit("give `sqlite` (a new file is made in the work folder), not a SQLite URL")
        if spec == "sqlite":
            self.name = str(workdir / "load.sqlite3")
            self.url = f"sqlite:///{self.name}"
            return
        url = make_url(spec)
        if not url.drivername.startswith("postgresql"):
            raise SystemExit(f"unsupported database '{spec}': give a PostgreSQL URL or `sqlite`")
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        self.admin_url = url.render_as_string(hide_password=False)
        self.name = f"crm_load_{stamp}"
        self.url = url.set(database=self.name).render_as_string(hide_password=False)
        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        finally:
            admin.dispose()

    @property
    def label(self) -> str:
        return "SQLite" if self.admin_url is None else "PostgreSQL"

    def version(self) -> str:
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                if self.admin_url is None:
                    return "SQLite " + str(conn.exec_driver_sql("select sqlite_version()").scalar())
                return "PostgreSQL " + str(conn.exec_driver_sql("show server_version").scalar()).split()[0]
        finally:
            engine.dispose()

    def drop(self) -> None:
        if self.admin_url is None:
            return
        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            admin.dispose()


# ------------------------------------------------------------------------------ servers --

class Servers:
    """N `crm-platform serve` processes on their own loopback ports (default), or one
    `crm-platform serve --workers N` (N processes sharing one listening socket); output in a file."""

    def __init__(self, env: dict[str, str], count: int, shared_socket: bool, log_path: Path) -> None:
        self.count = count
        self.log_path = log_path
        self.procs: list[subprocess.Popen[bytes]] = []
        if shared_socket:
            ports = [free_port()]
            commands = [["serve", "--port", str(ports[0]), "--workers", str(count)]]
        else:
            ports = [free_port() for _ in range(count)]
            commands = [["serve", "--port", str(port)] for port in ports]
        self.bases = [f"http://127.0.0.1:{port}" for port in ports]
        with log_path.open("ab") as out:
            for command in commands:
                self.procs.append(subprocess.Popen([str(BIN / "crm-platform"), *command], env=env, cwd=REPO,
                                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True))

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise SystemExit(f"a server exited with {proc.returncode}:\n{self.output()[-3000:]}")
            if self.output().count("Application startup complete") >= self.count:
                try:
                    if all(httpx.get(base + "/api/v1/health", timeout=5).status_code == 200 for base in self.bases):
                        return
                except httpx.TransportError:
                    pass
            time.sleep(0.5)
        raise SystemExit(f"the {self.count} server processes were not ready within {timeout:.0f} s:\n{self.output()[-3000:]}")

    def pids(self) -> list[int]:
        """The processes that serve: the `serve` processes, or the workers of `serve --workers`."""
        if len(self.procs) > 1:
            return [proc.pid for proc in self.procs]
        pid = self.procs[0].pid
        try:
            children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []
        return [c for c in children if "multiprocessing-fork" in Path(f"/proc/{c}/cmdline").read_text(errors="replace")]

    def alive(self) -> bool:
        return all(proc.poll() is None for proc in self.procs)

    @staticmethod
    def cpu_seconds(pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


# -------------------------------------------------------------------------------- stats --

def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def read_jsonl(folder: Path, prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob(f"{prefix}-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def summarize(samples: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    by_name: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for sample in samples:
        by_name[sample["name"]].append(sample)
    window = 0.0
    if samples:
        start = min(s["end"] - s["ms"] / 1000 for s in samples)
        window = max(s["end"] for s in samples) - start
    rows = []
    after_login = [s for s in samples if s["name"] != LOGIN]
    for name, group in [*sorted(by_name.items()), ("Overall", samples), ("Overall without logins", after_login)]:
        times = sorted(s["ms"] for s in group)
        rows.append({"name": name, "requests": len(group), "failures": sum(not s["ok"] for s in group),
                     "p50": percentile(times, 50), "p95": percentile(times, 95), "p99": percentile(times, 99),
                     "max": times[-1] if times else math.nan,
                     "rps": len(group) / window if window else math.nan})
    return rows, window


def print_table(rows: list[dict[str, Any]]) -> None:
    width = max(len(r["name"]) for r in rows)
    head = f"{'request':<{width}}  {'requests':>8}  {'failures':>8}  {'p50 ms':>8}  {'p95 ms':>8}  {'p99 ms':>8}  {'max ms':>8}  {'req/s':>7}"
    print(head)
    print("-" * len(head))
    printed_rule = False
    for r in rows:
        if r["name"].startswith("Overall") and not printed_rule:
            printed_rule = True
            print("-" * len(head))
        print(f"{r['name']:<{width}}  {r['requests']:>8}  {r['failures']:>8}  {r['p50']:>8.1f}  {r['p95']:>8.1f}  "
              f"{r['p99']:>8.1f}  {r['max']:>8.1f}  {r['rps']:>7.1f}")


# ---------------------------------------------------------------------- write checking --

def verify_writes(url: str, run: str, acks: list[dict[str, Any]]) -> dict[str, Any]:
    """Look every acknowledged write up in the database.

    - a create (201): the row with the acknowledged id carries the acknowledged marker;
    - an update (200): the record's history has the change of that field to that value at the
      acknowledged version, and the record holds the last acknowledged value of each field;
    - a transition (200): the workflow history of the opportunity lists the acknowledged moves
      in order, and the opportunity is in the last one's stage.
    """
    missing: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            for entity, (table, column) in MARKED.items():
                mine = {a["id"]: a["marker"] for a in acks if a["kind"] == "create" and a["entity"] == entity}
                alive = "" if entity == "token" else " and deleted_at is null"
                stored: dict[int, str] = dict(conn.execute(sa.text(f"select id, {column} from {table} where {column} like :m{alive}"),
                                           {"m": f"{run}-%"}).all())
                lost = [f"{entity} {rid} {marker}" for rid, marker in mine.items() if stored.get(rid) != marker]
                counts[f"create {entity}"] = {"acknowledged": len(mine), "found": len(mine) - len(lost), "in_database": len(stored)}
                missing += lost

            updates = [a for a in acks if a["kind"] == "update"]
            found = 0
            last: dict[tuple[str, int, str], dict[str, Any]] = {}
            for a in updates:
                hit = conn.execute(sa.text("select new_value from crm_history where entity = :e and record_id = :id "
                                           "and version = :v and field = :f"),
                                   {"e": a["entity"], "id": a["id"], "v": a["version"], "f": a["field"]}).scalar()
                if hit is not None and json.loads(hit) == a["value"]:
                    found += 1
                else:
                    missing.append(f"update {a['entity']} {a['id']} v{a['version']} {a['field']}={a['value']!r}: history has {hit!r}")
                key = (a["entity"], a["id"], a["field"])
                if key not in last or a["version"] > last[key]["version"]:
                    last[key] = a
            for (entity, rid, field), a in last.items():
                row = conn.execute(sa.text(f"select {field}, version from ent_{entity} where id = :id"), {"id": rid}).first()
                if row is None or row[0] != a["value"] or row[1] < a["version"]:
                    missing.append(f"{entity} {rid}: {field} should be {a['value']!r} (v{a['version']}), is {tuple(row) if row else None}")
            counts["update"] = {"acknowledged": len(updates), "found": found, "records": len({(e, i) for e, i, _ in last})}

            moves: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
            for a in acks:
                if a["kind"] == "transition":
                    moves[a["id"]].append(a)
            found = 0
            for rid, acked in moves.items():
                history = conn.execute(sa.text("select to_state from crm_workflow_history where entity = 'opportunity' "
                                               "and record_id = :id and transition <> '_start' order by id"), {"id": rid}).scalars().all()
                stage = conn.execute(sa.text("select stage from ent_opportunity where id = :id"), {"id": rid}).scalar()
                expected = [m["to"] for m in sorted(acked, key=lambda m: m["version"])]
                if list(history) == expected and stage == expected[-1]:
                    found += len(expected)
                else:
                    found += sum(1 for a, b in zip(history, expected, strict=False) if a == b)
                    missing.append(f"opportunity {rid}: acknowledged moves {expected}, history {list(history)}, stage {stage}")
            counts["transition"] = {"acknowledged": sum(len(m) for m in moves.values()), "found": found}
    finally:
        engine.dispose()
    return {"counts": counts, "missing": missing,
            "acknowledged": sum(c["acknowledged"] for c in counts.values()),
            "found": sum(c["found"] for c in counts.values())}


# ---------------------------------------------------------------------------------- main --

def machine() -> dict[str, Any]:
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1), "cpu": cpu,
            "python": platform.python_version(), "load_average": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database", help="a PostgreSQL URL (a fresh database is created on its server) or `sqlite`")
    parser.add_argument("--users", type=int, default=50, help="concurrent simulated users (default 50)")
    parser.add_argument("--duration", type=int, default=60, help="seconds of load (default 60)")
    parser.add_argument("--servers", type=int, default=4, help="server processes (default 4), each `serve` on its own port")
    parser.add_argument("--shared-socket", action="store_true", help="one `serve --workers N` instead (one port for all)")
    parser.add_argument("--spawn-rate", type=float, default=10, help="users started per second (default 10)")
    parser.add_argument("--wait", default="0.2-1.0", help="think time between a user's requests, seconds MIN-MAX (default 0.2-1.0)")
    parser.add_argument("--workdir", help="folder for the site's var/, logs and results (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the database and the work folder")
    args = parser.parse_args(argv)

    locust = BIN / "locust"
    if not locust.exists():
        print("locust is not installed: .venv/bin/pip install -e '.[load]'", file=sys.stderr)
        return 2
    wait_min, wait_max = (float(x) for x in args.wait.split("-", 1))
    stamp = dt.datetime.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(2)
    run = f"lt{stamp}"
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="crm-load-"))
    workdir.mkdir(parents=True, exist_ok=True)
    info = machine()
    log(f"machine: {info['nproc']} CPU(s) ({info['cpu']}), {info['memory_gib']} GiB, load average "
        f"{' '.join(f'{x:.2f}' for x in info['load_average'])}; work folder {workdir}")

    db = Database(args.database, workdir, stamp)
    servers: Servers | None = None
    status = 1
    try:
        log(f"database: {db.label} {db.name}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "LOADTEST_"))}
        env.update({"CRM_DATABASE_URL": db.url, "CRM_VAR_DIR": str(workdir / "var"), "CRM_PACKS": "crm_standard"})
        started = time.monotonic()
        setup = subprocess.run([str(BIN / "crm-platform"), "demo", "setup"], env=env, cwd=REPO,
                               capture_output=True, text=True, timeout=900)
        if setup.returncode != 0:
            print(setup.stdout[-2000:], setup.stderr[-3000:], file=sys.stderr)
            return 1
        log(f"demo setup took {time.monotonic() - started:.1f} s")

        started = time.monotonic()
        servers = Servers(env, args.servers, args.shared_socket, workdir / "server.log")
        servers.wait_ready(300)
        pids = servers.pids()
        cpu_before = {pid: Servers.cpu_seconds(pid) or 0.0 for pid in pids}
        log(f"{args.servers} server process(es) {pids} ready on {', '.join(servers.bases)} in {time.monotonic() - started:.1f} s")

        out = workdir / "locust"
        locust_env = {**env, "LOADTEST_OUT": str(out), "LOADTEST_RUN": run, "LOADTEST_USERS": SALES_USERS,
                      "LOADTEST_HOSTS": ",".join(servers.bases),
                      "LOADTEST_WAIT_MIN": str(wait_min), "LOADTEST_WAIT_MAX": str(wait_max)}
        command = [str(locust), "-f", str(LOCUSTFILE), "--headless", "--users", str(args.users),
                   "--spawn-rate", str(args.spawn_rate), "--run-time", f"{args.duration}s", "--stop-timeout", "30",
                   "--host", servers.bases[0], "--only-summary", "--exit-code-on-error", "0", "--loglevel", "WARNING"]
        log(f"locust: {args.users} users, {args.spawn_rate:g}/s, {args.duration} s, think time {wait_min:g}-{wait_max:g} s")
        load_avg_before = os.getloadavg()
        with (workdir / "locust.log").open("w") as locust_log:
            finished = subprocess.run(command, env=locust_env, cwd=REPO, stdout=locust_log, stderr=subprocess.STDOUT,
                                      timeout=args.duration + 180)
        load_avg_after = os.getloadavg()
        if finished.returncode != 0:
            print((workdir / "locust.log").read_text()[-3000:], file=sys.stderr)
            log(f"locust exited with {finished.returncode}")
        cpu = {pid: (Servers.cpu_seconds(pid) or math.nan) - cpu_before.get(pid, 0.0) for pid in pids}
        alive = servers.alive() and all(Path(f"/proc/{pid}").exists() for pid in pids)
        servers.stop()

        samples = read_jsonl(out, "samples")
        acks = read_jsonl(out, "acks")
        rows, window = summarize(samples)
        print()
        how = f"serve --workers {args.servers}, one port" if args.shared_socket else "one `serve` per port, users spread round robin"
        print(f"{db.label}, {args.servers} server process(es) ({how}), {args.users} users, "
              f"{args.duration} s, think time {wait_min:g}-{wait_max:g} s; {info['nproc']} CPU(s), {info['memory_gib']} GiB")
        print()
        print_table(rows)
        overall = next(r for r in rows if r["name"] == "Overall")
        print()
        print(f"{overall['requests']} requests in {window:.1f} s: {overall['rps']:.1f} requests/s, "
              f"{overall['failures']} failed")
        print("server CPU seconds during the load: " + ", ".join(f"pid {pid} {sec:.1f}" for pid, sec in cpu.items())
              + ("" if alive else "  (a server process died!)"))
        print(f"load average before/after: {load_avg_before[0]:.2f} / {load_avg_after[0]:.2f}")
        failures = [s for s in samples if not s["ok"]]
        for sample in failures[:20]:
            print(f"  failed: {sample['name']}: {sample.get('status')} {sample.get('error', '')}")

        checked = verify_writes(db.url, run, acks)
        print()
        print(f"{'acknowledged write':<20}  {'acknowledged':>12}  {'found':>8}")
        for kind, c in checked["counts"].items():
            extra = f"  ({c['in_database']} rows carry this run's markers)" if "in_database" in c else ""
            print(f"{kind:<20}  {c['acknowledged']:>12}  {c['found']:>8}{extra}")
        print(f"acknowledged writes: {checked['acknowledged']}, found: {checked['found']}")
        for line in checked["missing"][:20]:
            print(f"  missing: {line}")

        summary = {"database": db.label, "version": db.version(), "servers": args.servers,
                   "shared_socket": args.shared_socket, "users": args.users,
                   "duration": args.duration, "think_time": [wait_min, wait_max], "machine": info,
                   "load_average_before_after": [load_avg_before, load_avg_after], "window_seconds": window,
                   "rows": rows, "server_cpu_seconds": cpu, "writes": checked}
        (workdir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
        ok = (overall["failures"] == 0 and overall["requests"] > 0 and checked["found"] == checked["acknowledged"]
              and not checked["missing"] and alive)
        print()
        print("PASS" if ok else "FAIL", f"(details in {workdir / 'summary.json'})" if args.keep or args.workdir or not ok else "")
        status = 0 if ok else 1
        return status
    finally:
        if servers is not None:
            servers.stop()
        if not args.keep:
            db.drop()
            if status == 0 and not args.workdir:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                log(f"logs kept in {workdir}")
        else:
            log(f"kept: database {db.url}, work folder {workdir}")


if __name__ == "__main__":
    sys.exit(main())
