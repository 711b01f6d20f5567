"""The rule editor (/admin/design/rules): the layer's rules/*.rules files, edited as text or one
statement at a time (validate, formula, default, require, hide, readonly), checked as the admin
types against the site's entities (every error with its line, column and carets); the packs'
rules are shown for reference. Saving proposes the layer's new files (design_common.propose)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.rules import PURPOSES
from crm_platform.rules.errors import RuleError
from crm_platform.rules.statements import check_rule_file
from crm_platform.ui.screens.common import form_data
from crm_platform.ui.screens.design_common import layer_of, propose
from crm_platform.ui.screens.design_flows import NAME, error_rows, expression_errors
from crm_platform.ui.templating import render

KINDS = ("validate", "formula", "default", "require", "hide", "readonly")
DEFAULT_FILE = "rules/site.rules"
BUILDER_INPUTS = ("kind", "entity", "field", "message", "on", "expression")


def file_name(raw: str) -> str | None:
    """`rules/<name>.rules` from what the admin typed (`site`, `site.rules` or the full name)."""
    name = raw.strip().removeprefix("rules/").removesuffix(".rules")
    return f"rules/{name}.rules" if NAME.match(name) else None


def compose(values: dict[str, str]) -> tuple[str | None, str | None]:
    """The statement the builder's inputs describe, or why they do not describe one yet."""
    kind, entity, field = values["kind"], values["entity"].strip(), values["field"].strip()
    expression = "\n  ".join(line.strip() for line in values["expression"].strip().splitlines() if line.strip())
    if kind not in KINDS:
        return None, f"choose one of {', '.join(KINDS)}"
    if not entity:
        return None, "choose the object the rule is about"
    if not expression:
        return None, "write the condition or the expression"
    if kind == "validate":
        message = values["message"].strip()
        if not message:
            return None, "a validation needs the message the user sees"
        quoted = '"' + message.replace("\\", "\\\\").replace('"', '\\"') + '"'
        on = ", ".join(f.strip() for f in values["on"].replace(";", ",").split(",") if f.strip())
        return f"validate {entity} {quoted}{' on ' + on if on else ''} when {expression}", None
    if not field:
        return None, f"'{kind}' needs the field it applies to" + (" (or * for every field)" if kind in ("hide", "readonly") else "")
    if kind in ("formula", "default"):
        return f"{kind} {entity}.{field} = {expression}", None
    return f"{kind} {entity}.{field} when {expression}", None


def check_fragment(request: Request, errors: list[RuleError], checked: bool = True, text: str | None = None, note: str | None = None) -> Response:
    """The live check's answer: every error with line, column and carets, or that all is well."""
    return render(request, "design/rules_check.html", {"errors": error_rows(errors), "checked": checked, "result": note, "statement": text})


def _builder(form: Any) -> dict[str, str]:
    return {key: str(form.get(key) or "") for key in BUILDER_INPUTS}


async def editor(request: Request, file: str | None = None, text: str | None = None, builder: dict[str, str] | None = None,
                 builder_errors: list[RuleError] | None = None, error: str | None = None, status: int = 200) -> Response:
    layer = layer_of(request)
    site = layer.site
    files = layer.current_files()
    rule_files = sorted(name for name in files if name.startswith("rules/"))
    asked = request.query_params.get("file")
    if file is None:
        file = file_name(asked) if asked else (rule_files[0] if rule_files else DEFAULT_FILE)
        file = file or DEFAULT_FILE
    if text is None:
        text = files.get(file, "")
    errors = check_rule_file(text, site.registry, file)[1] if text.strip() else []
    pack_rules = [(s.file, s.pack, s.text) for s in site.registry.extra.get("rule_sources", ()) if s.pack != "site"]
    lang = request.state.actor.language
    context = {"file": file, "text": text, "files": rule_files, "is_new": file not in files, "errors": error_rows(errors),
               "pack_rules": pack_rules, "kinds": KINDS,
               "entities": sorted(((e.name, e.label.get(lang)) for e in site.registry.entities.values()), key=lambda p: p[1]),
               "fields": sorted({f.name for e in site.registry.entities.values() for f in e.fields}),
               "builder": builder or {"kind": "validate", "entity": "", "field": "", "message": "", "on": "", "expression": ""},
               "builder_errors": error_rows(builder_errors or []), "error": error}
    return render(request, "design/rules.html", context, status=status)


