"""The training section's two charts, drawn like :mod:`.plots` (object API, inline SVG, theme colour).

* Gradient flow: each parameter's gradient norm and gradient-to-weight norm
  ratio in depth order, log scale, so a vanishing or exploding stretch of the
  network shows as a slope; parameters with NaN/Inf gradients are marked
  and those that received none sit on the axis as crosses.
* Memory of the step: stacked bars of params / grads / optimizer state /
  saved activations / temporaries, per top-level module and for the whole
  step, with the step's peak by liveness drawn as a line on the total bar.
"""
from __future__ import annotations

import math
from typing import Any

import matplotlib
import matplotlib.ticker
from matplotlib.figure import Figure

from ..report import Report
from .format import nbytes
from .plots import _RC, COLORS, GRID, MAX_LAYER_POINTS, Plot, _figure, _no_math, _short, _svg
from .training import depth_order, memory_parts

PARTS = (("params", "parameters & buffers", COLORS[0]), ("grads", "gradients", COLORS[1]),
         ("optimizer", "optimizer state", COLORS[4]), ("saved", "saved activations", COLORS[2]),
         ("temporaries", "temporaries at peak", "#8a94a6"))
RC: Any = _RC  # matplotlib's stubs want literal rc keys
MAX_TICKS = 40  # beyond this many parameters, ticks are positions, not names


def _positive(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) and v > 0 else None


def gradient_flow(report: Report) -> Plot:
    grads = depth_order(report)
    norms = [_positive(g.norm) for g in grads]
    if not any(n is not None for n in norms):
        why = "fake tensors hold no gradient values" if report.capture.fake else "no parameter has a gradient norm"
        return Plot("grad_flow", "Gradient flow", None, why)
    ratios = [_positive(g.ratio) for g in grads]
    bad = [i for i, g in enumerate(grads) if g.stats is not None and (g.stats.nan_count or g.stats.inf_count)]
    missing = [i for i, g in enumerate(grads) if g.norm is None and g.stats is None]
    xs = list(range(len(grads)))
    with matplotlib.rc_context(RC):
        fig = _figure(9, 3.8 + (1.0 if len(grads) <= MAX_TICKS else 0))
        top, bottom = fig.subplots(2, 1, sharex=True)
        _series(top, xs, norms, COLORS[0], "gradient norm ‖g‖")
        _series(bottom, xs, ratios, COLORS[2], "ratio ‖g‖ / ‖w‖")
        for ax, values in ((top, norms), (bottom, ratios)):  # the markers' legend once, on the top panel
            low = min((v for v in values if v is not None), default=1.0)
            if bad:
                ax.plot(bad, [values[i] or low for i in bad], linestyle="none", marker="o", markersize=7,
                        markerfacecolor="none", markeredgecolor=COLORS[3], label="NaN / Inf" if ax is top else None)
            if missing:
                ax.plot(missing, [low] * len(missing), linestyle="none", marker="x", color=COLORS[3],
                        label="no gradient" if ax is top else None)
            ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, ncols=3, borderaxespad=0)
        if len(grads) <= MAX_TICKS:
            bottom.set_xticks(xs, [_short(g.param, 28) for g in grads], rotation=60, ha="right", fontsize=7)
            _no_math(bottom.get_xticklabels())
        else:
            bottom.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(10, integer=True))
        bottom.set_xlabel(f"parameters in depth order ({len(grads)}), input side first")
        thinned = " Long runs are drawn as lines only." if len(grads) > MAX_LAYER_POINTS else ""
        return Plot("grad_flow", "Gradient flow", _svg(fig),
                    "L2 norm of each parameter's gradient after backward, and its ratio to the weight's norm, "
                    "both on a log scale; a steady slope over depth is vanishing or exploding gradients." + thinned)


def _series(ax, xs: list[int], values: list[float | None], color: str, label: str) -> None:
    ys = [float("nan") if v is None else v for v in values]
    marker = "o" if len(xs) <= MAX_LAYER_POINTS else None
    ax.plot(xs, ys, color=color, linewidth=1, marker=marker, markersize=3, label=label)
    ax.set_yscale("log")
    # plain tick text ("1e-05", "0.01"): matplotlib's default log labels are mathtext, written as SVG comments
    ax.yaxis.set_major_formatter(matplotlib.ticker.LogFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.LogFormatter(labelOnlyBase=False))
    ax.grid(axis="y", color=GRID, alpha=0.3)


def memory_stack(report: Report) -> Plot:
    rows = memory_parts(report)
    peak = report.totals.train_peak_bytes
    with matplotlib.rc_context(RC):
        fig: Figure = _figure(9, 0.9 + 0.3 * max(len(rows), 3))
        ax = fig.subplots()
        ys = list(range(len(rows)))[::-1]
        left = [0.0] * len(rows)
        for key, label, color in PARTS:
            widths = [float(getattr(r, key) or 0) for r in rows]
            if any(widths):
                ax.barh(ys, widths, left=left, color=color, height=0.65, label=label, linewidth=0)
                left = [a + b for a, b in zip(left, widths)]
        if peak is not None:
            ax.plot([peak, peak], [ys[-1] - 0.45, ys[-1] + 0.45], color=COLORS[3], linewidth=2,
                    label=f"train peak {nbytes(peak)}")
        ax.set_yticks(ys, [_short(r.label, 32) for r in rows])
        _no_math(ax.get_yticklabels())
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _p: nbytes(int(v))))
        ax.grid(axis="x", color=GRID, alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        order = sorted(range(len(labels)), key=lambda i: labels[i].startswith("train peak"))  # the parts, then the peak
        ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="lower left", bbox_to_anchor=(0, 1.0),
                  frameon=False, ncols=3, borderaxespad=0)
        return Plot("train_memory", "Memory of the training step", _svg(fig),
                    "Per top-level module: its parameters and buffers, their gradients and optimizer state, and "
                    "the activations its ops saved for backward. The last bar is the whole step: each part at its "
                    "full size, temporaries being what the peak holds beyond them; the parts are not all alive at "
                    "once, so the line marks the peak by liveness.")


__all__ = ["gradient_flow", "memory_stack"]
