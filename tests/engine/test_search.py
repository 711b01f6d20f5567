"""Search: the per-entity full-text index (SQLite FTS5 trigram, PostgreSQL GIN on grams).

Every search is checked against a reference: a record matches when each whitespace-separated
word of the query is, case-insensitively, a substring of one of the searched fields.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm_platform.engine.column_types import utcnow
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import (
    apply_query,
    order_by,
    parse_list_params,
    search_clause,
)
from crm_platform.engine.search_index import fts_table_name, pg_index_name, sync_search_indexes
from crm_platform.engine.site import Site
from tests.engine.migration_packs import PackVersions, fld

SYSTEM = Actor.system()

CORPUS = [
    ("佛山陶瓷贸易有限公司", "sales@foshan-ceramics.cn"),
    ("Foshan Tiles Co., Ltd.", "info@tiles.example"),
    ("广州建材集团", None),
    ("华为", "hw@huawei.example"),
    ("Delta 50% Discount", "delta_50%@x.example"),
    ("O'Neil & Sons", "o'neil@sons.example"),
    ('Quote "Q" Store', 'q"q@quote.example'),
    ("Star * Trading NEAR OR AND NOT", "star@trade.example"),
    ("Under_score (brackets) {braces} ^caret", "under@score.example"),
    ("back\\slash: colon - minus + plus", None),
    ("ab", "ab@ab.ab"),
    ("x", None),
    ("UPPER lower MiXeD", "MiXeD@Case.Example"),
    ("苏州 Suzhou 园区 Park", "sz@park.cn"),
]


def names(site: Site, q: str, entity: str = "company", **params: str) -> list[str]:
    ent = site.registry.entity(entity)
    page = site.records.list(SYSTEM, entity, parse_list_params(ent, [("q", q), ("page_size", "200"), ("sort", "name"), *params.items()]))
    return [r["name"] for r in page.records]


def expected(rows: Iterable[tuple[str, str | None]], q: str) -> list[str]:
    words = q.split()
    return [name for name, email in rows if all(any(w.lower() in (v or "").lower() for v in (name, email)) for w in words)]


def fill(site: Site, rows: Iterable[tuple[str, str | None]] = CORPUS) -> dict[str, int]:
    return {name: site.records.create(SYSTEM, "company", {"name": name, "email": email})["id"] for name, email in rows}


def db_sorted(site: Site, names_: list[str]) -> list[str]:
    """`names_` in the database's order by name (collations differ between SQLite and PostgreSQL)."""
    table = site.schema.tables["company"]
    with site.engine.connect() as conn:
        order = [n for (n,) in conn.execute(sa.select(table.c.name).where(table.c.name.in_(names_)).order_by(table.c.name, table.c.id))]
    return order


def check(site: Site, q: str, rows: Iterable[tuple[str, str | None]] = CORPUS) -> None:
    want = expected(rows, q.replace("\x00", " ")) if q.replace("\x00", " ").split() else [n for n, _ in rows]
    assert names(site, q) == db_sorted(site, want), q


# -- what a search finds ------------------------------------------------------------------
def test_search_finds_by_any_search_field_as_substring_ignoring_case(kit: Site) -> None:
    fill(kit)
    assert names(kit, "tiles") == ["Foshan Tiles Co., Ltd."]
    assert names(kit, "TILES.EXAMP") == ["Foshan Tiles Co., Ltd."]  # in the email only
    assert names(kit, "mixed") == ["UPPER lower MiXeD"]
    assert names(kit, "nothing-like-this") == []
    for q in ("foshan", "ceramics", "example", "ltd", "sons", "park.cn"):
        check(kit, q)


def test_chinese_substrings_need_no_spaces(kit: Site) -> None:
    fill(kit)
    assert names(kit, "佛山") == ["佛山陶瓷贸易有限公司"]
    assert names(kit, "陶瓷贸易") == ["佛山陶瓷贸易有限公司"]
    assert names(kit, "有限公司") == ["佛山陶瓷贸易有限公司"]
    assert names(kit, "华为") == ["华为"]  # a whole 2-character value
    assert names(kit, "为") == ["华为"]
    assert names(kit, "建材集团") == ["广州建材集团"]
    assert names(kit, "园区 suzhou") == ["苏州 Suzhou 园区 Park"]
    for q in ("公司", "陶瓷 佛山", "广州 佛山", "集团"):
        check(kit, q)


