"""The diff as one self-contained HTML page, in the report's style.

Rows are prepared here as plain strings (coverage.py's way: data first, then
one template lays it out); the template autoescapes every model string and
the diff itself is embedded as JSON with :func:`json_for_script`.  No
external resources: the page opens offline.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from markupsafe import Markup

from ..diff import ModuleChange, ReportDiff, within_noise
from ..diff_tree import TREE_METRICS, TreeRow
from ..gates import GateResult
from ..report import Report
from .embed import document_for_script
from .format import count, ms, nbytes
from .markdown import _METRIC_NAMES, field_name, metric_value, pair_text, shapes_text, signed_change

_VERDICT = {"same": "unchanged", "up": "increased", "down": "decreased", "noise": "within noise",
            "n/a": "not measured on both sides"}


def _relative(rel: float | None) -> str:
    if rel is None:
        return "\u2014"
    if rel in (float("inf"), float("-inf")):
        return "new"
    return f"{rel * 100:+.1f}%".replace("-", "\u2212")


def module_row(m: ModuleChange) -> dict[str, Any]:
    detail = ""
    if m.kind == "changed":
        detail = ", ".join(field_name(f) for f in m.changed)
    else:
        parts = [f"with {m.submodules} submodule(s)"] if m.submodules else []
        detail = ", ".join(parts + ([m.note] if m.note else []))
    base_path = m.base.path or "(root)" if m.kind == "renamed" and m.base is not None else None
    return {
        "kind": m.kind, "detail": detail, "path": m.path or "(root)", "base_path": base_path,
        "class_name": pair_text(m, "class_name", str),
        "params": pair_text(m, "params", count), "macs": pair_text(m, "macs", count), "flops": pair_text(m, "flops", count),
        "shapes": pair_text(m, "output_shapes", shapes_text), "latency": pair_text(m, "latency_ms", ms),
        "latency_noise": m.latency_noise, "size": f"{m.size * 100:.1f}%",
        "search": " ".join(x for x in (m.kind, base_path or "", m.path, pair_text(m, "class_name", str)) if x),
    }


_TREE_FORMAT: dict[str, Callable[[Any], str]] = {"params": count, "macs": count, "latency_ms": ms, "activation_bytes": nbytes}
_TREE_TITLES = {"params": "Params", "macs": "MACs", "latency_ms": "Latency", "activation_bytes": "Activations"}
CHANGES_ONLY_ABOVE = 60  # a longer tree opens showing only the changed rows and the path to them


def _tree_cell(row: TreeRow, name: str, noise: float | None) -> dict[str, str]:
    """The row's figure (HEAD's; BASE's for a removed module) and, when it moved, the signed change."""
    side = row.head if row.head is not None else row.base
    value = getattr(side, name)
    fmt = _TREE_FORMAT[name]
    change = row.delta(name) if row.kind != "same" else 0
    if not change:
        return {"value": fmt(value), "change": "", "status": ""}
    status = "noise" if name == "latency_ms" and within_noise(change, noise) else "up" if change > 0 else "down"
    text = ("+" if change > 0 else "\u2212") + fmt(abs(change))
    return {"value": fmt(value), "change": text, "status": status}


def tree_rows(tree: tuple[TreeRow, ...], noise: float | None) -> list[dict[str, Any]]:
    """Rows for the tree table; ``quiet``: unchanged, and nothing below it changed either."""
    quiet: list[bool] = [False] * len(tree)
    below: list[bool] = []  # below[d]: a change seen in the subtrees at depth d since the last shallower row
    for i in range(len(tree) - 1, -1, -1):
        r = tree[i]
        while len(below) <= r.depth + 1:
            below.append(False)
        quiet[i] = r.kind == "same" and not below[r.depth + 1]
        below[r.depth] = below[r.depth] or not quiet[i]
        for k in range(r.depth + 1, len(below)):
            below[k] = False
    out = []
    for r, q in zip(tree, quiet):
        b_cls = r.base.class_name if r.base is not None else None
        h_cls = r.head.class_name if r.head is not None else None
        cls = h_cls or b_cls or ""
        if b_cls and h_cls and b_cls != h_cls:
            cls = f"{b_cls} \u2192 {h_cls}"
        was = r.base.path if r.kind == "renamed" and not r.inside and r.base is not None else None
        out.append({
            "kind": r.kind, "depth": r.depth, "path": r.path, "name": r.path or "(root)",
            "was": None if was is None else (was or "(root)"), "inside": r.inside, "class_name": cls, "quiet": q,
            "cells": [_tree_cell(r, m, noise) for m in TREE_METRICS],
        })
    return out


