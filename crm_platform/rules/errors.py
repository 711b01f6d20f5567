"""RuleError: the one error of the rules language, with its place and a caret rendering.

Syntax errors, type errors and evaluation errors (division by zero) are all RuleErrors; the
language raises nothing else for bad input.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace

from crm_platform.rules.ast import Span

# Stable error codes (the designer and the API may key on them).
SYNTAX = "rules.syntax"
UNKNOWN_NAME = "rules.unknown_name"
TYPE = "rules.type"
VALUE = "rules.value"
USAGE = "rules.usage"
EVALUATION = "rules.evaluation"


@dataclass(eq=False)
class RuleError(Exception):
    """A problem in a rule, found while parsing, checking or evaluating it.

    `line`/`column` are 1-based; `end_column` is exclusive (the column after the last
    character). `source_line` is the text of the line, for the caret rendering.
    """

    message: str
    line: int = 1
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None
    file: str | None = None
    source_line: str | None = None
    code: str = SYNTAX

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    @classmethod
    def at(
        cls, span: Span | None, message: str, source: str | None = None, code: str = TYPE
    ) -> RuleError:
        """An error at `span` of the expression text `source`."""
        if span is None:
            return cls(message, code=code, source_line=_line_of(source, 1))
        return cls(
            message,
            span.line,
            span.column,
            span.end_line,
            span.end_column,
            source_line=_line_of(source, span.line),
            code=code,
        )

    def __str__(self) -> str:
        return f"{self.where()}: {self.message}"

    def where(self) -> str:
        parts = [self.file or "<rule>", str(self.line), str(self.column)]
        return ":".join(parts)

    def render(self) -> str:
        """`file:line:col: message`, the source line, and carets under the spot."""
        head = str(self)
        if self.source_line is None:
            return head
        text = self.source_line.rstrip("\n")
        start = max(self.column - 1, 0)
        if self.end_line == self.line and self.end_column and self.end_column > self.column:
            width = self.end_column - self.column
        else:
            width = 1
        width = max(1, min(width, max(len(text) - start, 1)))
        prefix = "".join(_blank_like(ch) for ch in text[:start])
        carets = "".join("^^" if _wide(ch) else "^" for ch in text[start : start + width]) or "^"
        return f"{head}\n    {text}\n    {prefix}{carets}"

    def in_file(self, file: str, source_line: str | None = None) -> RuleError:
        """The same error, naming `file` (and the line's text when it was not known)."""
        return replace(
            self, file=file, source_line=self.source_line if source_line is None else source_line
        )

    def shifted(
        self, line: int, column: int, file: str | None = None, source_line: str | None = None
    ) -> RuleError:
        """The same error for an expression embedded at `line`:`column` of a larger file (YAML)."""
        new_column = self.column + column - 1 if self.line == 1 else self.column
        new_end = self.end_column
        if self.end_column is not None and self.end_line == 1:
            new_end = self.end_column + column - 1
        return replace(
            self,
            line=self.line + line - 1,
            column=new_column,
            end_line=None if self.end_line is None else self.end_line + line - 1,
            end_column=new_end,
            file=file or self.file,
            source_line=source_line if source_line is not None else self.source_line,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "message": self.message,
            "code": self.code,
            "rendered": self.render(),
        }


def _line_of(source: str | None, line: int) -> str | None:
    if source is None:
        return None
    lines = source.split("\n")
    return lines[line - 1] if 0 < line <= len(lines) else None


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _blank_like(ch: str) -> str:
    if ch == "\t":
        return "\t"
    return "  " if _wide(ch) else " "


class RuleErrors(Exception):
    """Several RuleErrors at once (a rule that does not check); `errors` lists them in order."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file or "", e.line, e.column))
        super().__init__("\n".join(e.render() for e in self.errors))
