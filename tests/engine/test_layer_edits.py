"""The designer's actions as pure edits of the site layer's files: what the admin typed is
checked (a message per input), and the files written load with the ordinary pack loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_platform.engine import layer_edits as edits
from crm_platform.engine import layer_entity_edits as entity_edits
from crm_platform.engine import layer_field_input as field_input
from crm_platform.engine import layer_screen_edits as screen_edits
from crm_platform.metadata.errors import PackError
from crm_platform.metadata.loader import load_registry
from crm_platform.metadata.model import Registry
from tests.conftest import FIXTURE_PACKS
from tests.helpers import write_pack

KIT_ENTITIES = ["company", "deal", "tag"]


def load_layer(tmp_path: Path, files: dict[str, str]) -> Registry:
    """The Registry of testkit plus these layer files, as the site layer loads them."""
    folder = write_pack(tmp_path / "layer", "site", {}, depends=["testkit"])
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return load_registry(["testkit", str(folder)], [FIXTURE_PACKS])


def exhibition_files() -> dict[str, str]:
    doc = field_input.entity_from_input({"label_en": "Exhibition", "label_zh": "展会", "plural_en": "Exhibitions", "plural_zh": "展会",
                                         "title_en": "Name", "title_zh": "名称", "icon": "calendar"}, taken=KIT_ENTITIES)
    return entity_edits.new_entity({}, doc)


def field(ftype: str, label_en: str, **values: object) -> dict[str, object]:
    return field_input.field_from_input({"label_en": label_en, "label_zh": label_en + "（中）", **values}, ftype, entities=[*KIT_ENTITIES, "exhibition"],
                                        children=["exhibition_line"])


def test_names_are_derived_from_english_labels() -> None:
    assert edits.slug("Booth size (m²)") == "booth_size_m"
    assert edits.slug("2nd contact") == "f_2nd_contact"
    assert edits.slug("展位") == ""
    assert len(edits.slug("A very long label that goes on and on and on")) <= 28
    assert edits.name_problem("booth_size") is None
    assert "is not a valid field name" in str(edits.name_problem("Booth Size", "field name")) and "(e.g. booth_size)" in str(edits.name_problem("Booth Size"))


def test_a_new_entity_gets_its_title_field(tmp_path: Path) -> None:
    files = exhibition_files()
    assert files["entities/exhibition.yaml"] == (
        "name: exhibition\nlabel: {en: Exhibition, zh-CN: 展会}\nplural_label: {en: Exhibitions, zh-CN: 展会}\nicon: calendar\n"
        "title_field: name\nsearch_fields: [name]\nfields:\n  - {name: name, type: text, label: {en: Name, zh-CN: 名称}, required: true}\n")
    registry = load_layer(tmp_path, files)
    assert registry.entity("exhibition").title_field == "name" and registry.entity("exhibition").pack == "site"


def test_every_field_type_is_written_so_that_the_pack_loads(tmp_path: Path) -> None:
    files = exhibition_files()
    line = field_input.entity_from_input({"label_en": "Exhibition line", "label_zh": "展会明细", "title_en": "Item", "title_zh": "品名",
                                          "child_of": "exhibition"}, taken=KIT_ENTITIES, entities=[*KIT_ENTITIES, "exhibition"])
    files = entity_edits.new_entity(files, line)
    options = [{"value": "", "en": "Planned", "zh": "计划中", "color": "#1E88E5"}, {"value": "held", "en": "Held: yes", "zh": "已举办", "color": ""},
               {"value": "", "en": "", "zh": "", "color": ""}]
    for f in [
        field("text", "City", max_length="80", unique="on"),
        field("long_text", "Notes"),
        field("integer", "Booths", min="0", max="5000", default="10"),
        field("decimal", "Area", precision="10", scale="2", min="0.5"),
        field("money", "Budget", currency="usd", default="12.50"),
        field("percent", "Share", max="100"),
        field("boolean", "Public", default="true"),
        field("date", "Starts on", required="on", default="2026-10-15"),
        field("datetime", "Opens at"),
        field("picklist", "Status", options=options, default="planned"),
        field("multi_picklist", "Halls", options=[{"value": "a", "en": "Hall A", "zh": "A 馆"}, {"value": "b", "en": "Hall B", "zh": "B 馆"}], default="a, b"),
        field("reference", "Organizer", entity="company", on_delete="set_null"),
        field("email", "Contact email", unique="on"),
        field("phone", "Hotline"),
        field("url", "Website"),
        field("file", "Floor plan", max_size_mb="5", accept="image/*, .pdf"),
        field("auto_number", "Number", format="EX-{YYYY}-{seq:4}"),
        field("formula", "Budget per booth", expression="round(budget / booths, 2)", result_type="money"),
        field("child_table", "Lines", entity="exhibition_line"),
        field("many_to_many", "Tags", entity="tag"),
    ]:
        files = entity_edits.add_field(files, "exhibition", f)
    registry = load_layer(tmp_path, files)
    entity = registry.entity("exhibition")
    assert len(entity.fields) == 21
    assert entity.field("status").option_values == ("planned", "held") and entity.field("status").options[0].color == "#1e88e5"
    assert entity.field("status").options[1].label.en == "Held: yes"
    assert entity.field("halls").default == ("a", "b") and entity.field("public").default is True and entity.field("booths").default == 10
    assert entity.field("budget").currency == "USD" and entity.field("organizer").on_delete == "set_null"
    assert entity.field("floor_plan").accept == ("image/*", ".pdf") and entity.field("lines").entity == "exhibition_line"
    assert entity.field("budget_per_booth").expression == "round(budget / booths, 2)"
    text = files["entities/exhibition.yaml"]
    assert "  - {name: organizer, type: reference, entity: company, label: {en: Organizer, zh-CN: Organizer（中）}, on_delete: set_null}\n" in text
    assert "  - name: status\n    type: picklist\n" in text and "      - {value: planned, label: {en: Planned, zh-CN: 计划中}, color: '#1e88e5'}\n" in text


@pytest.mark.parametrize(("ftype", "values", "key", "message"), [
    ("text", {"name": "name"}, "name", "the entity already has a field 'name'"),
    ("text", {"name": "Booth Size"}, "name", "'Booth Size' is not a valid field name"),
    ("text", {"name": "owner_id"}, "name", "reserved for a system column"),
    ("text", {"name": "price_currency"}, "name", "reserved for a system column"),
    ("text", {"label_zh": ""}, "label_zh", "give the Chinese text"),
    ("text", {"max_length": "0"}, "max_length", "a whole number from 1 to 10000"),
    ("integer", {"min": "10", "max": "1"}, "max", "the maximum is smaller than the minimum"),
    ("integer", {"min": "ten"}, "min", "a number, not 'ten'"),
    ("integer", {"default": "1.5"}, "default", "not a valid default"),
    ("decimal", {"precision": "4", "scale": "6"}, "scale", "the decimals (6) cannot be more than the digits (4)"),
    ("money", {"currency": "yuan"}, "currency", "three letters"),
    ("reference", {"entity": "compnay"}, "entity", "unknown entity 'compnay'; did you mean 'company'?"),
    ("reference", {}, "entity", "choose the entity"),
    ("many_to_many", {"entity": "venue"}, "entity", "unknown entity 'venue'"),
    ("child_table", {"entity": "deal"}, "entity", "is not a child table of this entity"),
    ("picklist", {}, "options", "give at least one option"),
    ("picklist", {"options": [{"value": "A b", "en": "A", "zh": "甲"}]}, "options", "option 1: value 'A b' must be lowercase"),
    ("picklist", {"options": [{"value": "a", "en": "A", "zh": "甲"}, {"value": "a", "en": "B", "zh": "乙"}]}, "options", "option 2: the value 'a' is listed twice"),
    ("picklist", {"options": [{"value": "a", "en": "A", "zh": ""}]}, "options", "option 1: give the label in English and Chinese"),
    ("picklist", {"options": [{"value": "a", "en": "A", "zh": "甲", "color": "red"}]}, "options", "#rrggbb"),
    ("picklist", {"options": [{"value": "a", "en": "A", "zh": "甲"}], "default": "b"}, "default", "not a valid default"),
    ("auto_number", {"format": "EX-{seq:x}"}, "format", "bad numbering"),
    ("auto_number", {}, "format", "give the numbering"),
    ("formula", {"result_type": "decimal"}, "expression", "give the formula"),
    ("formula", {"expression": "1", "result_type": "picklist"}, "result_type", "one of text, integer"),
    ("boolean", {"default": "maybe"}, "default", "yes, no or blank"),
])
def test_bad_field_input_is_refused_with_a_message_per_input(ftype: str, values: dict[str, object], key: str, message: str) -> None:
    data = {"label_en": "Booth", "label_zh": "展位", **values}
    with pytest.raises(edits.EditRefused) as refused:
        field_input.field_from_input(data, ftype, taken=["name", "email"], entities=KIT_ENTITIES, children=[])
    assert key in refused.value.errors and message in refused.value.errors[key], refused.value.errors


def test_bad_entity_input_is_refused() -> None:
    with pytest.raises(edits.EditRefused) as refused:
        field_input.entity_from_input({"name": "company", "label_en": "Company", "label_zh": "", "icon": "Big Icon", "title_name": "id",
                                       "title_en": "Id", "title_zh": "编号", "child_of": "dael"}, taken=KIT_ENTITIES, entities=KIT_ENTITIES)
    errors = refused.value.errors
    assert "exists already" in errors["name"] and "Chinese" in errors["label_zh"] and "icon name" in errors["icon"]
    assert "reserved" in errors["title_name"] and "did you mean 'deal'" in errors["child_of"]
    with pytest.raises(edits.EditRefused) as reserved:
        field_input.entity_from_input({"name": "new", "label_en": "New", "label_zh": "新", "title_en": "Name", "title_zh": "名称"}, taken=[])
    assert "reserved by the designer" in reserved.value.errors["name"]


def test_fields_added_to_a_pack_entity_go_to_its_extension_and_archive_from_it(tmp_path: Path) -> None:
    files = entity_edits.add_field({}, "company", field("picklist", "Tier", options=[{"value": "gold", "en": "Gold", "zh": "金牌"}]))
    files = entity_edits.add_field(files, "company", field("text", "Booth"))
    files = screen_edits.place_on_form(files, "company", "tier", extends=True)
    assert files["entities/company.yaml"].startswith("extends: company\nfields:\n  - name: tier\n")
    assert files["forms/company.yaml"] == ("entity: company\nforms:\n  - extends: main\n    sections:\n      - label: {en: More, zh-CN: 更多}\n"
                                           "        columns: 2\n        fields: [tier]\n")
    registry = load_layer(tmp_path / "a", files)
    assert registry.entity("company").field("tier").pack == "site" and registry.forms["company.main"].sections[-1].fields == ("tier",)
    with pytest.raises(edits.EditRefused) as pack_field:
        entity_edits.archive_field(files, "company", "name")
    assert "a pack's own fields cannot be changed or archived" in pack_field.value.errors["field"]
    files = entity_edits.archive_field(files, "company", "tier")
    assert "forms/company.yaml" not in files  # its only section emptied: the extension of the form is gone
    files = entity_edits.archive_field(files, "company", "booth")
    assert files == {}  # nothing left to extend


def test_archiving_takes_the_field_out_of_the_layers_forms_and_views(tmp_path: Path) -> None:
    files = exhibition_files()
    files = entity_edits.add_field(files, "exhibition", field("text", "City"))
    files = entity_edits.add_field(files, "exhibition", field("date", "Starts on"))
    files = screen_edits.set_form(files, "exhibition", [{"label": {"en": "A", "zh-CN": "甲"}, "fields": ["name", "city"]},
                                                         {"label": {"en": "B", "zh-CN": "乙"}, "fields": ["starts_on"]}], extends=False,
                                  form_label={"en": "Exhibition", "zh-CN": "展会"})
    files = screen_edits.set_view(files, "exhibition", {"name": "all", "label": {"en": "All", "zh-CN": "全部"}, "columns": ["name", "starts_on"],
                                                        "sort": ["-starts_on", "name"]})
    files = entity_edits.archive_field(files, "exhibition", "starts_on")
    assert "starts_on" not in files["forms/exhibition.yaml"] and "label: {en: B" not in files["forms/exhibition.yaml"]
    assert "columns: [name]" in files["views/exhibition.yaml"] and "sort: [name]" in files["views/exhibition.yaml"]
    load_layer(tmp_path, files)
    with pytest.raises(edits.EditRefused) as title:
        entity_edits.archive_field(files, "exhibition", "name")
    assert "is the title field" in title.value.errors["field"]


def test_reordering_fields_and_keeping_what_was_written_by_hand() -> None:
    files = {"entities/company.yaml": "# booth data for the fair team\nextends: company\nfields:\n"
                                      "  - {name: booth, type: text, label: {en: Booth, zh-CN: 展位}}  # hall + number\n"
                                      "  - {name: hall, type: text, label: {en: Hall, zh-CN: 展馆}}\n"}
    files = entity_edits.reorder_fields(files, "company", ["hall", "booth"])
    text = files["entities/company.yaml"]
    assert text.startswith("# booth data for the fair team\n") and "# hall + number" in text
    assert text.index("name: hall") < text.index("name: booth")
    with pytest.raises(edits.EditRefused):
        entity_edits.reorder_fields(files, "company", ["hall"])


def test_changing_a_layer_field_keeps_its_place() -> None:
    files = exhibition_files()
    files = entity_edits.add_field(files, "exhibition", field("text", "City"))
    files = entity_edits.add_field(files, "exhibition", field("text", "Hall"))
    files = entity_edits.replace_field(files, "exhibition", "city", field_input.field_from_input({"label_en": "Town", "label_zh": "城镇", "max_length": "60"}, "text", editing="city"))
    text = files["entities/exhibition.yaml"]
    assert "  - {name: city, type: text, label: {en: Town, zh-CN: 城镇}, max_length: 60}\n  - {name: hall" in text


def test_entity_labels_of_a_pack_entity_are_an_extension_writing_only_what_changes() -> None:
    current = {"label": {"en": "Company", "zh-CN": "公司"}, "plural_label": {"en": "Companies", "zh-CN": "公司"}, "icon": None, "title_field": "name"}
    files = entity_edits.set_entity_properties({}, "company", {**current, "label": {"en": "Firm", "zh-CN": "公司"}}, current)
    assert files == {"entities/company.yaml": "extends: company\nlabel: {en: Firm, zh-CN: 公司}\n"}
    own = entity_edits.set_entity_properties(exhibition_files(), "exhibition", {"label": {"en": "Fair", "zh-CN": "展会"}, "plural_label": None, "icon": None,
                                                                               "title_field": "name"})
    assert "plural_label" not in own["entities/exhibition.yaml"] and "icon" not in own["entities/exhibition.yaml"]
    assert "label: {en: Fair, zh-CN: 展会}" in own["entities/exhibition.yaml"]


def test_forms_of_the_layer_and_extensions_of_a_packs_form() -> None:
    sections = screen_edits.sections_from_input([{"label_en": "Basics", "label_zh": "基本", "columns": "1", "fields": ["name"]}], ["name", "city"])
    assert sections == [{"label": {"en": "Basics", "zh-CN": "基本"}, "columns": 1, "fields": ["name"]}]
    with pytest.raises(edits.EditRefused) as refused:
        screen_edits.sections_from_input([{"label_en": "A", "label_zh": "", "fields": []}, {"label_en": "B", "label_zh": "乙", "fields": ["name", "name", "x"]}], ["name"])
    assert set(refused.value.errors) == {"section_1_label_zh", "section_1_fields", "section_2_fields"}
    files = screen_edits.set_form({}, "company", sections, extends=True, related=["deal.company"])
    assert "extends: main" in files["forms/company.yaml"] and "related: [deal.company]" in files["forms/company.yaml"]
    assert screen_edits.set_form(files, "company", [], extends=True, related=[]) == {}


def test_list_views() -> None:
    view = screen_edits.view_from_input({"label_en": "Big ones", "label_zh": "大客户", "columns": ["name", "revenue"], "sort_field": "revenue", "sort_desc": "on",
                                         "sort2_field": "name", "page_size": "25", "filter": "employees  >\n 100", "default": "on"}, listable=["name", "revenue", "created_at"])
    assert view == {"name": "big_ones", "label": {"en": "Big ones", "zh-CN": "大客户"}, "columns": ["name", "revenue"], "sort": ["-revenue", "name"],
                    "page_size": 25, "filter": "employees > 100", "default": True}
    files = screen_edits.set_view({}, "company", view)
    files = screen_edits.set_view(files, "company", {**view, "name": "small", "default": True})
    assert files["views/company.yaml"].count("default: true") == 1  # the newest default is the one
    with pytest.raises(edits.EditRefused) as refused:
        screen_edits.view_from_input({"name": "all", "label_en": "All", "label_zh": "全部", "columns": ["nmae"], "page_size": "1000"}, listable=["name"], taken=["all"])
    assert set(refused.value.errors) == {"name", "columns", "page_size"} and "did you mean 'name'" in refused.value.errors["columns"]
    assert screen_edits.remove_view(screen_edits.remove_view(files, "company", "small"), "company", "big_ones") == {}


def test_moving_items_across_group_markers() -> None:
    seq = ["§s1", "a", "b", "§s2", "c", "§pool", "d"]
    assert screen_edits.move(seq, "c", -1) == ["§s1", "a", "b", "c", "§s2", "§pool", "d"]  # into the section above
    assert screen_edits.move(seq, "a", -1) == seq  # the top stays the top
    assert screen_edits.move(seq, "b", 1) == ["§s1", "a", "§s2", "b", "c", "§pool", "d"]
    assert screen_edits.move(seq, "d", 1) == seq


def test_the_loader_refuses_what_the_checks_let_through_is_reported_not_hidden(tmp_path: Path) -> None:
    files = entity_edits.add_field({}, "company", field("formula", "Double", expression="employes * 2", result_type="integer"))
    registry = load_layer(tmp_path, files)  # the expression is checked with the rules, when the layer is previewed
    from crm_platform.rules.site_rules import compile_site_rules

    with pytest.raises(PackError) as refused:
        compile_site_rules(registry)
    assert "employes" in str(refused.value.problems[0].message)