def report_link(source: str, page_dir: Path | None) -> str | None:
    """A link from the diff page to one side's report: its HTML when one sits beside the JSON, else the file given.

    Relative to the page's folder when the page is written somewhere, so the two reports and the diff
    can move together; None when the source is no file (a report built in memory).
    """
    from ..archive import relative_link
    path = Path(source)
    if path.suffix.lower() == ".json" and path.with_suffix(".html").is_file():
        path = path.with_suffix(".html")
    if not path.is_file():
        return None
    return relative_link(path, page_dir) if page_dir is not None else path.resolve().as_uri()


HEAD_GRAPH_ID = "mevreport-head-graph"  # not the report's own id: a diff page is never read as a report
GRAPH_COLOURINGS = [("change", "what changed since base")]


def graph_marks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the graph of HEAD marks, from the tree's rows: each HEAD module's change kind, the figures
    that moved (as the tree shows them), and how many modules BASE had and HEAD lost (no box of theirs)."""
    kinds: dict[str, str] = {}
    notes: dict[str, str] = {}
    removed = 0
    for r in rows:
        if r["kind"] == "removed":
            removed += 1
            continue
        kinds[r["path"]] = r["kind"]
        moved = [f"{title} {cell['change']}" for title, cell in zip(_TREE_TITLES.values(), r["cells"]) if cell["change"]]
        if r["was"] is not None:
            moved.insert(0, f"was {r['was']}")
        if moved:
            notes[r["path"]] = ", ".join(moved)
    return {"kinds": kinds, "notes": notes, "removed": removed}


def head_graph(head: Report, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The graph of HEAD for the diff page: its ops and modules (packed as a report's are when large),
    the view data and the marks; drawn by the report page's own graph scripts."""
    from .graphview import view_data
    from .html import graph_scripts
    d = head.to_dict()
    doc_type, doc_text = document_for_script({"model": d["model"], "nodes": d["nodes"], "modules": d["modules"]})
    return {"doc_type": doc_type, "doc_text": Markup(doc_text), "doc_id": HEAD_GRAPH_ID, "view": view_data(head),
            "marks": graph_marks(rows), "js": graph_scripts("diff_graph.js", HEAD_GRAPH_ID)}


def page_context(diff: ReportDiff, gates: tuple[GateResult, ...] = (), tree: tuple[TreeRow, ...] = (),
                 page_path: str | Path | None = None, head: Report | None = None) -> dict[str, Any]:
    b, h = diff.base, diff.head
    page_dir = None if page_path is None else Path(page_path).parent
    rows = tree_rows(tree, diff.latency_noise_ms)
    totals = [{
        "name": _METRIC_NAMES[t.metric], "base": metric_value(t.metric, t.base),
        "head": metric_value(t.metric, t.head), "change": signed_change(t.metric, t.change),
        "relative": _relative(t.relative), "status": t.status.replace("/", ""), "verdict": _VERDICT[t.status],
    } for t in diff.totals]
    data = diff.to_dict()
    data["gates"] = [{"expr": g.gate.expr, "failed": g.failed, "line": g.line()} for g in gates]
    return {
        "title": f"mevreport diff: {b.label or b.name} \u2192 {h.label or h.name}",
        "base": b, "head": h, "totals": totals, "notes": diff.notes, "communication": diff.communication,
        "noise": None if diff.latency_noise_ms is None else ms(diff.latency_noise_ms),
        "gates": [{"failed": g.failed, "line": g.line()} for g in gates],
        "counts": [(k, diff.count(k)) for k in ("changed", "added", "removed", "renamed")]
                  + [("unchanged", diff.unchanged_modules)],
        "modules": [module_row(m) for m in diff.modules],
        "tree": rows, "tree_titles": [_TREE_TITLES[m] for m in TREE_METRICS],
        "changes_only": len(rows) > CHANGES_ONLY_ABOVE,
        "links": {"base": report_link(b.source, page_dir), "head": report_link(h.source, page_dir)},
        "data": data,
        "graph": None if head is None else head_graph(head, rows),
        "graph_colourings": GRAPH_COLOURINGS,
    }


def render_diff_html(diff: ReportDiff, gates: tuple[GateResult, ...] = (), tree: tuple[TreeRow, ...] = (),
                     page_path: str | Path | None = None, head: Report | None = None) -> str:
    """The page; ``tree`` from :func:`mevreport.diff_tree.module_tree`, ``page_path`` where it will be written
    (the links to the two reports are relative to it), ``head`` the HEAD report whose graph it draws."""
    from .html import environment
    return environment().get_template("diff.html.j2").render(**page_context(diff, gates, tree, page_path, head))


__all__ = ["CHANGES_ONLY_ABOVE", "graph_marks", "head_graph", "page_context", "render_diff_html", "report_link",
           "tree_rows"]
