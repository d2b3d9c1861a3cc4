"""Draw a procedure as an SVG string, without external tools.

Layout: states in layers by their breadth-first distance from the initial state (top to
bottom), in file order within a layer. Forward arrows run down between layers; arrows back up
curve round the right-hand side, arrows within a layer dip under it; a step that stays in its
state loops on the left. Arrows carry transition names; the current state is highlighted.
"""
from __future__ import annotations

from collections import deque
from xml.sax.saxutils import escape, quoteattr

from rso.workflow.definitions import Procedure

BOX_W, BOX_H = 200, 46
H_GAP, V_GAP = 36, 84
MARGIN, HEADER = 28, 44
LOOP_ROOM = 56  # space on the left for steps that stay in their state
BACK_ROOM = 150  # space on the right for arrows that go back up
MAX_LABEL = 30

_STYLE = """
.wf-state rect { fill: #f8fafc; stroke: #475569; stroke-width: 1.5; }
.wf-state.wf-final rect { fill: #e2e8f0; stroke-width: 3; }
.wf-state.wf-initial rect { stroke: #1d4ed8; }
.wf-state.wf-current rect { fill: #fde68a; stroke: #b45309; stroke-width: 3; }
.wf-state text { font: 12px sans-serif; fill: #0f172a; text-anchor: middle; }
.wf-state text.wf-sub { font-size: 10px; fill: #475569; }
.wf-edge path { fill: none; stroke: #64748b; stroke-width: 1.2; }
.wf-edge text { font: 10px sans-serif; fill: #1e40af; }
.wf-title { font: bold 14px sans-serif; fill: #0f172a; }
"""


def _short(text: str, n: int = MAX_LABEL) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _layers(proc: Procedure) -> dict[str, int]:
    """BFS depth of each state from the initial one; a final state goes one layer below the
    deepest state leading to it (so "withdrawn" sits at the bottom, not beside step two)."""
    depth: dict[str, int] = {}
    initial = next((s.name for s in proc.states.values() if s.initial), None)
    if initial is not None:
        depth[initial] = 0
        queue = deque([initial])
        while queue:
            current = queue.popleft()
            for t in proc.transitions_from(current):
                if t.target not in depth:
                    depth[t.target] = depth[current] + 1
                    queue.append(t.target)
    for t in proc.transitions.values():
        if proc.states[t.target].final:
            depth.pop(t.target, None)
    for name, state in proc.states.items():
        if state.final:
            sources = [depth[s] for t in proc.transitions.values() if t.target == name
                       for s in t.sources if s in depth]
            depth[name] = max(sources, default=-1) + 1
    last = max(depth.values(), default=-1) + 1
    for name in proc.states:
        depth.setdefault(name, last)
    return depth


