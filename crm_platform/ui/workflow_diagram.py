"""A workflow's state machine as server-rendered SVG (no script): states as boxes in layers by
their distance from the initial state (top to bottom, so the drawing stays narrow at phone
width), transitions as labelled arrows. The viewBox holds the whole drawing, so it scales to any
width; every box and label carries a <title> with its full text. Pure functions of plain data."""

from __future__ import annotations

import math
import unicodedata
from collections import deque
from dataclasses import dataclass
from html import escape

ANY = "*"  # a transition from any state
BOX_W, BOX_H = 150, 40
H_GAP, V_GAP = 46, 104
FONT = 13
LABEL_FONT = 12
PAD = 16


@dataclass(frozen=True)
class Node:
    name: str
    label: str
    final: bool = False


@dataclass(frozen=True)
class Edge:
    name: str
    label: str
    sources: tuple[str, ...]
    target: str


@dataclass
class _Box:
    name: str
    label: str
    x: float
    y: float
    final: bool = False
    pseudo: bool = False

    @property
    def cx(self) -> float:
        return self.x + BOX_W / 2

    @property
    def cy(self) -> float:
        return self.y + BOX_H / 2


def text_width(text: str, size: int = FONT) -> float:
    """An estimate of the drawn width: wide (CJK) characters take a full em, others about 0.58."""
    return sum(size if unicodedata.east_asian_width(ch) in ("W", "F") else size * 0.58 for ch in text)


def fit(text: str, width: float, size: int = FONT) -> str:
    """`text` shortened with an ellipsis to fit `width`."""
    if text_width(text, size) <= width:
        return text
    out = ""
    for ch in text:
        if text_width(out + ch + "…", size) > width:
            break
        out += ch
    return out + "…"


def layers(nodes: list[Node], edges: list[Edge], initial: str | None) -> list[list[str]]:
    """State names by distance from `initial` (breadth first, a transition from ANY reaching its
    target from every state); states it never reaches form the last layer. Within a layer, states
    are ordered by where their predecessors are (fewer crossings)."""
    names = [n.name for n in nodes]
    successors: dict[str, list[str]] = {n: [] for n in names}
    for edge in edges:
        if edge.target not in successors:
            continue
        sources = names if ANY in edge.sources else [s for s in edge.sources if s in successors]
        for source in sources:
            if edge.target not in successors[source]:
                successors[source].append(edge.target)
    start = initial if initial in successors else (names[0] if names else None)
    depth: dict[str, int] = {}
    if start is not None:
        depth[start] = 0
        queue = deque([start])
        while queue:
            current = queue.popleft()
            for nxt in successors[current]:
                if nxt not in depth:
                    depth[nxt] = depth[current] + 1
                    queue.append(nxt)
    rows: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in sorted(depth, key=lambda n: (depth[n], list(depth).index(n))):
        rows[depth[name]].append(name)
    unreached = [n for n in names if n not in depth]
    if unreached:
        rows.append(unreached)
    for i in range(1, len(rows)):
        above = {name: j for j, name in enumerate(rows[i - 1])}
        found = {name: j for j, name in enumerate(rows[i])}

        def centre(name: str, above: dict[str, int] = above, found: dict[str, int] = found) -> float:
            preds = [above[s] for s in above if name in successors.get(s, [])]
            return sum(preds) / len(preds) if preds else len(above) + found[name]

        rows[i].sort(key=centre)
    return rows


def wrap(rows: list[list[str]], per_row: int) -> list[list[str]]:
    """Layers longer than `per_row` split over several rows (a narrow drawing for phones)."""
    out: list[list[str]] = []
    for row in rows:
        out.extend(row[i:i + per_row] for i in range(0, len(row), per_row))
    return out or [[]]


def _place(rows: list[list[str]], nodes: dict[str, Node], with_any: str | None) -> dict[str, _Box]:
    widest = max((len(r) + (1 if i == 0 and with_any else 0) for i, r in enumerate(rows)), default=1)
    full = widest * BOX_W + (widest - 1) * H_GAP
    boxes: dict[str, _Box] = {}
    for i, row in enumerate(rows):
        names = [*row, ANY] if i == 0 and with_any else list(row)
        left = (full - (len(names) * BOX_W + (len(names) - 1) * H_GAP)) / 2
        for j, name in enumerate(names):
            x, y = left + j * (BOX_W + H_GAP), i * (BOX_H + V_GAP)
            if name == ANY:
                boxes[name] = _Box(name, with_any or ANY, x, y, pseudo=True)
            else:
                node = nodes[name]
                boxes[name] = _Box(name, node.label, x, y, node.final)
    return boxes


