"""The site layer's entity files: a new entity (`new_entity`), an entity's labels, icon and title
field (`set_entity_properties`), and the fields the layer added (`add_field`, `replace_field`,
`reorder_fields`, `archive_field`; archiving also takes the field out of the layer's forms and
views). A pack's entity is changed through an extension file `extends: <name>`; a pack's own
fields are never edited or removed. Input is checked beforehand by layer_field_input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from crm_platform.engine.layer_edits import (
    EditRefused,
    dump,
    flow_list,
    free_path,
    label,
    layer_docs,
    styled_field,
)

# The order an entity's keys are written in, as the packs write them.
ENTITY_KEY_ORDER = ("name", "extends", "label", "plural_label", "description", "icon", "child_of", "owned", "title_field", "search_fields",
                    "timeline_date", "indexes", "fields", "picklist_values")


def _set_in_order(doc: CommentedMap, key: str, value: Any, order: tuple[str, ...]) -> None:
    """Set `key`, placing a new key where `order` puts it among the keys already there."""
    if key in doc:
        doc[key] = value
        return
    rank = order.index(key) if key in order else len(order)
    position = len(doc)
    for i, existing in enumerate(doc):
        if existing in order and order.index(existing) > rank:
            position = i
            break
    doc.insert(position, key, value)


def entity_file(files: Mapping[str, str], entity: str) -> tuple[str | None, Any]:
    """(path, document) of the layer file declaring or extending `entity`, or (None, None)."""
    for path, doc in layer_docs(files, "entities"):
        if isinstance(doc, dict) and (doc.get("name") == entity or doc.get("extends") == entity):
            return path, doc
    return None, None


def layer_fields(files: Mapping[str, str], entity: str) -> list[str]:
    """Names of the fields the layer declares for `entity` (all of them for its own entity)."""
    _, doc = entity_file(files, entity)
    return [f["name"] for f in (doc or {}).get("fields") or [] if isinstance(f, dict) and "name" in f]


def new_entity(files: Mapping[str, str], entity: Mapping[str, Any]) -> dict[str, str]:
    """Add the file of a new entity (as entity_from_input gives it)."""
    doc = CommentedMap()
    for key in ENTITY_KEY_ORDER:
        if key not in entity:
            continue
        value = entity[key]
        if key in ("label", "plural_label", "description"):
            value = label(value["en"], value["zh-CN"])
        elif key == "search_fields":
            value = flow_list(value)
        elif key == "fields":
            value = CommentedSeq([styled_field(f) for f in value])
        doc[key] = value
    return {**files, free_path(files, "entities", entity["name"]): dump(doc)}


def set_entity_properties(files: Mapping[str, str], entity: str, changes: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Set label, plural_label, icon, title_field (None removes the key). For a pack's entity the
    change goes to its extension (the format lets an extension relabel an entity); a value equal
    to `current` (what the packs say) is then not written."""
    path, doc = entity_file(files, entity)
    if doc is None:
        doc = CommentedMap({"extends": entity})
        path = free_path(files, "entities", entity)
    extension = "extends" in doc
    for key, value in changes.items():
        if extension and current is not None and key not in doc and current.get(key) == value:
            continue  # what the packs say already
        if value is None:
            doc.pop(key, None)
            continue
        if key in ("label", "plural_label"):
            value = label(value["en"], value["zh-CN"])
        _set_in_order(doc, key, value, ENTITY_KEY_ORDER)
    return _write(files, path, doc)


def _write(files: Mapping[str, str], path: str | None, doc: Any) -> dict[str, str]:
    """The files with `path` set to `doc`; an extension left with nothing to add is removed."""
    new = dict(files)
    assert path is not None
    if isinstance(doc, dict) and "extends" in doc and set(doc) <= {"extends", "fields", "picklist_values", "search_fields"} \
            and not doc.get("fields") and not doc.get("picklist_values") and not doc.get("search_fields"):
        new.pop(path, None)
    else:
        new[path] = dump(doc)
    return new


def _entity_doc(files: Mapping[str, str], entity: str, create_extension: bool = True) -> tuple[str, Any]:
    path, doc = entity_file(files, entity)
    if doc is None:
        if not create_extension:
            raise EditRefused({"entity": f"the layer has no file for entity '{entity}'"})
        return free_path(files, "entities", entity), CommentedMap({"extends": entity})
    return path, doc  # type: ignore[return-value]


def add_field(files: Mapping[str, str], entity: str, field: Mapping[str, Any]) -> dict[str, str]:
    """Add a field to the layer's entity, or to the extension of a pack's entity."""
    path, doc = _entity_doc(files, entity)
    fields = doc.get("fields")
    if fields is None:
        fields = CommentedSeq()
        _set_in_order(doc, "fields", fields, ENTITY_KEY_ORDER)
    if any(isinstance(f, dict) and f.get("name") == field["name"] for f in fields):
        raise EditRefused({"name": f"the entity already has a field '{field['name']}'; choose another name"})
    fields.append(styled_field(field))
    return _write(files, path, doc)


