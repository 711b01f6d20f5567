"""A new user's path on the standard pack: password for a token, create an account, read it back."""

from __future__ import annotations

from starlette.testclient import TestClient

from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app


def test_password_for_token_then_create_account(site: Site) -> None:
    site.users.create_user("admin", "admin-password", "Admin", is_admin=True)
    with TestClient(create_app(site)) as client:
        response = client.post("/api/v1/auth/token", json={"username": "admin", "password": "admin-password"})
        assert response.status_code == 201, response.text
        headers = {"Authorization": f"Bearer {response.json()['token']}"}
        created = client.post("/api/v1/records/account", json={"name": "Acme Tiles", "customer_type": "dealer"}, headers=headers)
        assert created.status_code == 201, created.text
        record = created.json()
        assert record["name"] == "Acme Tiles" and record["version"] == 1
        assert created.headers["location"] == f"/api/v1/records/account/{record['id']}"
        fetched = client.get(f"/api/v1/records/account/{record['id']}", headers=headers)
        assert fetched.json()["customer_type"] == "dealer"