def test_every_word_must_match_in_some_field(kit: Site) -> None:
    fill(kit)
    assert names(kit, "foshan tiles") == ["Foshan Tiles Co., Ltd."]
    assert names(kit, "foshan cn") == ["佛山陶瓷贸易有限公司"]  # one word in the name, one in the email
    assert names(kit, "foshan 广州") == []
    assert names(kit, "  tiles   info  ") == ["Foshan Tiles Co., Ltd."]
    for q in ("a e", "o x", "e e e", "sons neil o", "park 苏州 sz"):
        check(kit, q)


@pytest.mark.parametrize("q", ["%", "_", "'", '"', "*", "NEAR", "OR", "AND", "NOT", "^", "-", "+", ":", "(", ")", "{", "}", "\\",
                               '"q"', "o'neil", "50%", "delta_50%", "_score", "NEAR OR", "* trading", "(brackets)", "{braces}",
                               "^caret", "\\slash:", "f_name:", "{f_name}:", "- minus", '"', '""', "''", "%%", "__", "*a*", "a NEAR b", "tiles\x00info", "\x00"])
def test_special_characters_are_plain_text(kit: Site, q: str) -> None:
    fill(kit)
    check(kit, q)


def test_special_characters_find_what_they_spell(kit: Site) -> None:
    fill(kit)
    assert names(kit, "%") == ["Delta 50% Discount"]
    assert names(kit, "_") == db_sorted(kit, ["Delta 50% Discount", "Under_score (brackets) {braces} ^caret"])
    assert names(kit, '"Q"') == ['Quote "Q" Store']
    assert names(kit, "o'neil") == ["O'Neil & Sons"]
    assert names(kit, "NEAR") == ["Star * Trading NEAR OR AND NOT"]
    assert names(kit, "*") == ["Star * Trading NEAR OR AND NOT"]


def test_short_words_of_one_or_two_characters(kit: Site) -> None:
    fill(kit)
    assert names(kit, "ab") == ["ab"]  # a whole 2-character value, and one in the email
    assert names(kit, "x") == db_sorted(kit, expected(CORPUS, "x"))
    assert "x" in names(kit, "x")
    assert names(kit, "td") == ["Foshan Tiles Co., Ltd."]  # at the end of a word
    assert names(kit, "d.") == ["Foshan Tiles Co., Ltd."]  # at the very end of the value
    assert names(kit, "AB") == ["ab"]  # case-insensitive
    for q in ("a", "o", "Z", "., ", "@", "苏", "公司", "ta lo", "ab x", "佛 cn", "e ex"):
        check(kit, q)


def test_random_queries_agree_with_the_reference(kit: Site) -> None:
    fill(kit)
    rng = random.Random(20240611)
    texts = [v for row in CORPUS for v in row if v]
    for _ in range(150):
        words = []
        for _ in range(rng.randint(1, 3)):
            text = rng.choice(texts)
            start = rng.randrange(len(text))
            piece = text[start:start + rng.randint(1, 6)]
            piece = "".join(c.upper() if rng.random() < 0.3 else c for c in piece)
            words.append(piece if rng.random() < 0.9 else piece + rng.choice("%_\"'*"))
        q = " ".join(words)
        if q.split():
            check(kit, q)


def test_search_respects_the_other_list_parameters(kit: Site) -> None:
    fill(kit)
    kit.records.create(SYSTEM, "company", {"name": "Foshan Dealer", "kind": "dealer"})
    assert names(kit, "foshan", kind="dealer") == ["Foshan Dealer"]
    ent = kit.registry.entity("company")
    page = kit.records.list(SYSTEM, "company", parse_list_params(ent, [("q", "o"), ("page_size", "2"), ("sort", "name")]))
    assert page.total == len(expected([*CORPUS, ("Foshan Dealer", None)], "o")) and len(page.records) == 2


