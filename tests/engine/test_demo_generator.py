"""Generated demo data (`demo load --size N`): what a user of the demo site would notice.

Counts per entity follow the profile, every reference points at a row that exists, workflow
fields hold declared states, records are spread over the demo org so a rep sees only her own,
formulas and roll-ups agree with the record service, numbering goes on after the batch, the
search finds generated rows, a seed repeats, a second run is refused unless it appends, and
a broken profile is reported with file:line:column before anything is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from crm_platform.config import Settings
from crm_platform.engine import auth
from crm_platform.engine.clock import CLOCK
from crm_platform.engine.demo_data import (
    DemoDataError,
    DemoDataExists,
    DemoResult,
    ProgressEvent,
    generate,
    generated_runs,
)
from crm_platform.engine.permissions.org_loader import load_org_chart
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.records.rule_hooks import RuleHooks
from crm_platform.engine.seeding import load_records
from crm_platform.engine.site import Site
from crm_platform.metadata.errors import PackError
from crm_platform.metadata.loader import load_registry
from crm_platform.metadata.model import Registry
from tests.conftest import PACKS, PG_URL
from tests.helpers import write_pack

PINNED = dt.datetime(2026, 3, 16, 9, 30, tzinfo=dt.UTC)
SIZE = 60
SYSTEM = Actor.system()
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
GENERATED = ("competitor", "account", "contact", "lead", "opportunity", "quote", "quote_line", "sales_order", "order_line",
             "payment", "service_request", "activity")


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[None]:
    with CLOCK.scope():
        CLOCK.set(PINNED)
        yield


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo org's ten users are hashed with the cheapest argon2 settings (tests only)."""
    monkeypatch.setattr(auth, "_hasher", CHEAP)


def prepared(site: Site) -> Site:
    """What `demo load --size` does first: seed records (products) and the demo org chart."""
    load_records(site, ("seed",), SYSTEM)
    load_org_chart(site)
    return site


@contextmanager
def other_database(tmp_path: Path, name: str) -> Iterator[str]:
    """Another empty database beside the test's own (a SQLite file, or a PostgreSQL schema)."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / (name + '.sqlite3')}"
        return
    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(scope="module")
def shared(standard_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, DemoResult]]:
    """One generated site for the tests that only read it."""
    folder = tmp_path_factory.mktemp("demo")
    with CLOCK.scope(), other_database(folder, "shared") as url:
        CLOCK.set(PINNED)
        site = Site.open(Settings(url, ("crm_standard",), folder / "var", "test-secret"), standard_registry)
        try:
            site.sync(applied_by="test")
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(auth, "_hasher", CHEAP)
                result = generate(prepared(site), SIZE, seed=3, batch_rows=400)
            yield site, result
        finally:
            site.dispose()


@pytest.fixture
def demo(site: Site) -> tuple[Site, DemoResult]:
    """A generated site of this test's own (for tests that change it)."""
    result = generate(prepared(site), SIZE, seed=3, batch_rows=400)
    return site, result


def count(site: Site, sql: str, **params: Any) -> int:
    with site.engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one())


def column(site: Site, sql: str, **params: Any) -> list[Any]:
    with site.engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).scalars())


def user_id(site: Site, username: str) -> int:
    found = site.users.find(username)
    assert found is not None
    return int(found["id"])


def actor(site: Site, username: str) -> Actor:
    found = site.users.actor(user_id(site, username))
    assert found is not None
    return found


# -- what gets generated ---------------------------------------------------------------------------

