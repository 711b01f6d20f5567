"""The workflow diagram: layers by distance from the initial state, every state and transition
drawn and labelled (escaped), a viewBox that holds the drawing, phone-width wrapping."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from crm_platform.ui.workflow_diagram import (
    ANY,
    BOX_W,
    Edge,
    Node,
    fit,
    layers,
    render_svg,
    text_width,
    wrap,
)

SVG = "{http://www.w3.org/2000/svg}"

NODES = [Node("open", "Open"), Node("review", "In review"), Node("won", "Won", final=True), Node("lost", "Lost", final=True), Node("archived", "Archived")]
EDGES = [
    Edge("submit", "Submit for approval", ("open",), "review"),
    Edge("approve", "Approve", ("review",), "won"),
    Edge("send_back", "Send back", ("review",), "open"),
    Edge("lose", "Mark lost", ("open", "review"), "lost"),
    Edge("reopen", "Reopen", ("won", "lost"), "open"),
]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_states_are_layered_by_distance_from_the_initial_state() -> None:
    rows = layers(NODES, EDGES, "open")
    assert rows[0] == ["open"]
    assert sorted(rows[1]) == ["lost", "review"]
    assert rows[2] == ["won"]
    assert rows[3] == ["archived"]  # never reached: a last layer of its own


def test_a_transition_from_any_state_reaches_its_target_in_one_step() -> None:
    rows = layers([Node("a", "A"), Node("b", "B"), Node("c", "C")], [Edge("ab", "AB", ("a",), "b"), Edge("cancel", "Cancel", (ANY,), "c")], "a")
    assert rows == [["a"], ["b", "c"]]


def test_wide_layers_wrap_for_phones() -> None:
    assert wrap([["a"], ["b", "c", "d"]], 2) == [["a"], ["b", "c"], ["d"]]
    nodes = [Node("start", "Start")] + [Node(f"s{i}", f"S{i}") for i in range(6)]
    edges = [Edge(f"go{i}", f"Go {i}", ("start",), f"s{i}") for i in range(6)]
    wide, narrow = render_svg(nodes, edges, "start", per_row=6), render_svg(nodes, edges, "start", per_row=2)
    width = lambda svg: float(parse(svg).get("viewBox").split()[2])  # noqa: E731
    assert width(narrow) < width(wide) and width(narrow) <= 2 * BOX_W + 200


def test_every_state_and_transition_is_drawn_and_labelled() -> None:
    svg = render_svg(NODES, EDGES, "open", title="Deal flow", ident="t1")
    root = parse(svg)
    assert root.tag == f"{SVG}svg" and root.get("width") == "100%" and root.get("role") == "img"
    states = {g.get("data-state"): g for g in root.iter(f"{SVG}g") if g.get("data-state")}
    assert set(states) == {"open", "review", "won", "lost", "archived"}
    assert [t.text for t in states["review"].iter(f"{SVG}text")] == ["In review"]
    assert "initial" in states["open"].get("class") and "final" in states["won"].get("class")
    assert len(list(states["won"].iter(f"{SVG}rect"))) == 2  # a final state has a double border
    arrows = [p for p in root.iter(f"{SVG}path") if p.get("data-transition")]
    assert sorted(p.get("data-transition") for p in arrows) == ["approve", "lose", "lose", "reopen", "reopen", "send_back", "submit"]
    labels = {g.get("data-transition"): "".join(t.text or "" for t in g.iter(f"{SVG}text")) for g in root.iter(f"{SVG}g") if g.get("class") == "edge-label"}
    assert labels == {"submit": "Submit for approval", "approve": "Approve", "send_back": "Send back", "lose": "Mark lost", "reopen": "Reopen"}
    assert root.find(f"{SVG}title").text == "Deal flow"
    assert all(p.get("marker-end") == "url(#t1-arrow)" for p in arrows)


def test_the_viewbox_holds_every_box_and_label() -> None:
    root = parse(render_svg(NODES, EDGES, "open"))
    x0, y0, w, h = (float(v) for v in root.get("viewBox").split())
    for rect in root.iter(f"{SVG}rect"):
        x, y = float(rect.get("x")), float(rect.get("y"))
        assert x0 <= x and x + float(rect.get("width")) <= x0 + w
        assert y0 <= y and y + float(rect.get("height")) <= y0 + h


def test_labels_do_not_cover_each_other_or_the_states() -> None:
    root = parse(render_svg(NODES, EDGES, "open"))
    boxes = [tuple(float(r.get(k)) for k in ("x", "y", "width", "height")) for g in root.iter(f"{SVG}g") if g.get("class") == "edge-label" for r in g.iter(f"{SVG}rect")]
    boxes += [tuple(float(r.get(k)) for k in ("x", "y", "width", "height")) for g in root.iter(f"{SVG}g") if g.get("data-state") for r in list(g.iter(f"{SVG}rect"))[:1]]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]), (a, b)


def test_text_is_escaped_and_long_labels_are_shortened_with_their_full_text_kept() -> None:
    long = "Send the signed contract back to the customer for a second signature"
    svg = render_svg([Node("a", "<A & B>"), Node("b", "已签订")], [Edge("x", long, ("a",), "b")], "a")
    root = parse(svg)  # well-formed despite < and &
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "<A & B>" in texts and "已签订" in texts
    shown = next(t for t in texts if t and t.startswith("Send the"))
    assert shown.endswith("…") and len(shown) < len(long)
    assert any(long in (t.text or "") for t in root.iter(f"{SVG}title"))


def test_self_loops_and_any_state_transitions() -> None:
    root = parse(render_svg([Node("a", "A"), Node("b", "B")], [Edge("touch", "Touch", ("a",), "a"), Edge("cancel", "Cancel", (ANY,), "b")], "a", any_label="any state"))
    assert "any state" in [t.text for t in root.iter(f"{SVG}text")]
    loop = next(p for p in root.iter(f"{SVG}path") if p.get("data-transition") == "touch")
    assert " C" in loop.get("d")  # drawn as a loop beside the box
    dashed = next(p for p in root.iter(f"{SVG}path") if p.get("data-transition") == "cancel")
    assert dashed.get("stroke-dasharray")


def test_text_width_counts_wide_characters_as_a_full_em() -> None:
    assert text_width("已签订", 10) == 30 and text_width("abc", 10) < 20
    assert fit("short", 100) == "short" and fit("x" * 100, 50).endswith("…")


def test_an_empty_workflow_still_renders() -> None:
    svg = render_svg([Node("only", "Only")], [], "only")
    assert re.search(r'viewBox="[-\d.]+ [-\d.]+ \d+ \d+"', svg) and ">Only</text>" in svg
