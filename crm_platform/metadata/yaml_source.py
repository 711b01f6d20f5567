"""Reading YAML pack files into plain data while keeping the line and column of every node."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from crm_platform.metadata.errors import Problem

JsonPath = tuple[str | int, ...]


@dataclass
class SourceFile:
    """A parsed file: plain data (dicts, lists, scalars) and the position of each path in it."""

    path: str
    data: Any
    positions: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: JsonPath) -> tuple[int | None, int | None]:
        """1-based (line, column) of the node at `path`, or of its nearest ancestor."""
        probe = tuple(path)
        while True:
            if probe in self.positions:
                line, col = self.positions[probe]
                return line + 1, col + 1
            if not probe:
                return None, None
            probe = probe[:-1]

    def problem(self, path: JsonPath, message: str, code: str = "pack.invalid") -> Problem:
        line, col = self.where(path)
        return Problem(self.path, line, col, message, code)


def display_path(path: Path) -> str:
    """A path as the user wrote it: relative to the working directory when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_yaml_file(path: Path) -> tuple[SourceFile | None, list[Problem]]:
    """Parse one YAML file; a syntax error or duplicate key becomes a Problem with its place."""
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(shown, None, None, f"cannot read file: {exc}", "pack.unreadable")]
    return parse_yaml_text(text, shown)


def parse_yaml_text(text: str, shown: str) -> tuple[SourceFile | None, list[Problem]]:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        what = (exc.problem or exc.context or "invalid YAML").strip()
        return None, [Problem(shown, line, col, f"YAML syntax error: {what}", "pack.yaml_syntax")]
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. bad tags)
        return None, [Problem(shown, None, None, f"YAML error: {exc}", "pack.yaml_syntax")]
    source = SourceFile(shown, None)
    source.data = _plain(raw, (), source.positions)
    return source, []


def _plain(node: Any, path: JsonPath, positions: dict[JsonPath, tuple[int, int]]) -> Any:
    if isinstance(node, CommentedMap):
        if not path:
            positions[path] = (node.lc.line, node.lc.col)
        out: dict[str, Any] = {}
        for key, value in node.items():
            child = (*path, str(key))
            try:
                positions[child] = tuple(node.lc.value(key))  # type: ignore[assignment]
            except (KeyError, TypeError):
                positions[child] = (node.lc.line, node.lc.col)
            if isinstance(value, (CommentedMap, CommentedSeq)):
                positions[child] = (value.lc.line, value.lc.col)
            out[str(key)] = _plain(value, child, positions)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            child = (*path, index)
            try:
                positions[child] = tuple(node.lc.item(index))  # type: ignore[assignment]
            except (KeyError, TypeError, IndexError):
                positions[child] = (node.lc.line, node.lc.col)
            items.append(_plain(value, child, positions))
        return items
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, (datetime.date, datetime.datetime)):
        return node.isoformat()
    return node