def test_counts_follow_the_profile(shared: tuple[Site, DemoResult]) -> None:
    site, result = shared
    counts = {name: count(site, f"SELECT count(*) FROM ent_{name}") for name in GENERATED}
    assert counts == {name: result.counts.get(name, 0) for name in GENERATED}
    assert counts["account"] == SIZE and counts["competitor"] == 8
    per_account = column(site, "SELECT count(c.id) FROM ent_account a LEFT JOIN ent_contact c ON c.account = a.id GROUP BY a.id")
    assert len(per_account) == SIZE and min(per_account) >= 2 and max(per_account) <= 5
    activities = column(site, "SELECT count(x.id) FROM ent_account a LEFT JOIN ent_activity x ON x.account = a.id GROUP BY a.id")
    assert min(activities) >= 3 and max(activities) <= 10
    lines = column(site, "SELECT count(l.id) FROM ent_quote q LEFT JOIN ent_quote_line l ON l.parent_id = q.id GROUP BY q.id")
    assert min(lines) >= 1 and max(lines) <= 4
    assert counts["sales_order"] > 0 and counts["payment"] > 0 and counts["service_request"] > 0
    # contracts come from accepted quotes of won opportunities; payments only once delivery started
    assert count(site, "SELECT count(*) FROM ent_sales_order s JOIN ent_quote q ON q.id = s.quote JOIN ent_opportunity o ON o.id = s.opportunity "
                       "WHERE q.status = 'accepted' AND o.stage = 'won' AND s.account = o.account") == counts["sales_order"]
    assert count(site, "SELECT count(*) FROM ent_payment p JOIN ent_sales_order s ON s.id = p.sales_order "
                       "WHERE s.status NOT IN ('in_delivery', 'completed')") == 0
    # records are spread over two years before the (pinned) clock
    created = column(site, "SELECT created_at FROM ent_account")
    first, last = min(map(str, created)), max(map(str, created))
    assert first[:10] >= "2024-03-16" and last[:10] < "2026-03-16" and first[:4] != last[:4]


def test_every_reference_points_at_an_existing_row(shared: tuple[Site, DemoResult]) -> None:
    site, _ = shared
    registry = site.registry
    checked = 0
    for name in GENERATED:
        entity = registry.entity(name)
        refs = [(f.name, f"ent_{f.entity}") for f in entity.fields if f.type == "reference"]
        if entity.child_of:
            refs.append(("parent_id", f"ent_{entity.child_of}"))
        for field, target in refs:
            dangling = count(site, f"SELECT count(*) FROM ent_{name} t LEFT JOIN {target} r ON r.id = t.{field} WHERE t.{field} IS NOT NULL AND r.id IS NULL")
            assert dangling == 0, f"{name}.{field}"
            checked += count(site, f"SELECT count(*) FROM ent_{name} WHERE {field} IS NOT NULL")
    links = count(site, "SELECT count(*) FROM ent_opportunity__competitors j JOIN ent_opportunity o ON o.id = j.source_id JOIN ent_competitor c ON c.id = j.target_id")
    assert links == count(site, "SELECT count(*) FROM ent_opportunity__competitors") > 0
    assert checked > 1000
    # related rows belong to the same account
    assert count(site, "SELECT count(*) FROM ent_opportunity o JOIN ent_contact c ON c.id = o.contact WHERE c.account != o.account") == 0
    assert count(site, "SELECT count(*) FROM ent_contact c JOIN ent_contact b ON b.id = c.reports_to WHERE b.account != c.account OR b.id = c.id") == 0


def test_workflow_fields_hold_declared_states_reached_as_the_workflow_requires(shared: tuple[Site, DemoResult]) -> None:
    site, _ = shared
    for flow in site.registry.extra["workflows"]:
        if flow.entity not in GENERATED:
            continue
        states = {s.name for s in flow.states}
        found = set(column(site, f"SELECT DISTINCT {flow.field} FROM ent_{flow.entity}"))
        assert found <= states, flow.name
        assert not found & {s.name for s in flow.states if s.approval is not None}, "no record waits for an approval nobody started"
    assert set(column(site, "SELECT DISTINCT stage FROM ent_opportunity")) >= {"won", "lost", "prospecting"}
    assert count(site, "SELECT count(*) FROM ent_opportunity WHERE stage = 'won' AND (win_reason IS NULL OR amount IS NULL)") == 0
    opportunity = site.schema.tables["opportunity"]  # entering 'won' set the probability to 100 %
    with site.engine.connect() as conn:
        won = conn.execute(sa.select(opportunity.c.probability).where(opportunity.c.stage == "won")).scalars().all()
    assert won and set(won) == {Decimal(100)}
    assert count(site, "SELECT count(*) FROM ent_opportunity WHERE stage = 'lost' AND (loss_reason IS NULL OR loss_category IS NULL)") == 0
    assert count(site, "SELECT count(*) FROM ent_service_request WHERE status IN ('resolved', 'closed') AND (resolution IS NULL OR resolved_at IS NULL)") == 0
    assert count(site, "SELECT count(*) FROM ent_sales_order WHERE status IN ('signed', 'in_delivery', 'completed') AND (signed_on IS NULL OR signer IS NULL)") == 0
    history = count(site, "SELECT count(*) FROM crm_workflow_history WHERE entity = 'quote' AND transition = '_start'")
    assert history == count(site, "SELECT count(*) FROM ent_quote")
    # a request generated as new escalates if nobody takes it, as a loaded demo request does
    waiting = count(site, "SELECT count(*) FROM ent_service_request WHERE status = 'new'")
    assert waiting > 0 and count(site, "SELECT count(*) FROM crm_job WHERE name = 'workflow_timer' AND status = 'pending'") == waiting


