"""Errors in entity files: YAML, schema and field checks, each placed at file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_platform.metadata.errors import PackError, Problem
from crm_platform.metadata.field_types import FIELD_TYPE_NAMES
from crm_platform.metadata.loader import load_registry
from tests.helpers import entity_yaml, write_pack

ACCOUNT = """\
    name: account
    label: {en: Account, zh-CN: 客户}
    fields:
      - {name: title, type: text, label: {en: Title, zh-CN: 名称}}
      - {name: size, type: integer, label: {en: Size, zh-CN: 规模}}
"""


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A packs folder; the working directory is its parent, so files show as packs/<pack>/..."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "packs"
    folder.mkdir()
    return folder


def problems(root: Path, *refs: str) -> list[Problem]:
    with pytest.raises(PackError) as info:
        load_registry(list(refs), [root])
    return info.value.problems


def only(root: Path, *refs: str) -> Problem:
    found = problems(root, *refs)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def entity_problem(root: Path, text: str, file: str = "entities/account.yaml") -> Problem:
    write_pack(root, "x", {file: text})
    return only(root, "x")


def assert_at(problem: Problem, file: str, line: int, column: int, *words: str, code: str | None = None) -> None:
    assert (problem.file, problem.line, problem.column) == (file, line, column), str(problem)
    for word in words:
        assert word in problem.message, f"{word!r} not in {problem}"
    if code is not None:
        assert problem.code == code, str(problem)


FILE = "packs/x/entities/account.yaml"


# --- YAML ---------------------------------------------------------------------------------


def test_yaml_syntax_error_names_the_place_and_where_the_construct_started(root: Path) -> None:
    p = entity_problem(root, """\
        name: account
        label: {en: Account, zh-CN: 客户
        fields: []
    """)
    assert_at(p, FILE, 3, 7, "YAML syntax error", "expected ',' or '}'", "starts at line 2, column 8", code="pack.yaml_syntax")


def test_yaml_bad_indentation(root: Path) -> None:
    p = entity_problem(root, "name: account\nlabel:\n  en: Account\n   zh-CN: 客户\nfields: []\n")
    assert_at(p, FILE, 4, 9, "YAML syntax error", "mapping values are not allowed", code="pack.yaml_syntax")


def test_yaml_tab_indentation(root: Path) -> None:
    p = entity_problem(root, "name: account\n\tlabel: x\n")
    assert_at(p, FILE, 2, 1, "YAML syntax error", "'\\t'", code="pack.yaml_syntax")


def test_duplicate_yaml_key_points_at_the_second_key(root: Path) -> None:
    p = entity_problem(root, """\
        name: account
        label: {en: Account, zh-CN: 客户}
        fields:
          - name: title
            type: text
            label: {en: Title, zh-CN: 名称}
            type: long_text
    """)
    assert_at(p, FILE, 7, 5, "duplicate key 'type'", "only once", "starts at line 4", code="pack.duplicate_key")


def test_yaml_python_tag_is_refused(root: Path) -> None:
    p = entity_problem(root, "name: !!python/object:os.system account\nlabel: {en: A, zh-CN: A}\nfields: []\n")
    assert_at(p, FILE, 1, 7, "YAML tag '!!python/object:os.system' is not allowed", code="pack.yaml_value")


def test_yaml_str_tag_and_anchored_boolean_are_plain_values(root: Path) -> None:
    write_pack(root, "x", {"entities/account.yaml": """\
        name: account
        label: {en: Account, zh-CN: 客户}
        fields:
          - {name: title, type: text, label: {en: Title, zh-CN: 名称}, required: &yes true, default: !!str 42}
          - {name: code, type: text, label: {en: Code, zh-CN: 代码}, required: *yes}
    """})
    entity = load_registry(["x"], [root]).entity("account")
    assert entity.field("title").default == "42"
    assert entity.field("title").required is True
    assert entity.field("code").required is True


def test_empty_entity_file(root: Path) -> None:
    p = entity_problem(root, "# nothing yet\n")
    assert_at(p, FILE, 1, 1, "expected a mapping", "found an empty file", "entity.schema.json")


def test_entity_file_holding_a_list(root: Path) -> None:
    p = entity_problem(root, "- name: account\n")
    assert_at(p, FILE, 1, 1, "expected a mapping", "found a single array")


def test_file_that_is_not_utf8(root: Path) -> None:
    folder = write_pack(root, "x", {})
    (folder / "entities").mkdir()
    (folder / "entities" / "account.yaml").write_bytes(b"name: account\nlabel: {en: Caf\xe9, zh-CN: X}\n")
    p = only(root, "x")
    assert_at(p, FILE, 2, 16, "byte 0xe9 is not UTF-8", "save pack files as UTF-8", code="pack.not_utf8")


# --- JSON Schema ----------------------------------------------------------------------------


def test_unknown_field_type_lists_the_types(root: Path) -> None:
    p = entity_problem(root, """\
        name: account
        label: {en: Account, zh-CN: 客户}
        fields:
          - {name: title, type: text, label: {en: Title, zh-CN: 名称}}
          - name: amount
            type: moneyy
            label: {en: Amount, zh-CN: 金额}
    """)
    expected = "field 'amount': unknown type 'moneyy'; expected one of " + ", ".join(FIELD_TYPE_NAMES)
    assert str(p) == f"{FILE}:6:11: {expected}"
    assert p.message.startswith("field 'amount': unknown type 'moneyy'; expected one of text, long_text, integer, decimal, money,")
    assert p.code == "pack.schema"


def test_missing_required_property_of_a_field(root: Path) -> None:
    p = entity_problem(root, """\
        name: account
        label: {en: Account, zh-CN: 客户}
        fields:
          - {name: title, type: text, label: {en: Title, zh-CN: 名称}}
          - name: size
            type: integer
    """)
    assert_at(p, FILE, 5, 5, "field 'size'", "missing required property 'label'", code="pack.schema")


def test_missing_label_of_an_entity_is_named_not_a_generic_one_of(root: Path) -> None:
    p = entity_problem(root, "name: account\nfields: []\n")
    assert_at(p, FILE, 1, 1, "missing required property 'label'")
    assert "either" not in p.message


def test_name_and_extends_together_explains_the_two_kinds_of_entity_file(root: Path) -> None:
    p = entity_problem(root, "name: account\nextends: contact\nlabel: {en: A, zh-CN: A}\nfields: []\n")
    assert_at(p, FILE, 1, 1, "either declares a new entity", "or extends one")


def test_picklist_without_options(root: Path) -> None:
    p = entity_problem(root, """\
        name: account
        label: {en: Account, zh-CN: 客户}
        fields:
          - {name: kind, type: picklist, label: {en: Kind, zh-CN: 类型}}
    """)
    assert_at(p, FILE, 4, 5, "field 'kind'", "missing required property 'options'")


def test_unknown_property_points_at_the_key(root: Path) -> None:
    p = entity_problem(root, """\
        name: account
        label: {en: Account, zh-CN: 客户}
        fields:
          - name: title
            type: text
            label: {en: Title, zh-CN: 名称}
            max_lenght: 80
    """)
    assert_at(p, FILE, 7, 5, "field 'title'", "unknown property 'max_lenght'", "did you mean 'max_length'?", "expected one of", code="pack.schema")


def test_unknown_top_level_property_points_at_the_key(root: Path) -> None:
    p = entity_problem(root, "name: account\nlabel: {en: A, zh-CN: A}\ntitel: name\nfields: []\n")
    assert_at(p, FILE, 3, 1, "unknown property 'titel'", "did you mean 'title_field'?")


def test_each_unknown_key_is_reported_at_its_own_place(root: Path) -> None:
    write_pack(root, "x", {"entities/account.yaml": """\
        name: account
        label: {en: Account, zh-CN: 客户, fr: Compte, de: Konto}
        fields: []
    """})
    found = problems(root, "x")
    assert [(p.line, p.column) for p in found] == [(2, 33), (2, 45)]
    assert "unknown property 'fr'" in found[0].message and "expected one of en, zh-CN" in found[0].message
    assert "unknown property 'de'" in found[1].message


def test_label_missing_zh_cn(root: Path) -> None:
    p = entity_problem(root, """\
        name: account
        label: {en: Account, zh-CN: 客户}
        fields:
          - {name: title, type: text, label: {en: Title}}
    """)
    assert_at(p, FILE, 4, 31, "field 'title'", "label", "missing required property 'zh-CN'")


def test_block_label_missing_zh_cn_points_at_the_label_key(root: Path) -> None:
    p = entity_problem(root, "name: account\nlabel:\n  en: Account\nfields: []\n")
    assert_at(p, FILE, 2, 1, "label: missing required property 'zh-CN'")


@pytest.mark.parametrize(("bad", "column"), [("Title", 12), ("1st", 12), ("first-name", 12), ("a" * 29, 12)])
def test_bad_field_name_pattern(root: Path, bad: str, column: int) -> None:
    p = entity_problem(root, entity_yaml("account", f"- {{name: {bad}, type: text, label: {{en: T, zh-CN: T}}}}"))
    assert_at(p, FILE, 4, column, f"field '{bad}'", f"name '{bad}' is not valid", "expected a machine name: lowercase letters")


def test_bad_entity_name_pattern(root: Path) -> None:
    p = entity_problem(root, "name: Account\nlabel: {en: A, zh-CN: A}\nfields: []\n")
    assert_at(p, FILE, 1, 7, "name 'Account' is not valid", "lowercase letters, digits and underscores")


def test_bad_option_value_pattern(root: Path) -> None:
    p = entity_problem(root, """\
        name: account
        label: {en: Account, zh-CN: 客户}
        fields:
          - name: kind
            type: picklist
            label: {en: Kind, zh-CN: 类型}
            options:
              - {value: Big Deal, label: {en: Big, zh-CN: 大}}
    """)
    assert_at(p, FILE, 8, 17, "field 'kind': option 'Big Deal'", "value 'Big Deal' is not valid", "expected an option value")


def test_wrong_type_of_property(root: Path) -> None:
    p = entity_problem(root, entity_yaml("account", "- {name: title, type: text, label: {en: T, zh-CN: T}, required: sometimes}"))
    assert_at(p, FILE, 4, 67, "field 'title'", "'required' must be of type boolean, not string")


def test_out_of_range_property(root: Path) -> None:
    p = entity_problem(root, entity_yaml("account", "- {name: title, type: text, label: {en: T, zh-CN: T}, max_length: 0}"))
    assert_at(p, FILE, 4, 69, "field 'title'", "'max_length'", "less than the minimum of 1")


# --- field checks ---------------------------------------------------------------------------


def test_duplicate_field_name(root: Path) -> None:
    p = entity_problem(root, """\
        name: account
        label: {en: Account, zh-CN: 客户}
        fields:
          - {name: title, type: text, label: {en: Title, zh-CN: 名称}}
          - {name: size, type: integer, label: {en: Size, zh-CN: 规模}}
          - {name: title, type: long_text, label: {en: Title, zh-CN: 名称}}
    """)
    assert_at(p, FILE, 6, 12, "field 'title' is already declared at packs/x/entities/account.yaml:4:5", code="field.duplicate")


@pytest.mark.parametrize("name", ["version", "id", "created_at", "owner_id", "deleted_at", "amount_currency"])
def test_field_named_like_a_system_column(root: Path, name: str) -> None:
    p = entity_problem(root, entity_yaml("account", f"- {{name: {name}, type: text, label: {{en: T, zh-CN: T}}}}"))
    assert_at(p, FILE, 4, 12, f"field name '{name}' is reserved for a system column", "choose another name", code="field.reserved_name")


def test_property_that_does_not_apply_to_the_type_points_at_the_key(root: Path) -> None:
    p = entity_problem(root, """\
        name: account
        label: {en: Account, zh-CN: 客户}
        fields:
          - name: employees
            type: integer
            label: {en: Employees, zh-CN: 员工}
            max_length: 10
    """)
    assert_at(p, FILE, 7, 5, "field 'employees'", "property 'max_length' does not apply to type integer", code="field.property_not_applicable")


def test_options_on_a_text_field_do_not_apply(root: Path) -> None:
    p = entity_problem(root, entity_yaml("account", "- {name: t, type: text, label: {en: T, zh-CN: T}, options: [{value: a, label: {en: A, zh-CN: A}}]}"))
    assert_at(p, FILE, 4, 53, "property 'options' does not apply to type text")


def test_picklist_default_not_among_options(root: Path) -> None:
    p = entity_problem(root, """\
        name: account
        label: {en: Account, zh-CN: 客户}
        fields:
          - name: grade
            type: picklist
            label: {en: Grade, zh-CN: 等级}
            default: d
            options:
              - {value: a, label: {en: A, zh-CN: A}}
              - {value: b, label: {en: B, zh-CN: B}}
    """)
    assert_at(p, FILE, 7, 14, "field 'grade'", "default 'd' is not valid", "not one of the allowed values: a, b", code="field.bad_default")


def test_picklist_option_listed_twice(root: Path) -> None:
    p = entity_problem(root, """\
        name: account
        label: {en: Account, zh-CN: 客户}
        fields:
          - name: grade
            type: picklist
            label: {en: Grade, zh-CN: 等级}
            options:
              - {value: a, label: {en: A, zh-CN: A}}
              - {value: a, label: {en: A2, zh-CN: A2}}
    """)
    assert_at(p, FILE, 9, 17, "option 'a' is listed twice", code="field.duplicate_option")


def test_default_of_the_wrong_type(root: Path) -> None:
    p = entity_problem(root, entity_yaml("account", "- {name: n, type: integer, label: {en: T, zh-CN: T}, default: many}"))
    assert_at(p, FILE, 4, 65, "field 'n': default 'many' is not valid", "expected a whole number")


def test_default_outside_the_bounds(root: Path) -> None:
    p = entity_problem(root, entity_yaml("account", "- {name: n, type: integer, label: {en: T, zh-CN: T}, min: 1, max: 5, default: 9}"))
    assert_at(p, FILE, 4, 81, "default 9 is not valid", "must be at most 5")


def test_non_numeric_bound_is_reported_not_a_crash(root: Path) -> None:
    p = entity_problem(root, entity_yaml("account", "- {name: n, type: integer, label: {en: T, zh-CN: T}, min: lots, default: 3}"))
    assert_at(p, FILE, 4, 61, "field 'n': min must be a number, not 'lots'", code="field.bad_bound")


@pytest.mark.parametrize(
    ("field", "key", "column"),
    [
        ("{name: no, type: auto_number, label: {en: N, zh-CN: N}, format: 'A{seq:3}', required: true}", "required", 81),
        ("{name: total, type: formula, label: {en: T, zh-CN: T}, expression: a, result_type: integer, default: 1}", "default", 97),
    ],
)
def test_required_and_default_do_not_apply_to_computed_fields(root: Path, field: str, key: str, column: int) -> None:
    p = entity_problem(root, entity_yaml("account", f"- {{name: a, type: integer, label: {{en: A, zh-CN: A}}}}\n- {field}"))
    assert_at(p, FILE, 5, column, f"property '{key}' does not apply to type", code="field.property_not_applicable")


def test_literal_default_on_a_reference(root: Path) -> None:
    p = entity_problem(root, entity_yaml("account", "- {name: parent, type: reference, entity: account, label: {en: T, zh-CN: T}, default: 1}"))
    assert_at(p, FILE, 4, 89, "a reference field cannot have a literal default", code="field.bad_default")


def test_scale_larger_than_precision(root: Path) -> None:
    p = entity_problem(root, entity_yaml("account", "- {name: d, type: decimal, label: {en: T, zh-CN: T}, precision: 4, scale: 6}"))
    assert_at(p, FILE, 4, 77, "scale 6 is larger than precision 4", code="field.bad_precision")


@pytest.mark.parametrize(
    ("fmt", "words"),
    [
        ("HT-{YYYY}-{sq:4}", "unknown token {sq:4}"),
        ("HT-{YYYY}", "must contain a sequence token"),
        ("{seq:3}-{seq:3}", "only once"),
        ("HT-{seq:4", "unbalanced braces"),
        ("HT-{seq:20}", "between 1 and 12"),
    ],
)
def test_bad_auto_number_format(root: Path, fmt: str, words: str) -> None:
    p = entity_problem(root, entity_yaml("account", f"- {{name: number, type: auto_number, label: {{en: N, zh-CN: N}}, format: '{fmt}'}}"))
    assert_at(p, FILE, 4, 73, "field 'number'", f"bad auto-number format {fmt!r}", words, code="field.bad_format")


def test_unknown_entity_in_a_reference_suggests_the_close_name(root: Path) -> None:
    write_pack(root, "x", {
        "entities/account.yaml": ACCOUNT,
        "entities/contact.yaml": """\
            name: contact
            label: {en: Contact, zh-CN: 联系人}
            fields:
              - {name: name, type: text, label: {en: Name, zh-CN: 姓名}}
              - name: account
                type: reference
                entity: acount
                label: {en: Account, zh-CN: 客户}
        """,
    })
    p = only(root, "x")
    assert str(p) == "packs/x/entities/contact.yaml:7:13: field 'account': unknown entity 'acount'; did you mean 'account'?"
    assert p.code == "field.unknown_entity"


def test_suggestion_includes_entities_whose_file_is_broken(root: Path) -> None:
    """account.yaml has its own error; contact's typo must not be told to use 'contact'."""
    write_pack(root, "x", {
        "entities/account.yaml": entity_yaml("account", "- {name: title, type: txt, label: {en: T, zh-CN: T}}"),
        "entities/contact.yaml": entity_yaml("contact", "- {name: acc, type: reference, entity: acount, label: {en: T, zh-CN: T}}"),
    })
    found = problems(root, "x")
    assert [p.file for p in found] == [FILE, "packs/x/entities/contact.yaml"]
    assert found[1].message.endswith("unknown entity 'acount'; did you mean 'account'?")


def test_reference_to_a_broken_entity_is_not_reported_twice(root: Path) -> None:
    write_pack(root, "x", {
        "entities/account.yaml": entity_yaml("account", "- {name: title, type: txt, label: {en: T, zh-CN: T}}"),
        "entities/contact.yaml": entity_yaml("contact", "- {name: acc, type: reference, entity: account, label: {en: T, zh-CN: T}}"),
    })
    assert [p.file for p in problems(root, "x")] == [FILE]


def test_child_table_whose_entity_is_not_its_child(root: Path) -> None:
    write_pack(root, "x", {
        "entities/account.yaml": entity_yaml("account", "- {name: lines, type: child_table, entity: line, label: {en: L, zh-CN: L}}"),
        "entities/line.yaml": entity_yaml("line", "- {name: item, type: text, label: {en: I, zh-CN: I}}"),
    })
    p = only(root, "x")
    assert_at(p, FILE, 4, 46, "field 'lines'", "entity 'line' must declare child_of: account", code="field.bad_child_table")


def test_child_of_unknown_entity(root: Path) -> None:
    write_pack(root, "x", {"entities/line.yaml": entity_yaml("line", "- {name: item, type: text, label: {en: I, zh-CN: I}}", "child_of: acount\n")})
    p = only(root, "x")
    assert_at(p, "packs/x/entities/line.yaml", 3, 11, "child_of unknown entity 'acount'", code="entity.unknown")


def test_title_and_search_fields_must_be_text_fields(root: Path) -> None:
    write_pack(root, "x", {"entities/account.yaml": entity_yaml(
        "account",
        "- {name: title, type: text, label: {en: T, zh-CN: T}}\n- {name: size, type: integer, label: {en: S, zh-CN: S}}",
        "title_field: titel\nsearch_fields: [title, size]\n",
    )})
    first, second = problems(root, "x")
    assert_at(first, FILE, 3, 14, "title_field 'titel' is not a field of entity 'account'", "did you mean 'title'?", code="entity.bad_title_field")
    assert_at(second, FILE, 4, 24, "search field 'size' is of type integer", "must hold text", code="entity.bad_search_field")


def test_duplicate_entity_across_two_packs(root: Path) -> None:
    write_pack(root, "base", {"entities/account.yaml": ACCOUNT})
    write_pack(root, "extra", {"entities/account.yaml": ACCOUNT}, depends=["base"])
    p = only(root, "extra")
    assert str(p) == "packs/extra/entities/account.yaml:1:7: entity 'account' is already declared in packs/base/entities/account.yaml"
    assert p.code == "entity.duplicate"


def test_duplicate_entity_in_two_files_of_one_pack(root: Path) -> None:
    write_pack(root, "x", {"entities/account.yaml": ACCOUNT, "entities/customer.yaml": ACCOUNT})
    p = only(root, "x")
    assert_at(p, "packs/x/entities/customer.yaml", 1, 7, "entity 'account' is already declared in packs/x/entities/account.yaml")
