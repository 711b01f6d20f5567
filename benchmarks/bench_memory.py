"""Peak memory of one server process serving both packs (crm_standard and ceramics).

Sets up a demo site in a temporary folder (`crm-platform demo setup` with CRM_PACKS=crm_standard,
ceramics), starts `crm-platform serve`, logs in as the demo admin and opens every list, a detail
page of each entity, every dashboard and the designer home, then prints the process's resident
memory now and at its peak (VmRSS / VmHWM from /proc, Linux), against the baseline of a bare
Python process that imports the same libraries (starlette, sqlalchemy, lark, jinja2, casbin, arq):
its peak (VmHWM) too. On SQLite by default; the runner measures it on each database it runs.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "crm-platform"


def memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Memory:
    """MiB of the server process and of the bare-imports baseline."""

    entities: int
    pages: int
    start_rss: int
    rss: int
    peak: int
    baseline: int


def wait_healthy(base: str, server: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"crm-platform serve exited with {server.returncode}")
        try:
            if httpx.get(base + "/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"crm-platform serve did not answer {base}/api/v1/health within {timeout:.0f} s")


def open_pages(base: str, username: str, password: str) -> tuple[int, int]:
    """Log in and open every list, a record of each entity, every dashboard and the designer:
    (entities, pages opened)."""
    with httpx.Client(base_url=base, follow_redirects=True, timeout=60) as client:
        page = client.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        client.post("/login", data={"username": username, "password": password, "csrf_token": csrf})
        entities = client.get("/api/v1/meta/entities").json()["data"]
        opened = 0
        for entity in entities:
            listing = client.get(f"/app/{entity['name']}")
            opened += 1
            match = re.search(rf'href="/app/{entity["name"]}/(\d+)"', listing.text)
            if match:
                client.get(f"/app/{entity['name']}/{match.group(1)}")
                opened += 1
        for name in re.findall(r'href="/dashboards/([a-z_]+)"', client.get("/dashboards").text):
            client.get(f"/dashboards/{name}")
            opened += 1
        client.get("/admin/design")
    return len(entities), opened + 1


def measure_memory(database_url: str | None = None) -> Memory:
    """A demo site with both packs in a temporary folder (on SQLite there, or on the empty database
    `database_url` names), one `crm-platform serve`, the pages opened."""
    folder = Path(tempfile.mkdtemp(prefix="bench_memory_"))
    env = {**os.environ, "CRM_VAR_DIR": str(folder / "var"), "CRM_PACKS": "crm_standard,ceramics"}
    env.pop("CRM_DATABASE_URL", None)
    env.pop("CRM_REDIS_URL", None)
    if database_url:
        env["CRM_DATABASE_URL"] = database_url
    try:
        setup = subprocess.run([str(BIN), "demo", "setup"], env=env, cwd=REPO, capture_output=True, text=True)
        if setup.returncode:
            raise RuntimeError(f"crm-platform demo setup failed ({setup.returncode}): {setup.stderr[-2000:]}")
        username, password = (folder / "var" / "demo-login.txt").read_text().split()
        port = free_port()
        server = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, server)
            start_rss, _ = memory(server.pid)
            entities, opened = open_pages(base, username, password)
            rss, peak = memory(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        # VmHWM of the child's own address space (ru_maxrss would keep this process's size across exec)
        baseline = subprocess.run([sys.executable, "-c", "import starlette, sqlalchemy, lark, jinja2, casbin, arq, pathlib; "
                                   "status = pathlib.Path('/proc/self/status').read_text(); "
                                   "print(int(status.split('VmHWM:')[1].split()[0]) // 1024)"],
                                  capture_output=True, text=True, check=True)
        return Memory(entities, opened, start_rss, rss, peak, int(baseline.stdout.strip()))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    result = measure_memory()
    print(f"entities: {result.entities}, pages opened: {result.pages}")
    print(f"{'process':34} {'MiB':>6}")
    print(f"{'server after start-up (RSS)':34} {result.start_rss:6}")
    print(f"{'server after the pages (RSS)':34} {result.rss:6}")
    print(f"{'server peak (VmHWM)':34} {result.peak:6}")
    print(f"{'baseline: bare imports (peak)':34} {result.baseline:6}")


if __name__ == "__main__":
    main()