# -- owners and permissions --------------------------------------------------------------------------

def test_records_are_spread_over_the_demo_org_and_a_rep_sees_only_her_accounts(shared: tuple[Site, DemoResult]) -> None:
    site, _ = shared
    for name in GENERATED:
        if site.registry.entity(name).owned:
            wrong_unit = count(site, f"SELECT count(*) FROM ent_{name} t JOIN crm_user u ON u.id = t.owner_id WHERE coalesce(t.unit_id, -1) != coalesce(u.unit_id, -1)")
            assert wrong_unit == 0 and count(site, f"SELECT count(*) FROM ent_{name} WHERE owner_id IS NULL") == 0, name
    owners = column(site, "SELECT DISTINCT u.username FROM ent_account a JOIN crm_user u ON u.id = a.owner_id")
    assert {"li.rep", "wang.rep", "xu.rep"} <= set(owners)
    service_owners = set(column(site, "SELECT DISTINCT u.username FROM ent_service_request s JOIN crm_user u ON u.id = s.owner_id"))
    assert service_owners <= {"he.agent", "zhou.service"}

    def owned_by(*names: str) -> set[int]:
        ids = ", ".join(str(user_id(site, n)) for n in names)
        return set(column(site, f"SELECT id FROM ent_account WHERE owner_id IN ({ids})"))

    def visible(username: str) -> set[int]:
        page = site.records.list(actor(site, username), "account", ListQuery(page_size=200))
        assert page.total == len(page.records)
        return {r["id"] for r in page.records}

    assert visible("li.rep") == owned_by("li.rep")  # a rep: her own accounts only
    assert visible("wang.rep") == owned_by("wang.rep")
    lead = visible("lin.lead")  # her team lead: the Guangzhou team
    assert owned_by("li.rep", "lin.lead") <= lead and not lead & owned_by("wang.rep", "xu.rep")
    director = visible("chen.director")  # South China sales: both teams, not East China
    assert owned_by("li.rep", "wang.rep", "lin.lead") <= director and not director & owned_by("xu.rep")
    # contacts, opportunities and follow-ups belong to their account's owner
    assert count(site, "SELECT count(*) FROM ent_contact c JOIN ent_account a ON a.id = c.account WHERE c.owner_id != a.owner_id") == 0
    assert count(site, "SELECT count(*) FROM ent_opportunity o JOIN ent_account a ON a.id = o.account WHERE o.owner_id != a.owner_id") == 0


# -- computed fields ------------------------------------------------------------------------------------

def test_formulas_and_roll_ups_agree_with_the_record_service(shared: tuple[Site, DemoResult]) -> None:
    site, _ = shared
    hooks = RuleHooks(site)
    compared = 0
    with site.engine.connect() as conn:
        for name in ("quote", "sales_order", "account", "quote_line", "opportunity"):
            entity = site.registry.entity(name)
            table = site.schema.tables[name]
            for row in conn.execute(sa.select(table).order_by(table.c.id).limit(40)).mappings():
                stored = dict(row)
                computed, errors = hooks.compute_formulas(conn, SYSTEM, entity, dict(stored), dict(stored))
                assert not errors
                for field, value in computed.items():
                    assert stored[field] == value, f"{name} {stored['id']}.{field}: stored {stored[field]!r}, computed {value!r}"
                    compared += 1
    assert compared > 300
    # the account roll-ups add up the contracts and payments generated for it
    total_paid = count(site, "SELECT count(*) FROM ent_account a WHERE a.total_paid != (SELECT coalesce(sum(p.amount), 0) FROM ent_payment p WHERE p.account = a.id)")
    assert total_paid == 0
    assert count(site, "SELECT count(*) FROM ent_account WHERE total_paid > 0") > 0
    assert count(site, "SELECT count(*) FROM ent_sales_order WHERE paid_amount > amount") == 0


