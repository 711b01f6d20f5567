"""A new user's path: get a token with a password, create an account, read it back."""

from starlette.testclient import TestClient


def test_password_for_token_then_create_account(app_client: TestClient, admin: object) -> None:
    response = app_client.post("/api/v1/auth/token", json={"username": "admin", "password": "admin-password"})
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    created = app_client.post("/api/v1/records/account", json={"name": "Acme Tiles", "customer_type": "dealer"}, headers=headers)
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["name"] == "Acme Tiles" and record["version"] == 1
    assert created.headers["location"] == f"/api/v1/records/account/{record['id']}"
    fetched = app_client.get(f"/api/v1/records/account/{record['id']}", headers=headers)
    assert fetched.json()["customer_type"] == "dealer"
