"""API fixtures: a TestClient on the real app (testkit pack), with a token for an admin user."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app


@pytest.fixture
def kit_admin_token(kit: Site) -> str:
    user_id = kit.users.create_user("admin", "admin-password", "Admin", is_admin=True)
    value, _ = kit.users.create_token(user_id, "tests")
    return value


@pytest.fixture
def client(kit: Site) -> Iterator[TestClient]:
    with TestClient(create_app(kit), base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient, kit_admin_token: str) -> TestClient:
    client.headers["Authorization"] = f"Bearer {kit_admin_token}"
    return client
