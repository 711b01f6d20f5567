"""The README's path end to end: set up the demo, serve it, log in, get a token, create an account."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO

BIN = Path(sys.executable).parent / "crm-platform"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[tuple[str, Path]]:
    env = {**os.environ, "CRM_DATABASE_URL": database_url, "CRM_VAR_DIR": str(tmp_path / "var"), "CRM_PACKS": "crm_standard"}
    setup = subprocess.run([str(BIN), "demo", "setup"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert setup.returncode == 0, setup.stderr
    assert "demo login: username admin" in setup.stdout
    again = subprocess.run([str(BIN), "demo", "setup"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "record(s) created" not in again.stdout  # demo data loads once
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not answer within 60 s")
        yield base, tmp_path / "var"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_demo_login_token_and_account_creation(served: tuple[str, Path]) -> None:
    base, var = served
    username, password = (var / "demo-login.txt").read_text().split()
    with httpx.Client(base_url=base, timeout=30) as client:
        token = client.post("/api/v1/auth/token", json={"username": username, "password": password})
        assert token.status_code == 201, token.text
        auth = {"Authorization": f"Bearer {token.json()['token']}"}
        accounts = client.get("/api/v1/records/account", headers=auth).json()
        assert accounts["total"] >= 10  # the pack's demo accounts
        created = client.post("/api/v1/records/account", json={"name": "README Ceramics Ltd", "customer_type": "dealer"}, headers=auth)
        assert created.status_code == 201, created.text
        assert created.json()["code"].startswith("KH-")
        login_page = client.get("/login")
        assert login_page.status_code == 200 and 'name="password"' in login_page.text
