"""The graph drawn in the report: collapsed to a readable size, laid out in Python.

pyvis physics on a thousand-node graph takes minutes (DESIGN §4), so
positions are computed here, physics off.  The view is made of *units*: a
unit is either one executed op or one collapsed module (all ops under a module
path).  Which modules are collapsed is given by the set of *open* (expanded)
module paths: an op belongs to the first prefix of its module path that is not
open, or is its own unit when every prefix is open.

The page re-computes units and layout in JavaScript when the reader expands or
collapses a module (``templates/js/graph.js`` mirrors :func:`units_for` and
:func:`layout` line for line; a browser test checks they agree), so the data
embedded for the client is the report's own node list plus the small
``view_data`` below.

Layout, top to bottom: a unit's layer is one more than the deepest unit
feeding it; units with no op inputs (parameter-only ops such as ``t`` or
``empty``, and the first ops reading model inputs) are put one layer above
their first consumer instead of piling up in layer 0; a source nobody
reads (a dead ``empty``) sits beside the next op that ran.  Columns: each unit asks
for the mean column of its inputs (sources: of their consumers) and takes the
nearest free column, so a main path stays straight and branches sit beside it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pyvis.network import Network

from ..graph import op_short
from ..modpath import prefixes
from ..report import Report
from .format import count, nbytes, shape

MAX_UNITS = 150  # more boxes than this and the view stops being readable
X_STEP, Y_STEP = 200, 80
LABEL_CHARS = 28


@dataclass(frozen=True)
class Unit:
    key: str                 # "n<id>" for one op, "m:<path>" for a collapsed module
    node_ids: tuple[int, ...]
    inputs: tuple[str, ...]  # keys of units feeding this one, in first-seen order


@dataclass(frozen=True)
class GraphView:
    nodes: list[dict]        # vis-network records (pyvis) of the first draw
    edges: list[dict]
    depth: int | None        # module depth collapsed to; None when every op is shown
    units: int
    open_paths: list[str]    # expanded module paths of the first draw
    groups: dict[str, list[int]]  # module path -> [repeat group, members in group]


def _depth(path: str) -> int:
    return 0 if path == "" else path.count(".") + 1


def _prefixes(path: str) -> list[str]:
    """Every ancestor and the path itself, the root excluded."""
    return prefixes(path)[1:]


def unit_key(path: str, node_id: int, open_paths: set[str], call: int = 0) -> str:
    """The unit an op belongs to.

    A module called more than once (one ``ReLU`` reused three times in a
    ResNet bottleneck) gives one box per call, ``m:<path>#<call>``, when the
    op is its own: merged, its box would feed itself and knot the layout.
    """
    for prefix in _prefixes(path):
        if prefix not in open_paths:
            return "m:" + prefix + (f"#{call}" if call and prefix == path else "")
    return f"n{node_id}"


def unit_path(key: str) -> str:
    """The module path of a module unit's key (without its call suffix)."""
    return key[2:].split("#", 1)[0]


def open_for_depth(report: Report, depth: int | None) -> set[str]:
    """Module paths expanded when the view is collapsed at ``depth``.

    A path prefix that is not a module that ran (a ``ModuleList`` is never
    called) is always open: collapsing it would hide every layer in one box
    with no class to show.
    """
    ran = {m.path for m in report.modules}
    paths = {p for n in report.nodes for p in _prefixes(n.module_path)}
    return {p for p in paths if p not in ran or depth is None or _depth(p) < depth}


def choose_depth(report: Report, max_units: int = MAX_UNITS) -> int | None:
    """The deepest module depth at which the view has at most ``max_units`` units."""
    if len(report.nodes) <= max_units:
        return None
    best = 1
    max_depth = max((m.depth for m in report.modules), default=1)
    for depth in range(1, max_depth + 1):
        opened = open_for_depth(report, depth)
        keys = {unit_key(n.module_path, n.id, opened, n.module_call) for n in report.nodes}
        if len(keys) > max_units:
            break
        best = depth
    return best


def units_for(report: Report, open_paths: set[str]) -> list[Unit]:
    """Units in execution order (of their first op), with their input units."""
    order: list[str] = []
    members: dict[str, list[int]] = {}
    inputs: dict[str, list[str]] = {}
    unit_of: dict[int, str] = {}
    for n in report.nodes:
        key = unit_key(n.module_path, n.id, open_paths, n.module_call)
        unit_of[n.id] = key
        if key not in members:
            members[key] = []
            inputs[key] = []
            order.append(key)
        members[key].append(n.id)
        for src in n.inputs:
            src_key = unit_of.get(src)
            if src_key is not None and src_key != key and src_key not in inputs[key]:
                inputs[key].append(src_key)
    return [Unit(k, tuple(members[k]), tuple(inputs[k])) for k in order]


def _nearest_free(taken: set[int], want: int) -> int:
    for step in range(len(taken) + 1):
        for col in (want + step, want - step):
            if col not in taken:
                return col
    return want + len(taken) + 1  # unreachable: some column within len(taken) is free


def _round(x: float) -> int:
    return math.floor(x + 0.5)  # JS Math.round semantics, so both sides agree


def _anchors(units: list[Unit]) -> dict[str, str | None]:
    """For each unit, the next unit in execution order that has inputs (else the previous one)."""
    out: dict[str, str | None] = {}
    following: str | None = None
    for u in reversed(units):
        out[u.key] = following
        if u.inputs:
            following = u.key
    previous: str | None = None
    for u in units:
        if out[u.key] is None:
            out[u.key] = previous
        if u.inputs:
            previous = u.key
    return out


