"""Type changes: widening converts in place; narrowing and incompatible changes are refused unless
--allow-destructive, and then keep the old values in an archived column. Runs on both databases.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm_platform.config import Settings
from crm_platform.engine.migration.apply import PlanRefused
from crm_platform.engine.site import Site
from tests.engine.migration_packs import SYSTEM, PackVersions, actions, columns, fld, foreign_keys, indexes, raw, schema_snapshot

NAME = "- {name: name, type: text, label: {en: Name, zh-CN: Name}, required: true}"


@pytest.fixture
def packs(tmp_path: Path, make_site: Callable[..., Site]) -> PackVersions:
    return PackVersions(tmp_path, make_site)


def values(site: Site, field: str) -> list[object]:
    """The stored values of `field` (typed by the site's schema), in id order."""
    table = site.schema.table("item")
    with site.engine.connect() as conn:
        return list(conn.execute(sa.select(table.c[field]).order_by(table.c.id)).scalars())


def only_step(site: Site) -> tuple[str, str | None]:
    plan = site.plan()
    assert len(plan.steps) == 1, plan.describe()
    return plan.steps[0].action, plan.steps[0].refusal


# --- widening: in place, values preserved -------------------------------------------------


def test_longer_text_widens_in_place(packs: PackVersions) -> None:
    v1 = packs.open({"item": [NAME, fld("code", "text", max_length=50)]})
    v1.records.create(SYSTEM, "item", {"name": "a", "code": "x" * 50})
    v2 = packs.open({"item": [NAME, fld("code", "text", max_length=200)]}, version="2.0.0", sync=False)
    assert only_step(v2) == ("widen_column", None)
    assert "widen ent_item.code from text(50) to text(200) (values converted in place)" in v2.plan().describe()
    v2.sync()
    assert v2.plan().empty
    assert values(v2, "code") == ["x" * 50]
    v2.records.create(SYSTEM, "item", {"name": "b", "code": "y" * 200})
    assert "archived__code" not in columns(v2, "ent_item")
    if v2.engine.dialect.name == "postgresql":
        assert columns(v2, "ent_item")["code"]["type"].length == 200


def test_text_to_long_text_widens(packs: PackVersions) -> None:
    v1 = packs.open({"item": [NAME, fld("code", "text", max_length=20)]})
    v1.records.create(SYSTEM, "item", {"name": "a", "code": "abc"})
    v2 = packs.open({"item": [NAME, fld("code", "long_text")]}, version="2.0.0", sync=False)
    assert only_step(v2) == ("widen_column", None)
    v2.sync()
    assert values(v2, "code") == ["abc"]


def test_integer_to_decimal_widens_in_place(packs: PackVersions) -> None:
    v1 = packs.open({"item": [NAME, fld("qty", "integer")]})
    for qty in (7, -3, None, 123456789):
        v1.records.create(SYSTEM, "item", {"name": "a", "qty": qty})
    v2 = packs.open({"item": [NAME, fld("qty", "decimal", precision=18, scale=2)]}, version="2.0.0", sync=False)
    assert only_step(v2) == ("widen_column", None)
    v2.sync()
    assert v2.plan().empty
    assert values(v2, "qty") == [Decimal("7.00"), Decimal("-3.00"), None, Decimal("123456789.00")]
    assert all(isinstance(v, Decimal) for v in values(v2, "qty") if v is not None)
    rec = v2.records.create(SYSTEM, "item", {"name": "b", "qty": "1.25"})
    assert v2.records.get(SYSTEM, "item", rec["id"])["qty"] == "1.25"


def test_decimal_scale_widens_in_place_exactly(packs: PackVersions) -> None:
    v1 = packs.open({"item": [NAME, fld("price", "decimal", precision=10, scale=2), fld("total", "money", precision=12, scale=2)]})
    for price in ("12.34", "-0.01", "99999999.99"):
        v1.records.create(SYSTEM, "item", {"name": "a", "price": price, "total": price, "total_currency": "EUR"})
    v2 = packs.open({"item": [NAME, fld("price", "decimal", precision=12, scale=4), fld("total", "money", precision=14, scale=4)]}, version="2.0.0", sync=False)
    assert [s[0] for s in actions(v2)] == ["widen_column", "widen_column"]
    v2.sync()
    assert v2.plan().empty
    assert values(v2, "price") == [Decimal("12.3400"), Decimal("-0.0100"), Decimal("99999999.9900")]
    assert [str(v) for v in values(v2, "total")] == ["12.3400", "-0.0100", "99999999.9900"]
    assert values(v2, "total_currency") == ["EUR"] * 3
    rec = v2.records.create(SYSTEM, "item", {"name": "b", "price": "0.1234"})
    assert v2.records.get(SYSTEM, "item", rec["id"])["price"] == "0.1234"


def test_date_to_datetime_widens_to_midnight_utc(packs: PackVersions) -> None:
    v1 = packs.open({"item": [NAME, fld("due", "date")]})
    v1.records.create(SYSTEM, "item", {"name": "a", "due": "2024-02-29"})
    v1.records.create(SYSTEM, "item", {"name": "b"})
    v2 = packs.open({"item": [NAME, fld("due", "datetime")]}, version="2.0.0", sync=False)
    assert only_step(v2) == ("widen_column", None)
    v2.sync()
    assert values(v2, "due") == [dt.datetime(2024, 2, 29, tzinfo=dt.UTC), None]
    assert v2.records.get(SYSTEM, "item", 1)["due"] == "2024-02-29T00:00:00+00:00"


@pytest.mark.skipif(not os.environ.get("CRM_TEST_DATABASE_URL"), reason="needs PostgreSQL")
def test_date_to_datetime_is_midnight_utc_whatever_the_session_time_zone(packs: PackVersions, database_url: str, tmp_path: Path) -> None:
    v1 = packs.open({"item": [NAME, fld("due", "date")]})
    v1.records.create(SYSTEM, "item", {"name": "a", "due": "2024-02-29"})
    registry = packs.write({"item": [NAME, fld("due", "datetime")]}, version="2.0.0")
    url = database_url.replace("options=", "options=-ctimezone%3DAsia/Shanghai%20", 1)
    site = Site.open(Settings(database_url=url, packs=("p",), var_dir=tmp_path / "var", secret_key="k"), registry)
    try:
        with site.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW timezone").scalar_one() == "Asia/Shanghai"
        site.sync()
        assert values(site, "due") == [dt.datetime(2024, 2, 29, tzinfo=dt.UTC)]
    finally:
        site.dispose()


# --- narrowing: refused with the count, applied only when allowed ---------------------------


def _narrowing_site(packs: PackVersions) -> tuple[Site, Site, list[int]]:
    v1 = packs.open({"item": [NAME, fld("code", "text", max_length=200, indexed="true")]})
    texts = ["short", "x" * 11, "tiny", "y" * 50, None, "z" * 200, "exactly10!"]
    ids = [v1.records.create(SYSTEM, "item", {"name": f"r{i}", "code": t})["id"] for i, t in enumerate(texts)]
    v2 = packs.open({"item": [NAME, fld("code", "text", max_length=10, indexed="true")]}, version="2.0.0", sync=False)
    return v1, v2, ids


def test_narrowing_is_refused_with_the_count_and_changes_nothing(packs: PackVersions) -> None:
    v1, v2, ids = _narrowing_site(packs)
    plan = v2.plan()
    assert [s.action for s in plan.steps] == ["replace_column", "drop_index", "create_index"]  # the index moves
    assert plan.refused == plan.steps[:1]
    text = plan.describe()
    assert "x change ent_item.code from text(200) to text(10)" in text
    assert "refused: narrowing text(200) to text(10): 3 of 6 stored value(s) would not fit" in text
    assert "rerun with --allow-destructive" in text
    before = schema_snapshot(v1)
    with pytest.raises(PlanRefused) as caught:
        v2.sync()
    assert "3 of 6" in str(caught.value)
    assert schema_snapshot(v1) == before
    assert v1.records.get(SYSTEM, "item", ids[5])["code"] == "z" * 200
    assert v2.plan().describe() == text  # still the same plan


def test_narrowing_with_allow_destructive_archives_old_values_and_copies_those_that_fit(packs: PackVersions) -> None:
    _, v2, ids = _narrowing_site(packs)
    plan = v2.plan(allow_destructive=True)
    assert not plan.refused and "applied because --allow-destructive was given" in plan.describe()
    v2.sync(allow_destructive=True)
    assert v2.plan().empty, v2.plan().describe()
    assert [v2.records.get(SYSTEM, "item", i)["code"] for i in ids] == ["short", None, "tiny", None, None, None, "exactly10!"]
    archived = dict(raw(v2, "SELECT id, archived__code FROM ent_item"))
    assert [archived[i] for i in ids] == ["short", "x" * 11, "tiny", "y" * 50, None, "z" * 200, "exactly10!"]
    assert indexes(v2, "ent_item")["ix_ent_item_code"] == (["code"], False)


def test_narrowing_is_refused_even_when_every_value_fits(packs: PackVersions) -> None:
    v1 = packs.open({"item": [NAME, fld("price", "decimal", precision=18, scale=2)]})
    v1.records.create(SYSTEM, "item", {"name": "a", "price": "1.50"})
    v2 = packs.open({"item": [NAME, fld("price", "decimal", precision=18, scale=4)]}, version="2.0.0", sync=False)
    action, refusal = only_step(v2)
    assert action == "replace_column"
    assert refusal == "narrowing decimal(18,2) to decimal(18,4): 0 of 1 stored value(s) would not fit"
    v2.sync(allow_destructive=True)
    assert values(v2, "price") == [Decimal("1.5000")]


def test_decimal_to_integer_keeps_whole_numbers(packs: PackVersions) -> None:
    v1 = packs.open({"item": [NAME, fld("qty", "decimal", precision=10, scale=2)]})
    for qty in ("3.00", "2.50", "-4"):
        v1.records.create(SYSTEM, "item", {"name": "a", "qty": qty})
    v2 = packs.open({"item": [NAME, fld("qty", "integer")]}, version="2.0.0", sync=False)
    assert "1 of 3 stored value(s) would not fit" in (only_step(v2)[1] or "")
    v2.sync(allow_destructive=True)
    assert values(v2, "qty") == [3, None, -4]
    assert len(raw(v2, "SELECT archived__qty FROM ent_item WHERE archived__qty IS NOT NULL")) == 3


# --- incompatible changes ----------------------------------------------------------------


def test_incompatible_change_is_refused_and_archives_when_allowed(packs: PackVersions) -> None:
    v1 = packs.open({"item": [NAME, fld("code", "text")]})
    v1.records.create(SYSTEM, "item", {"name": "a", "code": "12"})
    v1.records.create(SYSTEM, "item", {"name": "b", "code": "twelve"})
    v2 = packs.open({"item": [NAME, fld("code", "integer")]}, version="2.0.0", sync=False)
    action, refusal = only_step(v2)
    assert action == "replace_column"
    assert refusal == "incompatible change text(255) to integer: 2 of 2 stored value(s) cannot be converted"
    with pytest.raises(PlanRefused):
        v2.sync()
    assert values(v1, "code") == ["12", "twelve"]
    v2.sync(allow_destructive=True)
    assert values(v2, "code") == [None, None]
    assert [r[0] for r in raw(v2, "SELECT archived__code FROM ent_item ORDER BY id")] == ["12", "twelve"]
    v2.records.create(SYSTEM, "item", {"name": "c", "code": 5})
    assert v2.plan().empty


def test_reference_to_another_entity_is_incompatible(packs: PackVersions) -> None:
    entities = {"item": [NAME, fld("link", "reference", entity="a")], "a": [NAME], "b": [NAME]}
    v1 = packs.open(entities)
    a = v1.records.create(SYSTEM, "a", {"name": "A"})
    v1.records.create(SYSTEM, "item", {"name": "i", "link": a["id"]})
    v2 = packs.open({**entities, "item": [NAME, fld("link", "reference", entity="b")]}, version="2.0.0", sync=False)
    plan = v2.plan()
    assert [s.action for s in plan.steps] == ["replace_column", "drop_index", "create_index"]
    assert plan.steps[0].refusal == "incompatible change reference to ent_a to reference to ent_b: 1 of 1 stored value(s) cannot be converted"


# --- indexes and system columns ----------------------------------------------------------


def test_unique_index_over_duplicates_is_blocked_even_with_allow_destructive(packs: PackVersions) -> None:
    v1 = packs.open({"item": [NAME, fld("code", "text")]})
    for code in ("a", "a", "b", "b", "c", None, None):
        v1.records.create(SYSTEM, "item", {"name": "r", "code": code})
    v2 = packs.open({"item": [NAME, fld("code", "text", unique="true")]}, version="2.0.0", sync=False)
    plan = v2.plan(allow_destructive=True)
    create = next(s for s in plan.steps if s.action == "create_index")
    assert create.blocked == "2 value(s) are stored in more than one record; make them unique first"
    assert plan.refused == [create] and "blocked until the data is fixed" in plan.describe()
    with pytest.raises(PlanRefused):
        v2.sync(allow_destructive=True)
    with v1.engine.begin() as conn:
        conn.execute(sa.text("UPDATE ent_item SET code = NULL WHERE code IN ('a', 'b')"))
    v2.sync()
    assert indexes(v2, "ent_item")["ux_ent_item_code"] == (["code"], True)


def test_dropping_unique_drops_the_unique_index(packs: PackVersions) -> None:
    v1 = packs.open({"item": [NAME, fld("code", "text", unique="true")]})
    v1.records.create(SYSTEM, "item", {"name": "a", "code": "same"})
    v2 = packs.open({"item": [NAME, fld("code", "text")]}, version="2.0.0", sync=False)
    assert ("drop_index", "ent_item", "ux_ent_item_code") in actions(v2)
    v2.sync()
    assert v2.plan().empty
    assert "ux_ent_item_code" not in indexes(v2, "ent_item")
    v2.records.create(SYSTEM, "item", {"name": "b", "code": "same"})


def test_entity_becoming_owned_gains_owner_columns_and_their_indexes(packs: PackVersions) -> None:
    v1 = packs.open({"item": [NAME]}, extra={"item": "owned: false\n"})
    v1.records.create(SYSTEM, "item", {"name": "a"})
    assert "owner_id" not in columns(v1, "ent_item")
    v2 = packs.open({"item": [NAME]}, version="2.0.0", sync=False)
    assert ("add_system_column", "ent_item", "owner_id") in actions(v2)
    assert ("create_index", "ent_item", "ix_ent_item_owner_id") in actions(v2)
    v2.sync()
    assert v2.plan().empty, v2.plan().describe()
    assert {"owner_id", "unit_id"} <= set(columns(v2, "ent_item"))


def test_on_delete_rule_changes_in_place(packs: PackVersions) -> None:
    entities = {"item": [NAME, fld("link", "reference", entity="a", on_delete="set_null"), fld("other", "reference", entity="a")], "a": [NAME]}
    v1 = packs.open(entities)
    a = v1.records.create(SYSTEM, "a", {"name": "A"})
    rec = v1.records.create(SYSTEM, "item", {"name": "i", "link": a["id"], "other": a["id"]})
    changed = [NAME, fld("link2", "reference", entity="a", on_delete="cascade", renamed_from="link"), fld("other", "reference", entity="a", on_delete="set_null")]
    v2 = packs.open({**entities, "item": changed}, version="2.0.0", sync=False)
    plan = v2.plan()
    assert ("change_foreign_key", "ent_item", "link2") in actions(v2) and not plan.refused
    assert "change ON DELETE of ent_item.other from restrict to set_null (values kept)" in plan.describe()
    v2.sync()
    assert v2.plan().empty, v2.plan().describe()
    fks = foreign_keys(v2, "ent_item")
    assert fks["link2"] == ("ent_a", "CASCADE") and fks["other"] == ("ent_a", "SET NULL")
    got = v2.records.get(SYSTEM, "item", rec["id"])
    assert (got["link2"], got["other"]) == (a["id"], a["id"])
    with v2.engine.begin() as conn:  # the new rule works: deleting the target cascades
        conn.execute(sa.text("DELETE FROM ent_a"))
    assert raw(v2, "SELECT count(*) FROM ent_item") == [(0,)]


def test_on_delete_rule_of_an_added_reference_changes_too(packs: PackVersions) -> None:
    packs.open({"item": [NAME], "a": [NAME]})
    v2 = packs.open({"item": [NAME, fld("link", "reference", entity="a")], "a": [NAME]}, version="2.0.0")
    a = v2.records.create(SYSTEM, "a", {"name": "A"})
    v2.records.create(SYSTEM, "item", {"name": "i", "link": a["id"]})
    v3 = packs.open({"item": [NAME, fld("link", "reference", entity="a", on_delete="set_null")], "a": [NAME]}, version="3.0.0")
    assert v3.plan().empty
    assert foreign_keys(v3, "ent_item")["link"] == ("ent_a", "SET NULL")
    with v3.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ent_a"))
    assert raw(v3, "SELECT link FROM ent_item") == [(None,)]


def test_multi_picklist_to_long_text_reads_as_a_list(packs: PackVersions) -> None:
    options = "options: [{value: a, label: {en: A, zh-CN: A}}, {value: b, label: {en: B, zh-CN: B}}]"
    v1 = packs.open({"item": [NAME, fld("tags", "multi_picklist", **{"options": options.split(": ", 1)[1]})]})
    v1.records.create(SYSTEM, "item", {"name": "x", "tags": ["a", "b"]})
    v1.records.create(SYSTEM, "item", {"name": "y", "tags": []})
    v2 = packs.open({"item": [NAME, fld("tags", "long_text")]}, version="2.0.0", sync=False)
    assert only_step(v2) == ("widen_column", None)
    v2.sync()
    assert values(v2, "tags") == ["a, b", None]


def test_rename_and_widen_together(packs: PackVersions) -> None:
    v1 = packs.open({"item": [NAME, fld("amount", "money", precision=10, scale=2)]})
    v1.records.create(SYSTEM, "item", {"name": "x", "amount": "12.34", "amount_currency": "USD"})
    v2 = packs.open({"item": [NAME, fld("total", "money", precision=14, scale=4, renamed_from="amount")]}, version="2.0.0", sync=False)
    assert [s[0] for s in actions(v2)] == ["rename_column", "widen_column", "rename_column"]
    v2.sync()
    assert v2.plan().empty
    assert values(v2, "total") == [Decimal("12.3400")] and values(v2, "total_currency") == ["USD"]


def test_readding_a_field_restores_its_latest_archived_column(packs: PackVersions) -> None:
    text, integer = fld("code", "text"), fld("code", "integer")
    v1 = packs.open({"item": [NAME, text]})
    rid = v1.records.create(SYSTEM, "item", {"name": "r", "code": "A"})["id"]
    v2 = packs.open({"item": [NAME, integer]}, version="2.0.0", allow_destructive=True)  # archived__code: 'A'
    v2.records.update(SYSTEM, "item", rid, {"version": 1, "code": 5})
    v3 = packs.open({"item": [NAME, text]}, version="3.0.0", allow_destructive=True)  # archived__code_2: 5
    v3.records.update(SYSTEM, "item", rid, {"version": 2, "code": "B"})
    packs.open({"item": [NAME]}, version="4.0.0")  # archived__code_3: 'B'
    v5 = packs.open({"item": [NAME, text]}, version="5.0.0", sync=False)
    assert actions(v5) == [("restore_column", "ent_item", "archived__code_3")]
    v5.sync()
    assert v5.records.get(SYSTEM, "item", rid)["code"] == "B"
    assert raw(v5, "SELECT archived__code, archived__code_2 FROM ent_item") == [("A", 5)]