def render_svg(proc: Procedure, current: str | None = None) -> str:
    """The procedure as a standalone SVG document (a string); ``current`` is highlighted."""
    depth = _layers(proc)
    layers: dict[int, list[str]] = {}
    for name in proc.states:  # file order within a layer
        layers.setdefault(depth[name], []).append(name)
    widest = max(len(v) for v in layers.values())
    content_w = widest * BOX_W + (widest - 1) * H_GAP
    width = MARGIN * 2 + LOOP_ROOM + content_w + BACK_ROOM
    height = MARGIN * 2 + HEADER + len(layers) * BOX_H + (len(layers) - 1) * V_GAP

    pos: dict[str, tuple[float, float]] = {}
    for d, names in layers.items():
        row_w = len(names) * BOX_W + (len(names) - 1) * H_GAP
        x0 = MARGIN + LOOP_ROOM + (content_w - row_w) / 2
        y = MARGIN + HEADER + d * (BOX_H + V_GAP)
        for i, name in enumerate(names):
            pos[name] = (x0 + i * (BOX_W + H_GAP), y)

    # one arrow per (from, to) pair, labelled with every transition name it stands for
    edges: dict[tuple[str, str], list[str]] = {}
    for t in proc.transitions.values():
        for source in t.sources:
            edges.setdefault((source, t.target), []).append(t.name)

    marker = f"wf-arrow-{proc.name}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label={quoteattr(proc.title)}>',
        f"<title>{escape(proc.title)} (version {proc.version})</title>",
        f"<style>{_STYLE}</style>",
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#64748b"/>'
        f"</marker></defs>",
        f'<text class="wf-title" x="{MARGIN}" y="{MARGIN + 16}">{escape(_short(proc.title, 80))} '
        f"\u00b7 v{proc.version}</text>",
    ]

    back = 0
    for (source, target), names in edges.items():
        label = escape(_short(", ".join(names), 40))
        sx, sy = pos[source]
        tx, ty = pos[target]
        if source == target:
            d = (f"M{sx:.0f},{sy + 12:.0f} C{sx - 46:.0f},{sy - 6:.0f} "
                 f"{sx - 46:.0f},{sy + BOX_H + 6:.0f} {sx:.0f},{sy + BOX_H - 12:.0f}")
            lx, ly, anchor = sx - 40, sy + BOX_H / 2 + 3, "end"
        elif depth[target] > depth[source]:
            x1, y1, x2, y2 = sx + BOX_W / 2, sy + BOX_H, tx + BOX_W / 2, ty
            d = f"M{x1:.0f},{y1:.0f} L{x2:.0f},{y2:.0f}"
            lx, ly, anchor = (x1 + x2) / 2 + 4, (y1 + y2) / 2, "start"
        elif depth[target] == depth[source]:
            # same layer: a shallow arc under the row
            x1, x2, y = sx + BOX_W / 2, tx + BOX_W / 2, sy + BOX_H
            dip = y + 26 + abs(x2 - x1) / 12
            end = x2 + (6 if x2 < x1 else -6)
            d = f"M{x1:.0f},{y:.0f} C{x1:.0f},{dip:.0f} {x2:.0f},{dip:.0f} {end:.0f},{y:.0f}"
            lx, ly, anchor = (x1 + x2) / 2, dip - 2, "middle"
        else:
            back += 1
            bulge = MARGIN + LOOP_ROOM + content_w + 20 + (back % 5) * 24
            x1, y1, x2, y2 = sx + BOX_W, sy + BOX_H / 2, tx + BOX_W, ty + BOX_H / 2
            d = f"M{x1:.0f},{y1:.0f} C{bulge:.0f},{y1:.0f} {bulge:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
            lx, ly, anchor = bulge - 4, (y1 + y2) / 2, "end"
        out.append(
            f'<g class="wf-edge" data-transitions={quoteattr(",".join(names))}>'
            f'<path d="{d}" marker-end="url(#{marker})"/>'
            f'<text x="{lx:.0f}" y="{ly:.0f}" text-anchor="{anchor}">{label}</text></g>'
        )

    for name, state in proc.states.items():
        x, y = pos[name]
        classes = ["wf-state"]
        if state.initial:
            classes.append("wf-initial")
        if state.final:
            classes.append("wf-final")
        if name == current:
            classes.append("wf-current")
        extra = ' aria-current="step"' if name == current else ""
        sub = name
        if state.timeframe is not None:
            sub += f" \u00b7 {state.timeframe.days} d"
        out.append(
            f'<g class="{" ".join(classes)}" data-state={quoteattr(name)}{extra}>'
            f"<title>{escape(state.title)}</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="8"/>'
            f'<text x="{x + BOX_W / 2:.0f}" y="{y + 19:.0f}">{escape(_short(state.title))}</text>'
            f'<text class="wf-sub" x="{x + BOX_W / 2:.0f}" y="{y + 35:.0f}">{escape(_short(sub, 36))}</text>'
            f"</g>"
        )
    out.append("</svg>")
    return "\n".join(out)
