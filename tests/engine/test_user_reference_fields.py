"""Reference fields to users and org units (`type: reference, entity: user | org_unit`):
metadata checks, storage (a real foreign key to crm_user / crm_org_unit), values, names
shown for ids, rules in Python and in SQL list filters, and imports by username / unit name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm_platform.engine import system_references
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import ValidationFailed
from crm_platform.engine.records.list_query import Filter, ListQuery
from crm_platform.engine.site import Site
from crm_platform.metadata.errors import PackError
from crm_platform.metadata.loader import load_registry
from crm_platform.metadata.model import Registry
from tests.conftest import FIXTURE_PACKS
from tests.helpers import entity_yaml, user_with_role, write_pack


@pytest.fixture(scope="module")
def people_registry() -> Registry:
    return load_registry(["peoplekit"], [FIXTURE_PACKS])


@pytest.fixture
def people(make_site: Callable[..., Site], people_registry: Registry) -> Site:
    return make_site(people_registry)


@pytest.fixture
def org(people: Site) -> dict[str, int]:
    """Group > Sales > East, and three users: alice (East), bob (Sales), carol (deactivated)."""
    units = people.permissions
    group = units.create_unit("Group", "group")
    sales = units.create_unit("Sales", "department", group)
    east = units.create_unit("East", "team", sales)
    alice = user_with_role(people, "alice", "alice-password-1", display_name="Alice Wang", unit_id=east)
    bob = user_with_role(people, "bob", "bob-password-12", display_name="Bob Li", unit_id=sales)
    carol = user_with_role(people, "carol", "carol-password-1", display_name="Carol Zhou", unit_id=sales)
    with people.engine.begin() as conn:
        users = people.schema.system["crm_user"]
        conn.execute(users.update().where(users.c.id == carol).values(active=False))
    return {"group": group, "sales": sales, "east": east, "alice": alice, "bob": bob, "carol": carol}


def actor(site: Site, user_id: int) -> Actor:
    found = site.users.actor(user_id)
    assert found is not None
    return found


# -- metadata ---------------------------------------------------------------------------------
def _load_one(tmp_path: Path, fields: str, name: str = "target") -> Registry:
    write_pack(tmp_path, "p", {"entities/x.yaml": entity_yaml(name, fields)})
    return load_registry(["p"], [tmp_path])


def test_a_bad_target_name_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(PackError) as caught:
        _load_one(tmp_path, "- {name: rep, type: reference, entity: usr, label: {en: Rep, zh-CN: Rep}}")
    assert "unknown entity 'usr'" in str(caught.value)
    assert "did you mean 'user'" in str(caught.value)


def test_cascade_from_a_user_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackError) as caught:
        _load_one(tmp_path, "- {name: rep, type: reference, entity: user, label: {en: Rep, zh-CN: Rep}, on_delete: cascade}")
    message = str(caught.value)
    assert "on_delete cascade is not allowed for a reference to user" in message
    assert "x.yaml" in message


def test_only_a_reference_may_target_users(tmp_path: Path) -> None:
    with pytest.raises(PackError) as caught:
        _load_one(tmp_path, "- {name: reps, type: many_to_many, entity: user, label: {en: Reps, zh-CN: Reps}}")
    assert "only a reference field may target" in str(caught.value)


def test_an_entity_may_not_be_called_user(tmp_path: Path) -> None:
    with pytest.raises(PackError) as caught:
        _load_one(tmp_path, "- {name: name, type: text, label: {en: Name, zh-CN: Name}}", name="org_unit")
    assert "entity name 'org_unit' is reserved" in str(caught.value)


# -- storage -----------------------------------------------------------------------------------
def test_the_columns_are_foreign_keys_to_the_user_and_unit_tables(people: Site) -> None:
    inspector = sa.inspect(people.engine)
    keys = {fk["constrained_columns"][0]: fk["referred_table"] for fk in inspector.get_foreign_keys("ent_sales_target")}
    assert keys["rep"] == "crm_user"
    assert keys["department"] == "crm_org_unit"
    assert any(ix["column_names"] == ["rep"] for ix in inspector.get_indexes("ent_sales_target"))


def test_adding_a_user_field_later_is_planned_as_an_additive_change(make_site: Callable[..., Site], tmp_path: Path) -> None:
    plain = "- {name: name, type: text, label: {en: Name, zh-CN: Name}}"
    write_pack(tmp_path / "v1", "p", {"entities/x.yaml": entity_yaml("target", plain)})
    site = make_site(["p"], search=[tmp_path / "v1"])
    owner = user_with_role(site, "owner", "owner-password-1")
    record = site.records.create(actor(site, owner), "target", {"name": "kept"})
    write_pack(tmp_path / "v2", "p", {"entities/x.yaml": entity_yaml("target", plain + "\n- {name: rep, type: reference, entity: user, label: {en: Rep, zh-CN: Rep}}")})
    grown = make_site(["p"], search=[tmp_path / "v2"])
    updated = grown.records.update(actor(grown, owner), "target", record["id"], {"version": 1, "rep": owner})
    assert updated["rep"] == owner and updated["name"] == "kept"


# -- values ------------------------------------------------------------------------------------
def test_ids_are_stored_and_read_back_with_names(people: Site, org: dict[str, int]) -> None:
    alice = actor(people, org["alice"])
    record = people.records.create(alice, "sales_target", {"name": "Q1", "rep": org["bob"], "department": org["east"]})
    assert record["rep"] == org["bob"] and record["department"] == org["east"]
    assert record["_titles"] == {"owner_id": "Alice Wang", "rep": "Bob Li", "department": "East"}
    page = people.records.list(alice, "sales_target", ListQuery())
    assert page.records[0]["_titles"]["rep"] == "Bob Li"


def test_an_unknown_user_or_unit_is_refused_naming_the_field(people: Site, org: dict[str, int]) -> None:
    alice = actor(people, org["alice"])
    with pytest.raises(ValidationFailed) as caught:
        people.records.create(alice, "sales_target", {"name": "Q1", "rep": 99999, "department": 88888})
    errors = {e.field: e.message for e in caught.value.details}
    assert errors == {"rep": "user 99999 does not exist", "department": "org unit 88888 does not exist"}
    assert people.records.list(alice, "sales_target", ListQuery()).total == 0


def test_names_become_ids_a_username_a_display_name_a_unit_name_or_path(people: Site, org: dict[str, int]) -> None:
    entity = people.registry.entity("sales_target")

    def ids(data: dict[str, object]) -> object:
        return system_references.names_to_ids(people.engine, people.schema.system, entity, data)

    assert ids({"rep": "bob", "department": "Group / Sales / East"}) == {"rep": org["bob"], "department": org["east"]}
    assert ids({"rep": "ALICE WANG", "department": "sales", "name": "x"}) == {"rep": org["alice"], "department": org["sales"], "name": "x"}
    assert ids({"rep": str(org["bob"]), "department": 7}) == {"rep": str(org["bob"]), "department": 7}
    with pytest.raises(ValidationFailed) as caught:
        ids({"rep": "nobody at all", "department": "Nowhere"})
    assert {(e.field, e.message) for e in caught.value.details} == {("rep", "no user is called 'nobody at all'"), ("department", "no org unit is called 'Nowhere'")}
    people.permissions.create_unit("East", "team", org["group"])
    with pytest.raises(ValidationFailed) as caught:
        ids({"department": "East"})
    assert "2 org units are called 'East'" in caught.value.details[0].message
    assert ids({"department": "Group/East"}) != ids({"department": "Group / Sales / East"})


def test_a_deactivated_user_still_reads_by_name(people: Site, org: dict[str, int]) -> None:
    alice = actor(people, org["alice"])
    record = people.records.create(alice, "sales_target", {"name": "Q1", "rep": org["carol"]})
    assert record["_titles"]["rep"] == "Carol Zhou"


def test_a_unit_that_is_referenced_cannot_be_deleted_under_restrict(people: Site, org: dict[str, int]) -> None:
    alice = actor(people, org["alice"])
    people.records.create(alice, "sales_target", {"name": "Q1", "rep": org["bob"]})
    users = people.schema.system["crm_user"]
    with pytest.raises(sa.exc.IntegrityError), people.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.execute(users.delete().where(users.c.id == org["bob"]))


# -- rules -------------------------------------------------------------------------------------
def test_defaults_and_formulas_use_the_current_user_and_unit(people: Site, org: dict[str, int]) -> None:
    alice = actor(people, org["alice"])
    record = people.records.create(alice, "sales_target", {"name": "Q1"})
    assert record["rep"] == org["alice"] and record["department"] == org["east"]
    assert record["mine"] is True
    other = people.records.create(alice, "sales_target", {"name": "Q2", "rep": org["bob"]})
    assert other["mine"] is False


def test_a_validation_on_a_user_field(people: Site, org: dict[str, int]) -> None:
    alice = actor(people, org["alice"])
    record = people.records.create(alice, "sales_target", {"name": "Q1"})
    with pytest.raises(ValidationFailed) as caught:
        people.records.update(alice, "sales_target", record["id"], {"version": 1, "stage": "agreed", "rep": None})
    assert caught.value.details[0].field == "rep"


def test_list_filters_on_user_and_unit_fields_run_in_sql(people: Site, org: dict[str, int]) -> None:
    alice, bob = actor(people, org["alice"]), actor(people, org["bob"])
    people.records.create(alice, "sales_target", {"name": "A"})
    people.records.create(bob, "sales_target", {"name": "B"})
    people.records.create(alice, "sales_target", {"name": "C", "rep": org["bob"], "department": org["sales"]})

    def names(who: Actor, query: ListQuery) -> list[str]:
        return sorted(r["name"] for r in people.records.list(who, "sales_target", query).records)

    assert names(alice, ListQuery(expressions=("rep = $user.id",))) == ["A"]
    assert names(bob, ListQuery(expressions=("rep = $user.id",))) == ["B", "C"]
    assert names(alice, ListQuery(expressions=("rep = owner_id",))) == ["A", "B"]
    assert names(bob, ListQuery(expressions=("department = $user.unit",))) == ["B", "C"]
    assert names(alice, ListQuery(filters=(Filter("rep", "eq", org["bob"]),))) == ["B", "C"]
    by_rep = people.records.list(alice, "sales_target", ListQuery(sort=(), expressions=("isblank(rep) = false",)))
    assert by_rep.total == 3


def test_a_rule_comparing_a_user_field_with_a_unit_does_not_check(tmp_path: Path) -> None:
    from crm_platform.rules.site_rules import compile_site_rules

    fields = "- {name: rep, type: reference, entity: user, label: {en: Rep, zh-CN: Rep}}\n- {name: dept, type: reference, entity: org_unit, label: {en: Dept, zh-CN: Dept}}"
    write_pack(tmp_path, "p", {"entities/x.yaml": entity_yaml("target", fields), "rules/x.rules": 'validate target "x" on rep when rep = dept\n'})
    registry = load_registry(["p"], [tmp_path])
    with pytest.raises(PackError) as caught:
        compile_site_rules(registry)
    assert "x.rules:1" in str(caught.value)
    assert "reference to crm_user" in str(caught.value)


# -- the module's own helpers -----------------------------------------------------------------
def test_unit_choices_come_in_tree_order_indented(people: Site, org: dict[str, int]) -> None:
    with people.engine.connect() as conn:
        units = system_references.choices(conn, people.schema.system, "org_unit")
        users = system_references.choices(conn, people.schema.system, "user")
        kept = system_references.choices(conn, people.schema.system, "user", keep=[org["carol"]])
    assert [c.label for c in units] == ["Group", "\u00a0\u00a0Sales", "\u00a0\u00a0\u00a0\u00a0East"]
    assert [c.label for c in users] == ["Alice Wang", "Bob Li"]
    assert [(c.label, c.active) for c in kept] == [("Alice Wang", True), ("Bob Li", True), ("Carol Zhou", False)]


# -- imports -----------------------------------------------------------------------------------
def test_an_import_maps_usernames_display_names_and_unit_paths(people: Site, org: dict[str, int]) -> None:
    from crm_platform.engine.imports import Importer, ImportSettings, read_table

    data = ("Name,Sales rep,Department\n"
            "by username,bob,Sales\n"
            "by display name,Alice Wang,Group / Sales / East\n"
            "by id,%d,\n"
            "nobody,Nobody Here,Sales\n"
            "no such unit,bob,Atlantis\n" % org["carol"]).encode()
    alice = actor(people, org["alice"])
    table = read_table(data, "targets.csv")
    settings = ImportSettings(["name", "rep", "department"], None, "valid")
    result = Importer(people, alice, "sales_target", table, settings).run()
    assert (result.created, result.failed) == (3, 2)
    reasons = {(e["row"], e["field"]): e["reason"] for e in result.errors}
    assert reasons == {(5, "rep"): "no user is called 'Nobody Here'", (6, "department"): "no org unit is called 'Atlantis'"}
    stored = {r["name"]: (r["rep"], r["department"]) for r in people.records.list(alice, "sales_target", ListQuery()).records}
    assert stored == {"by username": (org["bob"], org["sales"]), "by display name": (org["alice"], org["east"]), "by id": (org["carol"], org["east"])}


# -- demo records ------------------------------------------------------------------------------
def test_demo_records_name_users_and_units_by_username_and_path(make_site: Callable[..., Site], tmp_path: Path) -> None:
    from crm_platform.engine.seeding import SeedError, load_records

    fields = "- {name: name, type: text, label: {en: Name, zh-CN: Name}}\n- {name: rep, type: reference, entity: user, label: {en: Rep, zh-CN: Rep}}\n- {name: dept, type: reference, entity: org_unit, label: {en: Dept, zh-CN: Dept}}"
    demo = "entity: target\nrecords:\n  - {_key: t1, name: First, rep: wang, dept: Group / Sales}\n"
    write_pack(tmp_path / "good", "p", {"entities/x.yaml": entity_yaml("target", fields), "demo/target.yaml": demo})
    site = make_site(["p"], search=[tmp_path / "good"])
    group = site.permissions.create_unit("Group", "group")
    sales = site.permissions.create_unit("Sales", "department", group)
    wang = user_with_role(site, "wang", "wang-password-1", display_name="Wang Li", unit_id=sales)
    load_records(site, ["demo"], actor(site, wang))
    record = site.records.list(actor(site, wang), "target", ListQuery()).records[0]
    assert (record["rep"], record["dept"]) == (wang, sales)
    bad = demo.replace("rep: wang", "rep: nobody").replace("t1", "t2")
    write_pack(tmp_path / "bad", "p", {"entities/x.yaml": entity_yaml("target", fields), "demo/target.yaml": bad})
    other = make_site(["p"], search=[tmp_path / "bad"])
    with pytest.raises(SeedError) as caught:
        load_records(other, ["demo"], actor(other, wang))
    assert "target.yaml" in str(caught.value) and "rep: no user is called 'nobody'" in str(caught.value)


def test_a_report_groups_by_a_user_field_with_names(people: Site, org: dict[str, int]) -> None:
    from crm_platform.engine.reports import Reports, ReportSpec

    alice = actor(people, org["alice"])
    for name, rep in (("A", org["bob"]), ("B", org["bob"]), ("C", org["alice"])):
        people.records.create(alice, "sales_target", {"name": name, "rep": rep})
    result = Reports(people).run(alice, ReportSpec.from_dict({"entity": "sales_target", "group_by": ["rep"]}))
    counts = {row["labels"][0]["en"]: next(iter(row["values"].values())) for row in result.rows}
    assert counts == {"bob": 2, "alice": 1}
