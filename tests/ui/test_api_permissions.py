"""Permissions through the HTTP API: scope, 404 for what is out of sight, 403 naming fields,
administration endpoints, sharing, and file downloads."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.site import Site


@pytest.fixture
def people(kit: Site) -> dict[str, dict[str, str]]:
    admin = kit.permissions
    unit = admin.create_unit("Sales", "department")
    admin.create_role("rep", "Rep")
    for action in ("read", "create", "update"):
        admin.grant("rep", "company", action, "own")
    admin.set_field_access("rep", "company", "score", "hidden")
    result = {}
    for name in ("ann", "ben"):
        user_id = kit.users.create_user(name, None, unit_id=unit)
        admin.assign_role(user_id, "rep")
        token, _ = kit.users.create_token(user_id, "t")
        result[name] = {"Authorization": f"Bearer {token}"}
    boss = kit.users.create_user("boss", None, is_admin=True)
    result["boss"] = {"Authorization": f"Bearer {kit.users.create_token(boss, 't')[0]}"}
    return result


def test_scopes_and_field_security_over_http(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    ann, ben = people["ann"], people["ben"]
    mine = client.post("/api/v1/records/company", json={"name": "Ann's"}, headers=ann).json()
    assert "score" not in mine
    client.post("/api/v1/records/company", json={"name": "Ben's"}, headers=ben)
    listed = client.get("/api/v1/records/company", headers=ann).json()
    assert [r["name"] for r in listed["data"]] == ["Ann's"] and listed["total"] == 1
    assert client.get(f"/api/v1/records/company/{mine['id']}", headers=ben).status_code == 404
    assert client.patch(f"/api/v1/records/company/{mine['id']}", json={"version": 1, "name": "x"}, headers=ben).status_code == 404
    hidden = client.patch(f"/api/v1/records/company/{mine['id']}", json={"version": 1, "score": "5"}, headers=ann)
    assert hidden.status_code == 403 and hidden.json()["error"]["details"][0]["field"] == "score"
    with_score = client.post("/api/v1/records/company", json={"name": "sneaky", "score": "5"}, headers=ann)
    assert with_score.status_code == 403
    owner = client.patch(f"/api/v1/records/company/{mine['id']}", json={"version": 1, "owner_id": 1}, headers=ann)
    assert owner.status_code == 422 and owner.json()["error"]["details"][0]["field"] == "owner_id"
    assert client.delete(f"/api/v1/records/company/{mine['id']}", headers=ann).status_code == 403
    assert client.get("/api/v1/records/company?score__gte=1", headers=ann).status_code == 403


def test_administration_is_for_administrators(client: TestClient, people: dict[str, dict[str, str]], kit: Site) -> None:
    assert client.get("/api/v1/admin/roles", headers=people["ann"]).status_code == 403
    boss = people["boss"]
    roles = client.get("/api/v1/admin/roles", headers=boss).json()["data"]
    rep = next(r for r in roles if r["name"] == "rep")
    assert {"entity": "company", "action": "read", "scope": "own", "source": "site"} in rep["grants"]
    assert rep["fields"] == [{"entity": "company", "field": "score", "access": "hidden"}]
    bad = client.post("/api/v1/admin/roles/rep/grants", json={"entity": "compny", "action": "raed", "scope": "everything"}, headers=boss)
    assert bad.status_code == 422 and {d["field"] for d in bad.json()["error"]["details"]} == {"entity", "action", "scope"}
    kit.records.create(Actor.system(), "company", {"name": "Nobody's"})
    assert client.post("/api/v1/admin/roles/rep/grants", json={"entity": "company", "action": "read", "scope": "all"}, headers=boss).status_code == 201
    time.sleep(0.6)
    assert client.get("/api/v1/records/company", headers=people["ann"]).json()["total"] == 1
    units = client.get("/api/v1/admin/units", headers=boss).json()["data"]
    child = client.post("/api/v1/admin/units", json={"name": "Team", "kind": "team", "parent_id": units[0]["id"]}, headers=boss)
    assert child.status_code == 201
    users = client.get("/api/v1/admin/users", headers=boss).json()["data"]
    ann = next(u for u in users if u["username"] == "ann")
    assert ann["roles"] == ["rep"]
    created = client.post("/api/v1/admin/users", json={"username": "cat", "password": "cat-password", "roles": ["rep"], "unit_id": child.json()["id"]}, headers=boss)
    assert created.status_code == 201
    loop = client.patch(f"/api/v1/admin/users/{ann['id']}", json={"manager_id": ann["id"]}, headers=boss)
    assert loop.status_code == 422


def test_sharing_and_reassignment_over_http(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    ann, ben, boss = people["ann"], people["ben"], people["boss"]
    record = client.post("/api/v1/records/company", json={"name": "Shared"}, headers=ann).json()
    ben_id = client.get("/api/v1/auth/me", headers=ben).json()["id"]
    ann_id = client.get("/api/v1/auth/me", headers=ann).json()["id"]
    assert client.post(f"/api/v1/records/company/{record['id']}/shares", json={"user_id": ben_id, "access": "read"}, headers=ben).status_code == 404
    assert client.post(f"/api/v1/records/company/{record['id']}/shares", json={"user_id": ben_id, "access": "read"}, headers=ann).status_code == 201
    assert client.get(f"/api/v1/records/company/{record['id']}", headers=ben).status_code == 200
    assert client.patch(f"/api/v1/records/company/{record['id']}", json={"version": 1, "notes": "x"}, headers=ben).status_code == 403
    moved = client.post(f"/api/v1/admin/users/{ann_id}/reassign", json={"to_user_id": ben_id}, headers=boss)
    assert moved.json() == {"moved": {"company": 1}}
    assert client.get("/api/v1/records/company", headers=ann).json()["total"] == 0


def test_files_are_only_downloadable_by_those_who_see_their_record(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    ann, ben = people["ann"], people["ben"]
    file_id = client.post("/api/v1/files", files={"file": ("logo.png", b"PNG", "image/png")}, headers=ann).json()["id"]
    assert client.get(f"/api/v1/files/{file_id}", headers=ben).status_code == 404
    client.post("/api/v1/records/company", json={"name": "With logo", "logo": file_id}, headers=ann)
    assert client.get(f"/api/v1/files/{file_id}", headers=ann).content == b"PNG"
    assert client.get(f"/api/v1/files/{file_id}", headers=ben).status_code == 404
    assert client.get(f"/api/v1/files/{file_id}", headers=people["boss"]).status_code == 200
