"""The site layer's screen files: the form of an entity (`forms/<entity>.yaml`: the whole form
`main`, or sections added to a pack's form by `extends: main`) and its list views
(`views/<entity>.yaml`: added or replaced by name; a pack's views are only joined), with the
designer's inputs for both checked here (`sections_from_input`, `view_from_input`), and `move`,
the editors' up and down buttons on a list.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from crm_platform.engine.layer_edits import (
    EditRefused,
    block,
    dump,
    flow_list,
    free_path,
    input_flag,
    input_int,
    input_label,
    input_text,
    label,
    layer_docs,
    name_problem,
    slug,
)
from crm_platform.metadata.errors import did_you_mean

# System columns a list view may show and sort by (as the loader allows).
LISTABLE_SYSTEM_COLUMNS = ("id", "created_at", "updated_at", "created_by", "updated_by", "owner_id", "state")
# The form the designer edits: the layer's own, or the extension of a pack's form of that name.
MAIN_FORM = "main"


# -- forms ---------------------------------------------------------------------------------------

def form_file(files: Mapping[str, str], entity: str) -> tuple[str | None, Any]:
    for path, doc in layer_docs(files, "forms"):
        if isinstance(doc, dict) and doc.get("entity") == entity:
            return path, doc
    return None, None


def layer_form(files: Mapping[str, str], entity: str) -> dict[str, Any] | None:
    """The layer's form item for `entity`: the form `main`, or the item extending it."""
    _, doc = form_file(files, entity)
    for item in (doc or {}).get("forms") or []:
        if item.get("name") == MAIN_FORM or item.get("extends") == MAIN_FORM:
            return item  # type: ignore[no-any-return]
    return None


def sections_from_input(sections: Sequence[Mapping[str, Any]], known: Collection[str]) -> list[dict[str, Any]]:
    """Sections {label_en, label_zh, columns, fields} -> the format's sections, or EditRefused."""
    errors: dict[str, str] = {}
    out = []
    placed: set[str] = set()
    for number, sec in enumerate(sections, 1):
        sec_errors: dict[str, str] = {}
        lbl = input_label(sec, "label", sec_errors)
        for key, message in sec_errors.items():
            errors[f"section_{number}_{key}"] = f"section {number}: {message}"
        columns = input_text(sec, "columns") or "2"
        if columns not in ("1", "2", "3", "4"):
            errors[f"section_{number}_columns"] = f"section {number}: 1 to 4 columns"
        fields = list(sec.get("fields") or [])
        if not fields:
            errors[f"section_{number}_fields"] = f"section {number} has no fields: add fields to it or remove it"
        for f in fields:
            if f not in known:
                errors[f"section_{number}_fields"] = f"section {number}: unknown field '{f}'{did_you_mean(f, known)}"
            elif f in placed:
                errors[f"section_{number}_fields"] = f"section {number}: field '{f}' is placed twice"
            placed.add(f)
        out.append({"label": lbl, "columns": int(columns) if columns.isdigit() else 2, "fields": fields})
    if errors:
        raise EditRefused(errors)
    return out


def set_form(files: Mapping[str, str], entity: str, sections: Sequence[Mapping[str, Any]], *, extends: bool,
             form_label: Mapping[str, str] | None = None, related: list[str] | None = None) -> dict[str, str]:
    """Write the layer's form of `entity`: the whole form `main`, or (extends=True) the sections
    (and related lists) added to a pack's form `main`. Other forms in the file are kept."""
    path, doc = form_file(files, entity)
    if doc is None:
        doc = CommentedMap({"entity": entity, "forms": CommentedSeq()})
        path = free_path(files, "forms", entity)
    forms = doc.setdefault("forms", CommentedSeq())
    index = next((i for i, item in enumerate(forms) if item.get("name") == MAIN_FORM or item.get("extends") == MAIN_FORM), None)
    item = CommentedMap()
    if extends:
        item["extends"] = MAIN_FORM
    else:
        item["name"] = MAIN_FORM
        lbl = form_label or (forms[index].get("label") if index is not None else None) or {"en": "Main", "zh-CN": "主表单"}
        item["label"] = label(lbl["en"], lbl["zh-CN"])
    if sections or not extends:
        item["sections"] = CommentedSeq([block({"label": label(s["label"]["en"], s["label"]["zh-CN"]), "columns": s.get("columns", 2),
                                                "fields": flow_list(s["fields"])}) for s in sections])
    if related is None and index is not None:
        related = list(forms[index].get("related") or [])
    if related:
        item["related"] = flow_list(related)
    empty = extends and not sections and not related
    if index is None and not empty:
        forms.append(item)
    elif index is not None and empty:
        del forms[index]
    elif index is not None:
        forms[index] = item
    new = dict(files)
    if not forms:
        new.pop(path, None)  # type: ignore[arg-type]
    else:
        new[path] = dump(doc)  # type: ignore[index]
    return new


