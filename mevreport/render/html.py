"""Render a :class:`Report` to one self-contained HTML file (DESIGN §4).

Like coverage.py's reporter, the page data is built first as plain objects
(:func:`page_context`), then one template tree lays it out: one
``jinja2.Environment`` with autoescaping and the unit formatters as filters.
The page scripts are inlined from ``templates/js/`` (the graph is drawn on a
``<canvas>`` by our own script: no graph library); the JSON document is embedded with
:func:`json_for_script`, so the file makes no network request and
``mevreport load`` can read it back.  The op table and the graph are drawn by
the page script from that one embedded document, not written out as 10,000
table rows.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ..gcpause import gc_paused
from ..modpath import prefixes
from ..report import Report, WarningCount
from . import format as fmt
from .embed import GZIP_TYPE, SCRIPT_ID, document_for_script, json_for_script
from .format import FILTERS
from .graphview import view_data
from .plots import all_plots
from .training import TRAIN_WARNING_KINDS, training_context
from .training_plots import gradient_flow, memory_stack

LOADER = "load.js"  # runs first: inflates a compressed document, then starts the scripts below with it
SCRIPTS = ("base.js", "report.js", "graph.js", "graph_ui.js", "graph_api.js")
GRAPH_SCRIPTS = ("base.js", "graph.js", "graph_ui.js", "graph_api.js")  # the diff page draws HEAD with these
TRAINING_SCRIPTS = ("training.js",)  # only on pages with a training step: forward-only pages stay as they were
WARNING_KINDS = {
    "nan_origin": "NaN / Inf origin", "dead_activation": "Dead activation", "large_values": "Large values",
    "uncounted_op": "Uncounted op", "capture_note": "Capture note", "stats_failed": "Statistics failed",
    "nan_discarded": "NaN / Inf, discarded", **TRAIN_WARNING_KINDS,
}


def templates_dir() -> Path:
    """Templates ship inside the wheel as ``mevreport/templates``; in a checkout they sit at the top."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "report.html.j2").is_file():
            return candidate
    raise FileNotFoundError("mevreport templates not found: the installation is incomplete")


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.filters["script_json"] = lambda data: Markup(json_for_script(data))
    return env


def _inline_script(text: str) -> Markup:
    # A script's text may not contain "</script": it would close the element.
    return Markup(text.replace("</script", "<\\/script").replace("<!--", "<\\!--"))


def _started(names: tuple[str, ...], element_id: str | None = None) -> Markup:
    """The loader, then the scripts ``names`` inside the function it calls with the document
    (``payload``, from the element ``element_id``, default the report's): at once for a plain
    document, after inflating a compressed one."""
    js = templates_dir() / "js"
    body = "\n".join((js / name).read_text(encoding="utf-8") for name in names)
    tail = "\n});\n" if element_id is None else f"\n}}, {json_for_script(element_id)});\n"
    return _inline_script((js / LOADER).read_text(encoding="utf-8") + "mevreportLoad(function (payload) {\n" + body + tail)


@functools.lru_cache(maxsize=2)
def page_scripts(training: bool = False) -> Markup:
    """The report page's scripts."""
    return _started(SCRIPTS + (TRAINING_SCRIPTS if training else ()))


@functools.lru_cache(maxsize=2)
def graph_scripts(page_script: str, element_id: str) -> Markup:
    """The graph's scripts for another page (the diff page draws HEAD's graph): base.js, ``page_script``
    (which sets the page's hooks before the first view), the graph scripts; started with the document
    in ``element_id``."""
    return _started(GRAPH_SCRIPTS[:1] + (page_script,) + GRAPH_SCRIPTS[1:], element_id)


def _share(value: float | None, total: float | None) -> float:
    if not value or not total:
        return 0.0
    return round(min(100.0, 100.0 * value / total), 1)


def _tree_parent(path: str, listed: set[str]) -> str | None:
    """The nearest ancestor that is a row itself (a ``ModuleList`` never runs, so it has no row)."""
    if path == "":
        return None
    return next((a for a in reversed(prefixes(path)[1:-1]) if a in listed), "")


