"""A workflow graph as a self-contained SVG, drawn on the server for the admin.

`graph_svg` is a pure function: it takes a version's frozen definition (steps
by key, transitions by key) or a `Draft` (steps by ref) and returns the
`<svg>` markup. Nothing is fetched and nothing is scripted, so the admin page
works offline and under a strict Content-Security-Policy.

Every piece of text (step, role and transition names are user input) is
escaped here, which is why the result is returned as a SafeString: this
module is the one place that vouches for it.

Layout: boxes go where the designer put them (`x`, `y`, the canvas the
frontend edits); when every step is still at 0,0 an automatic layered
layout is used instead: columns by distance from the start step, steps
that cannot be reached from it in extra columns on the right.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from workflow.definition import Draft

BOX_W, BOX_H = 190, 62
COLUMN_GAP, ROW_GAP = 120, 56
MARGIN = 30
# Offsets tried, in order, to bend an arrow around boxes it would cross.
_DETOURS = (0, 46, -46, 84, -84, 124, -124)
_PARALLEL_SPREAD = 30

_FILL = "#ffffff"
_INK = "#1f2933"
_MUTED = "#52606d"
_EDGE = "#616e7c"
_START = "#2f855a"
_END = "#1a365d"
_PROBLEM = "#c53030"

Point = tuple[float, float]


@dataclass(frozen=True)
class _Node:
    id: str
    name: str
    role: str | None
    role_missing_reason: str | None
    escalation_role: str | None
    is_start: bool
    is_end: bool
    x: int
    y: int


@dataclass(frozen=True)
class _Edge:
    from_id: str
    to_id: str
    name: str


def graph_svg(
    source: Draft | Mapping[str, Any], *, highlight: Iterable[str] = (), label: str = "Workflow graph"
) -> SafeString:
    """The graph as `<svg>` markup.

    `source` is a definition dict (`{"steps": [...], "transitions": [...]}`,
    as a WorkflowVersion stores it) or a Draft. `highlight` names steps (keys
    for a definition, refs for a Draft) to outline as having problems.
    Transitions whose ends are not steps of the graph are left out.
    """
    nodes, edges = _from_draft(source) if isinstance(source, Draft) else _from_definition(source)
    flagged = {str(ref) for ref in highlight}
    if not nodes:
        return mark_safe(  # noqa: S308 - constant markup plus the escaped label
            f'<svg xmlns="http://www.w3.org/2000/svg" class="workflow-graph" role="img" width="320" height="64" '
            f'viewBox="0 0 320 64" aria-label="{escape(label)}">'
            f'<rect width="320" height="64" rx="6" fill="#f5f7fa" stroke="#cbd2d9"/>'
            f'<text x="160" y="37" text-anchor="middle" font-family="system-ui, sans-serif" font-size="14" '
            f'fill="{_MUTED}">No steps yet</text></svg>'
        )
    ids = {node.id for node in nodes}
    edges = [edge for edge in edges if edge.from_id in ids and edge.to_id in ids]
    positions = _positions(nodes, edges)

    parts: list[str] = []
    label_points: list[Point] = []
    for edge, offset in zip(edges, _parallel_offsets(edges), strict=True):
        markup, label_at = _edge_markup(edge, offset, positions)
        parts.append(markup)
        label_points.append(label_at)
    for node in nodes:
        parts.append(_node_markup(node, positions[node.id], flagged=node.id in flagged))

    xs = [x for x, _ in positions.values()] + [x - 60 for x, _ in label_points]
    ys = [y for _, y in positions.values()] + [y - 20 for _, y in label_points]
    right = max([x + BOX_W for x, _ in positions.values()] + [x + 60 for x, _ in label_points])
    bottom = max([y + BOX_H for _, y in positions.values()] + [y + 20 for _, y in label_points])
    left, top = min(xs) - MARGIN, min(ys) - MARGIN
    width, height = math.ceil(right + MARGIN - left), math.ceil(bottom + MARGIN - top)
    header = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="workflow-graph" role="img" '
        f'width="{width}" height="{height}" viewBox="{_n(left)} {_n(top)} {width} {height}" '
        f'style="max-width: 100%; height: auto" font-family="system-ui, -apple-system, sans-serif" '
        f'aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
        "<defs>"
        '<marker id="wf-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{_EDGE}"/></marker>'
        "</defs>"
        f'<rect x="{_n(left)}" y="{_n(top)}" width="{width}" height="{height}" rx="6" fill="#f5f7fa" '
        'stroke="#cbd2d9"/>'
    )
    return mark_safe(header + "".join(parts) + "</svg>")  # noqa: S308 - every text above is escaped


# --- reading the two input shapes ------------------------------------------------------


def _from_definition(definition: Mapping[str, Any]) -> tuple[list[_Node], list[_Edge]]:
    nodes = []
    for step in definition.get("steps", []):
        role = step.get("role") or {}
        escalation = step.get("escalation_role") or {}
        nodes.append(
            _Node(
                id=str(step["key"]),
                name=str(step.get("name", step["key"])),
                role=role.get("name"),
                role_missing_reason=None if role else "no owning role",
                escalation_role=escalation.get("name"),
                is_start=bool(step.get("is_start")),
                is_end=bool(step.get("is_end")),
                x=int(step.get("x") or 0),
                y=int(step.get("y") or 0),
            )
        )
    edges = [_Edge(str(t["from"]), str(t["to"]), str(t.get("name", ""))) for t in definition.get("transitions", [])]
    return nodes, edges


def _from_draft(draft: Draft) -> tuple[list[_Node], list[_Edge]]:
    nodes = []
    for step in draft.steps:
        reason = None
        if step.unknown_role is not None:
            reason = f"unknown role {step.unknown_role}"
        elif step.role is None:
            reason = "no owning role"
        nodes.append(
            _Node(
                id=step.ref,
                name=step.name,
                role=step.role.name if step.role else None,
                role_missing_reason=reason,
                escalation_role=step.escalation_role.name if step.escalation_role else None,
                is_start=step.is_start,
                is_end=step.is_end,
                x=step.x,
                y=step.y,
            )
        )
    edges = [_Edge(t.from_ref, t.to_ref, t.name) for t in draft.transitions]
    return nodes, edges


# --- layout -------------------------------------------------------------------------------


def _positions(nodes: list[_Node], edges: list[_Edge]) -> dict[str, Point]:
    """Top-left corner of every box."""
    if any(node.x or node.y for node in nodes):
        return _spread({node.id: (float(node.x), float(node.y)) for node in nodes})
    columns = _columns(nodes, edges)
    tallest = max(len(column) for column in columns)
    positions: dict[str, Point] = {}
    for c, column in enumerate(columns):
        # Shorter columns are centred against the tallest one.
        shift = (tallest - len(column)) * (BOX_H + ROW_GAP) / 2
        for r, node_id in enumerate(column):
            positions[node_id] = (c * (BOX_W + COLUMN_GAP), shift + r * (BOX_H + ROW_GAP))
    return positions


def _spread(positions: dict[str, Point]) -> dict[str, Point]:
    """The designer's positions, scaled up just enough that no two boxes overlap.

    A canvas may draw smaller nodes than these boxes; scaling keeps its
    arrangement while making room for the boxes and the arrow labels.
    Steps stacked on exactly the same spot cannot be separated by scaling and
    are left as they are.
    """
    need_x, need_y = BOX_W + COLUMN_GAP / 2, BOX_H + ROW_GAP / 2
    scale = 1.0
    corners = list(positions.values())
    for i, (x1, y1) in enumerate(corners):
        for x2, y2 in corners[i + 1 :]:
            dx, dy = abs(x1 - x2), abs(y1 - y2)
            if (dx or dy) and dx < need_x and dy < need_y:
                scale = max(scale, min(need_x / dx if dx else math.inf, need_y / dy if dy else math.inf))
    scale = min(scale, 8.0)
    return {key: (x * scale, y * scale) for key, (x, y) in positions.items()}


def _columns(nodes: list[_Node], edges: list[_Edge]) -> list[list[str]]:
    """Steps grouped by their distance from the start (breadth first), in input order."""
    outgoing: dict[str, list[str]] = {node.id: [] for node in nodes}
    incoming: set[str] = set()
    for edge in edges:
        outgoing[edge.from_id].append(edge.to_id)
        incoming.add(edge.to_id)
    roots = [node.id for node in nodes if node.is_start] or [node.id for node in nodes if node.id not in incoming]
    depth: dict[str, int] = {}
    base = 0
    pending = deque(roots or [nodes[0].id])
    while True:
        for root in pending:
            depth.setdefault(root, base)
        while pending:
            current = pending.popleft()
            for nxt in outgoing[current]:
                if nxt not in depth:
                    depth[nxt] = depth[current] + 1
                    pending.append(nxt)
        unplaced = [node.id for node in nodes if node.id not in depth]
        if not unplaced:
            break
        # What the start cannot reach goes to the right, so the main path reads first.
        base = max(depth.values()) + 1
        pending = deque([unplaced[0]])
    columns: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for node in nodes:
        columns[depth[node.id]].append(node.id)
    return [column for column in columns if column]


def _parallel_offsets(edges: list[_Edge]) -> list[float]:
    """Spread arrows between the same two steps (Submit forward, Reject back) apart."""
    groups: dict[frozenset[str], list[int]] = {}
    for index, edge in enumerate(edges):
        groups.setdefault(frozenset((edge.from_id, edge.to_id)), []).append(index)
    offsets = [0.0] * len(edges)
    for members in groups.values():
        if len(members) < 2:
            continue
        # Measured along one perpendicular shared by both directions (see
        # _edge_markup), so distinct ranks bend to distinct sides.
        for rank, index in enumerate(members):
            offsets[index] = (rank - (len(members) - 1) / 2) * _PARALLEL_SPREAD * 2
    return offsets


# --- drawing ------------------------------------------------------------------------------


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _centre(corner: Point) -> Point:
    return corner[0] + BOX_W / 2, corner[1] + BOX_H / 2


def _border_point(centre: Point, toward: Point, gap: float = 3) -> Point:
    """Where the line from a box's centre toward `toward` leaves the box (plus a small gap)."""
    dx, dy = toward[0] - centre[0], toward[1] - centre[1]
    if dx == 0 and dy == 0:
        return centre
    scale = min((BOX_W / 2 + gap) / abs(dx) if dx else math.inf, (BOX_H / 2 + gap) / abs(dy) if dy else math.inf)
    return centre[0] + dx * scale, centre[1] + dy * scale