def test_rep_targets_name_their_rep_and_count_the_reps_signed_contracts(shared: tuple[Site, DemoResult]) -> None:
    """The profile leaves `rep` and `unit` out: the rep is the target's owner, the unit (hidden on a
    rep target by the rules) stays empty, and each actual is the rep's contracts signed in the period."""
    site, _ = shared
    with site.engine.connect() as conn:
        targets = conn.execute(sa.text("SELECT id, rep, unit, owner_id, period_start, period_end, actual_amount FROM ent_sales_target")).mappings().all()
    assert len(targets) >= 24
    for target in targets:
        assert target["rep"] == target["owner_id"] is not None and target["unit"] is None, dict(target)
        expected = column(site, "SELECT coalesce(sum(amount), 0) FROM ent_sales_order WHERE owner_id = :rep AND deleted_at IS NULL"
                                " AND status IN ('signed', 'in_delivery', 'completed') AND signed_on >= :start AND signed_on <= :end",
                          rep=target["rep"], start=target["period_start"], end=target["period_end"])[0]
        assert Decimal(str(target["actual_amount"] or 0)) == Decimal(str(expected)), dict(target)
    assert any(Decimal(str(t["actual_amount"] or 0)) > 0 for t in targets), "some rep signed something in a target's quarter"


def test_numbering_continues_after_the_generated_batch(demo: tuple[Site, DemoResult]) -> None:
    site, _ = demo
    year = PINNED.year
    numbers = column(site, f"SELECT code FROM ent_account WHERE code LIKE 'KH-{year}-%'")
    assert numbers and len(set(column(site, "SELECT code FROM ent_account"))) == SIZE
    created = site.records.create(SYSTEM, "account", {"name": "佛山新客户建材有限公司", "customer_type": "dealer"})
    assert created["code"] == f"KH-{year}-{max(int(n.rsplit('-', 1)[1]) for n in numbers) + 1:05d}"
    assert created["id"] == SIZE + 1  # the id sequence went on too (PostgreSQL: advanced past explicit ids)
    lead = site.records.create(SYSTEM, "lead", {"company": "东莞新线索陶瓷有限公司"})
    assert lead["code"] not in column(site, "SELECT code FROM ent_lead WHERE id != :id", id=lead["id"])


def test_search_finds_generated_rows(shared: tuple[Site, DemoResult]) -> None:
    site, _ = shared
    account_id, name = site.engine.connect().execute(sa.text("SELECT id, name FROM ent_account ORDER BY id LIMIT 1 OFFSET 7")).one()
    found = site.records.list(SYSTEM, "account", ListQuery(search=name[2:7], page_size=200))
    assert account_id in {r["id"] for r in found.records}
    contact_id, mobile = site.engine.connect().execute(sa.text("SELECT id, mobile FROM ent_contact ORDER BY id LIMIT 1 OFFSET 11")).one()
    assert [r["id"] for r in site.records.list(SYSTEM, "contact", ListQuery(search=mobile)).records] == [contact_id]


# -- runs --------------------------------------------------------------------------------------------

