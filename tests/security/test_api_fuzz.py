"""The REST API fuzzed from its own OpenAPI document (schemathesis generates requests per
operation): whatever a client sends, the API answers with a status below 500 (a clear 4xx for
bad input), never a server error."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings

from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app
from tests.conftest import FIXTURE_PACKS

schemathesis = pytest.importorskip("schemathesis")


def test_no_generated_request_gets_a_server_error(make_site) -> None:  # type: ignore[no-untyped-def]
    site: Site = make_site(["flowkit"], search=[FIXTURE_PACKS])
    user_id = site.users.create_user("fuzz", "fuzz-password-1", "Fuzz", is_admin=True)
    token, _ = site.users.create_token(user_id, "fuzz", None)
    auth = {"Authorization": f"Bearer {token}"}
    app = create_app(site)
    loaded = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, headers=auth)
    failures: list[str] = []
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=int(os.environ.get("CRM_FUZZ_EXAMPLES", "8")), deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers={**(case.headers or {}), **auth})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        run()
    assert failures == []
