"""Auto-number formats such as `HT-{YYYY}-{seq:4}`: parsing, checking and rendering."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_TOKEN = re.compile(r"\{([^{}]*)\}")
_DATE_TOKENS = {"YYYY": "%Y", "YY": "%y", "MM": "%m", "DD": "%d"}


@dataclass(frozen=True)
class AutoNumberFormat:
    text: str
    width: int

    def period_key(self, today: dt.date) -> str:
        """The part of the number that resets the sequence (e.g. the year for {YYYY})."""
        return "".join(
            today.strftime(_DATE_TOKENS[t]) for t in _TOKEN.findall(self.text) if t in _DATE_TOKENS
        )

    def render(self, today: dt.date, seq: int) -> str:
        def sub(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in _DATE_TOKENS:
                return today.strftime(_DATE_TOKENS[token])
            return str(seq).zfill(self.width)

        return _TOKEN.sub(sub, self.text)


def parse_format(text: str) -> AutoNumberFormat:
    """Raises ValueError explaining what is wrong with the format."""
    outside = _TOKEN.sub("", text)
    if "{" in outside or "}" in outside:
        raise ValueError("unbalanced braces in the format; write tokens as {YYYY} or {seq:4}")
    seq_width: int | None = None
    for token in _TOKEN.findall(text):
        if token in _DATE_TOKENS:
            continue
        match = re.fullmatch(r"seq(?::(\d+))?", token)
        if not match:
            raise ValueError(
                f"unknown token {{{token}}}; use {{YYYY}}, {{YY}}, {{MM}}, {{DD}} and one {{seq:N}}"
            )
        if seq_width is not None:
            raise ValueError("the format must contain {seq} only once")
        seq_width = int(match.group(1) or 1)
        if not 1 <= seq_width <= 12:
            raise ValueError("the width of {seq:N} must be between 1 and 12")
    if seq_width is None:
        raise ValueError("the format must contain a sequence token such as {seq:4}")
    return AutoNumberFormat(text, seq_width)
