"""The record service: typed create/read, validation of every field type, soft delete, relations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import BadRequest, NotFound, ValidationFailed
from crm_platform.engine.records.list_query import parse_list_params
from crm_platform.engine.site import Site

SYSTEM = Actor.system()


def fields_of(exc: ValidationFailed) -> dict[str, str]:
    return {d.field: d.message for d in exc.details}


def test_create_stores_every_type_exactly(kit: Site) -> None:
    record = kit.records.create(SYSTEM, "company", {
        "name": "Acme", "notes": "long\ntext", "employees": "1,200", "score": "12.345", "revenue": 1234.5,
        "revenue_currency": "USD", "discount": "12.5%", "active": "false", "founded": "2001-02-03",
        "last_contact": "2026-01-02T10:00:00+08:00", "kind": "dealer", "channels": ["wechat", "phone", "wechat"],
        "email": "sales@acme.example", "phone": "+86 21 5555 0000", "website": "https://acme.example",
    })
    assert record["employees"] == 1200
    assert record["score"] == "12.345"
    assert record["revenue"] == "1234.50" and record["revenue_currency"] == "USD"
    assert record["discount"] == "12.5000"
    assert record["active"] is False
    assert record["founded"] == "2001-02-03"
    assert record["last_contact"] == "2026-01-02T02:00:00+00:00"
    assert record["channels"] == ["phone", "wechat"]  # option order, no duplicates
    assert record["number"] == f"C-{dt.date.today().year}-001"
    assert record["version"] == 1 and record["deleted_at"] is None


def test_defaults_apply_to_new_records(kit: Site) -> None:
    record = kit.records.create(SYSTEM, "company", {"name": "Defaults", "revenue": "10"})
    assert record["kind"] == "customer"
    assert record["active"] is True
    assert record["revenue_currency"] == "CNY"


def test_every_bad_field_is_reported_at_once_and_nothing_is_written(kit: Site) -> None:
    with pytest.raises(ValidationFailed) as caught:
        kit.records.create(SYSTEM, "company", {
            "name": "", "employees": "many", "score": "1.23456", "revenue": "12.345", "kind": "partner",
            "channels": ["fax"], "email": "not-an-email", "website": "ftp://x", "founded": "03/02/2001",
            "active": "maybe", "parent": 999, "bogus": 1, "id": 5, "number": "X",
        })
    errors = fields_of(caught.value)
    assert set(errors) == {"name", "employees", "score", "revenue", "kind", "channels", "email", "website", "founded", "active", "parent", "bogus", "id", "number"}
    assert "required" in errors["name"]
    assert "'partner' is not one of the allowed values" in errors["kind"]
    assert "at most 3 decimal places" in errors["score"]
    assert "does not exist" in errors["parent"]
    assert "unknown field 'bogus'" in errors["bogus"]
    assert "set by the platform" in errors["id"]
    assert "computed" in errors["number"]
    page = kit.records.list(SYSTEM, "company", parse_list_params(kit.registry.entity("company"), []))
    assert page.total == 0


def test_numbers_out_of_range_are_refused(kit: Site) -> None:
    with pytest.raises(ValidationFailed) as caught:
        kit.records.create(SYSTEM, "company", {"name": "X", "employees": -1, "score": "123456.1"})
    errors = fields_of(caught.value)
    assert "at least 0" in errors["employees"]
    assert "digits before the decimal point" in errors["score"]


def test_soft_delete_hides_and_restore_brings_back(kit: Site) -> None:
    record = kit.records.create(SYSTEM, "company", {"name": "Gone soon"})
    kit.records.delete(SYSTEM, "company", record["id"])
    with pytest.raises(NotFound):
        kit.records.get(SYSTEM, "company", record["id"])
    entity = kit.registry.entity("company")
    assert kit.records.list(SYSTEM, "company", parse_list_params(entity, [])).total == 0
    binned = kit.records.list(SYSTEM, "company", parse_list_params(entity, [("deleted", "only")]))
    assert [r["id"] for r in binned.records] == [record["id"]]
    restored = kit.records.restore(SYSTEM, "company", record["id"])
    assert restored["deleted_at"] is None and restored["version"] == 3
    with pytest.raises(NotFound):
        kit.records.restore(SYSTEM, "company", record["id"])


def test_references_to_deleted_records_are_refused(kit: Site) -> None:
    parent = kit.records.create(SYSTEM, "company", {"name": "Parent"})
    kit.records.delete(SYSTEM, "company", parent["id"])
    with pytest.raises(ValidationFailed) as caught:
        kit.records.create(SYSTEM, "company", {"name": "Child", "parent": parent["id"]})
    assert "does not exist" in fields_of(caught.value)["parent"]


def test_child_rows_and_links_are_written_read_and_replaced(kit: Site) -> None:
    company = kit.records.create(SYSTEM, "company", {"name": "Buyer"})
    tag_ids = [kit.records.create(SYSTEM, "tag", {"name": name})["id"] for name in ("hot", "key account")]
    deal = kit.records.create(SYSTEM, "deal", {
        "title": "Big order", "company": company["id"], "amount": "5000", "tags": tag_ids,
        "lines": [{"item": "Tiles", "quantity": "10", "unit_price": "250"}, {"item": "Grout", "quantity": "2.5"}],
    })
    assert [line["item"] for line in deal["lines"]] == ["Tiles", "Grout"]
    assert deal["lines"][0]["unit_price"] == "250.00" and deal["lines"][0]["parent_id"] == deal["id"]
    assert deal["tags"] == tag_ids
    assert deal["_titles"]["company"] == "Buyer"
    first = deal["lines"][0]
    updated = kit.records.update(SYSTEM, "deal", deal["id"], {
        "version": deal["version"], "tags": tag_ids[:1],
        "lines": [{"id": first["id"], "quantity": "12"}, {"item": "Skirting", "quantity": "4"}],
    })
    assert [(line["item"], line["quantity"]) for line in updated["lines"]] == [("Tiles", "12.00"), ("Skirting", "4.00")]
    assert updated["tags"] == tag_ids[:1]
    history = kit.records.history(SYSTEM, "deal", deal["id"])
    assert {h["field"] for h in history if h["version"] == 2} == {"lines", "tags"}


def test_child_row_errors_name_the_row(kit: Site) -> None:
    company = kit.records.create(SYSTEM, "company", {"name": "Buyer"})
    with pytest.raises(ValidationFailed) as caught:
        kit.records.create(SYSTEM, "deal", {"title": "T", "company": company["id"], "lines": [{"item": "ok", "quantity": "1"}, {"quantity": "x"}]})
    errors = fields_of(caught.value)
    assert "lines[1].quantity" in errors
    assert any(k.startswith("lines[1].item") for k in errors)


def test_child_rows_cannot_be_created_alone(kit: Site) -> None:
    with pytest.raises(BadRequest):
        kit.records.create(SYSTEM, "deal_line", {"item": "x", "quantity": "1"})


def test_unknown_entity_is_not_found(kit: Site) -> None:
    with pytest.raises(NotFound):
        kit.records.create(SYSTEM, "nothing", {})


def test_history_records_who_changed_what(kit: Site) -> None:
    user_id = kit.users.create_user("alice", "alice-password", "Alice")
    kit.permissions.create_role("clerk", "Clerk")
    kit.permissions.grant("clerk", "company", "*", "own")
    kit.permissions.assign_role(user_id, "clerk")
    alice = kit.users.actor(user_id)
    assert alice is not None
    record = kit.records.create(alice, "company", {"name": "Tracked", "employees": 5})
    kit.records.update(alice, "company", record["id"], {"version": 1, "employees": 6, "name": "Tracked"})
    history = kit.records.history(alice, "company", record["id"])
    update = [h for h in history if h["action"] == "update"]
    assert update == [{**update[0], "field": "employees", "old": 5, "new": 6, "changed_by": user_id, "changed_by_name": "alice", "version": 2}]
    assert record["owner_id"] == user_id and record["created_by"] == user_id


def test_update_without_changes_keeps_the_version(kit: Site) -> None:
    record = kit.records.create(SYSTEM, "company", {"name": "Same", "revenue": "10.00"})
    again = kit.records.update(SYSTEM, "company", record["id"], {"version": 1, "name": "Same", "revenue": "10"})
    assert again["version"] == 1


def test_decimal_values_survive_round_trip_exactly(kit: Site) -> None:
    record = kit.records.create(SYSTEM, "company", {"name": "Exact", "revenue": "9999999999999999.99", "score": "-0.001"})
    fetched = kit.records.get(SYSTEM, "company", record["id"])
    assert Decimal(fetched["revenue"]) == Decimal("9999999999999999.99")
    assert Decimal(fetched["score"]) == Decimal("-0.001")
