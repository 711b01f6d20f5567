"""Between HTML forms and the record service: which widget each field type uses, the values a form
shows, and the payload built from a submitted form (only the fields the user changed)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData, UploadFile

from crm_platform.engine import system_references
from crm_platform.metadata import field_types as ft
from crm_platform.metadata.model import Entity, Field, Form, FormSection, Label
from crm_platform.ui.display import form_value

# One table from field type to widget (as Django's FORMFIELD_FOR_DBFIELD_DEFAULTS).
WIDGETS = {
    "text": "text", "long_text": "textarea", "integer": "number", "decimal": "number", "money": "money",
    "percent": "number", "boolean": "checkbox", "date": "date", "datetime": "datetime", "picklist": "select",
    "multi_picklist": "multiselect", "reference": "lookup", "email": "email", "phone": "tel", "url": "url",
    "file": "file", "auto_number": "readonly", "formula": "readonly", "many_to_many": "links", "child_table": "rows",
}
ORIGINAL_PREFIX = "__orig__"


def widget_of(field: Field) -> str:
    """The widget of a field; a reference to a user or an org unit is a select of them
    (`choice`, its options in the form context's link_options), not a record type-ahead."""
    return "choice" if field.system_target else WIDGETS[field.type]


def system_reference_options(site: Any, entity: Entity, values: dict[str, Any]) -> dict[str, list[system_references.Choice]]:
    """The choices of the user / org-unit selects of a form (child rows' fields included), by
    field name: active users or the org tree, plus whatever the form currently shows."""
    fields = [f for f in entity.fields if f.system_target]
    for f in entity.fields:
        if f.type == "child_table" and f.entity:
            fields += [cf for cf in site.registry.entity(f.entity).fields if cf.system_target]
    if not fields:
        return {}
    options: dict[str, list[system_references.Choice]] = {}
    with site.engine.connect() as conn:
        for f in fields:
            keep = [int(v) for key, v in values.items() if (key == f.name or key.endswith(f"-{f.name}")) and isinstance(v, str) and v.isdigit()]
            options[f.name] = system_references.choices(conn, site.schema.system, f.system_target or "", keep)
    return options


def layout(entity: Entity, form: Form | None) -> list[FormSection]:
    """The form's sections, or one section with every editable field when the pack has no form."""
    if form is not None:
        return list(form.sections)
    names = tuple(f.name for f in entity.fields)
    return [FormSection(Label("Details", "详情"), names, 2)]


def visible_sections(sections: list[FormSection], restricted: dict[str, str], editable_only: bool = False) -> list[FormSection]:
    """The sections without the fields hidden from the user (and without read-only ones when
    reading a submission: those are never written from a form)."""
    drop = {name for name, access in restricted.items() if access == "hidden" or editable_only}
    if not drop:
        return sections
    result = []
    for section in sections:
        names = tuple(n for n in section.fields if n not in drop)
        if names:
            result.append(dataclasses.replace(section, fields=names))
    return result


def initial_values(entity: Entity, record: dict[str, Any] | None, registry: Any = None) -> dict[str, Any]:
    """What each input shows for a record (or the defaults of a new one); child rows as
    `<field>-<index>-<child field>` keys."""
    values: dict[str, Any] = {}
    for f in entity.fields:
        if f.type == "child_table":
            if record is not None and registry is not None and f.entity:
                child = registry.entity(f.entity)
                for index, row in enumerate(record.get(f.name) or []):
                    prefix = f"{f.name}-{index}-"
                    values[prefix + "id"] = str(row["id"])
                    for key, value in initial_values(child, row).items():
                        values[prefix + key] = value
            continue
        if record is None:
            default = f.default
            if f.type == "boolean":
                values[f.name] = bool(default)
            elif f.type == "multi_picklist":
                values[f.name] = list(default or [])
            else:
                values[f.name] = "" if default is None else str(default)
            if f.type == "money":
                values[f.name + "_currency"] = f.currency or ft.DEFAULT_CURRENCY
            continue
        if f.type == "multi_picklist" or f.type == "many_to_many":
            values[f.name] = [str(v) for v in (record.get(f.name) or [])]
        elif f.type == "boolean":
            values[f.name] = bool(record.get(f.name))
        else:
            values[f.name] = form_value(f, record)
        if f.type == "money":
            values[f.name + "_currency"] = record.get(f.name + "_currency") or f.currency or ft.DEFAULT_CURRENCY
    return values


def row_indexes(values: dict[str, Any], field: str) -> list[int]:
    """The row numbers of a child table present in form values, in order."""
    pattern = re.compile(rf"^{re.escape(field)}-(\d+)-")
    found = {int(m.group(1)) for key in values for m in [pattern.match(key)] if m}
    return sorted(found)


@dataclass
class Submission:
    values: dict[str, Any]  # what the form shows again on error
    payload: dict[str, Any]  # what goes to the record service
    uploads: dict[str, UploadFile]
    row_positions: dict[str, list[int]] = field(default_factory=dict)  # child field -> form row index per payload row

    def form_key(self, service_path: str) -> str:
        """'lines[1].quantity' (a payload row) -> 'lines-<form row>-quantity' (an input)."""
        match = re.match(r"^(\w+)\[(\d+)\]\.(\w+)$", service_path)
        if not match or match.group(1) not in self.row_positions:
            return service_path
        positions = self.row_positions[match.group(1)]
        position = int(match.group(2))
        index = positions[position] if position < len(positions) else position
        return f"{match.group(1)}-{index}-{match.group(3)}"


def read_submission(entity: Entity, sections: list[FormSection], form: FormData, creating: bool, registry: Any = None) -> Submission:
    """Values of the form's fields; for edits, only those that differ from the original shown."""
    names = [name for section in sections for name in section.fields]
    submission = _read_fields(entity, names, form, creating, "")
    for name in names:
        f = entity.field_map.get(name)
        if f is not None and f.type == "child_table" and f.entity and registry is not None:
            _read_rows(submission, f, registry.entity(f.entity), form, creating)
    return submission


def _read_rows(submission: Submission, f: Field, child: Entity, form: FormData, creating: bool) -> None:
    """The child rows of the form: kept rows with their id, new rows, removed rows left out."""
    keys = {k: None for k in form.keys()}
    indexes = row_indexes(keys, f.name)
    child_names = [c.name for c in child.fields if ft.FIELD_TYPES[c.type].writable and c.type not in ("child_table", "many_to_many")]
    rows: list[dict[str, Any]] = []
    positions: list[int] = []
    changed = creating
    original_count = form.get(f"{ORIGINAL_PREFIX}{f.name}-count")
    for index in indexes:
        prefix = f"{f.name}-{index}-"
        row = _read_fields(child, child_names, form, False, prefix)
        submission.values.update(row.values)
        row_id = form.get(prefix + "id")
        if row_id:
            submission.values[prefix + "id"] = row_id
        if form.get(prefix + "remove") == "true":
            changed = True
            continue
        complete = {name[len(prefix):]: value for name, value in _all_submitted(child, child_names, form, prefix).items()}
        if not row_id and all(v in (None, [], False) for k, v in complete.items() if not k.endswith("_currency")):
            continue  # an added row left empty
        changed = changed or bool(row.payload) or not row_id
        if isinstance(row_id, str) and row_id.isdigit():
            complete["id"] = int(row_id)
        rows.append(complete)
        positions.append(index)
    if str(len(rows)) != (original_count if isinstance(original_count, str) else str(len(rows))):
        changed = True
    if changed:
        submission.payload[f.name] = rows
        submission.row_positions[f.name] = positions


def _all_submitted(entity: Entity, names: list[str], form: FormData, prefix: str) -> dict[str, Any]:
    return _read_fields(entity, names, form, True, prefix).payload


def _read_fields(entity: Entity, names: list[str], form: FormData, creating: bool, prefix: str) -> Submission:
    values: dict[str, Any] = {}
    payload: dict[str, Any] = {}
    uploads: dict[str, UploadFile] = {}
    for field_name in names:
        f = entity.field_map.get(field_name)
        if f is None or not ft.FIELD_TYPES[f.type].writable or f.read_only and not creating or f.type == "child_table":
            continue
        name = prefix + field_name
        if f.type == "file":
            upload = form.get(name)
            if isinstance(upload, UploadFile) and upload.filename:
                uploads[name] = upload
            continue
        if f.type in ("multi_picklist", "many_to_many"):
            raw: Any = [v for v in form.getlist(name) if isinstance(v, str) and v]
            values[name] = raw
            submitted: Any = [int(v) for v in raw if v.isdigit()] if f.type == "many_to_many" else raw
        elif f.type == "boolean":
            raw = "true" in form.getlist(name)
            values[name] = raw
            submitted = raw
        else:
            raw = form.get(name)
            raw = raw if isinstance(raw, str) else ""
            values[name] = raw
            submitted = raw.strip() or None
        if f.type == "money":
            currency = form.get(name + "_currency")
            values[name + "_currency"] = currency if isinstance(currency, str) else ""
        changed = creating or _differs(form, name, values[name])
        if changed:
            payload[name] = submitted
        if f.type == "money" and (creating or _differs(form, name + "_currency", values[name + "_currency"])):
            payload[name + "_currency"] = values[name + "_currency"] or None
    return Submission(values, payload, uploads)


def _differs(form: FormData, name: str, value: Any) -> bool:
    originals = form.getlist(ORIGINAL_PREFIX + name)
    if isinstance(value, list):
        return sorted(value) != sorted(v for v in originals if isinstance(v, str) and v)
    if isinstance(value, bool):
        return value != (originals[:1] == ["true"])
    original = originals[0] if originals else ""
    return (value or "").strip() != (original if isinstance(original, str) else "").strip()
