"""Schema migrations: fresh sync, add, archive and restore, rename with data, versions, atomicity.

Every test runs on SQLite, and on PostgreSQL when CRM_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm_platform.engine.migration import apply as apply_module
from crm_platform.engine.site import Site
from tests.engine.migration_packs import (
    SYSTEM,
    PackVersions,
    actions,
    columns,
    fld,
    foreign_keys,
    indexes,
    raw,
    schema_snapshot,
)

BASE = [
    "- {name: name, type: text, label: {en: Name, zh-CN: Name}, required: true, max_length: 50}",
    fld("note", "text", max_length=200),
    fld("amount", "money"),
]


@pytest.fixture
def packs(tmp_path: Path, make_site: Callable[..., Site]) -> PackVersions:
    return PackVersions(tmp_path, make_site)


# --- fresh sync ---------------------------------------------------------------------------


def test_fresh_sync_creates_tables_with_system_and_typed_columns(kit: Site) -> None:
    company = columns(kit, "ent_company")
    system = {"id", "created_at", "created_by", "updated_at", "updated_by", "version", "deleted_at"}
    assert system | {"owner_id", "unit_id", "state"} <= set(company)
    assert {"number", "name", "notes", "employees", "score", "revenue", "revenue_currency", "discount", "active",
            "founded", "last_contact", "kind", "channels", "email", "phone", "website", "logo", "parent"} <= set(company)
    tag = columns(kit, "ent_tag")  # owned: false
    assert system | {"state"} <= set(tag) and not {"owner_id", "unit_id"} & set(tag)
    line = columns(kit, "ent_deal_line")  # child of deal: owned through its parent
    assert system | {"parent_id"} <= set(line) and not {"state", "owner_id", "unit_id"} & set(line)
    assert not line["parent_id"]["nullable"]
    assert set(columns(kit, "ent_deal__tags")) == {"source_id", "target_id"}

    types = {name: str(col["type"]).upper() for name, col in company.items()}
    assert types["name"].startswith("VARCHAR(100)")
    assert types["notes"] == "TEXT" and types["channels"] == "TEXT"
    assert types["employees"] in ("BIGINT", "INTEGER")
    assert types["active"] == "BOOLEAN" and types["founded"] == "DATE"
    assert types["revenue_currency"].startswith("VARCHAR(3)")
    if kit.engine.dialect.name == "postgresql":
        assert types["score"] == "NUMERIC(8, 3)" and types["revenue"] == "NUMERIC(18, 2)"
        assert types["last_contact"] == "TIMESTAMP" and company["last_contact"]["type"].timezone
    else:  # exact decimals are scaled integers on SQLite
        assert types["score"] == "BIGINT" and types["revenue"] == "BIGINT"


def test_fresh_sync_creates_foreign_keys(kit: Site) -> None:
    company = foreign_keys(kit, "ent_company")
    assert company["parent"] == ("ent_company", "SET NULL")
    assert company["logo"] == ("crm_file", "SET NULL")
    assert company["owner_id"][0] == "crm_user" and company["unit_id"][0] == "crm_org_unit"
    assert company["created_by"][0] == "crm_user" and company["updated_by"][0] == "crm_user"
    assert foreign_keys(kit, "ent_deal")["company"] == ("ent_company", "RESTRICT")
    assert foreign_keys(kit, "ent_deal_line")["parent_id"] == ("ent_deal", "CASCADE")
    links = foreign_keys(kit, "ent_deal__tags")
    assert links == {"source_id": ("ent_deal", "CASCADE"), "target_id": ("ent_tag", "CASCADE")}


def test_fresh_sync_creates_indexes(kit: Site) -> None:
    company = indexes(kit, "ent_company")
    assert company["ix_ent_company_parent"] == (["parent"], False)  # reference
    assert company["ix_ent_company_logo"] == (["logo"], False)  # file reference
    assert company["ix_ent_company_name"] == (["name"], False)  # list view sort field
    assert company["ix_ent_company_kind"] == (["kind"], False)  # picklist
    assert company["ux_ent_company_number"] == (["number"], True)  # auto-number
    for system_col in ("owner_id", "unit_id", "created_at", "updated_at", "deleted_at"):
        assert f"ix_ent_company_{system_col}" in company
    assert "ix_ent_company_notes" not in company
    assert indexes(kit, "ent_deal")["ix_ent_deal_company"] == (["company"], False)
    assert "ix_ent_deal_line_parent_id" in indexes(kit, "ent_deal_line")


def test_second_plan_is_empty(kit: Site) -> None:
    assert kit.plan().empty
    assert "nothing to do" in kit.plan().describe()
    assert kit.sync().empty
    with kit.engine.connect() as conn:  # an empty sync records no version
        assert conn.execute(sa.text("SELECT count(*) FROM crm_metadata_version")).scalar_one() == 1


def test_standard_pack_syncs_and_then_plans_nothing(site: Site) -> None:
    assert site.plan().empty, site.plan().describe()


def test_fresh_plan_lists_platform_and_entity_tables(packs: PackVersions) -> None:
    site = packs.open({"item": BASE}, sync=False)
    plan = site.plan()
    assert [s.action for s in plan.steps] == ["create_system_tables", "create_table"]
    assert "create table ent_item for entity 'item' (name, note, amount, amount_currency)" in plan.describe()
    assert not plan.refused
    site.sync()
    assert site.plan().empty


# --- additive changes ---------------------------------------------------------------------


def test_add_fields_keeps_existing_data(packs: PackVersions) -> None:
    v1 = packs.open({"item": BASE})
    rec = v1.records.create(SYSTEM, "item", {"name": "Anvil", "note": "heavy", "amount": "12.50"})
    v2 = packs.open({"item": [*BASE, fld("qty", "integer", indexed="true"), fld("other", "reference", entity="item"),
                              fld("due", "date")]}, version="1.1.0", sync=False)
    plan = v2.plan()
    assert ("add_column", "ent_item", "qty") in actions(v2)
    assert ("add_column", "ent_item", "other") in actions(v2)
    assert ("create_index", "ent_item", "ix_ent_item_qty") in actions(v2)
    assert ("create_index", "ent_item", "ix_ent_item_other") in actions(v2)
    assert not plan.refused
    assert "add column ent_item.qty (integer)" in plan.describe()
    v2.sync()
    assert v2.plan().empty, v2.plan().describe()
    got = v2.records.get(SYSTEM, "item", rec["id"])
    assert (got["name"], got["note"], got["amount"], got["qty"], got["other"]) == ("Anvil", "heavy", "12.50", None, None)
    assert foreign_keys(v2, "ent_item")["other"] == ("ent_item", "RESTRICT")
    assert indexes(v2, "ent_item")["ix_ent_item_qty"] == (["qty"], False)
    new = v2.records.create(SYSTEM, "item", {"name": "Bolt", "qty": 3, "other": rec["id"], "due": "2026-05-01"})
    assert v2.records.get(SYSTEM, "item", new["id"])["other"] == rec["id"]


def test_list_view_sort_field_gets_an_index(packs: PackVersions) -> None:
    packs.open({"item": BASE})
    v2 = packs.open({"item": BASE}, version="1.1.0", sync=False, views={"item": "-note"})
    assert actions(v2) == [("update_state", "ent_item", "note"), ("create_index", "ent_item", "ix_ent_item_note")]
    v2.sync()
    assert indexes(v2, "ent_item")["ix_ent_item_note"] == (["note"], False)


# --- archive, restore, rename -------------------------------------------------------------


def test_removed_field_is_archived_with_its_data_and_restored_when_readded(packs: PackVersions) -> None:
    v1 = packs.open({"item": BASE})
    rec = v1.records.create(SYSTEM, "item", {"name": "Anvil", "note": "keep me", "amount": "3.10"})
    v2 = packs.open({"item": [BASE[0], BASE[2]]}, version="2.0.0", sync=False)
    plan = v2.plan()
    assert actions(v2) == [("archive_column", "ent_item", "note")]
    assert not plan.refused
    assert "archive column ent_item.note as archived__note: field 'note' was removed (data kept)" in plan.describe()
    v2.sync()
    assert v2.plan().empty
    assert "note" not in v2.records.get(SYSTEM, "item", rec["id"])
    assert raw(v2, "SELECT archived__note FROM ent_item WHERE id = :id", id=rec["id"]) == [("keep me",)]
    other = v2.records.create(SYSTEM, "item", {"name": "Bolt"})  # inserts work with the archived column there

    v3 = packs.open({"item": BASE}, version="3.0.0", sync=False)
    assert actions(v3) == [("restore_column", "ent_item", "archived__note")]
    v3.sync()
    assert v3.plan().empty
    assert v3.records.get(SYSTEM, "item", rec["id"])["note"] == "keep me"
    assert v3.records.get(SYSTEM, "item", other["id"])["note"] is None
    assert "archived__note" not in columns(v3, "ent_item")


def test_readded_field_of_another_type_gets_a_new_column_and_its_index(packs: PackVersions) -> None:
    v1 = packs.open({"item": [*BASE, fld("code", "text", unique="true")]})
    v1.records.create(SYSTEM, "item", {"name": "A", "code": "X1"})
    packs.open({"item": BASE}, version="2.0.0")
    v3 = packs.open({"item": [*BASE, fld("code", "integer", unique="true")]}, version="3.0.0", sync=False)
    assert ("add_column", "ent_item", "code") in actions(v3)
    v3.sync()
    assert v3.plan().empty, v3.plan().describe()
    assert indexes(v3, "ent_item")["ux_ent_item_code"] == (["code"], True)
    assert raw(v3, "SELECT archived__code, code FROM ent_item") == [("X1", None)]
    v3.records.create(SYSTEM, "item", {"name": "B", "code": 7})


def test_rename_moves_the_column_with_its_data(packs: PackVersions) -> None:
    v1 = packs.open({"item": [*BASE, fld("code", "text", unique="true")]}, views={"item": "name"})
    rec = v1.records.create(SYSTEM, "item", {"name": "Anvil", "note": "n", "amount": "99.95", "amount_currency": "USD", "code": "A-1"})
    renamed = [
        "- {name: title, type: text, label: {en: T, zh-CN: T}, required: true, max_length: 50, renamed_from: name}",
        fld("note", "text", max_length=200),
        fld("total", "money", renamed_from="amount"),
        fld("ref", "text", unique="true", renamed_from="code"),
    ]
    v2 = packs.open({"item": renamed}, version="2.0.0", sync=False, views={"item": "title"})
    steps = actions(v2)
    assert ("rename_column", "ent_item", "name") in steps
    assert ("rename_column", "ent_item", "amount") in steps
    assert ("rename_column", "ent_item", "amount_currency") in steps
    assert not [s for s in steps if s[0] in ("archive_column", "add_column")]
    assert "rename column ent_item.amount to total (data kept)" in v2.plan().describe()
    v2.sync()
    assert v2.plan().empty, v2.plan().describe()
    got = v2.records.get(SYSTEM, "item", rec["id"])
    assert (got["title"], got["total"], got["total_currency"], got["ref"]) == ("Anvil", "99.95", "USD", "A-1")
    assert not {"name", "amount", "amount_currency", "code"} & set(columns(v2, "ent_item"))
    idx = indexes(v2, "ent_item")
    assert idx["ix_ent_item_title"] == (["title"], False) and idx["ux_ent_item_ref"] == (["ref"], True)
    assert "ix_ent_item_name" not in idx and "ux_ent_item_code" not in idx
    with v2.engine.connect() as conn:
        assert conn.execute(sa.select(v2.schema.table("item").c.total)).scalar_one() == Decimal("99.95")


def test_rename_of_a_reference_keeps_the_foreign_key(packs: PackVersions) -> None:
    v1 = packs.open({"item": [*BASE, fld("parent", "reference", entity="item", on_delete="set_null")]})
    a = v1.records.create(SYSTEM, "item", {"name": "A"})
    b = v1.records.create(SYSTEM, "item", {"name": "B", "parent": a["id"]})
    v2 = packs.open({"item": [*BASE, fld("up", "reference", entity="item", on_delete="set_null", renamed_from="parent")]}, version="2.0.0")
    assert v2.plan().empty, v2.plan().describe()
    assert v2.records.get(SYSTEM, "item", b["id"])["up"] == a["id"]
    assert foreign_keys(v2, "ent_item")["up"] == ("ent_item", "SET NULL")


# --- versions, new entities, atomicity ----------------------------------------------------


def test_new_pack_version_is_one_plan_and_is_recorded(packs: PackVersions) -> None:
    v1 = packs.open({"item": BASE})
    rec = v1.records.create(SYSTEM, "item", {"name": "Anvil", "note": "n"})
    v2_entities = {
        "item": [BASE[0], BASE[2], fld("qty", "integer")],
        "part": [fld("label", "text"), fld("item", "reference", entity="item", on_delete="cascade")],
    }
    v2 = packs.open(v2_entities, version="2.0.0", sync=False)
    plan = v2.plan()
    assert ("create_table", "ent_part", None) in actions(v2)
    assert {s.action for s in plan.steps} == {"create_table", "add_column", "archive_column"}
    v2.sync(applied_by="alice")
    assert v2.plan().empty
    part = v2.records.create(SYSTEM, "part", {"label": "Bolt", "item": rec["id"]})
    assert v2.records.get(SYSTEM, "part", part["id"])["item"] == rec["id"]
    assert foreign_keys(v2, "ent_part")["item"] == ("ent_item", "CASCADE")
    rows = raw(v2, "SELECT packs, applied_by, changes, content_hash, applied_at FROM crm_metadata_version ORDER BY id")
    assert len(rows) == 2
    assert json.loads(rows[0].packs) == {"p": "1.0.0"} and rows[0].applied_by == "test"
    assert json.loads(rows[1].packs) == {"p": "2.0.0"} and rows[1].applied_by == "alice"
    assert rows[1].content_hash == v2.registry.content_hash and rows[1].applied_at is not None
    changes = json.loads(rows[1].changes)
    assert sorted((c["action"], c["column"]) for c in changes) == [("add_column", "qty"), ("archive_column", "note"), ("create_table", None)]
    assert all(c["description"] for c in changes)


def test_removed_entity_table_is_archived_and_comes_back(packs: PackVersions) -> None:
    v1 = packs.open({"item": BASE, "part": [fld("label", "text")]})
    part = v1.records.create(SYSTEM, "part", {"label": "kept"})
    v2 = packs.open({"item": BASE}, version="2.0.0", sync=False)
    assert actions(v2) == [("archive_table", "ent_part", None)]
    v2.sync()
    assert v2.plan().empty
    assert raw(v2, "SELECT label FROM ent_part") == [("kept",)]
    v3 = packs.open({"item": BASE, "part": [fld("label", "text")]}, version="3.0.0", sync=False)
    assert actions(v3) == [("restore_table", "ent_part", None)]
    v3.sync()
    assert v3.plan().empty
    assert v3.records.get(SYSTEM, "part", part["id"])["label"] == "kept"


@pytest.mark.parametrize("failing", ["_widen", "_record_state"])  # midway, and after every step
def test_a_failing_step_leaves_the_schema_as_it_was(packs: PackVersions, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    v1 = packs.open({"item": BASE})
    rec = v1.records.create(SYSTEM, "item", {"name": "Anvil", "note": "n"})
    before = schema_snapshot(v1)
    v2 = packs.open({
        "item": [BASE[0], fld("total", "money", renamed_from="amount"), fld("note", "text", max_length=500), fld("qty", "integer")],
        "part": [fld("label", "text")],
    }, version="2.0.0", sync=False)
    # the widening runs after the new table was created and two columns were renamed
    assert [s.action for s in v2.plan().steps] == ["create_table", "rename_column", "rename_column", "widen_column", "add_column"]

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(apply_module, failing, boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        v2.sync()
    assert schema_snapshot(v2) == before
    assert v1.records.get(SYSTEM, "item", rec["id"])["amount"] is None
    monkeypatch.undo()
    v2.sync()
    assert v2.records.get(SYSTEM, "item", rec["id"])["note"] == "n"
    assert v2.plan().empty


def test_link_table_is_created_archived_and_restored_with_its_field(packs: PackVersions) -> None:
    entities = {"item": BASE, "tag": [fld("label", "text")]}
    v1 = packs.open(entities)
    tag = v1.records.create(SYSTEM, "tag", {"label": "red"})
    item = v1.records.create(SYSTEM, "item", {"name": "Anvil"})
    with_tags = {**entities, "item": [*BASE, fld("tags", "many_to_many", entity="tag")]}
    v2 = packs.open(with_tags, version="2.0.0", sync=False)
    assert actions(v2) == [("create_table", "ent_item__tags", None)]
    v2.sync()
    v2.records.update(SYSTEM, "item", item["id"], {"version": 1, "tags": [tag["id"]]})
    v3 = packs.open(entities, version="3.0.0", sync=False)
    assert actions(v3) == [("archive_table", "ent_item__tags", None)]
    v3.sync()
    assert v3.plan().empty
    v4 = packs.open(with_tags, version="4.0.0", sync=False)
    assert actions(v4) == [("restore_table", "ent_item__tags", None)]
    v4.sync()
    assert v4.plan().empty
    assert v4.records.get(SYSTEM, "item", item["id"])["tags"] == [tag["id"]]


def test_a_new_platform_table_does_not_hide_the_applied_state(packs: PackVersions) -> None:
    v1 = packs.open({"item": BASE})
    v1.records.create(SYSTEM, "item", {"name": "Anvil", "note": "keep"})
    with v1.engine.begin() as conn:  # a database from before crm_seed_record existed
        conn.exec_driver_sql("DROP TABLE crm_seed_record")
    v2 = packs.open({"item": [BASE[0], BASE[2]]}, version="2.0.0", sync=False)
    assert actions(v2) == [("create_system_tables", "crm_seed_record", None), ("archive_column", "ent_item", "note")]
    v2.sync()
    assert v2.plan().empty
    assert raw(v2, "SELECT archived__note FROM ent_item") == [("keep",)]