def module_rows(report: Report) -> list[dict[str, Any]]:
    """The module tree's rows: figures, shares of the root's figures, tree links.

    A row's name is its path relative to its tree parent (``h.0`` under the
    root when the ``ModuleList`` ``h`` never ran), and its level counts the
    rows above it, so the indentation matches the tree the reader sees.
    """
    root = next((m for m in report.modules if m.path == ""), None)
    listed = {m.path for m in report.modules}
    parents = {m.path: _tree_parent(m.path, listed) for m in report.modules}
    level: dict[str, int] = {}
    for m in report.modules:  # parents come before children in named_modules() order
        parent = parents[m.path]
        level[m.path] = 0 if parent is None else level.get(parent, 0) + 1
    has_children = {p for p in parents.values() if p is not None}
    rows = []
    for m in report.modules:
        parent = parents[m.path]
        rows.append({
            "path": m.path, "parent": parent, "level": level[m.path],
            "name": "(root)" if m.path == "" else (m.path[len(parent) + 1:] if parent else m.path),
            "class_name": m.class_name, "depth": m.depth, "calls": m.calls, "nodes": m.nodes,
            "params": m.params, "macs": m.macs, "flops": m.flops, "latency_ms": m.latency_ms,
            "activation_bytes": m.activation_bytes, "has_children": m.path in has_children,
            "backward_macs": m.backward_macs, "saved_activation_bytes": m.saved_activation_bytes,
            "grad_bytes": m.grad_bytes,
            "share": {
                "params": _share(m.params, report.totals.params), "macs": _share(m.macs, root.macs if root else None),
                "latency": _share(m.latency_ms, root.latency_ms if root else None),
                "bytes": _share(m.activation_bytes, root.activation_bytes if root else None),
                "backward_macs": _share(m.backward_macs, root.backward_macs if root else None),
                "saved": _share(m.saved_activation_bytes, root.saved_activation_bytes if root else None),
            },
        })
    return rows


def default_tree_depth(rows: list[dict[str, Any]], max_rows: int = 60) -> int:
    """The deepest tree level whose rows (with every shallower row) stay within ``max_rows``."""
    best = 1
    for level in range(1, max((r["level"] for r in rows), default=1) + 1):
        if sum(1 for r in rows if r["level"] <= level) > max_rows:
            break
        best = level
    return best


def summary_cards(report: Report) -> list[dict[str, Any]]:
    t = report.totals
    measured = f", measured on device {fmt.nbytes(t.measured_peak_bytes)}" if t.measured_peak_bytes is not None else ""
    if t.latency_ms is None:
        latency = {"value": "not measured", "detail": "fake tensors" if report.capture.fake else "timing was off"}
    else:
        spread = f", spread {fmt.ms(t.latency_spread_ms)}" if t.latency_spread_ms is not None and t.latency_runs > 1 else ""
        timed_ops = sum(1 for n in report.nodes if n.latency_ms is not None)
        per_op = "" if timed_ops == len(report.nodes) else (
            f"; per-op times for {timed_ops:,} of {len(report.nodes):,} ops" if timed_ops else "; no per-op times")
        latency = {"value": fmt.ms(t.latency_ms),
                   "detail": f"median of {t.latency_runs} run{'s' if t.latency_runs != 1 else ''}{spread}{per_op}"}
    count = WarningCount.of(report.warnings)
    return [
        {"label": "Parameters", "value": fmt.count(t.params),
         "detail": f"{fmt.count(t.trainable_params)} trainable, {fmt.count(t.frozen_params)} frozen; "
                   f"{fmt.nbytes(t.param_bytes)}", "href": "#modules"},
        _compute_card(report),
        {"label": "Peak activation memory", "value": fmt.nbytes(t.peak_activation_bytes),
         "detail": f"estimated from liveness{measured}", "href": "#plot-memory"},
        _training_card(report),
        {"label": "Forward latency", "value": latency["value"], "detail": latency["detail"], "href": "#plot-op_types"},
        {"label": "Executed ops", "value": f"{t.nodes:,}", "detail": f"{t.uncounted_nodes} without a cost rule",
         "href": "#ops"},
        {"label": "Warnings", "value": str(count.warnings),
         "detail": f"{count.notes} note{'s' if count.notes != 1 else ''}", "href": "#warnings",
         "alert": bool(count.warnings)},
    ]


def _training_card(report: Report) -> dict[str, Any]:
    """A forward-only report estimates training memory by a rule; a training step has its measured peak."""
    t = report.totals
    if report.training is None or t.train_peak_bytes is None:
        return {"label": "Training memory (estimate)", "value": fmt.nbytes(t.training_memory_estimate_bytes),
                "detail": "params + grads + Adam states + activations", "href": None}
    measured = f", measured on device {fmt.nbytes(t.measured_train_peak_bytes)}" \
        if t.measured_train_peak_bytes is not None else ""
    return {"label": "Training step peak", "value": fmt.nbytes(t.train_peak_bytes),
            "detail": f"params + grads + {report.training.optimizer.class_name} state + activations, by liveness"
                      f"{measured}", "href": "#training"}


