"""Password guessing is throttled: after 5 failures for a username (or 30 from one address) in
15 minutes, logins are refused with 429 and Retry-After, without checking the password; the
right password works again once the window passed; every process shares the count (database)."""

from __future__ import annotations

import datetime as dt
import re

from starlette.testclient import TestClient

from crm_platform.engine.clock import CLOCK
from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app
from tests.conftest import FIXTURE_PACKS


def test_guessing_a_password_is_throttled_on_the_page_and_the_api(make_site) -> None:  # type: ignore[no-untyped-def]
    site: Site = make_site(["testkit"], search=[FIXTURE_PACKS])
    site.users.create_user("li", "right-password-1")
    with CLOCK.scope():
        CLOCK.set(dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC))
        with TestClient(create_app(site)) as client:
            page = client.get("/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            for _ in range(5):
                assert client.post("/login", data={"username": "li", "password": "guess", "csrf_token": csrf}).status_code == 401
            refused = client.post("/login", data={"username": "li", "password": "right-password-1", "csrf_token": csrf})
            assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
            assert "Too many failed logins" in refused.text
        other_process = TestClient(create_app(site))  # the count is in the database
        api = other_process.post("/api/v1/auth/token", json={"username": "li", "password": "right-password-1"})
        assert api.status_code == 429 and api.json()["error"]["code"] == "too_many_attempts"
        CLOCK.advance(dt.timedelta(minutes=16))
        assert other_process.post("/api/v1/auth/token", json={"username": "li", "password": "right-password-1"}).status_code == 201
        # a success clears the failures: four more wrong guesses do not lock the user out
        for _ in range(4):
            assert other_process.post("/api/v1/auth/token", json={"username": "li", "password": "guess"}).status_code == 401
        assert other_process.post("/api/v1/auth/token", json={"username": "li", "password": "right-password-1"}).status_code == 201
