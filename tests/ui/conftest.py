"""API fixtures: a TestClient on the real app, with a token for an admin user."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app


@pytest.fixture
def app_client(site: Site) -> Iterator[TestClient]:
    with TestClient(create_app(site), base_url="http://testserver") as client:
        yield client


@pytest.fixture
def token(site: Site, admin: Actor) -> str:
    assert admin.user_id is not None
    value, _ = site.users.create_token(admin.user_id, "tests")
    return value


@pytest.fixture
def api(app_client: TestClient, token: str) -> TestClient:
    app_client.headers["Authorization"] = f"Bearer {token}"
    return app_client
