"""Charts as server-rendered SVG (no script, readable in both languages, scaling to phone width
through the viewBox): horizontal bars (labels of any length, Chinese included), a funnel, and
bars against targets. Every bar can link to the records it counts (drill-down)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from html import escape
from typing import Any

PALETTE = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d")
WIDTH = 640
ROW = 30


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value as the user reads it
    link: str | None = None


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, Decimal):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def shown(value: Any) -> str:
    """A value as a chart shows it: thousands separated, no trailing zeros beyond two decimals."""
    if value is None:
        return "—"
    number = _number(value)
    return f"{number:,.0f}" if number == int(number) else f"{number:,.2f}"


def bars(items: list[Bar], title: str, color: str = PALETTE[0]) -> str:
    """Horizontal bars, the longest filling the width; each bar a link when it has one."""
    if not items:
        return f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} 40" class="chart"><text x="8" y="24" class="empty">—</text></svg>'
    label_width = min(220, max(60, max(_label_width(b.label) for b in items)))
    top = max((b.value for b in items), default=0) or 1
    height = ROW * len(items) + 10
    area = WIDTH - label_width - 90
    parts = [f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {height}" class="chart" preserveAspectRatio="xMinYMin meet">', f"<title>{escape(title)}</title>"]
    for i, bar in enumerate(items):
        y = 5 + i * ROW
        length = max(2.0, area * max(bar.value, 0) / top) if bar.value else 0
        body = (f'<text x="{label_width - 6}" y="{y + 19}" text-anchor="end" class="label">{escape(_clip(bar.label))}</text>'
                f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="{ROW - 10}" rx="3" fill="{color}"><title>{escape(bar.label)}: {escape(bar.shown)}</title></rect>'
                f'<text x="{label_width + length + 6:.1f}" y="{y + 19}" class="value">{escape(bar.shown)}</text>')
        parts.append(f'<a href="{escape(bar.link)}">{body}</a>' if bar.link else body)
    parts.append("</svg>")
    return "".join(parts)


def funnel(items: list[Bar], title: str) -> str:
    """Stages top to bottom, centred, each with its value and the conversion from the stage above."""
    if not items:
        return bars([], title)
    top = max((b.value for b in items), default=0) or 1
    height = 44 * len(items) + 10
    parts = [f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {height}" class="chart funnel">', f"<title>{escape(title)}</title>"]
    previous: float | None = None
    for i, bar in enumerate(items):
        width = max(40.0, (WIDTH - 200) * bar.value / top)
        x = (WIDTH - 200 - width) / 2 + 100
        y = 5 + i * 44
        rate = f" · {bar.value / previous:.0%}" if previous else ""
        body = (f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="36" rx="4" fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(bar.label)}: {escape(bar.shown)}</title></rect>'
                f'<text x="{WIDTH / 2}" y="{y + 23}" text-anchor="middle" class="inside">{escape(_clip(bar.label, 18))} {escape(bar.shown)}{rate}</text>')
        parts.append(f'<a href="{escape(bar.link)}">{body}</a>' if bar.link else body)
        previous = bar.value or None
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class TargetBar:
    label: str
    value: float
    target: float
    shown: str  # "actual / target · share" as the user reads it
    link: str | None = None


def share(value: float, target: float) -> str:
    """The part of the target reached, e.g. "82%" (a dash when there is no target)."""
    return f"{value / target:.0%}" if target else "—"


def targets(items: list[TargetBar], title: str) -> str:
    """Each group's bar against its target: a dark tick marks the target, the bar is green once
    the target is reached and amber before."""
    if not items:
        return bars([], title)
    label_width = min(220, max(60, max(_label_width(b.label) for b in items)))
    top = max(max(b.value, b.target) for b in items) or 1
    area = WIDTH - label_width - 170
    height = ROW * len(items) + 10
    parts = [f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {height}" class="chart targets" preserveAspectRatio="xMinYMin meet">',
             f"<title>{escape(title)}</title>"]
    for i, bar in enumerate(items):
        y = 5 + i * ROW
        length = max(2.0, area * max(bar.value, 0) / top) if bar.value else 0
        mark = label_width + area * max(bar.target, 0) / top
        color = PALETTE[1] if bar.target and bar.value >= bar.target else PALETTE[2]
        body = (f'<text x="{label_width - 6}" y="{y + 19}" text-anchor="end" class="label">{escape(_clip(bar.label))}</text>'
                f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="{ROW - 10}" rx="3" fill="{color}"><title>{escape(bar.label)}: {escape(bar.shown)}</title></rect>'
                f'<line x1="{mark:.1f}" x2="{mark:.1f}" y1="{y + 1}" y2="{y + ROW - 3}" stroke="#111827" stroke-width="3" class="target"/>'
                f'<text x="{max(label_width + length, mark) + 8:.1f}" y="{y + 19}" class="value">{escape(bar.shown)}</text>')
        parts.append(f'<a href="{escape(bar.link)}">{body}</a>' if bar.link else body)
    parts.append("</svg>")
    return "".join(parts)


def _label_width(text: str) -> int:
    return sum(13 if ord(ch) > 0x2E80 else 7 for ch in _clip(text)) + 12


def _clip(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
