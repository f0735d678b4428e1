"""The report's static plots: matplotlib figures inlined as SVG.

Only matplotlib's object API is used (``Figure`` + its Agg canvas, never
``pyplot``), so rendering holds no global state and is safe in threads and
notebooks.  Text is written as SVG ``<text>`` (not glyph paths) to keep the
file small, ids are salted so the output is deterministic, and the one
foreground colour is a sentinel replaced by ``currentColor``: the inline SVG
then follows the page's light or dark theme.  Model strings reach the SVG
only as tick labels, which matplotlib escapes as XML text; mathtext parsing is
off so a ``$`` in a module name is shown, not interpreted.

Every function returns ``None`` when its data is absent (no timing, fake
tensors), and the page says "not measured" instead of drawing an empty axis.
"""
from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import matplotlib.ticker
from markupsafe import Markup
from matplotlib.figure import Figure

from ..graph import op_short
from ..report import Report
from .format import count, nbytes

FG = "#010203"           # sentinel foreground colour, becomes currentColor
GRID = "#8a94a6"
COLORS = ["#2f6fde", "#e0803a", "#3aa17e", "#c04a7a", "#7a5cc0"]
TOP_N = 15
MAX_LAYER_POINTS = 300   # activation statistics per layer: beyond this, buckets
MAX_POINTS = 1500        # long series are reduced to this many points (max per bucket keeps peaks)
_RC: dict[Any, Any] = {  # matplotlib types its keys as a Literal of every rc name
    "svg.fonttype": "none", "svg.hashsalt": "mevreport", "font.size": 9, "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans", "Arial"],
       "text.color": FG, "axes.labelcolor": FG, "axes.edgecolor": GRID, "xtick.color": FG, "ytick.color": FG,
       "axes.spines.top": False, "axes.spines.right": False, "svg.image_inline": True}


@dataclass(frozen=True)
class Plot:
    key: str
    title: str
    svg: Markup | None
    caption: str


def _svg(fig: Figure) -> Markup:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", transparent=True, metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]                       # drop the XML prolog and doctype
    text = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r'<svg \1', text, count=1)
    text = text.replace(FG, "currentColor")
    return Markup(text.replace("<svg ", '<svg class="plot" role="img" ', 1))


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def _no_math(labels) -> None:  # matplotlib Text objects
    for t in labels:
        t.set_parse_math(False)


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else "\u2026" + text[-(n - 1):]


def _barh(ax, names: list[str], values: list[float], color: str, unit_fmt) -> None:
    ys = list(range(len(names)))[::-1]
    ax.barh(ys, values, color=color, height=0.7)
    ax.set_yticks(ys, [_short(n) for n in names])
    _no_math(ax.get_yticklabels())
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _p: unit_fmt(v)))
    ax.grid(axis="x", color=GRID, alpha=0.3)


def _ms_tick(v: float) -> str:
    """Tick labels in milliseconds, unit on the axis label: "0.5", "10", "1e+03" never crowd."""
    return f"{v:.3g}"


def _leaf_modules(report: Report) -> list:
    paths = {m.path for m in report.modules}
    parents = {p.rsplit(".", 1)[0] if "." in p else "" for p in paths if p}
    return [m for m in report.modules if m.path and m.path not in parents]


def module_costs(report: Report, top: int = TOP_N) -> Plot:
    """Leaf modules with the most MACs, and the slowest (when timed)."""
    leaves = _leaf_modules(report)
    by_macs = sorted((m for m in leaves if m.macs), key=lambda m: -(m.macs or 0))[:top]
    timed = [m for m in leaves if m.latency_ms is not None]
    by_lat = sorted(timed, key=lambda m: -(m.latency_ms or 0))[:top]
    if not by_macs and not by_lat:
        return Plot("modules", "MACs and latency by module", None, "no module has MACs or a measured latency")
    with matplotlib.rc_context(_RC):
        fig = _figure(9, 0.5 + 0.22 * max(len(by_macs), len(by_lat), 3))
        axes = fig.subplots(1, 2 if by_lat else 1, squeeze=False)[0]
        if by_macs:
            _barh(axes[0], [f"{m.path} ({m.class_name})" for m in by_macs], [m.macs for m in by_macs],
                  COLORS[0], lambda v: count(v))
            axes[0].set_title(f"MACs, top {len(by_macs)} leaf modules", loc="left")
        if by_lat:
            _barh(axes[1], [m.path for m in by_lat], [m.latency_ms for m in by_lat], COLORS[1], _ms_tick)
            axes[1].set_xlabel("ms")
            axes[1].set_title(f"latency (summed op time), top {len(by_lat)}", loc="left")
        return Plot("modules", "MACs and latency by module", _svg(fig),
                    "Leaf modules only, so nothing is counted twice; latency is the sum of the module's op timings.")


