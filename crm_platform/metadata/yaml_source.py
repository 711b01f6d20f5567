"""Reading YAML pack files into plain data while keeping the line and column of every node."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from crm_platform.metadata.errors import Problem

JsonPath = tuple[str | int, ...]
Position = tuple[int, int]  # 0-based (line, column), as ruamel keeps them

_STR_TAG = "tag:yaml.org,2002:str"


@dataclass
class SourceFile:
    """A parsed file: plain data (dicts, lists, scalars) and the position of each path in it.

    `positions` holds where each value starts; `key_positions` where the key of each mapping
    entry starts (a problem about the key itself, such as an unknown property, points there).
    """

    path: str
    data: Any
    positions: dict[JsonPath, Position] = field(default_factory=dict)
    key_positions: dict[JsonPath, Position] = field(default_factory=dict)

    def where(self, path: JsonPath, at_key: bool = False) -> tuple[int | None, int | None]:
        """1-based (line, column) of the node at `path` (or of its key), else of its nearest ancestor."""
        probe = tuple(path)
        if at_key and probe in self.key_positions:
            line, col = self.key_positions[probe]
            return line + 1, col + 1
        while True:
            if probe in self.positions:
                line, col = self.positions[probe]
                return line + 1, col + 1
            if not probe:
                return None, None
            probe = probe[:-1]

    def problem(self, path: JsonPath, message: str, code: str = "pack.invalid", at_key: bool = False) -> Problem:
        line, col = self.where(path, at_key)
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
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(shown, None, None, f"cannot read file: {exc}", "pack.unreadable")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")) + 1
        message = f"byte 0x{raw[exc.start]:02x} is not UTF-8; save pack files as UTF-8 text"
        return None, [Problem(shown, line, column, message, "pack.not_utf8")]
    return parse_yaml_text(text, shown)


def parse_yaml_text(text: str, shown: str) -> tuple[SourceFile | None, list[Problem]]:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        raw = yaml.load(text)
    except DuplicateKeyError as exc:
        return None, [_marked(exc, shown, _duplicate_message(exc), "pack.duplicate_key")]
    except MarkedYAMLError as exc:
        return None, [_marked(exc, shown, _syntax_message(exc), "pack.yaml_syntax")]
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. bad tags)
        return None, [Problem(shown, None, None, f"YAML error: {exc}", "pack.yaml_syntax")]
    source = SourceFile(shown, None)
    converter = _Converter(source)
    source.data = converter.plain(raw, ())
    return (None, converter.problems) if converter.problems else (source, [])


def _marked(exc: MarkedYAMLError, shown: str, message: str, code: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    col = mark.column + 1 if mark else None
    return Problem(shown, line, col, message, code)


def _syntax_message(exc: MarkedYAMLError) -> str:
    what = (exc.problem or exc.context or "invalid YAML").strip()
    context, mark = exc.context, exc.context_mark
    if exc.problem and context and mark is not None and mark is not exc.problem_mark:
        what += f" ({context.strip()} that starts at line {mark.line + 1}, column {mark.column + 1})"
    return f"YAML syntax error: {what}"


def _duplicate_message(exc: DuplicateKeyError) -> str:
    problem = (exc.problem or "").strip()
    # ruamel: 'found duplicate key "name" with value "b" (original value: "a")'
    key = problem.split('"')[1] if problem.count('"') >= 2 else "?"
    start = f" (the mapping starts at line {exc.context_mark.line + 1})" if exc.context_mark else ""
    return f"duplicate key '{key}': each key may appear only once in a mapping{start}"


@dataclass
class _Converter:
    """Turns ruamel's round-trip nodes into plain data, recording positions and bad tags."""

    source: SourceFile
    problems: list[Problem] = field(default_factory=list)

    def plain(self, node: Any, path: JsonPath) -> Any:
        positions = self.source.positions
        if isinstance(node, CommentedMap):
            if not path:
                positions[path] = (node.lc.line, node.lc.col)
            out: dict[str, Any] = {}
            for key, value in node.items():
                child = (*path, str(key))
                self._record(child, node, key)
                if isinstance(value, (CommentedMap, CommentedSeq)):
                    positions[child] = (value.lc.line, value.lc.col)
                out[str(key)] = self.plain(value, child)
            return out
        if isinstance(node, CommentedSeq):
            if not path:
                positions[path] = (node.lc.line, node.lc.col)
            items = []
            for index, value in enumerate(node):
                child = (*path, index)
                try:
                    positions[child] = tuple(node.lc.item(index))  # type: ignore[assignment]
                except (KeyError, TypeError, IndexError):
                    positions[child] = (node.lc.line, node.lc.col)
                items.append(self.plain(value, child))
            return items
        return self._scalar(node, path)

    def _record(self, child: JsonPath, node: CommentedMap, key: Any) -> None:
        try:
            self.source.positions[child] = tuple(node.lc.value(key))  # type: ignore[assignment]
        except (KeyError, TypeError):
            self.source.positions[child] = (node.lc.line, node.lc.col)
        try:
            self.source.key_positions[child] = tuple(node.lc.key(key))  # type: ignore[assignment]
        except (KeyError, TypeError):
            pass

    def _scalar(self, node: Any, path: JsonPath) -> Any:
        if isinstance(node, TaggedScalar):
            if str(node.tag.value) == _STR_TAG:
                return str(node.value)
            tag = str(node.tag.value).replace("tag:yaml.org,2002:", "!!")
            self._bad(path, f"YAML tag '{tag}' is not allowed in pack files; write a plain value")
            return None
        if isinstance(node, (bool, ScalarBoolean)):  # ScalarBoolean (an anchored bool) is an int
            return bool(node)
        if node is None or isinstance(node, str):
            return None if node is None else str(node)
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, (datetime.date, datetime.datetime)):
            return node.isoformat()
        self._bad(path, f"a {type(node).__name__} value is not allowed in pack files; write text, a number or a boolean")
        return None

    def _bad(self, path: JsonPath, message: str) -> None:
        self.problems.append(self.source.problem(path, message, "pack.yaml_value"))
