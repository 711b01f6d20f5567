"""The OpenAPI document is valid OpenAPI 3.1, describes every entity of the Registry, and every\nroute mounted under /api/v1 (each method) is in it."""

from __future__ import annotations

import re

from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from crm_platform.engine.site import Site
from crm_platform.ui.api.openapi import build_openapi
from crm_platform.ui.app import create_app


def test_openapi_document_validates_and_lists_entities(api: TestClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    validate(document)
    assert "/api/v1/records/company" in document["paths"]
    assert "/api/v1/records/deal_line" not in document["paths"]  # child rows go through their deal
    company_input = document["components"]["schemas"]["company_input"]
    assert company_input["required"] == ["name"]
    assert company_input["properties"]["kind"]["anyOf"][0]["enum"] == ["customer", "dealer", "public_body"]
    assert "number" not in company_input["properties"]


def test_standard_pack_openapi_validates(site: Site) -> None:
    validate(build_openapi(site.registry))


def test_openapi_document_lists_the_dashboard_endpoints_with_their_schemas(api: TestClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    validate(document)
    paths = document["paths"]
    assert set(paths["/api/v1/dashboards"]) == {"get", "post"}
    assert set(paths["/api/v1/dashboards/{id}"]) == {"parameters", "get", "patch", "delete"}
    patch = paths["/api/v1/dashboards/{id}"]["patch"]
    assert patch["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/DashboardPatch"}
    assert "409" in patch["responses"] and "409" in paths["/api/v1/dashboards/{id}"]["delete"]["responses"]
    schemas = document["components"]["schemas"]
    assert schemas["DashboardPatch"]["required"] == ["version"]  # a change names the version it is based on, as a record's PATCH
    assert "version" in schemas["Dashboard"]["properties"]
    assert set(schemas["DashboardInput"]["properties"]) == {"name", "sharing", "roles", "widgets"}
    assert "company" in schemas["DashboardReportSpec"]["properties"]["entity"]["enum"]


# Routes under /api/v1 that are deliberately not in the document, with the reason. (None today:
# every endpoint, the document itself included, answers JSON or a file and is described.)
NOT_DOCUMENTED: dict[tuple[str, str], str] = {}


def _api_operations(app: Starlette) -> set[tuple[str, str]]:
    """(method, path template) of every route mounted under /api/v1, e.g. ("PATCH", "/api/v1/admin/users/{id}")."""
    mount = next(r for r in app.routes if isinstance(r, Mount) and r.path == "/api/v1")
    operations = set()
    for route in mount.routes:
        assert isinstance(route, Route)
        template = "/api/v1" + re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        operations |= {(method, template) for method in route.methods or () if method != "HEAD"}
    return operations


def _route_for(app: Starlette, method: str, documented_path: str) -> tuple[str, str] | None:
    """The (method, route template) Starlette serves a documented operation with; path parameters
    are filled with a sample value (records' paths name each entity, the routes take any)."""
    mount = next(r for r in app.routes if isinstance(r, Mount) and r.path == "/api/v1")
    sample = re.sub(r"\{\w+\}", "1", documented_path.removeprefix("/api/v1"))
    for route in mount.routes:
        assert isinstance(route, Route)
        if method in (route.methods or ()) and route.path_regex.match(sample):
            return method, "/api/v1" + re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
    return None


def test_every_api_route_and_method_is_documented_and_nothing_else(site: Site) -> None:
    app = create_app(site)
    document = build_openapi(site.registry)
    validate(document)
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item if method != "parameters"}
    served = {_route_for(app, method, path) for method, path in documented}
    assert None not in served, sorted(op for op in documented if _route_for(app, *op) is None)  # the document names no endpoint that is not there
    missing = _api_operations(app) - served - set(NOT_DOCUMENTED)
    assert missing == set(), f"routes under /api/v1 missing from the OpenAPI document: {sorted(missing)}"


def test_documented_admin_and_workflow_bodies_match_the_handlers(site: Site) -> None:
    document = build_openapi(site.registry)
    schemas, paths = document["components"]["schemas"], document["paths"]
    assert schemas["RoleInput"]["required"] == ["name", "label_en"]
    assert schemas["GrantInput"]["properties"]["scope"]["enum"] == ["own", "unit", "unit_and_below", "all"]
    assert "account" in schemas["GrantInput"]["properties"]["entity"]["enum"] and "*" in schemas["GrantInput"]["properties"]["entity"]["enum"]
    assert schemas["OrgUnitInput"]["properties"]["kind"]["enum"] == ["group", "subsidiary", "department", "team"]
    assert schemas["UserInput"]["required"] == ["username", "password"]
    assert schemas["ShareInput"]["properties"]["access"]["enum"] == ["read", "edit"]
    assert schemas["ApprovalDecision"]["required"] == ["approve"]
    assert "409" in paths["/api/v1/records/{entity}/{id}/transitions/{name}"]["post"]["responses"]
    assert "account" in paths["/api/v1/records/{entity}/{id}/shares"]["parameters"][0]["schema"]["enum"]
    imports = paths["/api/v1/imports"]["post"]
    assert set(imports["responses"]) >= {"200", "202", "413", "422"}
    assert imports["requestBody"]["content"]["multipart/form-data"]["schema"]["required"] == ["file", "entity"]
    assert schemas["ReportSpec"]["required"] == ["entity"]


def test_a_forgotten_route_is_reported(site: Site) -> None:
    """The coverage check itself: an endpoint added without documenting it is found."""
    app = create_app(site)
    mount = next(r for r in app.routes if isinstance(r, Mount) and r.path == "/api/v1")
    mount.routes.append(Route("/forgotten/{id:int}", lambda request: None, methods=["PUT"]))
    document = build_openapi(site.registry)
    documented = {(m.upper(), p) for p, item in document["paths"].items() for m in item if m != "parameters"}
    served = {_route_for(app, m, p) for m, p in documented}
    assert _api_operations(app) - served == {("PUT", "/api/v1/forgotten/{id}")}