def _clip(box: _Box, toward: tuple[float, float]) -> tuple[float, float]:
    """Where the line from the box's centre toward a point leaves the box."""
    dx, dy = toward[0] - box.cx, toward[1] - box.cy
    if dx == 0 and dy == 0:
        return box.cx, box.y
    t = min((BOX_W / 2) / abs(dx) if dx else math.inf, (BOX_H / 2) / abs(dy) if dy else math.inf)
    return box.cx + dx * t, box.cy + dy * t


def _curve(a: _Box, b: _Box, offset: float) -> tuple[float, float, float, float, float, float, float]:
    """A quadratic curve from box a to box b bowed `offset` to the side: start, control, end, and the nudge size."""
    mx, my = (a.cx + b.cx) / 2, (a.cy + b.cy) / 2
    length = math.hypot(b.cx - a.cx, b.cy - a.cy) or 1
    nx, ny = -(b.cy - a.cy) / length, (b.cx - a.cx) / length
    cx, cy = mx + nx * offset * 2, my + ny * offset * 2
    sx, sy = _clip(a, (cx, cy))
    ex, ey = _clip(b, (cx, cy))
    return sx, sy, cx, cy, ex, ey, offset


def _blocked(curve: tuple[float, ...], boxes: list[_Box]) -> int:
    """How many points along the curve fall inside other boxes (the curve should go around them)."""
    sx, sy, cx, cy, ex, ey = curve[:6]
    hits = 0
    for i in range(1, 20):
        t = i / 20
        x = (1 - t) ** 2 * sx + 2 * (1 - t) * t * cx + t * t * ex
        y = (1 - t) ** 2 * sy + 2 * (1 - t) * t * cy + t * t * ey
        hits += sum(1 for o in boxes if o.x - 4 <= x <= o.x + BOX_W + 4 and o.y - 4 <= y <= o.y + BOX_H + 4)
    return hits


