"""Possible duplicates on create (engine/duplicates.py, the standard pack's duplicates.yaml):
similar Chinese company names, phone numbers written differently, email addresses in another
case; only among the records the user may read; the rules checked when the packs load."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from crm_platform.engine.duplicates import (
    DuplicateFinder,
    PossibleDuplicate,
    name_similarity,
    normalize_name,
    phone_digits,
)
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import BadRequest
from crm_platform.engine.site import Site
from crm_platform.metadata.duplicate_rules import DuplicateRules
from crm_platform.metadata.errors import PackError
from crm_platform.metadata.loader import load_registry
from tests.helpers import entity_yaml, write_pack
from tests.packs.test_crm_standard_flows import staff

SYSTEM = Actor.system()


def other_unit_rep(site: Site) -> Actor:
    unit = site.permissions.create_unit("East sales", "department")
    user_id = site.users.create_user("east_rep", "east-rep-password", unit_id=unit)
    site.permissions.assign_role(user_id, "sales_rep")
    time.sleep(0.6)
    actor = site.users.actor(user_id)
    assert actor is not None
    return actor


def create(site: Site, actor: Actor, entity: str, data: dict) -> dict:
    """A create as the API and the forms make it: checked for possible duplicates."""
    return site.records.create(actor, entity, data, check_duplicates=True)


def refused(site: Site, actor: Actor, entity: str, data: dict) -> PossibleDuplicate:
    with pytest.raises(PossibleDuplicate) as caught:
        create(site, actor, entity, data)
    return caught.value


def count(site: Site, entity: str) -> int:
    from crm_platform.engine.records.list_query import ListQuery

    return site.records.list(SYSTEM, entity, ListQuery(page_size=1)).total


# -- normalizing and comparing -------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "normal"), [
    ("佛山市华夏陶瓷有限公司", "佛山市华夏陶瓷"),
    ("佛山华夏陶瓷", "佛山华夏陶瓷"),
    ("Foshan Huaxia Ceramics Co., Ltd.", "foshanhuaxiaceramics"),
    ("ＨｏｍｅＰｌｕｓ Building Supplies Co.,Ltd", "homeplusbuildingsupplies"),
    ("华夏陶瓷（佛山）股份有限公司", "华夏陶瓷佛山"),
    ("Tianco", "tianco"),  # 'co' is stripped only as a word of its own
    ("公司", "公司"),  # a name that is only a suffix stays
])
def test_names_are_normalized(raw: str, normal: str) -> None:
    assert normalize_name(raw) == normal


def test_similar_names_score_high_and_different_ones_low() -> None:
    assert name_similarity("佛山市华夏陶瓷有限公司", "佛山华夏陶瓷") >= 0.9
    assert name_similarity("华夏陶瓷（佛山）有限公司", "佛山华夏陶瓷") >= 0.8
    assert name_similarity("Foshan Huaxia Ceramics Co., Ltd.", "foshan huaxia ceramics") == 1.0
    assert name_similarity("佛山华夏陶瓷", "佛山华美陶瓷") < 0.85
    assert name_similarity("佛山华夏陶瓷", "广州建材集团") < 0.3
    assert phone_digits("+86 (757) 8888-0000") == "8675788880000"


# -- on create -----------------------------------------------------------------------------------
def test_a_similar_chinese_company_name_is_a_possible_duplicate(site: Site) -> None:
    people = staff(site)
    rep = people["rep"]
    original = create(site, rep, "account", {"name": "佛山市华夏陶瓷有限公司", "customer_type": "dealer"})
    error = refused(site, rep, "account", {"name": "佛山华夏陶瓷"})
    assert error.status == 409 and error.code == "possible_duplicate"
    [match] = error.matches
    assert (match.entity, match.id, match.title) == ("account", original["id"], "佛山市华夏陶瓷有限公司")
    assert [(r.kind, r.field) for r in match.reasons] == [("name", "name")] and match.score >= 0.9
    body = error.as_dict()
    assert body["matches"][0]["url"] == f"/app/account/{original['id']}"
    assert body["details"][0]["code"] == "possible_duplicate"
    assert count(site, "account") == 1  # nothing was saved, not even an auto-number
    # A different company of the same trade in the same city is not one.
    create(site, rep, "account", {"name": "佛山华美陶瓷有限公司"})
    # Saying so creates it.
    created = create(site, rep, "account", {"name": "佛山华夏陶瓷", "ignore_duplicates": True})
    assert created["name"] == "佛山华夏陶瓷" and "ignore_duplicates" not in created
    assert count(site, "account") == 3


def test_a_phone_number_written_differently_is_a_possible_duplicate(site: Site) -> None:
    rep = staff(site)["rep"]
    original = create(site, rep, "account", {"name": "Kiln Supplies", "phone": "0757-8888 0000"})
    error = refused(site, rep, "account", {"name": "Glaze House", "phone": "+86 757 88880000"})
    assert [(m.id, [(r.kind, r.value) for r in m.reasons]) for m in error.matches] == [(original["id"], [("phone", "0757-8888 0000")])]
    create(site, rep, "account", {"name": "Glaze House", "phone": "+86 757 88880001"})  # another number
    create(site, rep, "account", {"name": "Short Number Ltd", "phone": "0000"})  # too short to compare
    # Contacts compare their mobile with other contacts' office phone too.
    account = create(site, rep, "account", {"name": "Harbour Hotel", "ignore_duplicates": True})
    boss = create(site, rep, "contact", {"name": "Wang Lei", "account": account["id"], "phone": "138 0013 8000"})
    error = refused(site, rep, "contact", {"name": "Zhou Min", "account": account["id"], "mobile": "13800138000"})
    assert [(m.id, m.reasons[0].field) for m in error.matches] == [(boss["id"], "phone")]


def test_an_email_in_another_case_is_a_possible_duplicate(site: Site) -> None:
    rep = staff(site)["rep"]
    lead = create(site, rep, "lead", {"company": "Bright Home Interiors", "email": "Sarah@BrightHome.HK"})
    error = refused(site, rep, "lead", {"company": "Sarah's shop", "email": "sarah@brighthome.hk "})
    assert [(m.entity, m.id, m.reasons[0].kind) for m in error.matches] == [("lead", lead["id"], "email")]
    create(site, rep, "lead", {"company": "Sarah's shop", "email": "sarah@brighthome.com"})


def test_a_similar_lead_company_and_several_reasons_at_once(site: Site) -> None:
    rep = staff(site)["rep"]
    lead = create(site, rep, "lead", {"company": "东莞市新港酒店有限公司", "phone": "0769-2201 8830", "email": "buy@xingang.cn"})
    error = refused(site, rep, "lead", {"company": "东莞新港酒店", "phone": "(0769) 22018830", "email": "BUY@xingang.cn"})
    [match] = error.matches
    assert match.id == lead["id"] and sorted(r.kind for r in match.reasons) == ["email", "name", "phone"]


def test_people_with_the_same_name_count_only_within_one_account(site: Site) -> None:
    rep = staff(site)["rep"]
    one = create(site, rep, "account", {"name": "Kiln Works"})
    other = create(site, rep, "account", {"name": "Glaze House"})
    create(site, rep, "contact", {"name": "张伟", "account": one["id"], "mobile": "13800000001"})
    create(site, rep, "contact", {"name": "张伟", "account": other["id"], "mobile": "13800000002"})  # another company's 张伟
    error = refused(site, rep, "contact", {"name": "张伟", "account": one["id"], "mobile": "13800000003"})
    assert [m.title for m in error.matches] == ["张伟"]
    create(site, rep, "contact", {"name": "张伟军", "account": one["id"], "mobile": "13800000004"})  # not the same person


def test_records_the_user_may_not_read_are_never_matched(site: Site) -> None:
    people = staff(site)
    outsider = other_unit_rep(site)
    secret = create(site, people["rep"], "account", {"name": "佛山市华夏陶瓷有限公司", "phone": "0757-8888 0000", "email": "a@huaxia.cn"})
    # A rep of another unit does not see the account: no warning, nothing about it leaks.
    assert DuplicateFinder(site).find(outsider, "account", {"name": "佛山华夏陶瓷", "phone": "075788880000", "email": "A@huaxia.cn"}) == []
    mine = create(site, outsider, "account", {"name": "佛山华夏陶瓷", "phone": "075788880000", "email": "A@huaxia.cn"})
    assert mine["id"] != secret["id"]
    # Her team lead sees the rep's account (unit and below) and is warned about both.
    error = refused(site, people["lead"], "account", {"name": "佛山华夏陶瓷有限公司"})
    assert [m.id for m in error.matches] == [secret["id"]]  # the east rep's account is not in his scope
    # Deleted records are not matched.
    site.records.delete(SYSTEM, "account", secret["id"])
    assert DuplicateFinder(site).find(people["lead"], "account", {"name": "佛山华夏陶瓷"}) == []


def test_only_requests_that_ask_are_checked(site: Site) -> None:
    rep = staff(site)["rep"]
    create(site, SYSTEM, "account", {"name": "Harbour Hotel"})
    create(site, SYSTEM, "account", {"name": "Harbour Hotel"})  # the platform itself (seeds, CLI): no check
    site.records.create(rep, "account", {"name": "Harbour Hotel"})  # a direct call of the service: as before, no check
    with pytest.raises(PossibleDuplicate):  # unless the payload asks for it (an importer does)
        site.records.create(rep, "account", {"name": "Harbour Hotel", "ignore_duplicates": False})
    account = create(site, rep, "account", {"name": "Kiln Works"})
    create(site, rep, "opportunity", {"name": "Lobby tiles", "account": account["id"]})
    create(site, rep, "opportunity", {"name": "Lobby tiles", "account": account["id"]})  # no rule for opportunities
    assert count(site, "account") == 4


def test_the_flag_must_be_a_boolean(site: Site) -> None:
    rep = staff(site)["rep"]
    with pytest.raises(BadRequest) as caught:
        create(site, rep, "account", {"name": "Kiln Works", "ignore_duplicates": "yes"})
    assert caught.value.details[0].field == "ignore_duplicates"
    create(site, rep, "account", {"name": "Kiln Works", "ignore_duplicates": False})


def test_the_standard_rules_are_in_the_registry(site: Site) -> None:
    rules = site.registry.extra["duplicates"]
    assert isinstance(rules, DuplicateRules)
    assert sorted(rules.rules) == ["account", "contact", "lead"]
    contact = rules.of("contact")
    assert contact is not None and contact.name is not None and contact.phone is not None
    assert contact.name.same == ("account",) and contact.phone.fields == ("mobile", "phone")
    assert rules.of("opportunity") is None


# -- the configuration ---------------------------------------------------------------------------
def _pack(tmp_path: Path, duplicates: str) -> Path:
    fields = """
    - {name: name, type: text, label: {en: Name, zh-CN: 名称}}
    - {name: phone, type: phone, label: {en: Phone, zh-CN: 电话}}
    - {name: notes, type: text, label: {en: Notes, zh-CN: 备注}}
    - {name: size, type: integer, label: {en: Size, zh-CN: 规模}}
    """
    write_pack(tmp_path, "dups", {
        "entities/company.yaml": entity_yaml("company", fields, "title_field: name\nsearch_fields: [name, phone]\n"),
        "duplicates.yaml": duplicates,
    })
    return tmp_path


def test_a_pack_declares_its_rules(tmp_path: Path) -> None:
    root = _pack(tmp_path, """
        company_suffixes: [工作室]
        entities:
          company:
            name: {fields: [name], threshold: 0.9}
            phone: {fields: [phone], digits: 10}
        """)
    rules = load_registry(["dups"], [root]).extra["duplicates"]
    rule = rules.of("company")
    assert (rule.name.threshold, rule.phone.digits, rule.email) == (0.9, 10, None)
    assert rules.company_suffixes == ("工作室",)


@pytest.mark.parametrize(("body", "message"), [
    ("entities:\n  compny:\n    name: {fields: [name]}\n", "unknown entity 'compny'; did you mean 'company'?"),
    ("entities:\n  company:\n    name: {fields: [nmae]}\n", "unknown field 'nmae' of company; did you mean 'name'?"),
    ("entities:\n  company:\n    name: {fields: [notes]}\n", "'notes' is not one of company's search_fields"),
    ("entities:\n  company:\n    email: {fields: [size]}\n", "'size' is a integer field; expected one of email, text"),
    ("entities:\n  company:\n    name: {fields: [name], threshold: 0.2}\n", "0.2 is less than the minimum of 0.5"),
    ("entities:\n  company:\n    nmae: {fields: [name]}\n", "unknown property 'nmae'"),
])
def test_bad_rules_do_not_load(tmp_path: Path, body: str, message: str) -> None:
    root = _pack(tmp_path, body)
    with pytest.raises(PackError) as caught:
        load_registry(["dups"], [root])
    text = "\n".join(str(p) for p in caught.value.problems)
    assert message in text and "duplicates.yaml" in text