def op_type_latency(report: Report, top: int = TOP_N) -> Plot:
    """Summed latency per op type."""
    total: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for n in report.nodes:
        if n.latency_ms is not None:
            total[op_short(n.op)] += n.latency_ms
            calls[op_short(n.op)] += 1
    if not total:
        return Plot("op_types", "Latency by op type", None, "latency was not measured")
    rows = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    with matplotlib.rc_context(_RC):
        fig = _figure(9, 0.5 + 0.22 * max(len(rows), 3))
        ax = fig.subplots()
        _barh(ax, [f"{k} ×{calls[k]}" for k, _ in rows], [v for _, v in rows], COLORS[1], _ms_tick)
        ax.set_xlabel("ms")
        ax.set_title("summed op latency by op type", loc="left")
        untimed = sum(1 for n in report.nodes if n.latency_ms is None)
        left_out = (f" {untimed:,} ops have no time (their module calls ran other ops in the timed runs) and are "
                    f"left out; ×N counts the timed calls.") if untimed else ""
        return Plot("op_types", "Latency by op type", _svg(fig),
                    "Median per-op timings summed over all calls of an op." + left_out)


def _reduce(values: Sequence[float]) -> tuple[list[int], list[float]]:
    """At most MAX_POINTS points; each keeps its bucket's maximum, so the peak survives."""
    if len(values) <= MAX_POINTS:
        return list(range(len(values))), list(values)
    size = -(-len(values) // MAX_POINTS)
    xs, ys = [], []
    for start in range(0, len(values), size):
        chunk = values[start:start + size]
        best = max(range(len(chunk)), key=chunk.__getitem__)
        xs.append(start + best)
        ys.append(chunk[best])
    return xs, ys


def memory_timeline(report: Report) -> Plot:
    timeline = list(report.memory_timeline)
    if not timeline:
        return Plot("memory", "Memory over execution order", None, "no memory timeline in this report")
    peak_at = max(range(len(timeline)), key=timeline.__getitem__)
    xs, ys = _reduce(timeline)
    with matplotlib.rc_context(_RC):
        fig = _figure(9, 2.6)
        ax = fig.subplots()
        ax.fill_between(xs, ys, step="post", color=COLORS[0], alpha=0.25, linewidth=0)
        ax.step(xs, ys, where="post", color=COLORS[0], linewidth=1)
        ax.plot([peak_at], [timeline[peak_at]], marker="v", color=COLORS[3], markersize=7)
        node = report.nodes[peak_at]
        label = ax.text(0.01, 0.98, f"\u25bc peak {nbytes(timeline[peak_at])} after node {peak_at} ({op_short(node.op)})",
                        transform=ax.transAxes, va="top", fontsize=8.5, color=COLORS[3])
        label.set_parse_math(False)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _p: nbytes(int(v))))
        ax.set_xlabel("execution order (node id)")
        ax.set_ylim(0, timeline[peak_at] * 1.3 or 1)
        ax.grid(axis="y", color=GRID, alpha=0.3)
        if report.training is not None:  # a training step: where backward and the optimizer step begin
            _phase_marks(ax, report)
            return Plot("memory", "Memory over execution order", _svg(fig),
                        "Bytes of the storages the training step made (activations, gradients, optimizer state, "
                        "temporaries) alive after each op, through forward, backward and the optimizer step; "
                        "parameters, buffers and inputs excluded.")
        return Plot("memory", "Memory over execution order", _svg(fig),
                    "Estimated bytes of op outputs alive after each op (parameters and inputs excluded).")


def _phase_marks(ax, report: Report) -> None:
    """A dashed line and a label where each phase after the forward starts."""
    for phase in ("backward", "optimizer"):
        start = next((n.id for n in report.nodes if n.phase == phase), None)
        if start is not None:
            ax.axvline(start, color=GRID, linestyle="--", linewidth=1)
            ax.text(start, 0.02, f" {phase}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=8,
                    color=GRID).set_parse_math(False)