def _bezier(p0: Point, c: Point, p2: Point, t: float) -> Point:
    a, b, d = (1 - t) ** 2, 2 * (1 - t) * t, t**2
    return a * p0[0] + b * c[0] + d * p2[0], a * p0[1] + b * c[1] + d * p2[1]


def _crosses_a_box(p0: Point, c: Point, p2: Point, boxes: list[Point]) -> bool:
    for step in range(1, 20):
        x, y = _bezier(p0, c, p2, step / 20)
        for bx, by in boxes:
            if bx - 6 <= x <= bx + BOX_W + 6 and by - 6 <= y <= by + BOX_H + 6:
                return True
    return False


def _edge_markup(edge: _Edge, offset: float, positions: dict[str, Point]) -> tuple[str, Point]:
    name = escape(_fit(edge.name, 24))
    title = escape(edge.name)
    if edge.from_id == edge.to_id:
        x, y = positions[edge.from_id]
        cx = x + BOX_W / 2
        path = (
            f"M{_n(cx - 24)},{_n(y - 2)} C{_n(cx - 48)},{_n(y - 56)} "
            f"{_n(cx + 48)},{_n(y - 56)} {_n(cx + 24)},{_n(y - 2)}"
        )
        label_at = (cx, y - 48)
    else:
        start, end = _centre(positions[edge.from_id]), _centre(positions[edge.to_id])
        mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        length = math.hypot(end[0] - start[0], end[1] - start[1]) or 1
        # Perpendicular measured from the lower id to the higher one (see _parallel_offsets).
        sign = 1 if edge.from_id <= edge.to_id else -1
        nx, ny = (-(end[1] - start[1]) / length) * sign, ((end[0] - start[0]) / length) * sign
        others = [corner for key, corner in positions.items() if key not in (edge.from_id, edge.to_id)]
        for detour in _DETOURS:
            bend = offset + detour * (1 if offset >= 0 else -1)
            # A quadratic curve reaches half-way to its control point.
            control = (mid[0] + nx * bend * 2, mid[1] + ny * bend * 2)
            p0, p2 = _border_point(start, control), _border_point(end, control)
            if not _crosses_a_box(p0, control, p2, others):
                break
        path = f"M{_n(p0[0])},{_n(p0[1])} Q{_n(control[0])},{_n(control[1])} {_n(p2[0])},{_n(p2[1])}"
        label_at = _bezier(p0, control, p2, 0.5)
    markup = (
        f'<g class="transition"><title>{title}</title>'
        f'<path d="{path}" fill="none" stroke="{_EDGE}" stroke-width="1.6" marker-end="url(#wf-arrow)"/>'
        f'<text x="{_n(label_at[0])}" y="{_n(label_at[1] + 4)}" text-anchor="middle" font-size="12" '
        f'fill="{_INK}" stroke="#f5f7fa" stroke-width="4" paint-order="stroke">{name}</text></g>'
    )
    return markup, label_at