def _channel(a: _Box, b: _Box, between: list[_Box], used: dict[int, int]) -> tuple[str, tuple[float, float], tuple[float, float, float, float]]:
    """A path from a to b over several rows: out of a, along a vertical channel that no box of the
    rows between blocks (the free one nearest to the middle), into b. Returns the path, where its
    label goes (in the gap before b) and the area it covers."""
    middle = (a.cx + b.cx) / 2
    candidates = [middle] + [x for o in between for x in (o.x - H_GAP / 2, o.x + BOX_W + H_GAP / 2)]
    free = [x for x in candidates if all(not (o.x - 8 <= x <= o.x + BOX_W + 8) for o in between)]
    x = min(free or candidates, key=lambda c: abs(c - middle))
    k = used.get(round(x), 0)
    used[round(x)] = k + 1
    x += 7 * ((k + 1) // 2) * (1 if k % 2 else -1)  # edges sharing a channel run side by side
    down = b.y > a.y
    sx, ex = min(max(x, a.x + 12), a.x + BOX_W - 12), min(max(x, b.x + 12), b.x + BOX_W - 12)
    sy, ey = (a.y + BOX_H, b.y) if down else (a.y, b.y + BOX_H)
    y1, y2 = (sy + V_GAP / 2, ey - V_GAP / 2) if down else (sy - V_GAP / 2, ey + V_GAP / 2)
    d = (f"M{sx:.1f},{sy:.1f} C{sx:.1f},{y1:.1f} {x:.1f},{sy:.1f} {x:.1f},{y1:.1f} L{x:.1f},{y2:.1f} "
         f"C{x:.1f},{ey:.1f} {ex:.1f},{y2:.1f} {ex:.1f},{ey:.1f}")
    left, top = min(sx, x, ex), min(sy, ey)
    return d, (x, y2), (left, top, max(sx, x, ex) - left, abs(ey - sy))


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


_NUDGES = sorted(((dx, dy) for dy in (0, 20, -20, 40, -40, 60, -60) for dx in (0, 36, -36, 72, -72)), key=lambda p: abs(p[0]) / 2 + abs(p[1]))


def _free_spot(left: float, top: float, w: float, h: float, taken: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    """The nearest place for a label that covers no box and no other label (else the least covered)."""
    best, fewest = (left, top, w, h), len(taken) + 1
    for dx, dy in _NUDGES:
        spot = (left + dx, top + dy, w, h)
        covered = sum(1 for other in taken if _overlaps(spot, other))
        if covered == 0:
            return spot
        if covered < fewest:
            best, fewest = spot, covered
    return best


def render_svg(nodes: list[Node], edges: list[Edge], initial: str | None, title: str = "", any_label: str = "any state", ident: str = "wf",
               per_row: int = 4) -> str:
    """The diagram as an <svg> element (a string of markup, every text escaped); at most
    `per_row` boxes side by side (2 keeps it readable on a phone without zooming)."""
    by_name = {n.name: n for n in nodes}
    edges = [e for e in edges if e.target in by_name]
    with_any = any_label if any(ANY in e.sources for e in edges) else None
    rows = wrap(layers(nodes, edges, initial), max(1, per_row))
    boxes = _place(rows, by_name, with_any)
    row_of = {name: i for i, row in enumerate(rows) for name in row}
    if with_any:
        row_of[ANY] = 0
    taken: list[tuple[float, float, float, float]] = [(b.x, b.y, BOX_W, BOX_H) for b in boxes.values()]
    extent = [0.0, -34.0, max((b.x + BOX_W for b in boxes.values()), default=BOX_W), max((b.y + BOX_H for b in boxes.values()), default=BOX_H)]

    def grow(x: float, y: float, w: float = 0, h: float = 0) -> None:
        extent[0], extent[1] = min(extent[0], x), min(extent[1], y)
        extent[2], extent[3] = max(extent[2], x + w), max(extent[3], y + h)

    pairs: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for edge in edges:
        for source in (ANY,) if ANY in edge.sources else tuple(s for s in edge.sources if s in by_name):
            pairs.setdefault(tuple(sorted((source, edge.target))), []).append((source, edge.name))  # type: ignore[arg-type]
    paths: list[str] = []
    labels: list[str] = []
    loops: dict[str, int] = {}
    channels: dict[int, int] = {}
    for edge in edges:
        sources = (ANY,) if ANY in edge.sources else tuple(s for s in edge.sources if s in by_name)
        shared = len(sources) > 1  # one label near the target, where the arrows meet
        labelled = False
        everyone = ", ".join(boxes[s].label for s in sources)
        for source in sources:
            a, b = boxes[source], boxes[edge.target]
            tip = escape(f"{edge.label} ({edge.name}): {everyone if shared else a.label} → {b.label}")
            if source == edge.target:
                k = loops.get(source, 0)
                loops[source] = k + 1
                reach = 34 + 14 * k
                sx, sy, ex, ey = a.x + BOX_W, a.y + 10, a.x + BOX_W, a.y + BOX_H - 10
                d = f"M{sx:.1f},{sy:.1f} C{sx + reach:.1f},{sy - 22:.1f} {ex + reach:.1f},{ey + 22:.1f} {ex:.1f},{ey:.1f}"
                lx, ly = sx + reach + 4, a.cy - 8 + 18 * k
                grow(sx, sy - 22, reach + 2, BOX_H + 44)
            else:
                group = pairs[tuple(sorted((source, edge.target)))]  # type: ignore[index]
                index = group.index((source, edge.name))
                offset = (index - (len(group) - 1) / 2) * 26
                if (source, edge.target) != tuple(sorted((source, edge.target))):
                    offset = -offset
                span = abs(row_of[edge.target] - row_of[source])
                gap = abs(a.x - b.x) / (BOX_W + H_GAP)
                if span == 0:
                    offset += 30 + 16 * (gap - 1)  # an arc beside the row (over the boxes between them)
                elif span > 1:
                    offset += 40 * (span - 1)
                if row_of[edge.target] < row_of[source] and not group[1:]:
                    offset += 30  # a way back curves aside
                others = [o for o in boxes.values() if o is not a and o is not b]
                tries = [_curve(a, b, offset + nudge) for nudge in (0, 30, -30, 60, -60, 90, -90)]
                best = min(enumerate(tries), key=lambda pair: (_blocked(pair[1], others), pair[0]))[1]
                if span > 1 and _blocked(tries[0], others):  # around the rows between: along a free channel
                    between = [o for o in others if min(row_of[source], row_of[edge.target]) < row_of[o.name] < max(row_of[source], row_of[edge.target])]
                    d, (lx, ly), area = _channel(a, b, between, channels)
                    grow(*area)
                else:
                    sx, sy, cx, cy, ex, ey = best[:6]
                    d = f"M{sx:.1f},{sy:.1f} Q{cx:.1f},{cy:.1f} {ex:.1f},{ey:.1f}"
                    t = 0.8 if shared else 0.5
                    lx, ly = (1 - t) ** 2 * sx + 2 * (1 - t) * t * cx + t * t * ex, (1 - t) ** 2 * sy + 2 * (1 - t) * t * cy + t * t * ey
                    grow(min(sx, cx, ex), min(sy, cy, ey), abs(max(sx, cx, ex) - min(sx, cx, ex)), abs(max(sy, cy, ey) - min(sy, cy, ey)))
            dash = ' stroke-dasharray="5 4"' if a.pseudo else ""
            paths.append(f'<path d="{d}" fill="none" stroke="#64748b" stroke-width="1.5"{dash} marker-end="url(#{ident}-arrow)" data-transition="{escape(edge.name)}"><title>{tip}</title></path>')
            if shared and labelled:
                continue
            labelled = True
            text = fit(edge.label, 170, LABEL_FONT)
            w, h = text_width(text, LABEL_FONT) + 10, LABEL_FONT + 6
            left = lx if source == edge.target else lx - w / 2
            top = ly - h / 2
            spot = _free_spot(left, top, w, h, taken)
            taken.append(spot)
            grow(*spot)
            labels.append(f'<g class="edge-label" data-transition="{escape(edge.name)}"><title>{tip}</title>'
                          f'<rect x="{spot[0]:.1f}" y="{spot[1]:.1f}" width="{w:.1f}" height="{h}" rx="3" fill="#ffffff" fill-opacity="0.92" stroke="#cbd5e1"/>'
                          f'<text x="{spot[0] + w / 2:.1f}" y="{spot[1] + h - 5:.1f}" text-anchor="middle" font-size="{LABEL_FONT}" fill="#1e293b">{escape(text)}</text></g>')
    shapes: list[str] = []
    for box in boxes.values():
        shown = fit(box.label, BOX_W - 14)
        style = 'fill="#f8fafc" stroke="#94a3b8" stroke-dasharray="4 3"' if box.pseudo else 'fill="#eff6ff" stroke="#2563eb"'
        width = 2.5 if box.name == initial else 1.5
        inner = (f'<rect x="{box.x + 4}" y="{box.y + 4}" width="{BOX_W - 8}" height="{BOX_H - 8}" rx="5" fill="none" stroke="#2563eb"/>' if box.final else "")
        start = ""
        if box.name == initial:
            start = (f'<circle cx="{box.cx}" cy="{box.y - 26}" r="6" fill="#1e293b"/>'
                     f'<path d="M{box.cx},{box.y - 20} L{box.cx},{box.y - 2}" stroke="#1e293b" stroke-width="1.5" marker-end="url(#{ident}-arrow)"/>')
        full = escape(box.label if box.pseudo else f"{box.label} ({box.name})")
        shapes.append(f'<g class="state{" final" if box.final else ""}{" initial" if box.name == initial else ""}" data-state="{escape(box.name)}"><title>{full}</title>{start}'
                      f'<rect x="{box.x}" y="{box.y}" width="{BOX_W}" height="{BOX_H}" rx="8" {style} stroke-width="{width}"/>{inner}'
                      f'<text x="{box.cx}" y="{box.cy + FONT / 2 - 2}" text-anchor="middle" font-size="{FONT}" fill="#0f172a">{escape(shown)}</text></g>')
    x0, y0 = extent[0] - PAD, extent[1] - PAD
    width, height = extent[2] - extent[0] + 2 * PAD, extent[3] - extent[1] + 2 * PAD
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="workflow-diagram" viewBox="{x0:.0f} {y0:.0f} {width:.0f} {height:.0f}" '
            f'width="100%" style="max-width:{width:.0f}px;height:auto" preserveAspectRatio="xMidYMin meet" role="img" aria-labelledby="{ident}-title" '
            f'font-family="system-ui, -apple-system, \'Segoe UI\', \'PingFang SC\', \'Microsoft YaHei\', sans-serif">'
            f'<title id="{ident}-title">{escape(title)}</title>'
            f'<defs><marker id="{ident}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="#475569"/></marker></defs>'
            f'<g class="edges">{"".join(paths)}</g><g class="states">{"".join(shapes)}</g><g class="labels">{"".join(labels)}</g></svg>')