def digest(site: Site) -> str:
    """A hash of every generated table, row by row in id order, with the N:N links, the
    auto-number counters and the history rows (by record: batching only changes their ids)."""
    tables = [f"ent_{n}" for n in GENERATED] + ["ent_opportunity__competitors", "crm_autonumber"]
    h = hashlib.sha256()
    with site.engine.connect() as conn:
        for name in tables:
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns)):
                h.update(repr(tuple(row)).encode())
        for sql in ("SELECT entity, record_id, action, changed_by, changed_at FROM crm_history ORDER BY entity, record_id, version, field",
                    "SELECT entity, record_id, to_state, changed_by, changed_at FROM crm_workflow_history ORDER BY entity, record_id"):
            for row in conn.execute(sa.text(sql)):
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def test_the_same_seed_and_size_give_the_same_data(make_site: Callable[..., Site], standard_registry: Registry, tmp_path: Path) -> None:
    first = prepared(make_site(standard_registry))
    generate(first, 25, seed=11, batch_rows=200)
    digests = []
    for name, seed, batch_rows in (("again", 11, 3000), ("other_seed", 12, 200)):  # other batches, same rows; another seed
        with other_database(tmp_path, name) as url:
            other = Site.open(Settings(url, ("crm_standard",), tmp_path / name, "test-secret"), standard_registry)
            try:
                other.sync(applied_by="test")
                generate(prepared(other), 25, seed=seed, batch_rows=batch_rows)
                digests.append(digest(other))
            finally:
                other.dispose()
    assert digests[0] == digest(first)
    assert digests[1] != digest(first)


def test_a_second_run_is_refused_unless_it_appends(demo: tuple[Site, DemoResult]) -> None:
    site, first = demo
    before = count(site, "SELECT count(*) FROM ent_contact")
    with pytest.raises(DemoDataExists, match="--append"):
        generate(site, 5, seed=3)
    assert count(site, "SELECT count(*) FROM ent_account") == SIZE and count(site, "SELECT count(*) FROM ent_contact") == before
    events: list[ProgressEvent] = []
    more = generate(site, 5, seed=3, append=True, progress=events.append)
    assert count(site, "SELECT count(*) FROM ent_account") == SIZE + 5
    assert count(site, "SELECT count(*) FROM ent_competitor") == 8  # a pool is topped up, not repeated
    assert [r["run"] for r in generated_runs(site)] == [1, 2] and more.run == 2
    assert events[-1].phase in ("rows", "roll-ups") and any(e.phase == "rows" and e.done == e.total == 5 for e in events)
    assert first.rows > first.records > 0


# -- bad profiles --------------------------------------------------------------------------------------

def pack_with_profile(tmp_path: Path, edit: Callable[[str], str]) -> Registry:
    """A copy of crm_standard whose demo profile is edited by `edit`."""
    folder = tmp_path / "packs" / "crm_standard"
    shutil.copytree(PACKS / "crm_standard", folder)
    profile = folder / "demo_profile.yaml"
    profile.write_text(edit(profile.read_text(encoding="utf-8")), encoding="utf-8")
    return load_registry(["crm_standard"], [tmp_path / "packs"])


def line_of(path: Path, needle: str) -> tuple[int, int]:
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in text:
            return number, text.index(needle) + 1
    raise AssertionError(needle)


def test_profile_errors_are_reported_with_their_place_and_nothing_is_written(make_site: Callable[..., Site], tmp_path: Path) -> None:
    def break_it(text: str) -> str:
        return (text.replace("  lead:\n    per: account", "  laed:\n    per: account", 1)
                .replace("customer_type: {pick: {end_customer: 55", "customer_type: {pick: {end_customr: 55", 1)
                .replace("      since: {expr: \"date(created_at)\"}", "      sinse: {expr: \"date(created_at)\"}", 1)
                .replace("      birthday: {days: [-21000, -8000], blank: 0.7}", "      birthday: {pattern: \"{city}\"}", 1)
                .replace("valid_until: {expr: \"add_days(quote_date, 30)\"}", "valid_until: {expr: \"add_days(quote_dat, 30)\"}", 1)
                .replace("count: [2, 5]", "count: [5, 2]", 1))

    registry = pack_with_profile(tmp_path, break_it)
    site = prepared(make_site(registry))
    with pytest.raises(PackError) as failed:
        generate(site, 10)
    path = tmp_path / "packs" / "crm_standard" / "demo_profile.yaml"
    shown = str(path) if not str(path).startswith(os.getcwd()) else str(path.relative_to(os.getcwd()))
    report = failed.value.report()

    def at(needle: str) -> str:
        line, col = line_of(path, needle)
        return f"{shown}:{line}:{col}: "

    assert at("laed:") + "unknown entity 'laed'; did you mean 'lead'?" in report
    assert at("end_customr") + "field 'customer_type': 'end_customr' is not one of the allowed values" in report
    assert at("sinse") + "unknown field 'sinse' on account; did you mean 'since'?" in report
    assert at("pattern: \"{city}\"") + "field 'birthday' is a date field: 'pattern' does not fit it" in report
    assert at("quote_dat,") + "unknown field 'quote_dat' on quote; did you mean 'quote_date'?" in report
    assert at("[5, 2]") + "entity 'contact': count [5, 2]: the minimum is larger than the maximum" in report
    assert at("lead, blank: 0.7}") + "field 'lead': related lead: no lead rows are generated before opportunity" in report  # 'laed'
    assert report.endswith("7 problems found")
    assert count(site, "SELECT count(*) FROM ent_account") == 0 and generated_runs(site) == []


