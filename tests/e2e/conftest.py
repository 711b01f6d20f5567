"""Browser-test fixtures: a served demo site (subprocess) and Debian's Chromium driven by Playwright.

A failed test leaves a screenshot under var/test-artifacts/.
"""

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
CHROMIUM = os.environ.get("CRM_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "var" / "test-artifacts"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveSite:
    def __init__(self, base: str, var: Path, env: dict[str, str]) -> None:
        self.base = base
        self.var = var
        self.env = env
        self.username, self.password = (var / "demo-login.txt").read_text().split()

    def cli(self, *args: str) -> str:
        result = subprocess.run([str(BIN), *args], env=self.env, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture
def live_site(tmp_path: Path, database_url: str) -> Iterator[LiveSite]:
    var = tmp_path / "var"
    env = {**os.environ, "CRM_DATABASE_URL": database_url, "CRM_VAR_DIR": str(var), "CRM_PACKS": "crm_standard"}
    setup = subprocess.run([str(BIN), "demo", "setup"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert setup.returncode == 0, setup.stderr
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the server did not answer within 60 s:\n" + (tmp_path / "server.log").read_text())
            time.sleep(0.2)
        yield LiveSite(base, var, env)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="session")
def chromium():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        if os.environ.get("CRM_TEST_CHROMIUM"):
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip(f"Chromium not installed at {CHROMIUM} (./test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A factory of pages, each in its own browser context (its own cookies)."""
    contexts = []

    def make(width: int = 1280, height: int = 900):  # type: ignore[no-untyped-def]
        context = chromium.new_context(viewport={"width": width, "height": height}, locale="en-US")
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for index, context in enumerate(contexts):
            for number, page in enumerate(context.pages):
                page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{index}-{number}.png"), full_page=True)
    for context in contexts:
        context.close()
