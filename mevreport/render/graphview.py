"""The graph drawn in the report: collapsed to a readable size, laid out in Python.

pyvis physics on a thousand-node graph takes minutes (DESIGN §4), so
positions are computed here: layered by execution order (a unit's layer is one
more than the deepest unit feeding it), physics off.  Modules deeper than a
chosen depth are drawn as one box each, so the view stays small; repeated
blocks (layers of the same class) get the same colour and a shared label
stem so they are recognisable.  pyvis builds the vis-network node and edge
records; the page template, not pyvis's own, draws them.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyvis.network import Network

from ..analyze import op_short
from ..report import Report
from .format import count, nbytes, shape

MAX_UNITS = 250
X_STEP, Y_STEP = 170, 70


@dataclass(frozen=True)
class GraphView:
    nodes: list[dict]
    edges: list[dict]
    depth: int | None  # module depth collapsed to; None when every op is shown
    units: int


def _depth(path: str) -> int:
    return 0 if path == "" else path.count(".") + 1


def _unit_key(path: str, node_id: int, depth: int | None) -> str:
    if depth is None or _depth(path) < depth:
        return f"n{node_id}"
    return "m:" + ".".join(path.split(".")[:depth])


def choose_depth(report: Report, max_units: int = MAX_UNITS) -> int | None:
    """The deepest module depth at which the view has at most ``max_units`` units."""
    if len(report.nodes) <= max_units:
        return None
    best = 1
    max_depth = max((m.depth for m in report.modules), default=1)
    for depth in range(1, max_depth + 1):
        units = {_unit_key(n.module_path, n.id, depth) for n in report.nodes}
        if len(units) > max_units:
            break
        best = depth
    return best


def build_view(report: Report, depth: int | None = -1, max_units: int = MAX_UNITS) -> GraphView:
    depth = choose_depth(report, max_units) if depth == -1 else depth
    classes = {m.path: m.class_name for m in report.modules}
    units: dict[str, dict] = {}
    order: list[str] = []
    unit_of: dict[int, str] = {}
    for n in report.nodes:
        key = _unit_key(n.module_path, n.id, depth)
        unit_of[n.id] = key
        u = units.get(key)
        if u is None:
            u = units[key] = {"key": key, "node_ids": [], "macs": 0, "bytes": 0, "inputs": set()}
            order.append(key)
        u["node_ids"].append(n.id)
        u["macs"] += n.macs or 0
        u["bytes"] += n.output_bytes
        for src in n.inputs:
            src_key = unit_of.get(src)
            if src_key is not None and src_key != key:
                u["inputs"].add(src_key)

    layer: dict[str, int] = {}
    rows: dict[int, int] = {}
    net = Network(directed=True)
    for key in order:
        u = units[key]
        layer[key] = 1 + max((layer[s] for s in u["inputs"] if s in layer), default=-1)
        row = rows.get(layer[key], 0)
        rows[layer[key]] = row + 1
        first = report.nodes[u["node_ids"][0]]
        if key.startswith("m:"):
            path = key[2:]
            cls = classes.get(path, "")
            label = f"{path}\n{cls}"
            group = cls
            kind = "module"
        else:
            label = f"{op_short(first.op)}\n{shape(first.outputs[0].shape) if first.outputs else ''}"
            group = op_short(first.op)
            kind = "op"
        title = f"{key[2:] if kind == 'module' else first.op} | {len(u['node_ids'])} op(s) | {count(u['macs'], 'MACs')} | {nbytes(u['bytes'])}"
        net.add_node(key, label=label, title=title, x=layer[key] * X_STEP, y=row * Y_STEP,
                     shape="box", group=group, kind=kind, first_node=first.id,
                     node_ids=u["node_ids"] if len(u["node_ids"]) <= 64 else u["node_ids"][:64],
                     macs=u["macs"], bytes=u["bytes"], physics=False)
    for key in order:
        for src in sorted(units[key]["inputs"]):
            net.add_edge(src, key, arrows="to")
    nodes, edges, *_ = net.get_network_data()
    return GraphView(nodes=list(nodes), edges=list(edges), depth=depth, units=len(order))
