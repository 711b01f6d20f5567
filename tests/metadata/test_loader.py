"""Packs that load: every field type, extensions, dependency order, and the immutable Registry."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from crm_platform.metadata.errors import PackError
from crm_platform.metadata.field_types import FIELD_TYPE_NAMES
from crm_platform.metadata.loader import load_registry, validate_packs
from crm_platform.metadata.model import Label, Registry
from tests.helpers import write_pack

REPO = Path(__file__).resolve().parents[2]

EVERY_TYPE = """\
    name: company
    label: {en: Company, zh-CN: 公司}
    plural_label: {en: Companies, zh-CN: 公司}
    description: {en: A customer company, zh-CN: 客户公司}
    icon: building
    title_field: name
    search_fields: [name, code]
    fields:
      - {name: code, type: auto_number, label: {en: Code, zh-CN: 编号}, format: "C-{YYYY}-{seq:4}"}
      - {name: name, type: text, label: {en: Name, zh-CN: 名称}, required: true, max_length: 100, unique: true, indexed: true}
      - {name: notes, type: long_text, label: {en: Notes, zh-CN: 备注}, help: {en: Free text, zh-CN: 自由文本}}
      - {name: employees, type: integer, label: {en: Employees, zh-CN: 员工数}, min: 0, max: 100000, default: 10}
      - {name: score, type: decimal, label: {en: Score, zh-CN: 评分}, precision: 8, scale: 3, default: 1.5}
      - {name: revenue, type: money, label: {en: Revenue, zh-CN: 营收}, currency: USD, precision: 16, scale: 2}
      - {name: budget, type: money, label: {en: Budget, zh-CN: 预算}}
      - {name: discount, type: percent, label: {en: Discount, zh-CN: 折扣}, min: 0, max: 100}
      - {name: active, type: boolean, label: {en: Active, zh-CN: 有效}, default: true, read_only: true}
      - {name: founded, type: date, label: {en: Founded, zh-CN: 成立日期}, default: 2020-01-31}
      - {name: last_contact, type: datetime, label: {en: Last contact, zh-CN: 最近联系}}
      - name: kind
        type: picklist
        label: {en: Kind, zh-CN: 类型}
        default: dealer
        options:
          - {value: customer, label: {en: Customer, zh-CN: 客户}, color: "#1e88e5"}
          - {value: dealer, label: {en: Dealer, zh-CN: 经销商}}
      - name: channels
        type: multi_picklist
        label: {en: Channels, zh-CN: 渠道}
        default: [wechat, phone]
        options:
          - {value: phone, label: {en: Phone, zh-CN: 电话}}
          - {value: wechat, label: {en: WeChat, zh-CN: 微信}}
      - {name: parent, type: reference, entity: company, label: {en: Parent, zh-CN: 上级}, on_delete: set_null}
      - {name: email, type: email, label: {en: Email, zh-CN: 邮箱}, unique: true}
      - {name: phone, type: phone, label: {en: Phone, zh-CN: 电话}}
      - {name: website, type: url, label: {en: Website, zh-CN: 网站}}
      - {name: logo, type: file, label: {en: Logo, zh-CN: 标志}, max_size_mb: 5, accept: [image/png, image/jpeg]}
      - {name: margin, type: formula, label: {en: Margin, zh-CN: 利润}, expression: "revenue - budget", result_type: money, scale: 2}
      - {name: lines, type: child_table, entity: company_line, label: {en: Lines, zh-CN: 明细}}
      - {name: tags, type: many_to_many, entity: tag, label: {en: Tags, zh-CN: 标签}}
"""
LINE = """\
    name: company_line
    label: {en: Line, zh-CN: 明细}
    child_of: company
    fields:
      - {name: item, type: text, label: {en: Item, zh-CN: 品名}}
"""
TAG = """\
    name: tag
    label: {en: Tag, zh-CN: 标签}
    owned: false
    fields:
      - {name: name, type: text, label: {en: Name, zh-CN: 名称}}