def test_a_row_breaking_a_rule_stops_the_run_and_nothing_of_it_is_kept(make_site: Callable[..., Site], tmp_path: Path) -> None:
    registry = pack_with_profile(tmp_path, lambda text: text.replace(
        "pick: [价格高于竞争对手, 客户预算削减, 交期无法满足, 竞争对手关系更好, 项目取消, 产品规格不符]}",
        "pick: [价格高于竞争对手, 客户预算削减, 交期无法满足], blank: 0.03}", 1))
    site = prepared(make_site(registry))
    with site.engine.connect() as conn:
        counters_before = conn.execute(sa.text("SELECT * FROM crm_autonumber ORDER BY entity, field, period")).all()
    events: list[ProgressEvent] = []
    with pytest.raises(DemoDataError) as failed:
        generate(site, 400, seed=5, batch_rows=100, progress=events.append)
    message = str(failed.value)
    assert "demo_profile.yaml" in message and "a generated opportunity breaks the rule \"A lost opportunity needs a loss reason\"" in message
    assert any(e.phase == "rows" and e.rows > 0 for e in events), "some batches were committed before the failure"
    for name in GENERATED:
        assert count(site, f"SELECT count(*) FROM ent_{name}") == 0, name
    assert count(site, "SELECT count(*) FROM crm_workflow_history") == 0
    with site.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT * FROM crm_autonumber ORDER BY entity, field, period")).all() == counters_before
    assert generated_runs(site) == []


def test_a_dependent_pack_layers_its_profile_over_the_standard_one(make_site: Callable[..., Site], tmp_path: Path) -> None:
    write_pack(tmp_path, "dealers", {"demo_profile.yaml": """
        owners:
          east: {users: [xu.rep]}
        entities:
          account:
            owner: east
            fields:
              customer_type: dealer
              name: {pattern: "{east_city}{company_core}陶瓷经销有限公司"}
        words:
          east_city: [杭州, 宁波, 苏州]
    """}, depends=["crm_standard"])
    site = prepared(make_site(load_registry(["dealers"], [tmp_path, PACKS])))
    generate(site, 8, seed=2)
    assert set(column(site, "SELECT customer_type FROM ent_account")) == {"dealer"}
    assert all(name[:2] in ("杭州", "宁波", "苏州") and name.endswith("陶瓷经销有限公司") for name in column(site, "SELECT name FROM ent_account"))
    assert set(column(site, "SELECT owner_id FROM ent_account")) == {user_id(site, "xu.rep")}
    assert count(site, "SELECT count(*) FROM ent_account WHERE credit_limit IS NOT NULL") == 8  # the rest of the standard profile still applies
    assert count(site, "SELECT count(*) FROM ent_contact") >= 16


@pytest.mark.parametrize("seed", range(20))
def test_a_damaged_profile_gives_placed_problems_never_a_crash(standard_registry: Registry, tmp_path: Path, seed: int) -> None:
    from crm_platform.engine.demo_data.compile_plans import PlanCompiler
    from crm_platform.engine.demo_data.reader import read_profiles
    from crm_platform.engine.demo_data.row_rules import Converters
    from tests.metadata.test_robustness import damage

    shutil.copy(PACKS / "crm_standard" / "demo_profile.yaml", tmp_path / "demo_profile.yaml")
    damage(tmp_path, random.Random(seed))
    try:
        PlanCompiler(standard_registry, read_profiles([tmp_path / "demo_profile.yaml"]), Converters()).compile()
    except PackError as exc:
        assert all(p.line is not None and p.column is not None for p in exc.problems), exc.report()