def _node_markup(node: _Node, corner: Point, *, flagged: bool) -> str:
    x, y = corner
    cx = x + BOX_W / 2
    classes = ["step"]
    stroke, width = _INK, 1.5
    if node.is_start:
        classes.append("start")
        stroke, width = _START, 2.5
    if node.is_end:
        classes.append("end")
        stroke, width = _END, 2.5
    if flagged:
        classes.append("problem")
        stroke, width = _PROBLEM, 3
    role_line = f"role: {node.role}" if node.role else (node.role_missing_reason or "no owning role")
    role_colour = _MUTED if node.role else _PROBLEM
    tooltip = [node.name, role_line]
    if node.escalation_role:
        tooltip.append(f"escalates to: {node.escalation_role}")
    if node.is_start:
        tooltip.append("start step")
    if node.is_end:
        tooltip.append("end step")
    parts = [
        f'<g class="{" ".join(classes)}" data-step="{escape(node.id)}">',
        f"<title>{escape(' · '.join(tooltip))}</title>",
        f'<rect x="{_n(x)}" y="{_n(y)}" width="{BOX_W}" height="{BOX_H}" rx="8" fill="{_FILL}" '
        f'stroke="{stroke}" stroke-width="{width}"/>',
    ]
    if node.is_end:
        # A double border: the usual way to draw a final state.
        parts.append(
            f'<rect x="{_n(x + 4)}" y="{_n(y + 4)}" width="{BOX_W - 8}" height="{BOX_H - 8}" rx="5" fill="none" '
            f'stroke="{_END}" stroke-width="1"/>'
        )
    parts.append(
        f'<text x="{_n(cx)}" y="{_n(y + 27)}" text-anchor="middle" font-size="14" font-weight="600" '
        f'fill="{_INK}">{escape(_fit(node.name, 22))}</text>'
    )
    parts.append(
        f'<text x="{_n(cx)}" y="{_n(y + 46)}" text-anchor="middle" font-size="12" '
        f'fill="{role_colour}">{escape(_fit(role_line, 28))}</text>'
    )
    badges = [("START", _START)] if node.is_start else []
    if node.is_end:
        badges.append(("END", _END))
    if flagged:
        badges.append(("PROBLEM", _PROBLEM))
    bx = x + 8
    for text, colour in badges:
        badge_w = 12 + 7.2 * len(text)
        parts.append(
            f'<rect x="{_n(bx)}" y="{_n(y - 9)}" width="{_n(badge_w)}" height="16" rx="8" fill="{colour}"/>'
            f'<text x="{_n(bx + badge_w / 2)}" y="{_n(y + 3)}" text-anchor="middle" font-size="10" '
            f'font-weight="700" fill="#ffffff" letter-spacing="0.5">{text}</text>'
        )
        bx += badge_w + 4
    parts.append("</g>")
    return "".join(parts)
