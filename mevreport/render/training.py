"""The training section's data (DESIGN §6): built only when a report has ``training``.

Like the rest of the page, the section is plain data first (this module),
laid out by ``templates/_training.html.j2``; the two charts come from
:mod:`.training_plots`.  A forward-only report gets ``None`` here and the
page has no trace of the section, so its HTML stays byte for byte what it was.

Parameters are listed in *depth order*: by the first forward op of the module
that owns them (input side first), the order a gradient-flow plot is read in;
parameters of modules that ran no op keep their registration order at the end.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..graph import itemsize
from ..modpath import prefixes
from ..report import GradStats, ModuleRow, Report
from . import format as fmt

# Warning kinds that belong to the training step; the section lists them beside its charts.
TRAIN_WARNING_KINDS = {
    "exploding_gradient": "Exploding gradient", "vanishing_gradient": "Vanishing gradient",
    "no_gradient": "No gradient", "nan_backward": "NaN / Inf in backward",
}
LOSS_SOURCES = {
    "output": "the model's own loss (an output's .loss)",
    "callable": "the loss function given",
    "synthetic": "a synthetic loss (the model returns no loss and none was given)",
}


@dataclass(frozen=True)
class MemoryParts:
    """Bytes of one chart row: what a module (or the whole model) holds during the step.

    ``params`` counts buffers too (the peak does); ``temporaries`` is None
    per module (the step's peak is a total only).
    """

    label: str
    params: int
    grads: int
    optimizer: int | None
    saved: int
    temporaries: int | None


def owner(param: str) -> str:
    """The module path a parameter belongs to: ``blocks.0.fc.weight`` -> ``blocks.0.fc``."""
    return param.rsplit(".", 1)[0] if "." in param else ""


def depth_order(report: Report) -> list[GradStats]:
    """The report's gradients, input side first (see the module docstring)."""
    first: dict[str, int] = {}
    for n in report.nodes:
        if n.phase in (None, "forward"):
            first.setdefault(n.module_path, n.id)
    late = len(report.nodes)

    def key(item: tuple[int, GradStats]) -> tuple[int, int]:
        i, g = item
        path = owner(g.param)
        while path not in first and path:
            path = owner(path)
        return (first.get(path, late), i)

    return [g for _, g in sorted(enumerate(report.grads), key=key)]


def _under(path: str, root: str) -> bool:
    return root == "" or path == root or path.startswith(root + ".")


def param_bytes_under(report: Report, root: str) -> int:
    """Bytes of the parameters and buffers in ``root``'s subtree, each tensor once."""
    return sum(p.numel * itemsize(p.dtype) for p in report.params if _under(owner(p.name), root))


def top_modules(report: Report) -> list[ModuleRow]:
    """The root's children that are rows: the per-module bars of the memory chart."""
    paths = [m.path for m in report.modules if m.path]
    listed = set(paths)

    def is_top(path: str) -> bool:  # no listed ancestor between it and the root
        return not any(a in listed for a in prefixes(path)[1:-1])

    return [m for m in report.modules if m.path and is_top(m.path)]


def memory_parts(report: Report) -> list[MemoryParts]:
    """One row per top-level module, then the whole step (the last row)."""
    t = report.totals
    rows = [MemoryParts(m.path, param_bytes_under(report, m.path), m.grad_bytes or 0, m.optimizer_state_bytes,
                        m.saved_activation_bytes or 0, None) for m in top_modules(report)]
    weights = t.param_bytes + t.buffer_bytes
    held = weights + (t.grad_bytes or 0) + (t.optimizer_state_bytes or 0) + (t.saved_activation_bytes or 0)
    temporaries = None if t.train_peak_bytes is None else max(0, t.train_peak_bytes - held)
    rows.append(MemoryParts("whole step", weights, t.grad_bytes or 0, t.optimizer_state_bytes,
                            t.saved_activation_bytes or 0, temporaries))
    return rows


def _flags(g: GradStats, fake: bool) -> list[str]:
    """What the table flags: NaN/Inf counts, and no gradient at all (fake tensors have no values to flag)."""
    s = g.stats
    flags = []
    if s is None:
        return ["no gradient"] if g.norm is None and not fake else []
    if s.nan_count:
        flags.append(f"{s.nan_count:,} NaN")
    if s.inf_count:
        flags.append(f"{s.inf_count:,} Inf")
    return flags


def grad_rows(report: Report) -> list[dict[str, Any]]:
    rows = []
    for g in depth_order(report):
        s, flags = g.stats, _flags(g, report.capture.fake)
        rows.append({
            "param": g.param, "shape": fmt.shape(g.shape), "dtype": g.dtype, "norm": fmt.num(g.norm),
            "weight_norm": fmt.num(g.weight_norm), "ratio": fmt.num(g.ratio),
            "mean": fmt.num(s.mean) if s else fmt.DASH, "std": fmt.num(s.std) if s else fmt.DASH,
            "min": fmt.num(s.min) if s else fmt.DASH, "max": fmt.num(s.max) if s else fmt.DASH,
            "zeros": fmt.pct(s.zero_fraction) if s else fmt.DASH, "flags": ", ".join(flags), "bad": bool(flags),
        })
    return rows


def phase_time_ms(report: Report, phase: str) -> float | None:
    """Summed median time of a phase's ops; None unless every one was timed (a partial sum was never measured).

    Backward's is the root module's ``backward_latency_ms``, rolled up by the analysis.
    """
    if phase == "backward":
        root = next((m for m in report.modules if m.path == ""), None)
        return root.backward_latency_ms if root is not None else None
    times = [n.latency_ms for n in report.nodes if n.phase == phase]
    return None if not times or any(t is None for t in times) else sum(t for t in times if t is not None)


def _timed(text: str, time_ms: float | None) -> str:
    return text if time_ms is None else f"{text} · {fmt.ms(time_ms)}"


def total_rows(report: Report) -> list[tuple[str, str, str]]:
    """(label, value, what it is) for the section's totals list."""
    t = report.totals
    rows = [
        ("Backward", _timed(f"{fmt.count(t.backward_macs, 'MACs')} · {fmt.count(t.backward_flops, 'FLOPs')}",
                            phase_time_ms(report, "backward")), "ops autograd ran for the loss's backward"),
        ("Optimizer step", _timed(fmt.count(t.optimizer_flops, "FLOPs"), phase_time_ms(report, "optimizer")),
         "the optimizer's own step"),
        ("Gradients", fmt.nbytes(t.grad_bytes), "one .grad per trainable parameter"),
        ("Optimizer state", fmt.nbytes(t.optimizer_state_bytes), "measured from the optimizer's step, not a rule"),
        ("Saved activations", fmt.nbytes(t.saved_activation_bytes),
         "distinct storages autograd keeps for backward (parameters and inputs excluded)"),
        ("Train peak", fmt.nbytes(t.train_peak_bytes), "most bytes alive at once over the step, by liveness"),
    ]
    if t.measured_train_peak_bytes is not None:
        rows.append(("Measured peak", fmt.nbytes(t.measured_train_peak_bytes), "the device allocator's peak"))
    return rows


def train_warning_rows(report: Report) -> list[dict[str, Any]]:
    """Training warnings: the kinds above, and NaN/Inf origins whose node is a backward op."""
    phase = {n.id: n.phase for n in report.nodes}
    rows = []
    for w in report.warnings:
        backward_nan = w.kind == "nan_origin" and w.node is not None and phase.get(w.node) == "backward"
        if w.kind in TRAIN_WARNING_KINDS or backward_nan:
            label = TRAIN_WARNING_KINDS.get(w.kind, "NaN / Inf in backward")
            rows.append({"kind": w.kind, "label": label, "message": w.message, "node": w.node, "note": w.is_note})
    return rows


def training_context(report: Report) -> dict[str, Any] | None:
    """Everything the section shows but its plots (html.py adds those from training_plots, which
    builds on this module); None for a forward-only report (no section at all)."""
    if report.training is None:
        return None
    tr = report.training
    return {
        "loss_source": tr.loss.source, "loss_text": LOSS_SOURCES.get(tr.loss.source, tr.loss.source),
        "loss_name": tr.loss.name, "optimizer": tr.optimizer.class_name,
        "totals": total_rows(report), "grads": grad_rows(report), "warnings": train_warning_rows(report),
        "backward_nodes": sum(1 for n in report.nodes if n.phase == "backward"),
        "optimizer_nodes": sum(1 for n in report.nodes if n.phase == "optimizer"),
    }


__all__ = ["TRAIN_WARNING_KINDS", "MemoryParts", "depth_order", "memory_parts", "training_context"]
