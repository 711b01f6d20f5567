"""Errors with a place: every problem found in a pack names its file, line and column."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a pack, with where it is and what to do about it.

    `line` and `column` are 1-based, as editors show them; either may be None when the
    problem belongs to a whole file or pack (a dependency cycle, a missing folder).
    """

    file: str
    line: int | None
    column: int | None
    message: str
    code: str = "pack.invalid"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "code": self.code,
        }


class PackError(Exception):
    """Raised when one or more packs are invalid; carries every problem found, not only the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(set(problems), key=_sort_key)
        super().__init__(self.report())

    def report(self) -> str:
        lines = [str(p) for p in self.problems]
        noun = "problem" if len(lines) == 1 else "problems"
        return "\n".join([*lines, f"{len(lines)} {noun} found"])


def _sort_key(p: Problem) -> tuple[str, int, int, str]:
    return (p.file, p.line or 0, p.column or 0, p.message)


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like `name` (a likely typo), or None when none is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """"; did you mean 'x'?" for the closest candidate, or "" when none is close."""
    close = closest(name, candidates)
    return f"; did you mean '{close}'?" if close else ""
