"""The OpenAPI document is valid OpenAPI 3.1 and describes every entity of the Registry."""

from __future__ import annotations

from openapi_spec_validator import validate
from starlette.testclient import TestClient

from crm_platform.engine.site import Site
from crm_platform.ui.api.openapi import build_openapi


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
