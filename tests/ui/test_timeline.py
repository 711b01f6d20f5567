"""The detail timeline shows the record's changes and the activities that reference it."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app


def test_account_timeline_has_changes_and_follow_ups(site: Site) -> None:
    system = Actor.system()
    account = site.records.create(system, "account", {"name": "Timeline Tiles"})
    site.records.update(system, "account", account["id"], {"version": 1, "region": "Foshan"})
    site.records.create(system, "activity", {"subject": "Visited the showroom", "kind": "visit", "account": account["id"], "occurred_at": "2026-03-02T10:00:00+08:00"})
    site.users.create_user("root", "root-password", is_admin=True)
    with TestClient(create_app(site)) as client:
        page = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        client.post("/login", data={"username": "root", "password": "root-password", "csrf_token": csrf})
        detail = client.get(f"/app/account/{account['id']}").text
    timeline = detail[detail.index('class="timeline"'):]
    assert "Visited the showroom" in timeline and "2026-03-02 02:00" in timeline
    assert "Region: — → Foshan" in timeline
    assert timeline.index("Region: — → Foshan") < timeline.index("Visited the showroom")  # newest first
