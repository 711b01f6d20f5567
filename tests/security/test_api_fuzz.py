"""The REST API fuzzed from its own OpenAPI document (schemathesis generates requests per
operation): whatever a client sends, the API answers with a status below 500 (a clear 4xx for
bad input), never a server error. The document covers every route under /api/v1
(tests/ui/test_openapi.py), so every endpoint is fuzzed."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings

from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app
from tests.conftest import FIXTURE_PACKS

schemathesis = pytest.importorskip("schemathesis")

EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "12"))

# Revoking a token is fuzzed last: a generated id can be the fuzzer's own token, and revoking
# the token you are using is a legitimate request (a logout), so every later request would only
# meet 401s and test nothing.
LAST = ("revoke_token",)


def test_no_generated_request_gets_a_server_error(make_site) -> None:  # type: ignore[no-untyped-def]
    site: Site = make_site(["flowkit"], search=[FIXTURE_PACKS])
    user_id = site.users.create_user("fuzz", "fuzz-password-1", "Fuzz", is_admin=True)
    token, _ = site.users.create_token(user_id, "fuzz", None)
    auth = {"Authorization": f"Bearer {token}"}
    app = create_app(site)
    loaded = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, headers=auth)
    failures: list[str] = []
    operations = sorted((result.ok() for result in loaded.get_all_operations()), key=lambda op: op.definition.raw.get("operationId") in LAST)
    assert len(operations) > 60
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            try:
                response = case.call(headers={**(case.headers or {}), **auth})
            except Exception as exc:  # noqa: BLE001 - an exception out of the app is a server error too; collect them all
                failures.append(f"{case.method} {case.formatted_path} {case.body!r:.200} -> {type(exc).__name__}: {str(exc)[:300]}")
                return
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        run()
    assert failures == []


def test_bad_input_the_fuzzer_found_gets_a_clear_4xx_and_changes_nothing(make_site) -> None:  # type: ignore[no-untyped-def]
    """Each of these was a server error (or a hang) before: now a 4xx naming the field."""
    from starlette.testclient import TestClient

    site: Site = make_site(["flowkit"], search=[FIXTURE_PACKS])
    user_id = site.users.create_user("fuzz", "fuzz-password-1", "Fuzz", is_admin=True)
    token, _ = site.users.create_token(user_id, "fuzz", None)
    client = TestClient(create_app(site), headers={"Authorization": f"Bearer {token}"})
    users_before = client.get("/api/v1/admin/users").json()["data"]

    def refused(method: str, path: str, body: object, status: int, field: str) -> None:
        response = client.request(method, path, json=body)
        assert response.status_code == status, response.text
        assert field in [d["field"] for d in response.json()["error"]["details"]], response.text

    refused("POST", "/api/v1/admin/users", {"username": "newbie", "password": "password-1", "unit_id": 999_999}, 422, "unit_id")
    refused("POST", "/api/v1/admin/users", {"username": "newbie", "password": "password-1", "manager_id": 10**20}, 422, "manager_id")
    refused("POST", "/api/v1/admin/users", {"username": "newbie", "password": "password-1", "roles": ["no_such_role"]}, 422, "roles")
    refused("POST", f"/api/v1/admin/users/{user_id}/reassign", {"to_user_id": "two"}, 422, "to_user_id")
    assert client.get("/api/v1/admin/users").json()["data"] == users_before  # no user half-made
    refused("POST", "/api/v1/admin/roles", {"name": "clerk", "label_en": "\x00"}, 400, "label_en")
    refused("POST", "/api/v1/admin/roles", {"name": "clerk", "label_en": "x" * 201}, 422, "label_en")
    refused("POST", "/api/v1/admin/units", {"name": "North", "kind": "team", "name_zh": "北" * 91}, 422, "name_zh")
    refused("POST", "/api/v1/reports/run", {"entity": "deal", "measures": [{"aggregate": "sum", "field": {}}]}, 400, "measures")
    company = client.post("/api/v1/records/company", json={"name": "Acme"}).json()["id"]
    refused("POST", f"/api/v1/records/company/{company}/shares", {"access": "read", "user_id": 999_999}, 422, "user_id")
    refused("POST", "/api/v1/records/deal", {"title": "Big", "company": company, "lines": [{"item": "x", "quantity": "6021433909785800276264237006.4059065902"}]},
            422, "lines[0].quantity")
    refused("POST", "/api/v1/records/deal", {"title": "Big", "company": company, "lines": [{"id": 10**20, "item": "x", "quantity": "1"}]}, 422, "lines[0].id")

    # a second unit whose name makes the same key ("Unit") gets its own key instead of never answering
    first = client.post("/api/v1/admin/units", json={"name": "Unit", "kind": "team"})
    second = client.post("/api/v1/admin/units", json={"name": "Unit", "kind": "team"})
    assert first.status_code == second.status_code == 201
    keys = {u["id"]: u["key"] for u in client.get("/api/v1/admin/units").json()["data"]}
    assert keys[first.json()["id"]] != keys[second.json()["id"]]