def layout(units: list[Unit]) -> dict[str, tuple[int, int]]:
    """(column, layer) for each unit; see the module docstring."""
    consumers: dict[str, list[str]] = {u.key: [] for u in units}
    for u in units:
        for src in u.inputs:
            consumers[src].append(u.key)
    layer: dict[str, int] = {}
    sources = [u for u in units if not u.inputs]
    for u in units:
        if u.inputs:
            layer[u.key] = 1 + max((layer[s] for s in u.inputs if s in layer), default=0)
    anchor = _anchors(units)
    for u in sources:
        below = [layer[c] for c in consumers[u.key] if c in layer]
        if below:
            layer[u.key] = max(0, min(below) - 1)
        else:  # nobody reads it (a dead op): beside the op that ran next
            beside = anchor.get(u.key)
            layer[u.key] = layer[beside] if beside else 0
    taken: dict[int, set[int]] = {}
    col: dict[str, int] = {}
    wanted: dict[str, int] = {}

    def place(u: Unit, refs: list[str] | tuple[str, ...]) -> None:
        placed = [col[s] for s in refs if s in col]
        want = _round(sum(placed) / len(placed)) if placed else 0
        row = taken.setdefault(layer[u.key], set())
        col[u.key] = _nearest_free(row, want)
        wanted[u.key] = want
        row.add(col[u.key])

    def tidy(keys: list[str]) -> None:
        """Boxes of a layer that wanted the same column take their columns in execution order,
        so six attention heads read heads.0 ... heads.5 from left to right."""
        groups: dict[int, list[str]] = {}
        for k in keys:
            groups.setdefault(wanted[k], []).append(k)
        for ks in groups.values():
            for k, c in zip(ks, sorted(col[k] for k in ks)):
                col[k] = c

    current: list[str] = []
    for u in sorted((u for u in units if u.inputs), key=lambda u: layer[u.key]):
        if current and layer[current[0]] != layer[u.key]:
            tidy(current)
            current = []
        place(u, u.inputs)
        current.append(u.key)
    tidy(current)
    for u in sources:
        beside = anchor.get(u.key)
        place(u, consumers[u.key] or ([beside] if beside else []))
    return {k: (col[k], layer[k]) for k in col}


def repeat_groups(report: Report) -> dict[str, list[int]]:
    """Modules that look alike (class, op count, MACs, params): path -> [group, size].

    80 identical decoder layers share one group, so the page gives them one
    colour and an "×80" hint.  Groups are numbered by first appearance.
    """
    signature: dict[str, tuple] = {}
    for m in report.modules:
        if m.path:
            signature[m.path] = (m.class_name, m.depth, m.nodes, m.macs, m.params)
    sizes: dict[tuple, int] = {}
    for sig in signature.values():
        sizes[sig] = sizes.get(sig, 0) + 1
    numbers: dict[tuple, int] = {}
    out: dict[str, list[int]] = {}
    for path, sig in signature.items():
        if sizes[sig] > 1:
            numbers.setdefault(sig, len(numbers))
            out[path] = [numbers[sig], sizes[sig]]
    return out


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else "\u2026" + text[-(LABEL_CHARS - 1):]


def build_view(report: Report, depth: int | None = -1, max_units: int = MAX_UNITS) -> GraphView:
    depth = choose_depth(report, max_units) if depth == -1 else depth
    opened = open_for_depth(report, depth)
    units = units_for(report, opened)
    pos = layout(units)
    classes = {m.path: m.class_name for m in report.modules}
    groups = repeat_groups(report)
    net = Network(directed=True)
    for u in units:
        nodes = [report.nodes[i] for i in u.node_ids]
        last = nodes[-1]
        macs = sum(n.macs or 0 for n in nodes)
        out_bytes = sum(n.output_bytes for n in nodes)
        if u.key.startswith("m:"):
            path = unit_path(u.key)
            group = groups.get(path)
            hint = f" \u00d7{group[1]}" if group else ""
            hint += f" (call {u.key.split('#')[1]})" if "#" in u.key else ""
            label = f"{_short(path)}\n{_short(classes.get(path, ''))}{hint}"
            title = f"{path} ({classes.get(path, '')}): {len(nodes)} ops, {count(macs, 'MACs')}, {nbytes(out_bytes)}"
        else:
            out_shape = shape(last.outputs[0].shape) if last.outputs else ""
            label = f"{op_short(last.op)}\n{out_shape}"
            title = f"{last.op} in {last.module_path or '(root)'}: {count(macs, 'MACs')}, {nbytes(out_bytes)}"
        x, y = pos[u.key]
        net.add_node(u.key, label=label, title=title, x=x * X_STEP, y=y * Y_STEP, shape="box", physics=False)
    for u in units:
        for src in u.inputs:
            net.add_edge(src, u.key, arrows="to")
    nodes, edges, *_ = net.get_network_data()
    return GraphView(nodes=list(nodes), edges=list(edges), depth=depth, units=len(units),
                     open_paths=sorted(opened), groups=groups)


def view_data(view: GraphView) -> dict:
    """What the page script needs beside the report's own nodes and modules."""
    return {
        "depth": view.depth, "open": view.open_paths, "groups": view.groups,
        "x_step": X_STEP, "y_step": Y_STEP, "label_chars": LABEL_CHARS,
        "nodes": [{"id": n["id"], "label": n["label"], "title": n["title"], "x": n["x"], "y": n["y"]}
                  for n in view.nodes],
    }
