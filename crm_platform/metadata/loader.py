"""Loading packs into a Registry: find, read, validate, assemble, check, hash.

`load_registry` either returns a complete Registry or raises PackError with every problem of
every pack; it never returns something half-built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from crm_platform.metadata.access_assembly import build_org, build_roles
from crm_platform.metadata.assembly import EntityAssembler
from crm_platform.metadata.discovery import FoundPack, find_packs
from crm_platform.metadata.errors import PackError, Problem
from crm_platform.metadata.model import Label, PackInfo, Place, Registry, RuleSource
from crm_platform.metadata.pack_reader import PackFiles, read_pack
from crm_platform.metadata.screens_assembly import ScreenAssembler
from crm_platform.metadata.reminder_assembly import build_reminders
from crm_platform.metadata.dashboards import build_dashboards
from crm_platform.metadata.duplicate_rules import build_duplicates
from crm_platform.metadata.scoring import build_scorings
from crm_platform.metadata.workflow_assembly import build_workflows
from crm_platform.metadata.yaml_source import display_path


def load_registry(pack_refs: Sequence[str], search: Sequence[Path] | None = None) -> Registry:
    """The Registry of the named packs (and their dependencies). Raises PackError."""
    found, problems = find_packs(pack_refs, search)
    pack_files: list[PackFiles] = []
    for pack in found:
        files, read_problems = read_pack(pack)
        problems.extend(read_problems)
        pack_files.append(files)
    closure = _closure(found)
    entities_asm = EntityAssembler(pack_files, closure)
    entities = entities_asm.run()
    problems.extend(entities_asm.problems)
    screens = ScreenAssembler(pack_files, entities, closure, entities_asm.broken)
    screens.run()
    problems.extend(screens.problems)
    roles, role_problems = build_roles(pack_files, entities)
    problems.extend(role_problems)
    org, org_problems = build_org(pack_files, roles)
    problems.extend(org_problems)
    workflows, workflow_problems = build_workflows(pack_files, entities, roles)
    problems.extend(workflow_problems)
    reminders, reminder_problems = build_reminders(pack_files, entities, roles)
    problems.extend(reminder_problems)
    scorings, scoring_problems = build_scorings(pack_files, entities)
    problems.extend(scoring_problems)
    dashboards, dashboard_problems = build_dashboards(pack_files, entities, roles)
    problems.extend(dashboard_problems)
    duplicates, duplicate_problems = build_duplicates(pack_files, entities)
    problems.extend(duplicate_problems)
    if problems:
        raise PackError(problems)
    packs = tuple(_pack_info(p) for p in found)
    registry = Registry(
        packs=packs,
        entities=MappingProxyType(entities),
        list_views=MappingProxyType(screens.views),
        forms=MappingProxyType(screens.forms),
        menus=tuple(sorted(screens.menus, key=lambda m: (m.order, m.name))),
        seeds=tuple(screens.seeds),
        extra=MappingProxyType({"roles": roles, "org": org, "workflows": workflows, "reminders": reminders, "scorings": scorings, "dashboards": dashboards, "duplicates": duplicates, "rule_sources": tuple(
            RuleSource(file, text, files.pack.name) for files in pack_files for file, text in files.rule_files
        )}),
    )
    return dataclasses.replace(registry, content_hash=content_hash(registry))


def validate_packs(pack_refs: Sequence[str], search: Sequence[Path] | None = None) -> list[Problem]:
    """Every problem of the named packs (empty when they load)."""
    try:
        load_registry(pack_refs, search)
    except PackError as exc:
        return exc.problems
    return []


def _closure(found: list[FoundPack]) -> dict[str, set[str]]:
    """Each pack -> itself and every pack it depends on, directly or not."""
    by_name = {p.name: p for p in found}
    result: dict[str, set[str]] = {}
    for pack in found:  # dependencies come first
        deps = {pack.name}
        for dep in pack.manifest.data.get("depends", []):
            deps |= result.get(dep, {dep} if dep in by_name else set())
        result[pack.name] = deps
    return result


def _pack_info(pack: FoundPack) -> PackInfo:
    data = pack.manifest.data
    return PackInfo(
        name=data["name"],
        version=data["version"],
        title=Label.from_data(data["title"], data["name"]),
        path=display_path(pack.folder),
        depends=tuple(data.get("depends", [])),
        description=Label.from_data(data["description"], "") if "description" in data else None,
    )


def content_hash(registry: Registry) -> str:
    """A hash of what the metadata means (places in files and folder paths excluded)."""
    canonical = json.dumps(_canonical(registry), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _canonical(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _canonical(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in ("place", "path", "file", "content_hash") and not isinstance(getattr(value, f.name), Place)
        }
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value
