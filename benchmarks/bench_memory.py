"""Peak memory of one server process serving both packs (crm_standard and ceramics).

Sets up a demo site in a temporary folder (`crm-platform demo setup` with CRM_PACKS=crm_standard,
ceramics), starts `crm-platform serve`, logs in as the demo admin and opens every list, a detail
page of each entity, every dashboard and the designer home, then prints the process's resident
memory now and at its peak (VmRSS / VmHWM from /proc, Linux), against the baseline of a bare
Python process that imports the same libraries (starlette, sqlalchemy, lark, jinja2).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
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


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    env = {**os.environ, "CRM_VAR_DIR": str(folder / "var"), "CRM_PACKS": "crm_standard,ceramics"}
    env.pop("CRM_DATABASE_URL", None)
    subprocess.run([str(BIN), "demo", "setup"], env=env, cwd=REPO, check=True, capture_output=True)
    username, password = (folder / "var" / "demo-login.txt").read_text().split()
    port = free_port()
    server = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        start_rss, _ = memory(server.pid)
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
        rss, peak = memory(server.pid)
        baseline = subprocess.run([sys.executable, "-c", "import starlette, sqlalchemy, lark, jinja2, casbin, arq; import resource; "
                                   "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"], capture_output=True, text=True, check=True)
        print(f"entities: {len(entities)}, pages opened: {opened}")
        print(f"{'process':34} {'MiB':>6}")
        print(f"{'server after start-up (RSS)':34} {start_rss:6}")
        print(f"{'server after the pages (RSS)':34} {rss:6}")
        print(f"{'server peak (VmHWM)':34} {peak:6}")
        print(f"{'baseline: bare imports (peak)':34} {int(baseline.stdout.strip()):6}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
