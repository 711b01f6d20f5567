"""Reading every file of one pack folder and checking each against its JSON Schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from crm_platform.metadata.discovery import FoundPack
from crm_platform.metadata.errors import Problem, closest
from crm_platform.metadata.schema_check import check_against_schema
from crm_platform.metadata.yaml_source import SourceFile, display_path, load_yaml_file

# Folder (or file) of a pack -> schema its files follow.
PACK_LAYOUT = {
    "entities": "entity",
    "views": "views",
    "forms": "forms",
    "seed": "records",
    "demo": "records",
    "workflows": "workflow",
    "reminders": "reminder",
    "scoring": "scoring",
    "dashboards": "dashboard",
}
# Files at the top of a pack (name without .yaml = schema name).
SINGLE_FILES = ("menus", "roles", "org", "duplicates")
CODE_SUFFIXES = {
    ".py", ".pyc", ".pyo", ".pyw", ".pyz", ".so", ".dylib", ".dll", ".exe", ".wasm", ".jar", ".class",
    ".js", ".mjs", ".cjs", ".ts", ".sh", ".bash", ".zsh", ".bat", ".cmd", ".ps1", ".rb", ".pl", ".php", ".lua", ".ipynb",
}
DATA_SUFFIXES = (".yaml", ".yml", ".json")
_CODE_MESSAGE = "packs hold configuration only; remove this code file and ask for a platform feature instead"


@dataclass
class PackFiles:
    """The validated files of one pack, grouped by kind."""

    pack: FoundPack
    files: dict[str, list[SourceFile]] = field(default_factory=dict)
    # The text of each rules/*.rules file: (shown path, text); checked by the rules layer.
    rule_files: list[tuple[str, str]] = field(default_factory=list)
    # Names of entities whose files were invalid: other files' references to them are not
    # reported again as unknown.
    broken_entities: set[str] = field(default_factory=set)

    def of(self, kind: str) -> list[SourceFile]:
        return self.files.get(kind, [])


def read_pack(pack: FoundPack) -> tuple[PackFiles, list[Problem]]:
    problems: list[Problem] = []
    result = PackFiles(pack)
    folder = pack.folder
    for path in sorted(folder.rglob("*")):
        if path.is_file() and _is_code(path):
            problems.append(Problem(display_path(path), None, None, _CODE_MESSAGE, "pack.code_file"))
    for path in sorted(folder.iterdir()):
        near = closest(path.name, PACK_LAYOUT) if path.is_dir() and path.name not in PACK_LAYOUT else None
        if near is not None:
            message = f"folder '{path.name}' is not part of the pack format and is not read; did you mean '{near}'?"
            problems.append(Problem(display_path(path), None, None, message, "pack.unknown_folder"))
    for kind, schema in PACK_LAYOUT.items():
        for path in _yaml_files(folder / kind):
            source = _read(path, schema, problems, result.broken_entities if kind == "entities" else None)
            if source is not None:
                result.files.setdefault(kind, []).append(source)
    rules_folder = folder / "rules"
    if rules_folder.is_dir():
        for path in sorted(rules_folder.glob("*.rules")):
            try:
                result.rule_files.append((display_path(path), path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(Problem(display_path(path), None, None, f"cannot read file: {exc}", "pack.unreadable"))
    for kind in SINGLE_FILES:
        path = folder / f"{kind}.yaml"
        if path.is_file():
            source = _read(path, kind, problems)
            if source is not None:
                result.files[kind] = [source]
    return result, problems


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)


def _is_code(path: Path) -> bool:
    """A file of a programming language, or any file starting with a #! line (a script)."""
    if path.suffix.lower() in CODE_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(2) == b"#!"
    except OSError:
        return False


def _read(path: Path, schema: str, problems: list[Problem], broken: set[str] | None = None) -> SourceFile | None:
    source, errors = load_yaml_file(path)
    problems.extend(errors)
    if source is None:
        if broken is not None:
            broken.add(path.stem)
        return None
    schema_problems = check_against_schema(source, schema)
    problems.extend(schema_problems)
    if schema_problems:
        if broken is not None:
            data = source.data if isinstance(source.data, dict) else {}
            name = data.get("name") or data.get("extends") or path.stem
            broken.add(str(name))
        return None
    return source