"""
BASE_FILES = {
    "entities/company.yaml": EVERY_TYPE,
    "entities/company_line.yaml": LINE,
    "entities/tag.yaml": TAG,
    "views/company.yaml": """\
        entity: company
        views:
          - {name: all, label: {en: All, zh-CN: 全部}, columns: [code, name, kind], sort: [name], default: true}
          - {name: recent, label: {en: Recent, zh-CN: 最近}, columns: [name], sort: [-created_at], page_size: 20}
    """,
    "forms/company.yaml": """\
        entity: company
        forms:
          - name: main
            label: {en: Company, zh-CN: 公司}
            sections:
              - {label: {en: Basics, zh-CN: 基本}, fields: [name, kind], columns: 1}
    """,
    "menus.yaml": """\
        menus:
          - name: sales
            label: {en: Sales, zh-CN: 销售}
            order: 20
            items:
              - {entity: company, view: all}
              - {entity: tag, label: {en: Labels, zh-CN: 标记}}
    """,
    "seed/tag.yaml": "entity: tag\nrecords:\n  - {_key: hot, name: Hot}\n",
}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "packs"
    folder.mkdir()
    return folder


@pytest.fixture
def base(root: Path) -> Registry:
    write_pack(root, "base", BASE_FILES)
    return load_registry(["base"], [root])


def test_a_pack_with_every_field_type_loads(base: Registry) -> None:
    company = base.entity("company")
    assert {f.type for f in company.fields} == set(FIELD_TYPE_NAMES)
    assert [f.name for f in company.fields][:3] == ["code", "name", "notes"]
    assert company.label == Label("Company", "公司") and company.plural_label.en == "Companies"
    assert company.description == Label("A customer company", "客户公司")
    assert (company.icon, company.title_field, company.search_fields) == ("building", "name", ("name", "code"))
    assert company.owned and company.child_of is None and company.pack == "base"
    assert company.place.file == "packs/base/entities/company.yaml"
    assert company.table_name == "ent_company"
    assert "lines" not in {f.name for f in company.stored_fields} and "tags" not in {f.name for f in company.stored_fields}


def test_field_settings_are_kept(base: Registry) -> None:
    f = base.entity("company").field
    assert f("code").format == "C-{YYYY}-{seq:4}"
    name = f("name")
    assert (name.required, name.max_length, name.unique, name.indexed) == (True, 100, True, True)
    assert name.place.file == "packs/base/entities/company.yaml" and name.place.line == 10
    assert f("notes").help == Label("Free text", "自由文本")
    assert (f("employees").min, f("employees").max, f("employees").default) == (0, 100000, 10)
    assert (f("score").precision, f("score").scale, f("score").default) == (8, 3, 1.5)
    assert (f("revenue").currency, f("revenue").precision, f("revenue").scale) == ("USD", 16, 2)
    assert f("budget").currency == "CNY"  # the default currency
    assert (f("discount").min, f("discount").max) == (0, 100)
    assert (f("active").default, f("active").read_only) == (True, True)
    assert f("founded").default == "2020-01-31"
    kind = f("kind")
    assert kind.option_values == ("customer", "dealer") and kind.default == "dealer"
    assert kind.options[0].color == "#1e88e5" and kind.options[1].label == Label("Dealer", "经销商")
    assert f("channels").default == ("wechat", "phone")
    assert hash(f("channels"))  # a Field is immutable through and through
    assert (f("parent").entity, f("parent").on_delete) == ("company", "set_null")
    assert f("email").unique
    assert (f("logo").max_size_mb, f("logo").accept) == (5, ("image/png", "image/jpeg"))
    margin = f("margin")
    assert (margin.expression, margin.result_type, margin.value_type, margin.scale) == ("revenue - budget", "money", "money", 2)
    assert (f("lines").entity, f("tags").entity) == ("company_line", "tag")
    assert f("phone").type == "phone" and f("website").type == "url" and f("last_contact").type == "datetime"


def test_child_and_unowned_entities(base: Registry) -> None:
    line, tag = base.entity("company_line"), base.entity("tag")
    assert line.child_of == "company" and not line.owned
    assert not tag.owned
    assert base.children_of("company") == [line]
    assert line.title_field == "item"  # the first text field when none is named
    assert [(e.name, f.name) for e, f in base.references_to("company")] == [("company", "parent")]


def test_views_forms_menus_and_seeds(base: Registry) -> None:
    view = base.list_views["company.all"]
    assert (view.columns, view.default, view.page_size, view.sort[0].field) == (("code", "name", "kind"), True, 50, "name")
    recent = base.list_views["company.recent"]
    assert recent.sort[0].field == "created_at" and recent.sort[0].descending and recent.page_size == 20
    assert base.default_list_view("company") is view
    form = base.forms["company.main"]
    assert form.sections[0].fields == ("name", "kind") and form.sections[0].columns == 1
    (menu,) = base.menus
    assert (menu.name, menu.order, [i.view for i in menu.items]) == ("sales", 20, ["all", None])
    assert menu.items[0].label == Label("Companies", "公司")  # the entity's plural label
    assert menu.items[1].label == Label("Labels", "标记")
    (seed,) = base.seeds
    assert (seed.entity, seed.kind, seed.records[0].key, dict(seed.records[0].values)) == ("tag", "seed", "hot", {"name": "Hot"})
    assert [(p.name, p.version, p.depends) for p in base.packs] == [("base", "1.0.0", ())]


EXTENSION = {
    "entities/company.yaml": """\
        extends: company
        search_fields: [region]
        fields:
          - {name: region, type: text, label: {en: Region, zh-CN: 区域}}
          - {name: glaze, type: picklist, label: {en: Glaze, zh-CN: 釉面}, options: [{value: matte, label: {en: Matte, zh-CN: 哑光}}]}
        picklist_values:
          kind:
            - {value: distributor, label: {en: Distributor, zh-CN: 分销商}}
          glaze:
            - {value: gloss, label: {en: Gloss, zh-CN: 亮光}}
    """,
    "forms/company.yaml": """\
        entity: company
        forms:
          - extends: main
            sections:
              - {label: {en: Ceramics, zh-CN: 陶瓷}, fields: [region, glaze]}
            related: [company.parent]
    """,
    "views/company.yaml": "entity: company\nviews:\n  - {name: by_region, label: {en: By region, zh-CN: 按区域}, columns: [name, region]}\n",
    "menus.yaml": "menus:\n  - name: ceramics\n    order: 10\n    items:\n      - {entity: company, view: by_region}\n",
}


def test_an_extension_pack_adds_fields_picklist_values_and_form_sections(root: Path) -> None:
    write_pack(root, "base", BASE_FILES)
    write_pack(root, "ceramics", EXTENSION, depends=["base"])
    registry = load_registry(["ceramics"], [root])
    assert [p.name for p in registry.packs] == ["base", "ceramics"]
    company = registry.entity("company")
    assert company.pack == "base"
    assert [f.name for f in company.fields][-2:] == ["region", "glaze"]
    assert company.field("region").pack == "ceramics"
    assert company.field("region").place.file == "packs/ceramics/entities/company.yaml"
    assert company.search_fields == ("name", "code", "region")
    assert company.field("kind").option_values == ("customer", "dealer", "distributor")
    assert company.field("glaze").option_values == ("matte", "gloss")
    form = registry.forms["company.main"]
    assert [s.fields for s in form.sections] == [("name", "kind"), ("region", "glaze")]
    assert form.related == ("company.parent",) and form.pack == "base"
    assert set(registry.list_views) == {"company.all", "company.recent", "company.by_region"}
    assert [m.name for m in registry.menus] == ["ceramics", "sales"]  # by order


def test_the_base_pack_is_unchanged_by_an_extension_loaded_elsewhere(root: Path) -> None:
    write_pack(root, "base", BASE_FILES)
    write_pack(root, "ceramics", EXTENSION, depends=["base"])
    extended = load_registry(["ceramics"], [root])
    alone = load_registry(["base"], [root])
    assert not alone.entity("company").has_field("region")
    assert extended.content_hash != alone.content_hash


def test_a_form_extension_placing_a_base_field_again(root: Path) -> None:
    write_pack(root, "base", BASE_FILES)
    write_pack(root, "ext", {"forms/company.yaml": """\
        entity: company
        forms:
          - extends: main
            sections:
              - {label: {en: More, zh-CN: 更多}, fields: [kind]}
    """}, depends=["base"])
    with pytest.raises(PackError) as info:
        load_registry(["ext"], [root])
    (p,) = info.value.problems
    assert str(p) == "packs/ext/forms/company.yaml:5:49: form 'main': field 'kind' is placed twice"


def test_a_form_extension_of_an_unknown_form(root: Path) -> None:
    write_pack(root, "base", BASE_FILES)
    write_pack(root, "ext", {"forms/company.yaml": "entity: company\nforms:\n  - {extends: mian}\n"}, depends=["base"])
    (p,) = validate_packs(["ext"], [root])
    assert (p.file, p.line, p.column, p.code) == ("packs/ext/forms/company.yaml", 3, 15, "form.unknown")
    assert "extends unknown form 'mian' of company" in p.message and "did you mean 'main'?" in p.message


def test_a_pack_can_be_named_by_its_path(root: Path) -> None:
    write_pack(root, "base", BASE_FILES)
    registry = load_registry(["packs/base"], [])
    assert registry.packs[0].path == "packs/base"


# --- the Registry -----------------------------------------------------------------------------


def test_the_registry_is_immutable(base: Registry) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.content_hash = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        base.entities["other"] = base.entity("tag")  # type: ignore[index]
    with pytest.raises(TypeError):
        base.list_views["x"] = base.list_views["company.all"]  # type: ignore[index]
    with pytest.raises(TypeError):
        base.extra["x"] = 1  # type: ignore[index]
    company = base.entity("company")
    with pytest.raises(dataclasses.FrozenInstanceError):
        company.name = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        company.fields[0].required = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        company.field_map["x"] = company.fields[0]  # type: ignore[index]
    with pytest.raises(TypeError):
        base.seeds[0].records[0].values["name"] = "Cold"  # type: ignore[index]
    assert isinstance(company.fields, tuple) and isinstance(base.menus, tuple)


def test_content_hash_is_stable_across_loads(root: Path, base: Registry) -> None:
    again = load_registry(["base"], [root])
    assert len(base.content_hash) == 64
    assert again.content_hash == base.content_hash
    assert again == base


def test_content_hash_ignores_layout_comments_and_folder(root: Path, base: Registry, tmp_path: Path) -> None:
    path = root / "base" / "entities" / "company.yaml"
    text = path.read_text(encoding="utf-8")
    reformatted = "# the company entity\n\n" + text.replace("name: company\n", "name:   company   # the name\n", 1).replace(
        "  - {name: notes, type: long_text, label: {en: Notes, zh-CN: 备注}, help: {en: Free text, zh-CN: 自由文本}}",
        "  - name: notes\n    type: long_text\n    label:\n      en: Notes\n      zh-CN: 备注\n    help: {en: Free text, zh-CN: 自由文本}\n",
    )
    assert reformatted != text
    path.write_text(reformatted, encoding="utf-8")
    reloaded = load_registry(["base"], [root])
    assert reloaded.entity("company").field("employees").place.line != base.entity("company").field("employees").place.line
    assert reloaded.content_hash == base.content_hash
    moved = tmp_path / "elsewhere"
    shutil.copytree(root / "base", moved / "base")
    assert load_registry(["base"], [moved]).content_hash == base.content_hash


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("label: {en: Company, zh-CN: 公司}", "label: {en: Firm, zh-CN: 公司}"),
        ("label: {en: Company, zh-CN: 公司}", "label: {en: Company, zh-CN: 企业}"),
        ("max_length: 100", "max_length: 120"),
        ("{value: dealer, label: {en: Dealer", "{value: reseller, label: {en: Dealer"),
    ],
)
def test_content_hash_changes_with_meaning(root: Path, base: Registry, old: str, new: str) -> None:
    path = root / "base" / "entities" / "company.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1).replace("default: dealer", "default: customer"), encoding="utf-8")
    assert load_registry(["base"], [root]).content_hash != base.content_hash


def test_content_hash_changes_with_the_pack_version(root: Path, base: Registry) -> None:
    write_pack(root, "base", {}, version="1.1.0")
    assert load_registry(["base"], [root]).content_hash != base.content_hash


def test_no_registry_when_any_pack_is_invalid(root: Path) -> None:
    write_pack(root, "base", BASE_FILES)
    write_pack(root, "bad", {"views/company.yaml": "entity: company\nviews:\n  - {name: x, label: {en: X, zh-CN: X}, columns: [nope]}\n"}, depends=["base"])
    with pytest.raises(PackError):
        load_registry(["base", "bad"], [root])
    assert validate_packs(["base"], [root]) == []


# --- the real packs ---------------------------------------------------------------------------


def test_crm_standard_validates() -> None:
    problems = validate_packs(["crm_standard"], [REPO / "packs"])
    assert problems == [], "\n".join(map(str, problems))
    registry = load_registry(["crm_standard"], [REPO / "packs"])
    assert "account" in registry.entities and registry.content_hash


def test_the_testkit_fixture_pack_validates() -> None:
    registry = load_registry(["testkit"], [REPO / "tests" / "fixtures" / "packs"])
    assert registry.entity("company").field("revenue").currency == "CNY"
    assert registry.entity("deal").field("amount").type == "money"
