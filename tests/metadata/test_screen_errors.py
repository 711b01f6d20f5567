"""Errors in list views, forms, menus and seed records, each placed at file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_platform.metadata.errors import PackError, Problem
from crm_platform.metadata.loader import load_registry
from tests.helpers import write_pack

ENTITIES = {
    "entities/account.yaml": """\
        name: account
        label: {en: Account, zh-CN: 客户}
        fields:
          - {name: number, type: auto_number, label: {en: No., zh-CN: 编号}, format: "A{seq:4}"}
          - {name: title, type: text, label: {en: Title, zh-CN: 名称}}
          - {name: size, type: integer, label: {en: Size, zh-CN: 规模}}
          - {name: revenue, type: money, label: {en: Revenue, zh-CN: 营收}}
          - {name: lines, type: child_table, entity: account_line, label: {en: Lines, zh-CN: 明细}}
          - {name: tags, type: many_to_many, entity: tag, label: {en: Tags, zh-CN: 标签}}
    """,
    "entities/account_line.yaml": """\
        name: account_line
        label: {en: Line, zh-CN: 明细}
        child_of: account
        fields:
          - {name: tag, type: reference, entity: tag, label: {en: Tag, zh-CN: 标签}}
          - {name: quantity, type: integer, label: {en: Quantity, zh-CN: 数量}}
    """,
    "entities/contact.yaml": """\
        name: contact
        label: {en: Contact, zh-CN: 联系人}
        fields:
          - {name: name, type: text, label: {en: Name, zh-CN: 姓名}}
          - {name: account, type: reference, entity: account, label: {en: Account, zh-CN: 客户}}
          - {name: buddy, type: reference, entity: contact, label: {en: Buddy, zh-CN: 伙伴}}
          - {name: note, type: text, label: {en: Note, zh-CN: 备注}}
    """,
    "entities/tag.yaml": """\
        name: tag
        label: {en: Tag, zh-CN: 标签}
        owned: false
        fields:
          - {name: name, type: text, label: {en: Name, zh-CN: 名称}}
    """,
    "views/account.yaml": """\
        entity: account
        views:
          - name: all
            label: {en: All, zh-CN: 全部}
            columns: [number, title, size]
            sort: [-created_at]
    """,
    "forms/account.yaml": """\
        entity: account
        forms:
          - name: main
            label: {en: Account, zh-CN: 客户}
            sections:
              - label: {en: Basics, zh-CN: 基本}
                fields: [title, size]
            related: [contact.account]
    """,
    "seed/tag.yaml": "entity: tag\nrecords:\n  - {_key: hot, name: Hot}\n  - {_key: cold, name: Cold}\n",
}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "packs"
    folder.mkdir()
    return folder


def problems_with(root: Path, files: dict[str, str]) -> list[Problem]:
    write_pack(root, "x", {**ENTITIES, **files})
    with pytest.raises(PackError) as info:
        load_registry(["x"], [root])
    return info.value.problems


def only_with(root: Path, files: dict[str, str]) -> Problem:
    found = problems_with(root, files)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def assert_at(problem: Problem, file: str, line: int, column: int, *words: str, code: str | None = None) -> None:
    assert (problem.file, problem.line, problem.column) == (file, line, column), str(problem)
    for word in words:
        assert word in problem.message, f"{word!r} not in {problem}"
    if code is not None:
        assert problem.code == code, str(problem)


def test_the_base_pack_is_valid(root: Path) -> None:
    write_pack(root, "x", ENTITIES)
    registry = load_registry(["x"], [root])
    assert registry.list_views["account.all"].sort[0].descending
    assert registry.forms["account.main"].related == ("contact.account",)


# --- list views -------------------------------------------------------------------------------

VIEWS = "packs/x/views/contact.yaml"


def test_list_view_with_unknown_column(root: Path) -> None:
    p = only_with(root, {"views/contact.yaml": """\
        entity: contact
        views:
          - name: all
            label: {en: All, zh-CN: 全部}
            columns: [name, acount, note]
    """})
    assert str(p) == f"{VIEWS}:5:21: view 'all': unknown field 'acount' on contact; did you mean 'account'?"
    assert p.code == "field.unknown"


def test_list_view_sorted_by_unknown_field(root: Path) -> None:
    p = only_with(root, {"views/contact.yaml": "entity: contact\nviews:\n  - {name: all, label: {en: A, zh-CN: A}, columns: [name], sort: [-nme]}\n"})
    assert_at(p, VIEWS, 3, 67, "view 'all': unknown field 'nme' on contact", "did you mean 'name'?")


def test_list_view_column_that_has_no_column(root: Path) -> None:
    p = only_with(root, {"views/account.yaml": "entity: account\nviews:\n  - {name: all, label: {en: A, zh-CN: A}, columns: [title, lines]}\n"})
    assert_at(p, "packs/x/views/account.yaml", 3, 60, "field 'lines' of type child_table cannot be a column", code="view.bad_column")


def test_list_view_of_unknown_entity(root: Path) -> None:
    p = only_with(root, {"views/contact.yaml": "entity: contatc\nviews:\n  - {name: all, label: {en: A, zh-CN: A}, columns: [name]}\n"})
    assert_at(p, VIEWS, 1, 9, "unknown entity 'contatc'", "did you mean 'contact'?", code="entity.unknown")


def test_list_view_declared_twice(root: Path) -> None:
    p = only_with(root, {"views/contact.yaml": """\
        entity: contact
        views:
          - {name: all, label: {en: A, zh-CN: A}, columns: [name]}
          - {name: all, label: {en: B, zh-CN: B}, columns: [note]}
    """})
    assert_at(p, VIEWS, 4, 12, "view 'all' of contact is already declared at packs/x/views/contact.yaml:3:5", code="view.duplicate")


def test_list_view_missing_columns(root: Path) -> None:
    p = only_with(root, {"views/contact.yaml": "entity: contact\nviews:\n  - {name: all, label: {en: A, zh-CN: A}}\n"})
    assert_at(p, VIEWS, 3, 5, "view 'all': missing required property 'columns'", code="pack.schema")


# --- forms ------------------------------------------------------------------------------------

FORMS = "packs/x/forms/contact.yaml"


def test_form_placing_a_field_twice(root: Path) -> None:
    p = only_with(root, {"forms/contact.yaml": """\
        entity: contact
        forms:
          - name: main
            label: {en: Contact, zh-CN: 联系人}
            sections:
              - label: {en: A, zh-CN: A}
                fields: [name, account]
              - label: {en: B, zh-CN: B}
                fields: [note, name]
    """})
    assert str(p) == f"{FORMS}:9:24: form 'main': field 'name' is placed twice"
    assert p.code == "form.duplicate_field"


def test_form_with_unknown_field(root: Path) -> None:
    p = only_with(root, {"forms/contact.yaml": """\
        entity: contact
        forms:
          - name: main
            label: {en: Contact, zh-CN: 联系人}
            sections:
              - label: {en: A, zh-CN: A}
                fields: [name, nots]
    """})
    assert_at(p, FORMS, 7, 24, "form 'main': unknown field 'nots' on contact", "did you mean 'note'?", code="field.unknown")


def test_form_related_that_is_not_a_reference(root: Path) -> None:
    p = only_with(root, {"forms/account.yaml": """\
        entity: account
        forms:
          - name: main
            label: {en: Account, zh-CN: 客户}
            sections:
              - label: {en: A, zh-CN: A}
                fields: [title]
            related:
              - contact.account
              - contact.note
    """})
    assert str(p) == "packs/x/forms/account.yaml:10:9: form 'main': 'contact.note' is not a reference from contact to account; use one of contact.account"
    assert p.code == "form.bad_related"


def test_form_related_pointing_at_another_entity(root: Path) -> None:
    p = only_with(root, {"forms/account.yaml": """\
        entity: account
        forms:
          - name: main
            label: {en: Account, zh-CN: 客户}
            sections:
              - {label: {en: A, zh-CN: A}, fields: [title]}
            related: [contact.buddy]
    """})
    assert_at(p, "packs/x/forms/account.yaml", 7, 15, "'contact.buddy' is not a reference from contact to account", "use one of contact.account")


def test_form_related_with_unknown_entity(root: Path) -> None:
    p = only_with(root, {"forms/account.yaml": """\
        entity: account
        forms:
          - name: main
            label: {en: Account, zh-CN: 客户}
            sections:
              - {label: {en: A, zh-CN: A}, fields: [title]}
            related: [contcat.account]
    """})
    assert_at(p, "packs/x/forms/account.yaml", 7, 15, "unknown entity 'contcat'", "did you mean 'contact'?")


def test_form_related_without_a_dot(root: Path) -> None:
    p = only_with(root, {"forms/account.yaml": """\
        entity: account
        forms:
          - name: main
            label: {en: Account, zh-CN: 客户}
            sections:
              - {label: {en: A, zh-CN: A}, fields: [title]}
            related: [contacts]
    """})
    assert_at(p, "packs/x/forms/account.yaml", 7, 15, "form 'main': related 'contacts' is not valid", "expected a related list as entity.reference_field")


def test_form_missing_sections(root: Path) -> None:
    p = only_with(root, {"forms/contact.yaml": """\
        entity: contact
        forms:
          - {name: main, label: {en: A, zh-CN: A}}
    """})
    assert_at(p, FORMS, 3, 5, "form 'main': missing required property 'sections'", code="pack.schema")


def test_form_declared_twice(root: Path) -> None:
    p = only_with(root, {"forms/contact.yaml": """\
        entity: contact
        forms:
          - {name: main, label: {en: A, zh-CN: A}, sections: [{label: {en: A, zh-CN: A}, fields: [name]}]}
          - {name: main, label: {en: B, zh-CN: B}, sections: [{label: {en: A, zh-CN: A}, fields: [note]}]}
    """})
    assert_at(p, FORMS, 4, 12, "form 'main' of contact is already declared at packs/x/forms/contact.yaml:3:5", code="form.duplicate")


# --- menus ------------------------------------------------------------------------------------


def test_menu_item_with_unknown_view(root: Path) -> None:
    p = only_with(root, {"menus.yaml": """\
        menus:
          - name: sales
            label: {en: Sales, zh-CN: 销售}
            items:
              - {entity: account, view: al}
              - {entity: contact}
    """})
    assert str(p) == "packs/x/menus.yaml:5:33: menu item: unknown view 'al' of account; did you mean 'all'?"
    assert p.code == "menu.unknown_view"


def test_menu_item_with_unknown_entity(root: Path) -> None:
    p = only_with(root, {"menus.yaml": "menus:\n  - name: sales\n    items:\n      - entity: acount\n"})
    assert_at(p, "packs/x/menus.yaml", 4, 17, "unknown entity 'acount'", "did you mean 'account'?")


# --- seed records -------------------------------------------------------------------------------

SEED = "packs/x/seed/contact.yaml"


def test_seed_record_referring_to_an_unknown_key(root: Path) -> None:
    p = only_with(root, {
        "seed/account.yaml": "entity: account\nrecords:\n  - {_key: acme, title: Acme}\n",
        "seed/contact.yaml": """\
            entity: contact
            records:
              - _key: bob
                name: Bob
                account: acmee
        """,
    })
    assert str(p) == (
        f"{SEED}:5:14: record 'bob': field 'account' refers to 'acmee', which is not the _key of any "
        "account record in this pack or the packs it depends on; did you mean 'acme'?"
    )
    assert p.code == "seed.unknown_reference"


def test_seed_many_to_many_and_child_row_keys_are_checked(root: Path) -> None:
    found = problems_with(root, {"seed/account.yaml": """\
        entity: account
        records:
          - _key: acme
            title: Acme
            tags: [hot, warm]
            lines:
              - {tag: cold, quantity: 2}
              - {tag: frozen, quantity: 3}
    """})
    assert [(p.line, p.column) for p in found] == [(5, 17), (8, 15)]
    assert "field 'tags' refers to 'warm'" in found[0].message
    assert "field 'lines': row 2: field 'tag' refers to 'frozen'" in found[1].message


def test_seed_values_are_checked_against_their_fields(root: Path) -> None:
    found = problems_with(root, {"seed/account.yaml": """\
        entity: account
        records:
          - _key: acme
            number: A0001
            size: lots
            revenue: 10.005
            revenue_currency: rmb
            colour: red
            lines: [{quantity: many, color: blue}]
    """})
    assert [(p.line, p.column, p.code) for p in found] == [
        (4, 5, "seed.read_only"),
        (5, 11, "seed.bad_value"),
        (6, 14, "seed.bad_value"),
        (7, 23, "seed.bad_value"),
        (8, 5, "field.unknown"),
        (9, 24, "seed.bad_value"),
        (9, 30, "field.unknown"),
    ]
    messages = [p.message for p in found]
    assert "field 'number' is computed by the platform" in messages[0]
    assert "record 'acme': field 'size': expected a whole number, got 'lots'" in messages[1]
    assert "at most 2 decimal places" in messages[2]
    assert "'rmb' is not a currency code" in messages[3]
    assert "unknown field 'colour' on account" in messages[4]
    assert "field 'lines': row 1: field 'quantity': expected a whole number" in messages[5]
    assert "row 1: unknown field 'color' on account_line" in messages[6]


def test_seed_money_currency_is_accepted(root: Path) -> None:
    write_pack(root, "x", {**ENTITIES, "seed/account.yaml": "entity: account\nrecords:\n  - {_key: acme, revenue: '12.50', revenue_currency: USD}\n"})
    seed = next(s for s in load_registry(["x"], [root]).seeds if s.entity == "account")
    assert dict(seed.records[0].values) == {"revenue": "12.50", "revenue_currency": "USD"}


def test_seed_key_used_twice(root: Path) -> None:
    found = problems_with(root, {
        "seed/account.yaml": "entity: account\nrecords:\n  - {_key: acme, title: A}\n  - {_key: acme, title: B}\n",
        "demo/account.yaml": "entity: account\nrecords:\n  - {_key: acme, title: C}\n",
    })
    assert [(p.file, p.line, p.column) for p in found] == [("packs/x/demo/account.yaml", 3, 12), ("packs/x/seed/account.yaml", 4, 12)]
    assert all("record key 'acme' of account is already used at packs/x/seed/account.yaml:3:5" in p.message for p in found)


def test_seed_record_cannot_refer_to_demo_record(root: Path) -> None:
    p = only_with(root, {
        "demo/account.yaml": "entity: account\nrecords:\n  - {_key: acme, title: Acme}\n",
        "seed/contact.yaml": "entity: contact\nrecords:\n  - {_key: bob, account: acme}\n",
    })
    assert_at(p, SEED, 3, 26, "refers to demo record 'acme'", "seed records load without demo data", code="seed.refers_to_demo")


def test_demo_record_may_refer_to_seed_record(root: Path) -> None:
    write_pack(root, "x", {
        **ENTITIES,
        "seed/account.yaml": "entity: account\nrecords:\n  - {_key: acme, title: Acme}\n",
        "demo/contact.yaml": "entity: contact\nrecords:\n  - {_key: bob, account: acme, buddy: bob}\n",
    })
    registry = load_registry(["x"], [root])
    assert {(s.entity, s.kind) for s in registry.seeds} == {("account", "seed"), ("contact", "demo"), ("tag", "seed")}


def test_seed_of_unknown_entity(root: Path) -> None:
    p = only_with(root, {"seed/contact.yaml": "entity: contacts\nrecords: []\n"})
    assert_at(p, SEED, 1, 9, "unknown entity 'contacts'", "did you mean 'contact'?")


def test_seed_record_missing_a_required_field(root: Path) -> None:
    files = {**ENTITIES, "entities/tag.yaml": ENTITIES["entities/tag.yaml"].replace("label: {en: Name, zh-CN: 名称}}", "label: {en: Name, zh-CN: 名称}, required: true}")}
    write_pack(root, "x", {**files, "seed/tag.yaml": "entity: tag\nrecords:\n  - {_key: hot, name: Hot}\n  - {_key: cold, name: ''}\n  - _key: warm\n"})
    with pytest.raises(PackError) as info:
        load_registry(["x"], [root])
    assert [(p.line, p.column, p.code) for p in info.value.problems] == [(4, 5, "seed.required"), (5, 5, "seed.required")]
    assert "record 'cold': field 'name' is required" in info.value.problems[0].message


def test_seed_file_of_a_child_entity(root: Path) -> None:
    p = only_with(root, {"seed/account_line.yaml": "entity: account_line\nrecords:\n  - {_key: l1, quantity: 1}\n"})
    assert_at(p, "packs/x/seed/account_line.yaml", 1, 9, "account_line is a child table of account", "in the 'lines' field of account records", code="seed.child_entity")


def test_menu_declared_twice(root: Path) -> None:
    p = only_with(root, {"menus.yaml": """\
        menus:
          - {name: sales, items: [{entity: account}]}
          - {name: sales, items: [{entity: contact}]}
    """})
    assert_at(p, "packs/x/menus.yaml", 3, 12, "menu 'sales' is already declared at packs/x/menus.yaml:2:5", "another name", code="menu.duplicate")


def test_seed_value_of_a_field_with_a_bad_bound_is_not_a_crash(root: Path) -> None:
    files = {**ENTITIES, "entities/tag.yaml": ENTITIES["entities/tag.yaml"] + "      - {name: weight, type: integer, label: {en: W, zh-CN: W}, max: heavy}\n"}
    write_pack(root, "x", {**files, "seed/tag.yaml": "entity: tag\nrecords:\n  - {_key: hot, name: Hot, weight: 3}\n"})
    with pytest.raises(PackError) as info:
        load_registry(["x"], [root])
    assert [p.code for p in info.value.problems] == ["field.bad_bound", "seed.bad_value"]


def test_seed_record_with_a_bad_field_name_points_at_the_name(root: Path) -> None:
    found = problems_with(root, {"seed/tag.yaml": "entity: tag\nrecords:\n  - {_key: a, Name: Hot}\n  - {_key: 'b c', name: Cold}\n"})
    assert [(p.line, p.column) for p in found] == [(3, 15), (4, 12)]
    assert "record 'a': property name 'Name' is not valid; expected _key, _owner or a field name" in found[0].message
    assert "record 'b c': _key 'b c' is not valid; expected a record key" in found[1].message
