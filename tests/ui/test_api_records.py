"""The records API: statuses and error bodies a client relies on, list parameters, history, files."""

from __future__ import annotations

from starlette.testclient import TestClient


def create_company(api: TestClient, **values: object) -> dict:
    response = api.post("/api/v1/records/company", json={"name": "Acme", **values})
    assert response.status_code == 201, response.text
    return response.json()


def test_validation_errors_are_422_with_field_paths(api: TestClient) -> None:
    response = api.post("/api/v1/records/company", json={"name": "", "employees": "lots", "kind": "x"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert {d["field"] for d in error["details"]} == {"name", "employees", "kind"}
    assert api.get("/api/v1/records/company").json()["total"] == 0


def test_malformed_json_is_400_and_wrong_media_type_415(api: TestClient) -> None:
    bad = api.post("/api/v1/records/company", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"
    form = api.post("/api/v1/records/company", data={"name": "x"})
    assert form.status_code == 415
    array = api.post("/api/v1/records/company", json=[1, 2])
    assert array.status_code == 422


def test_unknown_entity_or_record_is_404(api: TestClient) -> None:
    assert api.get("/api/v1/records/nothing").status_code == 404
    assert api.get("/api/v1/records/company/999").json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/records/company/abc").status_code == 404
    assert api.get("/api/v1/no/such/endpoint").status_code == 404


def test_patch_merges_and_conflicts_with_409(api: TestClient) -> None:
    company = create_company(api, employees=1)
    url = f"/api/v1/records/company/{company['id']}"
    assert api.patch(url, json={"version": 1, "employees": 2}).json()["version"] == 2
    merged = api.patch(url, json={"version": 1, "notes": "merged"})
    assert merged.status_code == 200 and merged.json()["employees"] == 2
    conflict = api.patch(url, json={"version": 1, "employees": 9})
    assert conflict.status_code == 409
    detail = conflict.json()["error"]["details"][0]
    assert (detail["field"], detail["current"], detail["yours"]) == ("employees", 2, 9)
    missing_version = api.patch(url, json={"employees": 3})
    assert missing_version.status_code == 400
    assert missing_version.json()["error"]["details"][0]["field"] == "version"


def test_delete_restore_and_history(api: TestClient) -> None:
    company = create_company(api)
    url = f"/api/v1/records/company/{company['id']}"
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert api.get(url, params={"deleted": "include"}).json()["deleted_at"] is not None
    assert api.delete(url).status_code == 404
    restored = api.post(url + "/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    actions = [h["action"] for h in api.get(url + "/history").json()["data"]]
    assert actions[-2:] == ["delete", "restore"] and actions[0] == "create"


def test_list_filters_sorts_searches_and_pages(api: TestClient) -> None:
    for i, (name, kind, revenue) in enumerate([("Alpha", "customer", "10"), ("Beta", "dealer", "300"), ("Gamma", "dealer", "20"), ("Delta 50%", "public_body", None)]):
        create_company(api, name=name, kind=kind, revenue=revenue, employees=i, channels=["email"] if i % 2 else ["phone"])
    def names(**params: str) -> list[str]:
        response = api.get("/api/v1/records/company", params=params)
        assert response.status_code == 200, response.text
        return [r["name"] for r in response.json()["data"]]

    assert names() == ["Alpha", "Beta", "Delta 50%", "Gamma"]  # the default view sorts by name
    assert names(kind="dealer", sort="-revenue") == ["Beta", "Gamma"]
    assert names(revenue__gte="20", sort="revenue") == ["Gamma", "Beta"]
    assert names(revenue__isnull="true") == ["Delta 50%"]
    assert names(kind__in="customer,public_body") == ["Alpha", "Delta 50%"]
    assert names(q="ta") == ["Beta", "Delta 50%"]
    assert names(q="50%") == ["Delta 50%"]
    assert names(channels__includes="email") == ["Beta", "Delta 50%"]
    page = api.get("/api/v1/records/company", params={"page": "2", "page_size": "3", "sort": "employees"}).json()
    assert (page["total"], page["pages"], [r["name"] for r in page["data"]]) == (4, 2, ["Delta 50%"])


def test_bad_list_parameters_are_400_naming_each(api: TestClient) -> None:
    response = api.get("/api/v1/records/company", params={"colour": "red", "sort": "nope", "employees__around": "3", "page": "0", "revenue__gte": "lots"})
    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert fields == {"colour", "sort", "employees__around", "page", "revenue__gte"}


def test_references_show_titles(api: TestClient) -> None:
    parent = create_company(api, name="Holding")
    child = create_company(api, name="Sub", parent=parent["id"])
    assert child["_titles"] == {"parent": "Holding", "owner_id": "Admin"}  # references and the owner by name
    listed = api.get("/api/v1/records/company", params={"parent": str(parent["id"])}).json()["data"]
    assert [(r["name"], r["_titles"]["parent"]) for r in listed] == [("Sub", "Holding")]


def test_file_upload_download_and_use_in_a_file_field(api: TestClient) -> None:
    upload = api.post("/api/v1/files", files={"file": ("logo.png", b"\x89PNG fake", "image/png")})
    assert upload.status_code == 201, upload.text
    file_id = upload.json()["id"]
    company = create_company(api, logo=file_id)
    assert company["logo"] == file_id
    download = api.get(f"/api/v1/files/{file_id}")
    assert download.content == b"\x89PNG fake" and download.headers["content-type"] == "image/png"
    assert api.post("/api/v1/records/company", json={"name": "x", "logo": 9999}).status_code == 422
    assert api.post("/api/v1/files", json={"file": "x"}).status_code == 400


def test_meta_describes_entities(api: TestClient) -> None:
    entities = api.get("/api/v1/meta/entities").json()["data"]
    assert {"company", "deal", "deal_line", "tag"} == {e["name"] for e in entities}
    company = api.get("/api/v1/meta/entities/company").json()
    kind = next(f for f in company["fields"] if f["name"] == "kind")
    assert kind["options"][1] == {"value": "dealer", "label": {"en": "Dealer", "zh-CN": "经销商"}, "color": None}
    assert company["views"][0]["columns"] == ["number", "name", "kind", "revenue", "founded"]
    assert api.get("/api/v1/meta/entities/nothing").status_code == 404


def test_picklists_sort_in_option_order_not_alphabetically(api: TestClient) -> None:
    for name, kind in (("A", "public_body"), ("B", "customer"), ("C", "dealer")):
        create_company(api, name=name, kind=kind)
    listed = api.get("/api/v1/records/company", params={"sort": "kind"}).json()["data"]
    assert [r["kind"] for r in listed] == ["customer", "dealer", "public_body"]
    listed = api.get("/api/v1/records/company", params={"sort": "-kind"}).json()["data"]
    assert [r["kind"] for r in listed] == ["public_body", "dealer", "customer"]
