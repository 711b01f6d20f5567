"""Authentication: nothing but login and health answers without credentials; tokens; CSRF."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from crm_platform.engine.site import Site
from tests.helpers import user_with_role


def test_only_health_and_login_answer_anonymously(client: TestClient) -> None:
    assert client.get("/api/v1/health").status_code == 200
    assert client.get("/login").status_code == 200
    for path in ("/api/v1/records/company", "/api/v1/meta/entities", "/api/v1/openapi.json", "/api/v1/auth/me", "/api/v1/files/1"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "unauthenticated"
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert client.post("/api/v1/records/company", json={"name": "x"}).status_code == 401
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_bad_tokens_are_401(client: TestClient, kit_admin_token: str) -> None:
    for header in ("Bearer nope", "Bearer crm_wrong", "Basic abc", "Bearer "):
        assert client.get("/api/v1/auth/me", headers={"Authorization": header}).status_code == 401
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {kit_admin_token}"}).json()["username"] == "admin"


def test_password_exchange_and_token_lifecycle(client: TestClient, kit: Site) -> None:
    user_with_role(kit, "bob", "bob-password-1")
    wrong = client.post("/api/v1/auth/token", json={"username": "bob", "password": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "bad_credentials"
    unknown = client.post("/api/v1/auth/token", json={"username": "nobody", "password": "nope"})
    assert unknown.status_code == 401
    missing = client.post("/api/v1/auth/token", json={"username": "bob"})
    assert missing.status_code == 422
    issued = client.post("/api/v1/auth/token", json={"username": "bob", "password": "bob-password-1", "name": "laptop"})
    assert issued.status_code == 201
    token = issued.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    tokens = client.get("/api/v1/tokens", headers=auth).json()["data"]
    assert [t["name"] for t in tokens] == ["laptop"] and "token_hash" not in tokens[0]
    second = client.post("/api/v1/tokens", json={"name": "script", "days": 30}, headers=auth)
    assert second.status_code == 201 and second.json()["expires_at"]
    assert client.delete(f"/api/v1/tokens/{tokens[0]['id']}", headers=auth).status_code == 204
    assert client.get("/api/v1/auth/me", headers=auth).status_code == 401
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {second.json()['token']}"}).status_code == 200


def test_tokens_are_stored_hashed(kit: Site) -> None:
    import sqlalchemy as sa

    user_id = user_with_role(kit, "carol", "carol-password")
    token, _ = kit.users.create_token(user_id, "x")
    with kit.engine.connect() as conn:
        stored = conn.execute(sa.select(kit.schema.system["crm_api_token"].c.token_hash)).scalar_one()
        password_hash = conn.execute(sa.select(kit.schema.system["crm_user"].c.password_hash).where(kit.schema.system["crm_user"].c.id == user_id)).scalar_one()
    assert token not in stored and len(stored) == 64
    assert password_hash.startswith("$argon2")


def _login(client: TestClient, username: str, password: str) -> None:
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf.group(1), "next": "/"}, follow_redirects=False)
    assert response.status_code == 303, response.text


def test_session_login_needs_csrf_for_writes(client: TestClient, kit: Site) -> None:
    user_with_role(kit, "dana", "dana-password")
    no_csrf = client.post("/login", data={"username": "dana", "password": "dana-password"})
    assert no_csrf.status_code == 403
    _login(client, "dana", "dana-password")
    assert client.get("/api/v1/auth/me").json()["username"] == "dana"
    forged = client.post("/api/v1/records/company", json={"name": "x"})
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf_failed"
    home = client.get("/")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert csrf
    allowed = client.post("/api/v1/records/company", json={"name": "x"}, headers={"X-CSRF-Token": csrf.group(1)})
    assert allowed.status_code == 201


def test_wrong_password_on_the_login_page(client: TestClient, kit: Site) -> None:
    user_with_role(kit, "erin", "erin-password")
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    response = client.post("/login", data={"username": "erin", "password": "bad", "csrf_token": csrf.group(1)})
    assert response.status_code == 401 and "Wrong username or password" in response.text


def test_login_page_creates_a_token_shown_once(client: TestClient, kit: Site) -> None:
    user_with_role(kit, "fay", "fay-password")
    _login(client, "fay", "fay-password")
    home = client.get("/me")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert csrf
    created = client.post("/me/tokens", data={"name": "curl", "csrf_token": csrf.group(1)})
    token = re.search(r'<code id="new-token">(crm_[^<]+)</code>', created.text)
    assert created.status_code == 201 and token
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token.group(1)}"}).json()["username"] == "fay"
    assert token.group(1) not in client.get("/me").text


def test_login_redirect_stays_on_this_site(client: TestClient, kit: Site) -> None:
    user_with_role(kit, "gus", "gus-password")
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    response = client.post("/login", data={"username": "gus", "password": "gus-password", "csrf_token": csrf.group(1), "next": "//evil.example/x"}, follow_redirects=False)
    assert response.headers["location"] == "/"