def test_hidden_fields_are_not_searched(kit: Site) -> None:
    fill(kit)
    ent, table = kit.registry.entity("company"), kit.schema.tables["company"]

    def ids(q: str, hidden: set[str]) -> set[str]:
        with kit.engine.connect() as conn:
            return set(conn.execute(sa.select(table.c.name).where(search_clause(ent, table, q, hidden))).scalars())

    assert ids("huawei", set()) == {"华为"}
    assert ids("huawei", {"email"}) == set()
    assert ids("hw", {"email"}) == set()
    assert ids("华为", {"email"}) == {"华为"}
    assert ids("华为", {"name", "email"}) == set()


def test_searches_of_the_same_shape_share_a_statement_but_not_values(kit: Site) -> None:
    fill(kit)
    assert names(kit, "foshan") == db_sorted(kit, ["佛山陶瓷贸易有限公司", "Foshan Tiles Co., Ltd."])
    assert names(kit, "suzhou") == ["苏州 Suzhou 园区 Park"]
    assert names(kit, "佛山 ab") == []
    assert names(kit, "苏州 sz") == ["苏州 Suzhou 园区 Park"]
    assert names(kit, "ab ab") == ["ab"]


# -- the index follows every write --------------------------------------------------------
def test_index_follows_create_update_delete_and_restore(kit: Site) -> None:
    record = kit.records.create(SYSTEM, "company", {"name": "Nanhai Glass", "email": "glass@nanhai.cn"})
    assert names(kit, "nanhai") == ["Nanhai Glass"]
    updated = kit.records.update(SYSTEM, "company", record["id"], {"version": 1, "name": "Shunde Stone"})
    assert names(kit, "glass") == ["Shunde Stone"]  # the email still says glass
    assert names(kit, "shunde") == ["Shunde Stone"]
    kit.records.update(SYSTEM, "company", record["id"], {"version": updated["version"], "email": "stone@shunde.cn"})
    assert names(kit, "glass") == [] and names(kit, "nanhai") == [] and names(kit, "gl") == []
    kit.records.delete(SYSTEM, "company", record["id"])
    assert names(kit, "shunde") == []
    assert names(kit, "shunde", deleted="only") == ["Shunde Stone"]
    kit.records.restore(SYSTEM, "company", record["id"])
    assert names(kit, "shunde") == ["Shunde Stone"]


def test_rows_written_with_plain_sql_are_indexed(kit: Site) -> None:
    table = kit.schema.tables["company"]
    now = utcnow()
    with kit.engine.begin() as conn:
        conn.execute(table.insert(), [{"name": f"Bulk {i} 石湾", "email": f"bulk{i}@bulk.cn", "created_at": now, "updated_at": now, "version": 1} for i in range(50)])
        conn.execute(table.update().where(table.c.name == "Bulk 7 石湾").values(name="Renamed Seven"))
        conn.execute(table.update().where(table.c.name == "Bulk 8 石湾").values(email=None))
        conn.execute(table.delete().where(table.c.name == "Bulk 9 石湾"))
    assert len(names(kit, "石湾")) == 48
    assert names(kit, "renamed") == ["Renamed Seven"] and names(kit, "bulk7@") == ["Renamed Seven"]
    assert names(kit, "bulk8") == []  # the email is gone
    assert "Bulk 8 石湾" in names(kit, "bulk 8 石湾")  # the name is still there
    assert "Bulk 9 石湾" not in names(kit, "bulk 9") and names(kit, "bulk9@") == []
    if kit.engine.dialect.name == "sqlite":
        fts = fts_table_name(table.name)
        with kit.engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO \"{fts}\"(\"{fts}\") VALUES ('integrity-check')")


# -- the structures -------------------------------------------------------------------------
def _plan(site: Site, stmt: sa.Select) -> str:  # type: ignore[type-arg]
    with site.engine.begin() as conn:
        sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "sqlite":
            return "\n".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        conn.exec_driver_sql("ANALYZE ent_company")
        return "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))


