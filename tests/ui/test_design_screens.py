"""The designer's shared screens: preview (diff, plan, problems), apply, versions, rollback."""

from __future__ import annotations

import json
import re

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.site import Site
from crm_platform.engine.site_layer import SiteLayer
from crm_platform.ui.app import create_app
from crm_platform.ui.screens import design_common
from tests.conftest import FIXTURE_PACKS
from tests.engine.test_site_layer import V1
from tests.helpers import log_in, user_with_role


@pytest.fixture
def kit_site(make_site, monkeypatch: pytest.MonkeyPatch) -> Site:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CRM_PACKS_PATH", str(FIXTURE_PACKS))
    site = make_site(["testkit"], search=[FIXTURE_PACKS])
    site.users.create_user("boss", "boss-password", "Boss", is_admin=True)
    return site


def test_preview_then_apply_then_rollback(kit_site: Site) -> None:
    app = create_app(kit_site)

    async def propose_v1(request):  # type: ignore[no-untyped-def]  # what an editor does with its change
        return await design_common.propose(request, V1, "exhibitions", "/admin/design")

    from starlette.routing import Route

    app.router.routes.insert(0, Route("/test/propose", propose_v1, methods=["GET"]))
    with TestClient(app) as client:
        log_in(client, "boss", "boss-password")
        preview = client.get("/test/propose")
        assert preview.status_code == 200
        assert "create table ent_exhibition" in preview.text and "+name: exhibition" in preview.text
        files = re.search(r'<textarea name="files" hidden>(.*?)</textarea>', preview.text, re.S).group(1)
        import html

        applied = client.post("/admin/design/apply", data={"csrf_token": client.csrf, "files": html.unescape(files), "note": "exhibitions", "back": "/admin/design"})
        assert applied.status_code == 200 and "Version 1 is applied and served." in applied.text
        assert "exhibition" in kit_site.registry.entities
        SiteLayer(kit_site).apply({}, "remove all", "boss")
        home = client.get("/admin/design")
        assert "remove all" in home.text and "exhibitions" in home.text
        rolled = client.post("/admin/design/versions/1/rollback", data={"csrf_token": client.csrf})
        assert rolled.status_code == 200 and "Version 3 is applied and served." in rolled.text
        assert "exhibition" in kit_site.registry.entities
        assert "+name: exhibition" in client.get("/admin/design/versions/1").text


def test_a_refused_change_shows_its_problems_and_cannot_be_applied(kit_site: Site) -> None:
    with TestClient(create_app(kit_site)) as client:
        log_in(client, "boss", "boss-password")
        broken = {"rules/x.rules": 'validate company "x" on name\n  when nmae = "a"\n'}
        response = client.post("/admin/design/apply", data={"csrf_token": client.csrf, "files": json.dumps(broken), "note": ""})
        assert response.status_code == 422
        assert "rules/x.rules:2:" in response.text and "nmae" in response.text
        assert SiteLayer(kit_site).versions() == []


def test_only_administrators_design(kit_site: Site) -> None:
    user_with_role(kit_site, "clerk", "clerk-password", scope="own")
    with TestClient(create_app(kit_site)) as client:
        log_in(client, "clerk", "clerk-password")
        assert client.get("/admin/design").status_code == 403
        assert client.post("/admin/design/apply", data={"csrf_token": client.csrf, "files": json.dumps(V1)}).status_code == 403