async def page(request: Request) -> Response:
    return await editor(request)


async def check_file(request: Request) -> Response:
    """The live check of the whole file being edited."""
    layer = layer_of(request)
    form = await form_data(request)
    text = str(form.get("text") or "")
    if not text.strip():
        return check_fragment(request, [], checked=False)
    file = file_name(str(form.get("file") or "")) or DEFAULT_FILE
    return check_fragment(request, check_rule_file(text, layer.site.registry, file)[1])


async def check_statement(request: Request) -> Response:
    """The live check of the statement the builder describes (positions within that statement)."""
    layer = layer_of(request)
    form = await form_data(request)
    statement, missing = compose(_builder(form))
    if statement is None:
        return check_fragment(request, [], checked=False, note=missing)
    return check_fragment(request, check_rule_file(statement, layer.site.registry, "statement")[1], text=statement)


async def check_expression(request: Request) -> Response:
    """One expression as the admin types it (a guard, a value set on entering a state): the query
    names the object, the purpose, which input holds the text and the field it is written to."""
    layer = layer_of(request)
    form = await form_data(request)
    params = request.query_params
    text = str(form.get(params.get("input") or "expression") or "")
    if not text.strip():
        return check_fragment(request, [], checked=False)
    target = params.get("field") or (str(form.get(params["field_input"]) or "") if params.get("field_input") else "") or None
    purpose = str(params.get("purpose")) if params.get("purpose") in PURPOSES else "condition"
    return check_fragment(request, expression_errors(layer.site.registry, params.get("entity") or "", text, purpose, target))


async def save(request: Request) -> Response:
    """Save the edited file: refused with its errors, else proposed (an emptied file is removed)."""
    layer = layer_of(request)
    form = await form_data(request)
    text = str(form.get("text") or "").replace("\r\n", "\n")
    file = file_name(str(form.get("file") or ""))
    if file is None:
        return await editor(request, DEFAULT_FILE, text, _builder(form), error="name the file with lowercase letters, digits and _ (e.g. site)", status=422)
    errors = check_rule_file(text, layer.site.registry, file)[1]
    if errors:
        return await editor(request, file, text, _builder(form), error=f"{file} has {len(errors)} problem(s); nothing was saved", status=422)
    files = layer.current_files()
    if text.strip():
        files[file] = text if text.endswith("\n") else text + "\n"
    else:
        files.pop(file, None)
    return await propose(request, files, f"rules: {file}", f"/admin/design/rules?file={file}")


async def add(request: Request) -> Response:
    """Append the builder's statement to the file (with the admin's edits of the text) and propose."""
    layer = layer_of(request)
    form = await form_data(request)
    builder = _builder(form)
    text = str(form.get("text") or "").replace("\r\n", "\n")
    file = file_name(str(form.get("file") or "")) or DEFAULT_FILE
    statement, missing = compose(builder)
    if statement is None:
        return await editor(request, file, text, builder, error=f"the statement is not complete: {missing}; nothing was saved", status=422)
    problems = check_rule_file(statement, layer.site.registry, "statement")[1]
    if problems:
        return await editor(request, file, text, builder, problems, error="the statement does not check; nothing was saved", status=422)
    new_text = (text.rstrip("\n") + "\n" if text.strip() else "") + statement + "\n"
    errors = check_rule_file(new_text, layer.site.registry, file)[1]
    if errors:
        return await editor(request, file, text, builder, error=f"{file} has {len(errors)} problem(s); nothing was saved", status=422)
    files = layer.current_files()
    files[file] = new_text
    return await propose(request, files, f"rules: {statement.splitlines()[0][:200]}", f"/admin/design/rules?file={file}")


routes = [
    Route("/admin/design/rules", page, methods=["GET"]),
    Route("/admin/design/rules", save, methods=["POST"]),
    Route("/admin/design/rules/add", add, methods=["POST"]),
    Route("/admin/design/rules/check", check_file, methods=["POST"]),
    Route("/admin/design/rules/statement/check", check_statement, methods=["POST"]),
    Route("/admin/design/check", check_expression, methods=["POST"]),
]