def activation_stats(report: Report) -> Plot:
    """Output statistics of each leaf module's last op, in execution order."""
    last_by_path: dict[str, int] = {}
    for n in report.nodes:
        if n.stats is not None and n.stats.mean is not None:
            last_by_path[n.module_path] = n.id
    leaf = {m.path for m in _leaf_modules(report)}
    ids = sorted(i for p, i in last_by_path.items() if p in leaf) or sorted(last_by_path.values())
    if not ids:
        return Plot("activations", "Activation statistics along depth", None, "activation statistics were not measured")
    stats = [s for i in ids if (s := report.nodes[i].stats) is not None]  # all of them: chosen above
    xs = list(range(len(ids)))
    mean, std = [s.mean or 0.0 for s in stats], [s.std or 0.0 for s in stats]
    absmax, zeros = [s.abs_max or 0.0 for s in stats], [s.zero_fraction * 100 for s in stats]
    if len(ids) > MAX_LAYER_POINTS:  # buckets: mean of means and stds, max of |max| and zeros
        size = -(-len(ids) // MAX_LAYER_POINTS)
        cut = [slice(i, i + size) for i in range(0, len(ids), size)]
        xs = [c.start for c in cut]
        mean = [sum(mean[c]) / len(mean[c]) for c in cut]
        std = [sum(std[c]) / len(std[c]) for c in cut]
        absmax, zeros = [max(absmax[c]) for c in cut], [max(zeros[c]) for c in cut]
    with matplotlib.rc_context(_RC):
        fig = _figure(9, 3.6)
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
        top.plot(xs, mean, color=COLORS[0], linewidth=1, label="mean")
        top.plot(xs, std, color=COLORS[2], linewidth=1, label="std")
        top.plot(xs, absmax, color=COLORS[3], linewidth=1, label="|max|")
        if max(absmax) > 1e4 * max(min(std), 1e-12):
            top.set_yscale("symlog", linthresh=1.0)
        top.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, ncols=3, borderaxespad=0)
        top.grid(axis="y", color=GRID, alpha=0.3)
        bottom.plot(xs, zeros, color=COLORS[1], linewidth=1)
        bottom.set_ylabel("zeros %")
        bottom.set_ylim(0, 100)
        bottom.set_xlabel(f"leaf module outputs in execution order ({len(ids)})")
        bottom.grid(axis="y", color=GRID, alpha=0.3)
        bucketed = " Points are buckets of consecutive outputs (mean of means and stds, max of |max| and zeros)." \
            if len(xs) < len(ids) else ""
        return Plot("activations", "Activation statistics along depth", _svg(fig),
                    "Each point is the output of one leaf module call (its last op)." + bucketed)


def weight_histograms(report: Report, top: int = 12) -> Plot:
    """Histograms of the largest weight tensors, small multiples."""
    sizes = {p.name: p.numel for p in report.params}
    ws = [w for w in report.weight_stats if w.histogram is not None and sum(w.histogram.counts) > 0]
    ws = sorted(ws, key=lambda w: (-sizes.get(w.name, 0), w.name))[:top]
    if not ws:
        return Plot("weights", "Weight histograms", None, "weight statistics were not measured")
    cols = 4
    rows = -(-len(ws) // cols)
    with matplotlib.rc_context(_RC):
        fig = _figure(9, 1.45 * rows + 0.2)
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, w in zip(axes, ws):
            h = w.histogram
            assert h is not None  # filtered above
            n = len(h.counts)
            width = (h.max - h.min) / n if h.max > h.min else 1.0
            ax.bar([h.min + width * (i + 0.5) for i in range(n)], h.counts, width=width, color=COLORS[4], linewidth=0)
            title = ax.set_title(f"{_short(w.name, 30)}\nstd {w.std:.3g}" if w.std is not None else _short(w.name, 30),
                                 fontsize=7.5, loc="left")
            title.set_parse_math(False)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(3))
            ax.set_yticks([])
            ax.spines["left"].set_visible(False)
        for ax in axes[len(ws):]:
            ax.set_axis_off()
        return Plot("weights", "Weight histograms", _svg(fig),
                    f"The {len(ws)} largest weight tensors of {len(report.weight_stats)}.")


def all_plots(report: Report) -> list[Plot]:
    return [module_costs(report), op_type_latency(report), memory_timeline(report), activation_stats(report),
            weight_histograms(report)]