def place_on_form(files: Mapping[str, str], entity: str, field: str, *, extends: bool | None,
                  section_label: Mapping[str, str] | None = None) -> dict[str, str]:
    """Show a new field on the form: at the end of the layer's last section, or in a new section
    added to the pack's form. extends=None: the entity has no form (every field shows anyway)."""
    if extends is None:
        return dict(files)
    item = layer_form(files, entity)
    sections = [{"label": dict(s["label"]), "columns": s.get("columns", 2), "fields": list(s["fields"])} for s in (item or {}).get("sections") or []]
    if not sections:
        if not extends:
            return dict(files)  # the layer declares no form yet: the fallback layout shows every field
        sections = [{"label": dict(section_label or {"en": "More", "zh-CN": "更多"}), "columns": 2, "fields": []}]
    if field not in sections[-1]["fields"]:
        sections[-1]["fields"].append(field)
    return set_form(files, entity, sections, extends=extends)


# -- list views ----------------------------------------------------------------------------------

def view_file(files: Mapping[str, str], entity: str) -> tuple[str | None, Any]:
    for path, doc in layer_docs(files, "views"):
        if isinstance(doc, dict) and doc.get("entity") == entity:
            return path, doc
    return None, None


def layer_views(files: Mapping[str, str], entity: str) -> list[dict[str, Any]]:
    _, doc = view_file(files, entity)
    return [dict(v) for v in (doc or {}).get("views") or []]


def view_from_input(data: Mapping[str, Any], *, listable: Collection[str], taken: Collection[str] = (), editing: str | None = None) -> dict[str, Any]:
    """A list view from the inputs name, label_en/_zh, columns (ordered), sort_field, sort_desc,
    filter (already checked by the caller, who has the rules), page_size, default."""
    errors: dict[str, str] = {}
    name = editing or input_text(data, "name") or slug(input_text(data, "label_en"))
    if editing is None:
        problem = name_problem(name, "view name")
        if problem:
            errors["name"] = problem
        elif name in taken:
            errors["name"] = f"the entity already has a view '{name}'; choose another name"
    view: dict[str, Any] = {"name": name}
    lbl = input_label(data, "label", errors)
    if lbl:
        view["label"] = lbl
    columns = [c for c in data.get("columns") or [] if c]
    if not columns:
        errors["columns"] = "choose at least one column"
    for c in columns:
        if c not in listable:
            errors["columns"] = f"'{c}' cannot be a column{did_you_mean(c, listable)}"
    if len(set(columns)) != len(columns):
        errors["columns"] = "a column is listed twice"
    view["columns"] = columns
    sort = []
    for key in ("sort_field", "sort2_field"):
        field = input_text(data, key)
        if not field:
            continue
        if field not in listable:
            errors[key] = f"cannot sort by '{field}'{did_you_mean(field, listable)}"
        desc = input_flag(data, key.replace("_field", "_desc"))
        sort.append(("-" if desc else "") + field)
    if sort:
        view["sort"] = sort
    page_size = input_int(data, "page_size", 5, 200, errors)
    if page_size is not None:
        view["page_size"] = page_size
    text = " ".join(input_text(data, "filter").split())
    if text:
        view["filter"] = text
    if input_flag(data, "default"):
        view["default"] = True
    if errors:
        raise EditRefused(errors)
    return view


def set_view(files: Mapping[str, str], entity: str, view: Mapping[str, Any]) -> dict[str, str]:
    """Add or replace (by name) a list view of `entity` in the layer."""
    path, doc = view_file(files, entity)
    if doc is None:
        doc = CommentedMap({"entity": entity, "views": CommentedSeq()})
        path = free_path(files, "views", entity)
    views = doc.setdefault("views", CommentedSeq())
    item = block({"name": view["name"], "label": label(view["label"]["en"], view["label"]["zh-CN"]), "columns": flow_list(view["columns"]),
                  **({"sort": flow_list(view["sort"])} if view.get("sort") else {}),
                  **({"page_size": view["page_size"]} if view.get("page_size") else {}),
                  **({"filter": view["filter"]} if view.get("filter") else {}),
                  **({"default": True} if view.get("default") else {})})
    index = next((i for i, v in enumerate(views) if v.get("name") == view["name"]), None)
    if view.get("default"):
        for other in views:
            if other.get("name") != view["name"] and other.get("default"):
                del other["default"]
    if index is None:
        views.append(item)
    else:
        views[index] = item
    return {**files, path: dump(doc)}  # type: ignore[dict-item]


def remove_view(files: Mapping[str, str], entity: str, name: str) -> dict[str, str]:
    path, doc = view_file(files, entity)
    views = (doc or {}).get("views") or []
    index = next((i for i, v in enumerate(views) if v.get("name") == name), None)
    if index is None:
        raise EditRefused({"view": f"the layer has no view '{name}' of {entity}: a pack's views cannot be removed"})
    del views[index]
    new = dict(files)
    if views:
        new[path] = dump(doc)  # type: ignore[index]
    else:
        new.pop(path, None)  # type: ignore[arg-type]
    return new


# -- moving items up and down (the editors' buttons without JavaScript) ----------------------------

def move(sequence: list[str], item: str, delta: int, first_fixed: bool = True) -> list[str]:
    """Move `item` one step up (delta -1) or down (+1) in a flat list where entries starting
    with '§' mark the start of a group: crossing a marker moves the item into the neighbouring
    group. The first entry (the first group's marker) is never crossed."""
    seq = list(sequence)
    if item not in seq:
        return seq
    i = seq.index(item)
    j = i + delta
    if j < (1 if first_fixed and seq and seq[0].startswith("§") else 0) or j >= len(seq):
        return seq
    seq[i], seq[j] = seq[j], seq[i]
    return seq
