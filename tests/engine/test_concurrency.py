"""Concurrent writers: gap-free auto-numbers, per-field merge of edits, conflicts on the same field."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest

from crm_platform.engine.records import service as service_module
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import Conflict
from crm_platform.engine.site import Site

SYSTEM = Actor.system()


def test_auto_numbers_are_unique_and_gap_free_under_concurrent_creates(kit: Site) -> None:
    def create(i: int) -> str:
        return kit.records.create(SYSTEM, "company", {"name": f"Company {i}"})["number"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = list(pool.map(create, range(40)))
    year = dt.date.today().year
    assert sorted(numbers) == [f"C-{year}-{n:03d}" for n in range(1, 41)]


def test_a_failed_create_gives_its_number_back(kit: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    kit.records.create(SYSTEM, "deal", {"title": "x", "company": kit.records.create(SYSTEM, "company", {"name": "A"})["id"]})

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(service_module, "write_history", broken)
    with pytest.raises(RuntimeError):
        kit.records.create(SYSTEM, "company", {"name": "Lost"})
    monkeypatch.undo()
    year = dt.date.today().year
    assert kit.records.create(SYSTEM, "company", {"name": "B"})["number"] == f"C-{year}-002"


def test_disjoint_edits_from_the_same_version_are_merged(kit: Site) -> None:
    record = kit.records.create(SYSTEM, "company", {"name": "Shared", "employees": 10, "revenue": "100"})
    kit.records.update(SYSTEM, "company", record["id"], {"version": 1, "employees": 11})
    merged = kit.records.update(SYSTEM, "company", record["id"], {"version": 1, "name": "Shared Ltd", "revenue_currency": "USD"})
    assert merged["version"] == 3
    assert (merged["name"], merged["employees"], merged["revenue_currency"]) == ("Shared Ltd", 11, "USD")


def test_same_field_edit_is_a_conflict_naming_the_field_and_writes_nothing(kit: Site) -> None:
    record = kit.records.create(SYSTEM, "company", {"name": "Contested", "employees": 10})
    kit.records.update(SYSTEM, "company", record["id"], {"version": 1, "employees": 20})
    with pytest.raises(Conflict) as caught:
        kit.records.update(SYSTEM, "company", record["id"], {"version": 1, "employees": 30, "notes": "mine"})
    details = caught.value.as_dict()["details"]
    assert [(d["field"], d["current"], d["yours"]) for d in details] == [("employees", 20, 30)]
    current = kit.records.get(SYSTEM, "company", record["id"])
    assert (current["version"], current["employees"], current["notes"]) == (2, 20, None)


def test_setting_the_value_someone_else_already_set_is_not_a_conflict(kit: Site) -> None:
    record = kit.records.create(SYSTEM, "company", {"name": "Same", "employees": 10})
    kit.records.update(SYSTEM, "company", record["id"], {"version": 1, "employees": 20})
    again = kit.records.update(SYSTEM, "company", record["id"], {"version": 1, "employees": 20})
    assert again["version"] == 2


def test_concurrent_updates_of_different_fields_all_land(kit: Site) -> None:
    record = kit.records.create(SYSTEM, "company", {"name": "Busy"})
    edits = [{"employees": 5}, {"notes": "n"}, {"phone": "12345678"}, {"email": "a@b.example"}, {"website": "https://b.example"}, {"kind": "dealer"}]

    def apply(edit: dict[str, object]) -> int:
        return kit.records.update(SYSTEM, "company", record["id"], {"version": 1, **edit})["version"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        versions = list(pool.map(apply, edits))
    final = kit.records.get(SYSTEM, "company", record["id"])
    assert sorted(versions) == list(range(2, 8))
    assert final["version"] == 7
    assert (final["employees"], final["notes"], final["kind"]) == (5, "n", "dealer")


def test_stale_version_newer_than_the_record_is_rejected(kit: Site) -> None:
    from crm_platform.engine.records.errors import BadRequest

    record = kit.records.create(SYSTEM, "company", {"name": "V"})
    with pytest.raises(BadRequest):
        kit.records.update(SYSTEM, "company", record["id"], {"version": 7, "name": "W"})
    with pytest.raises(BadRequest):
        kit.records.update(SYSTEM, "company", record["id"], {"name": "W"})
