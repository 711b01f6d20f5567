"""Regular expressions for matches(): checked once, when the rule is checked.

Python's `re` has no timeout, so patterns are kept small (MAX_PATTERN characters), nested
repetition such as `(a+)+` (the classic catastrophic backtracking) is refused, and
matches() tests at most 10,000 characters of text.
"""

from __future__ import annotations

import re
from typing import Any

try:  # the parser behind `re` (public as sre_parse before Python 3.11)
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

MAX_PATTERN = 200
_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


def compile_pattern(pattern: str) -> tuple[re.Pattern[str] | None, str | None]:
    """The compiled pattern, or None and a message saying what is wrong with it."""
    if len(pattern) > MAX_PATTERN:
        return None, f"the pattern is too long ({len(pattern)} characters; at most {MAX_PATTERN})"
    try:
        compiled = re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return None, f"the pattern is not a valid regular expression: {exc}"
    if _nested_repeat(list(parsed), inside=False):
        return (
            None,
            "the pattern repeats a repetition (like (a+)+), which can take forever; simplify it",
        )
    return compiled, None


def _nested_repeat(items: list[Any], inside: bool) -> bool:
    for op, argument in items:
        name = str(op)
        if name in _REPEATS:
            _low, high, sub = argument
            repeats = high is sre_parse.MAXREPEAT or high > 1
            if (repeats and inside) or _nested_repeat(list(sub), inside or repeats):
                return True
            continue
        if name == "SUBPATTERN":
            parts = [list(argument[-1])]
        elif name == "BRANCH":
            parts = [list(branch) for branch in argument[1]]
        elif name in ("ASSERT", "ASSERT_NOT"):
            parts = [list(argument[1])]
        elif name == "ATOMIC_GROUP":
            parts = [list(argument)]
        else:
            continue
        if any(_nested_repeat(part, inside) for part in parts):
            return True
    return False
