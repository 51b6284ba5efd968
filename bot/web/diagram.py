"""A category's state machine laid out for an SVG drawing (templates/_diagram.html): read from the
engine's own transitions Machine, states in columns by their distance from the start, no graphviz."""

from __future__ import annotations

from dataclasses import dataclass

from transitions import Machine

from dialogs.schema import Category

BOX_WIDTH, BOX_HEIGHT, COLUMN, ROW, MARGIN = 150, 44, 210, 80, 20


@dataclass(frozen=True)
class Node:
    name: str
    notes: str  # what the state does besides asking: opens the case, ends, hands over
    x: int
    y: int


@dataclass(frozen=True)
class Edge:
    label: str
    path: str  # an SVG path from the source box's right side to the target box's left side
    label_x: float
    label_y: float


@dataclass(frozen=True)
class Diagram:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    box_width: int = BOX_WIDTH
    box_height: int = BOX_HEIGHT


def _short(text: str, limit: int = 10) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def layout(machine: Machine, category: Category) -> Diagram:
    """Places every state of the machine and draws every transition; an option's edge carries its label."""
    moves = [(event, source, t.dest) for event, e in machine.events.items()
             for source, ts in e.transitions.items() for t in ts]
    depth = {machine.initial: 0}
    frontier = [machine.initial]
    while frontier:  # breadth first: a state's column is its fewest steps from the start
        following = []
        for state in frontier:
            for _, source, dest in moves:
                if source == state and dest not in depth:
                    depth[dest] = depth[state] + 1
                    following.append(dest)
        frontier = following
    for name in machine.states:  # unreachable states (the validator forbids them) still get drawn
        depth.setdefault(name, max(depth.values()) + 1)
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for name in machine.states:
        column = depth[name]
        row = rows.get(column, 0)
        rows[column] = row + 1
        place[name] = (MARGIN + column * COLUMN, MARGIN + row * ROW)
    nodes = [Node(name, _notes(category, name), *place[name]) for name in machine.states]
    edges = []
    for event, source, dest in moves:
        (x1, y1), (x2, y2) = place[source], place[dest]
        label = _label(category, source, event)
        if x2 > x1:  # forwards: a gentle curve from right side to left side
            sx, sy, tx, ty = x1 + BOX_WIDTH, y1 + BOX_HEIGHT / 2, x2, y2 + BOX_HEIGHT / 2
            mid = (sx + tx) / 2
            path = f"M{sx:.0f},{sy:.0f} C{mid:.0f},{sy:.0f} {mid:.0f},{ty:.0f} {tx:.0f},{ty:.0f}"
            lx, ly = mid, (sy + ty) / 2 - 4
        else:  # backwards or within a column: a loop under the boxes
            sx, sy, tx, ty = x1 + BOX_WIDTH / 2, y1 + BOX_HEIGHT, x2 + BOX_WIDTH / 2, y2 + BOX_HEIGHT
            low = max(sy, ty) + ROW / 2
            path = f"M{sx:.0f},{sy:.0f} C{sx:.0f},{low:.0f} {tx:.0f},{low:.0f} {tx:.0f},{ty:.0f}"
            lx, ly = (sx + tx) / 2, low - 6
        edges.append(Edge(label, path, lx, ly))
    width = MARGIN * 2 + max(depth.values()) * COLUMN + BOX_WIDTH
    height = MARGIN * 2 + max(rows.values()) * ROW + ROW // 2
    return Diagram(nodes, edges, width, height)


def _label(category: Category, source: str, event: str) -> str:
    state = category.flow.states.get(source)
    if state is not None and event.startswith("option"):
        return _short(state.options[int(event.removeprefix("option"))].label)
    return ""


def _notes(category: Category, name: str) -> str:
    state = category.flow.states.get(name)
    if state is None:
        return "开始"
    notes = []
    if state.collect:
        notes.append("收集 " + "、".join(category.facts[f].label if f in category.facts else f for f in state.collect))
    if state.open_case:
        notes.append("立案")
    if state.switch_to:
        notes.append(f"转到 {state.switch_to}")
    if state.end:
        notes.append("结束")
    return _short("，".join(notes), 14)