def _layer_field(files: Mapping[str, str], entity: str, name: str) -> tuple[str, Any, int]:
    """(path, document, index) of a field the layer added to `entity`, or EditRefused."""
    path, doc = entity_file(files, entity)
    for i, f in enumerate((doc or {}).get("fields") or []):
        if isinstance(f, dict) and f.get("name") == name:
            return path, doc, i  # type: ignore[return-value]
    raise EditRefused({"field": f"field '{name}' of {entity} is not one the layer added: a pack's own fields cannot be changed or archived"})


def replace_field(files: Mapping[str, str], entity: str, name: str, field: Mapping[str, Any]) -> dict[str, str]:
    """Replace a layer field's definition (in place: its position stays)."""
    path, doc, index = _layer_field(files, entity, name)
    old = doc["fields"][index]
    new = styled_field({**field, **({"renamed_from": old["renamed_from"]} if "renamed_from" in old and "renamed_from" not in field else {})})
    doc["fields"][index] = new
    return _write(files, path, doc)


def reorder_fields(files: Mapping[str, str], entity: str, order: list[str]) -> dict[str, str]:
    """Put the layer's fields of `entity` in `order` (a permutation of their names)."""
    path, doc = _entity_doc(files, entity, create_extension=False)
    fields = doc.get("fields") or CommentedSeq()
    by_name = {f["name"]: f for f in fields}
    if sorted(order) != sorted(by_name) or len(set(order)) != len(order):
        raise EditRefused({"order": f"the order must list each field the layer added once: {', '.join(by_name)}"})
    _reorder(fields, [list(by_name).index(n) for n in order])
    return _write(files, path, doc)


def _reorder(seq: CommentedSeq, order: list[int]) -> None:
    """Put the items of `seq` in `order` (old indexes), their end-of-line comments with them."""
    comments = dict(seq.ca.items)
    old = list(seq)
    del seq[:]
    seq.extend(old[i] for i in order)
    seq.ca.items.clear()
    for new, i in enumerate(order):
        if i in comments:
            seq.ca.items[new] = comments[i]


def archive_field(files: Mapping[str, str], entity: str, name: str) -> dict[str, str]:
    """Remove a layer field: the migration archives its column (the data is kept and comes back
    when the field does, e.g. on rollback). Forms and views of the layer stop showing it."""
    path, doc, index = _layer_field(files, entity, name)
    if doc.get("title_field") == name:
        raise EditRefused({"field": f"'{name}' is the title field of {entity}: choose another title field first"})
    del doc["fields"][index]
    for key in ("search_fields",):
        if name in (doc.get(key) or []):
            doc[key].remove(name)
            if not doc[key]:
                del doc[key]
    if "indexes" in doc:
        doc["indexes"][:] = [ix for ix in doc["indexes"] if name not in ix]
        if not doc["indexes"]:
            del doc["indexes"]
    if doc.get("timeline_date") == name:
        del doc["timeline_date"]
    new = _write(files, path, doc)
    return _forget_in_screens(new, entity, name)


def _forget_in_screens(files: dict[str, str], entity: str, name: str) -> dict[str, str]:
    """Take an archived field out of the layer's forms and views (and related lists through it)."""
    for path, doc in list(layer_docs(files, "forms")):
        changed = False
        forms = doc.get("forms") or []
        for form in list(forms):
            if doc.get("entity") == entity:
                for section in list(form.get("sections") or []):
                    if name in section.get("fields", []):
                        section["fields"].remove(name)
                        changed = True
                        if not section["fields"]:
                            form["sections"].remove(section)
            through = f"{entity}.{name}"
            if through in (form.get("related") or []):
                form["related"].remove(through)
                changed = True
            if "extends" in form and not form.get("sections") and not form.get("related"):
                forms.remove(form)  # an extension of a pack's form with nothing left to add
        if changed and forms:
            files[path] = dump(doc)
        elif changed:
            del files[path]
    for path, doc in list(layer_docs(files, "views")):
        if doc.get("entity") != entity:
            continue
        changed = False
        for view in doc.get("views") or []:
            if name in view.get("columns", []):
                if len(view["columns"]) == 1:
                    raise EditRefused({"field": f"'{name}' is the only column of the view '{view.get('name')}': give the view other columns first"})
                view["columns"].remove(name)
                changed = True
            for key in [k for k in view.get("sort") or [] if k.lstrip("-") == name]:
                view["sort"].remove(key)
                changed = True
            if "sort" in view and not view["sort"]:
                del view["sort"]
        if changed:
            files[path] = dump(doc)
    return files