@pytest.mark.parametrize("sort", ["-revenue", "name"])
@pytest.mark.parametrize("q", ["ceramics", "佛山陶瓷", "foshan ceramics", "佛山", "ab"])
def test_the_list_queries_read_the_index_not_the_table(kit: Site, q: str, sort: str) -> None:
    table = kit.schema.tables["company"]
    now = utcnow()
    with kit.engine.begin() as conn:  # enough rows that PostgreSQL prefers an index to reading the table
        conn.execute(table.insert(), [{"name": f"Company {i:05d}", "email": f"c{i}@example.com", "kind": "dealer" if i % 3 else "customer",
                                       "created_at": now, "updated_at": now, "version": 1} for i in range(5000)])
    fill(kit)
    ent = kit.registry.entity("company")
    query = parse_list_params(ent, [("q", q), ("kind", "dealer"), ("sort", sort)])
    base = apply_query(sa.select(table), ent, table, query)
    for stmt in (sa.select(sa.func.count()).select_from(base.with_only_columns(table.c.id).subquery()), base.order_by(*order_by(ent, table, query.sort)).limit(50)):
        plan = _plan(kit, stmt)
        if kit.engine.dialect.name == "sqlite":
            assert "SCAN ent_company$fts" in plan, plan  # the FTS5 table (or its term list) is read
            assert "SCAN ent_company\n" not in plan + "\n", plan  # never a full scan of the entity table
            assert "rowid=?" in plan or "USING COVERING INDEX" in plan or "USING INDEX" in plan, plan  # by id, or through an index
        else:
            assert "Bitmap Index Scan on \"ent_company$search_" in plan, plan
            assert "Seq Scan on ent_company" not in plan, plan
            # grams are computed per row only for rows that already passed the exact check (strpos),
            # never to filter an ordered walk of the table (seconds on a large one)
            for line in plan.splitlines():
                if "Filter:" in line and "crm_search_grams" in line:
                    assert -1 < line.find("strpos") < line.find("crm_search_grams"), plan


def test_sync_creates_the_index_once(kit: Site) -> None:
    with kit.engine.begin() as conn:
        assert sync_search_indexes(conn, kit.registry, kit.schema) == []
    assert kit.plan().steps == []
    table = kit.schema.tables["company"]
    with kit.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            objects = set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE instr(name, '$fts') > 0").scalars())
            assert {"ent_company$fts", "ent_company$fts_ai", "ent_company$fts_au", "ent_company$fts_ad"} <= objects
        else:
            found = set(conn.exec_driver_sql("SELECT indexname FROM pg_indexes WHERE tablename = 'ent_company' AND schemaname = current_schema()").scalars())
            assert {pg_index_name(table.name, "name"), pg_index_name(table.name, "email")} <= found


@pytest.mark.skipif(not os.environ.get("CRM_TEST_DATABASE_URL"), reason="needs PostgreSQL")
def test_postgres_index_settings_are_verified_on_sync(kit: Site) -> None:
    index = pg_index_name(kit.schema.tables["company"].name, "name")
    with kit.engine.begin() as conn:
        assert conn.exec_driver_sql(f"SELECT reloptions FROM pg_class WHERE relname = '{index}'").scalar() == ["gin_pending_list_limit=256"]
        conn.exec_driver_sql(f'ALTER INDEX "{index}" RESET (gin_pending_list_limit)')
        conn.exec_driver_sql("ALTER FUNCTION crm_search_grams_v1(text) COST 100")
    with kit.engine.begin() as conn:
        changes = sync_search_indexes(conn, kit.registry, kit.schema)
    assert changes == ["set the cost of function crm_search_grams_v1", "rebuild the search index of ent_company.name"]
    fill(kit)
    check(kit, "佛山")


def test_lost_index_parts_come_back_complete_on_sync(kit: Site) -> None:
    fill(kit)
    table = kit.schema.tables["company"]
    with kit.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql('DROP TRIGGER "ent_company$fts_ai"')
        else:
            conn.exec_driver_sql(f'DROP INDEX "{pg_index_name(table.name, "email")}"')
    kit.records.create(SYSTEM, "company", {"name": "Written Meanwhile", "email": "meanwhile@x.cn"})
    with kit.engine.begin() as conn:
        changes = sync_search_indexes(conn, kit.registry, kit.schema)
    assert changes and all("ent_company" in c for c in changes)
    assert names(kit, "meanwhile") == ["Written Meanwhile"]
    check(kit, "佛山")


@pytest.fixture
def packs(tmp_path: Path, make_site: Callable[..., Site]) -> PackVersions:
    return PackVersions(tmp_path, make_site)


