"""Between HTML forms and the record service: which widget each field type uses, the values a form
shows, and the payload built from a submitted form (only the fields the user changed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData, UploadFile

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
    return WIDGETS[field.type]


def layout(entity: Entity, form: Form | None) -> list[FormSection]:
    """The form's sections, or one section with every editable field when the pack has no form."""
    if form is not None:
        return list(form.sections)
    names = tuple(f.name for f in entity.fields if f.type not in ("child_table",))
    return [FormSection(Label("Details", "详情"), names, 2)]


def initial_values(entity: Entity, record: dict[str, Any] | None) -> dict[str, Any]:
    """What each input shows for a record (or the defaults of a new one)."""
    values: dict[str, Any] = {}
    for f in entity.fields:
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


@dataclass
class Submission:
    values: dict[str, Any]  # what the form shows again on error
    payload: dict[str, Any]  # what goes to the record service
    uploads: dict[str, UploadFile]


def read_submission(entity: Entity, sections: list[FormSection], form: FormData, creating: bool) -> Submission:
    """Values of the form's fields; for edits, only those that differ from the original shown."""
    values: dict[str, Any] = {}
    payload: dict[str, Any] = {}
    uploads: dict[str, UploadFile] = {}
    names = [name for section in sections for name in section.fields]
    for name in names:
        f = entity.field_map.get(name)
        if f is None or not ft.FIELD_TYPES[f.type].writable or f.read_only and not creating or f.type == "child_table":
            continue
        keys = [name]
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
            keys.append(name + "_currency")
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
