"""The archive index: a table of every report and trend plots, in one HTML file.

Plots are matplotlib figures built with the object API (no pyplot state, so
nothing leaks between calls or threads) and inlined as SVG.  SVG ids are
salted with a fixed string and the date metadata is dropped, so the same
archive gives the same page byte for byte.  Labels come from users, so tick
labels are drawn with math parsing off (a ``$`` stays a ``$``) and
matplotlib's SVG writer escapes them as XML text.
"""
from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2

from ..archive import Archive, to_data
from .format import count, ms, nbytes

_TITLES = {"params": "Parameters", "macs": "MACs", "flops": "FLOPs",
           "peak_activation_bytes": "Peak activation memory", "latency_ms": "Latency (median)",
           "backward_macs": "Backward MACs", "train_peak_bytes": "Train step peak", "grad_bytes": "Gradient memory"}
_FORMATS: dict[str, Callable[[Any], str]] = {
    "params": count, "macs": count, "flops": count,
    "peak_activation_bytes": lambda v: nbytes(None if v is None else int(v)), "latency_ms": ms,
    "backward_macs": count, "train_peak_bytes": lambda v: nbytes(None if v is None else int(v)),
    "grad_bytes": lambda v: nbytes(None if v is None else int(v)),
}
PLOTTED = ("params", "macs", "peak_activation_bytes", "latency_ms")


def x_label(entry: dict[str, Any]) -> str:
    return entry["label"] or (entry["created_at"] or "")[:16].replace("T", " ")


def trend_svg(metric: str, values: list[float | None], labels: list[str],
              spreads: list[float | None] | None = None) -> str | None:
    """One trend plot as SVG text; None when no entry has the metric."""
    if all(v is None for v in values):
        return None
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    with matplotlib.rc_context({"svg.hashsalt": f"mevreport-{metric}", "svg.fonttype": "none", "font.size": 9}):
        fig = Figure(figsize=(5.6, 2.6), layout="constrained")
        ax = fig.subplots()
        xs = list(range(len(values)))
        ys = [float("nan") if v is None else float(v) for v in values]
        ax.plot(xs, ys, marker="o", color="#2f6fde", linewidth=1.5, markersize=4)
        title = _TITLES[metric]
        if metric == "latency_ms":
            if spreads and any(s for s in spreads):
                # Bars as tall as each report's run-to-run spread (max - min), centred on the median, cut at 0.
                half = [(s or 0.0) / 2 for s in spreads]
                below = [min(h, y) if y == y else 0.0 for h, y in zip(half, ys)]
                ax.errorbar(xs, ys, yerr=[below, half], fmt="none", ecolor="#8aa9e8", elinewidth=1.2, capsize=3)
                title += "; bars: run-to-run spread"
            ax.set_ylim(bottom=0)
        ax.set_title(title, loc="left", fontsize=10, parse_math=False)
        ax.set_xticks(xs, labels, rotation=30 if len(xs) > 4 else 0, ha="right" if len(xs) > 4 else "center",
                      parse_math=False)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: "0" if v == 0 else _FORMATS[metric](v)))
        ax.grid(True, axis="y", color="#dde2ea", linewidth=0.6)
        ax.set_xlim(-0.5, len(xs) - 0.5)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the XML declaration and doctype: inline in HTML
    # Several SVGs share one HTML document: give each plot's ids (and references to them) its own prefix.
    text = re.sub(r'\bid="([^"]+)"', rf'id="{metric}-\1"', text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{metric}-\1"', text)
    return re.sub(r"url\(#([^)]+)\)", rf"url(#{metric}-\1)", text)


def page_context(archive: Archive, page_path: Path) -> dict[str, Any]:
    data = to_data(archive, page_path.parent)
    labels = [x_label(e) for e in data["entries"]]
    plots = []
    train = tuple(data.get("train_metrics", ()))  # only those some report has: no empty training plots
    for metric in PLOTTED + train:
        svg = trend_svg(metric, [e[metric] for e in data["entries"]], labels,
                        [e["latency_spread_ms"] for e in data["entries"]])
        plots.append({"title": _TITLES[metric], "svg": None if svg is None else jinja2.utils.markupsafe.Markup(svg)})
    metrics = archive.metrics()
    rows = [{**e, **{f"{m}_text": _FORMATS.get(m, str)(e[m]) for m in metrics}} for e in data["entries"]]
    return {
        "title": f"mevreport archive: {archive.root.resolve().name or archive.root}",
        "root": str(archive.root), "rows": rows, "plots": plots, "skipped": data["skipped"], "data": data,
        "train_columns": [{"key": f"{m}_text", "title": _TITLES[m]} for m in train],
    }


def render_index_html(archive: Archive, page_path: str | Path) -> str:
    from .html import environment
    html = environment().get_template("index.html.j2").render(**page_context(archive, Path(page_path)))
    return re.sub(r"[ \t]+\n", "\n", html)


__all__ = ["PLOTTED", "page_context", "render_index_html", "trend_svg"]