def _compute_card(report: Report) -> dict[str, Any]:
    """MACs and FLOPs; with uncounted ops the figures are lower bounds, and the card says so and by how many ops."""
    t = report.totals
    missing = sum(u.count for u in report.uncounted_ops)
    if not missing:
        return {"label": "Compute", "value": fmt.count(t.macs, "MACs"), "detail": fmt.count(t.flops, "FLOPs"),
                "href": "#ops"}
    kinds = len(report.uncounted_ops)
    return {"label": "Compute (lower bound)", "value": "≥ " + fmt.count(t.macs, "MACs"),
            "detail": f"≥ {fmt.count(t.flops, 'FLOPs')}; lower bound: {missing:,} op{'s' if missing != 1 else ''} "
                      f"({kinds} kind{'s' if kinds != 1 else ''}) without a cost rule, not counted",
            "href": "#warnings", "alert": True}


def warning_rows(report: Report) -> list[dict[str, Any]]:
    return [{"kind": w.kind, "label": WARNING_KINDS.get(w.kind, w.kind), "message": w.message, "node": w.node,
             "note": w.is_note} for w in report.warnings]


def environment_rows(report: Report) -> list[tuple[str, str]]:
    e, c = report.environment, report.capture
    rows = [("mevreport", report.tool.version), ("torch", e.torch), ("python", e.python), ("platform", e.platform),
            ("device", f"{e.device} ({e.device_name})" if e.device_name else e.device),
            ("git commit", e.git_commit or "\u2014"), ("created", report.created_at),
            ("capture", c.method + (" with fake tensors" if c.fake else "")),
            ("autograd", "enabled" if c.grad_enabled else "off (no_grad)"),
            ("module mode", "train" if c.training else "eval")]
    return rows


def _rows_payload(rows: list[dict[str, Any]], depth: int, compressed: bool,
                  training: dict[str, Any] | None) -> tuple[list[dict[str, Any]], Markup | None]:
    """The module rows written into the table, and (large pages) every row's markup, compressed.

    A page whose document is compressed has a large model: 100,000 ops gave 42,000 module
    rows, 33 MB of markup that the browser took seconds to parse though all but the first
    view's rows start hidden.  Such a page carries the rows of the first view (levels up to
    ``depth``) in its table and the markup of every row, from the same template, compressed;
    the page script puts it in when the reader first needs a hidden row.
    """
    if not compressed:
        return rows, None
    markup = environment().get_template("_module_rows.html.j2").render(module_rows=rows, training=training)
    return [r for r in rows if r["level"] <= depth], Markup(document_for_script(markup, compress_above=-1)[1])


def page_context(report: Report, document: dict[str, Any] | None = None) -> dict[str, Any]:
    plots = all_plots(report)
    rows = module_rows(report)
    training = training_context(report)
    if training is not None:
        training["plots"] = [gradient_flow(report), memory_stack(report)]
    doc_type, doc_text = document_for_script(report.to_dict() if document is None else document)
    depth = default_tree_depth(rows)
    first_rows, all_rows = _rows_payload(rows, depth, doc_type == GZIP_TYPE, training)
    return {
        "r": report,
        "title": report.title or report.model.name,
        "doc_type": doc_type,
        "doc_text": Markup(doc_text),
        "rows_packed": all_rows,
        "doc_id": SCRIPT_ID,
        "cards": summary_cards(report),
        "warnings": warning_rows(report),
        "warning_count": WarningCount.of(report.warnings),
        "modules": rows,
        "first_rows": first_rows,
        "tree_depth": depth,
        "env_rows": environment_rows(report),
        "plots": plots,
        "view": view_data(report),
        "page_js": page_scripts(training is not None),
        "training": training,
        **rank_rows(report),
    }


RANKS_SHOWN = 64  # a 1,024-rank job shows the first ranks and the straggler; the JSON has them all


def rank_rows(report: Report) -> dict[str, Any]:
    """The per-rank table of a distributed report, the slowest rank (the straggler) marked."""
    d = report.distributed
    if d is None:
        return {"ranks": [], "ranks_left_out": 0}
    slow = d.straggler if len(d.ranks) > 1 else None
    shown = list(d.ranks[:RANKS_SHOWN])
    if slow is not None and slow not in shown:
        shown.append(slow)
    return {"ranks": [{"row": x, "straggler": x is slow} for x in shown],
            "ranks_left_out": len(d.ranks) - len(shown)}


def render_html(report: Report, document: dict[str, Any] | None = None) -> str:
    """The page; ``document`` is ``report.to_dict()`` when the caller has it already (the CLI
    writes the JSON file from the same one; it is 2.0 s of a 100,000-op report)."""
    with gc_paused():
        return environment().get_template("report.html.j2").render(**page_context(report, document))