FIELDS = [fld("name", "text"), fld("code", "text"), fld("memo", "long_text")]


def test_index_follows_changes_of_search_fields(packs: PackVersions) -> None:
    v1 = packs.open({"shop": FIELDS}, extra={"shop": "title_field: name\nsearch_fields: [name]\n"})
    v1.records.create(SYSTEM, "shop", {"name": "Chancheng Shop", "code": "CC-01", "memo": "near the river"})
    assert names(v1, "chancheng", "shop") == ["Chancheng Shop"] and names(v1, "cc-01", "shop") == []
    v2 = packs.open({"shop": FIELDS}, "1.1.0", extra={"shop": "title_field: name\nsearch_fields: [name, code, memo]\n"})
    assert names(v2, "cc-01", "shop") == ["Chancheng Shop"] and names(v2, "river", "shop") == ["Chancheng Shop"]
    v2.records.create(SYSTEM, "shop", {"name": "Lecong Shop", "code": "LC-02"})
    v3 = packs.open({"shop": FIELDS}, "1.2.0", extra={"shop": "title_field: name\nsearch_fields: [code]\n"})
    assert names(v3, "shop", "shop") == [] and names(v3, "lc", "shop") == ["Lecong Shop"]
    v4 = packs.open({"shop": FIELDS}, "1.3.0", extra={"shop": "title_field: name\n"})  # no search fields: the title
    assert names(v4, "lecong", "shop") == ["Lecong Shop"] and names(v4, "LC", "shop") == []


def test_index_follows_a_renamed_search_field(packs: PackVersions) -> None:
    v1 = packs.open({"shop": FIELDS}, extra={"shop": "search_fields: [name, code]\n"})
    v1.records.create(SYSTEM, "shop", {"name": "Chancheng Shop", "code": "CC-01"})
    renamed = [fld("title", "text", renamed_from="name"), fld("code", "text"), fld("memo", "long_text")]
    v2 = packs.open({"shop": renamed}, "1.1.0", extra={"shop": "search_fields: [title, code]\n"})
    v2.records.create(SYSTEM, "shop", {"title": "Zumiao Shop", "code": "ZM-02"})
    ent = v2.registry.entity("shop")
    page = v2.records.list(SYSTEM, "shop", parse_list_params(ent, [("q", "shop")]))
    assert sorted(r["title"] for r in page.records) == ["Chancheng Shop", "Zumiao Shop"]


def test_an_entity_without_search_or_title_fields_finds_nothing(packs: PackVersions) -> None:
    site = packs.open({"note": [fld("body", "long_text")]})
    site.records.create(SYSTEM, "note", {"body": "hello"})
    ent = site.registry.entity("note")
    assert site.records.list(SYSTEM, "note", parse_list_params(ent, [("q", "hello")])).total == 0
    assert site.records.list(SYSTEM, "note", parse_list_params(ent, [])).total == 1


def _search_objects(site: Site, table: str) -> set[str]:
    with site.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            return set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE name LIKE ? || '$fts%'", (table,)).scalars())
        return set(conn.exec_driver_sql(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'i' AND obj_description(c.oid, 'pg_class') LIKE %(comment)s",
            {"comment": f"crm search v1: {table}.%"},
        ).scalars())


def test_a_removed_entity_loses_its_index_and_gets_it_back_when_restored(packs: PackVersions) -> None:
    both = {"shop": FIELDS, "other": [fld("label", "text")]}
    extra = {"shop": "search_fields: [name, code]\n", "other": "search_fields: [label]\n"}
    v1 = packs.open(both, extra=extra)
    v1.records.create(SYSTEM, "shop", {"name": "Chancheng Shop", "code": "CC-01"})
    assert _search_objects(v1, "ent_shop")
    v2 = packs.open({"other": both["other"]}, "1.1.0", extra=extra)
    assert _search_objects(v2, "ent_shop") == set() and _search_objects(v2, "ent_other")
    v3 = packs.open(both, "1.2.0", extra=extra)
    assert names(v3, "chancheng", "shop") == ["Chancheng Shop"] and names(v3, "cc", "shop") == ["Chancheng Shop"]
