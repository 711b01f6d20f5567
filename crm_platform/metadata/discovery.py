"""Finding pack folders by name or path and ordering them so dependencies come first."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crm_platform.metadata.errors import Problem, did_you_mean
from crm_platform.metadata.schema_check import check_against_schema
from crm_platform.metadata.yaml_source import SourceFile, display_path, load_yaml_file


@dataclass
class FoundPack:
    name: str
    folder: Path
    manifest: SourceFile


def pack_search_paths() -> list[Path]:
    """Folders searched for packs named without a path: CRM_PACKS_PATH, else ./packs."""
    raw = os.environ.get("CRM_PACKS_PATH")
    if raw:
        return [Path(p) for p in raw.split(os.pathsep) if p]
    return [Path.cwd() / "packs"]


def _folder_for(ref: str, search: Sequence[Path]) -> Path | None:
    if "/" in ref or os.sep in ref or ref.startswith("."):
        return Path(ref)
    for base in search:
        candidate = base / ref
        if (candidate / "pack.yaml").is_file():
            return candidate
    return None


def _available(search: Sequence[Path]) -> list[str]:
    """Names of the pack folders in the search paths (for "did you mean")."""
    return [p.name for base in search if base.is_dir() for p in base.iterdir() if (p / "pack.yaml").is_file()]


def find_packs(refs: Sequence[str], search: Sequence[Path] | None = None) -> tuple[list[FoundPack], list[Problem]]:
    """The packs named by `refs` and everything they depend on, dependencies first."""
    search = list(search) if search is not None else pack_search_paths()
    problems: list[Problem] = []
    found: dict[str, FoundPack] = {}
    looked = ", ".join(display_path(p) for p in search) or "(no folders)"

    def read(ref: str, wanted_by: tuple[SourceFile, tuple[str | int, ...]] | None) -> FoundPack | None:
        folder = _folder_for(ref, search)
        manifest_path = folder / "pack.yaml" if folder else None
        if folder is None or manifest_path is None or not manifest_path.is_file():
            message = f"pack '{ref}' not found (looked in {looked}){did_you_mean(ref, _available(search))}"
            if folder is not None:
                message = f"no pack.yaml in {display_path(folder)}"
            if wanted_by:
                problems.append(wanted_by[0].problem(wanted_by[1], message, "pack.unknown_dependency"))
            else:
                problems.append(Problem(ref, None, None, message, "pack.not_found"))
            return None
        source, errors = load_yaml_file(manifest_path)
        problems.extend(errors)
        if source is None:
            return None
        schema_problems = check_against_schema(source, "pack")
        problems.extend(schema_problems)
        if schema_problems or not isinstance(source.data, dict):
            return None
        name = source.data["name"]
        if name in found:
            if found[name].folder.resolve() != folder.resolve():
                problems.append(
                    source.problem(("name",), f"pack name '{name}' is also used by {display_path(found[name].folder)}", "pack.duplicate")
                )
            return found[name]
        if folder.name != name:
            problems.append(
                source.problem(("name",), f"pack name '{name}' differs from its folder name '{folder.name}'", "pack.name_mismatch")
            )
        pack = FoundPack(name, folder, source)
        found[name] = pack
        for index, dep in enumerate(source.data.get("depends", [])):
            if dep not in found:
                read(dep, (source, ("depends", index)))
        return pack

    for ref in refs:
        read(ref, None)
    return _order(list(found.values()), problems), problems


def _order(packs: list[FoundPack], problems: list[Problem]) -> list[FoundPack]:
    """Topological order (dependencies first); a cycle is reported with its path."""
    by_name = {p.name: p for p in packs}
    state: dict[str, int] = {}
    ordered: list[FoundPack] = []
    reported: set[frozenset[str]] = set()

    def visit(pack: FoundPack, trail: list[str]) -> None:
        if state.get(pack.name) == 2:
            return
        if state.get(pack.name) == 1:
            cycle = [*trail[trail.index(pack.name):], pack.name]
            key = frozenset(cycle)
            if key not in reported:
                reported.add(key)
                source = by_name[trail[-1]].manifest
                dep_index = source.data.get("depends", []).index(pack.name)
                problems.append(
                    source.problem(("depends", dep_index), "dependency cycle: " + " -> ".join(cycle), "pack.dependency_cycle")
                )
            return
        state[pack.name] = 1
        for dep in pack.manifest.data.get("depends", []):
            if dep in by_name:
                visit(by_name[dep], [*trail, pack.name])
        state[pack.name] = 2
        ordered.append(pack)

    for pack in sorted(packs, key=lambda p: p.name):
        visit(pack, [])
    return ordered
