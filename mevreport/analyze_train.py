"""The training step's figures (DESIGN §6): backward and optimizer costs, memory, gradient warnings.

Pure, like :mod:`mevreport.analyze`: module figures are sums of node figures
(or of parameter figures) up the module paths, so the root's is the total.

Gradient rules (docs/training.md):

* ``nan_backward``: the first backward op whose output holds a NaN or Inf,
  with the forward op it differentiates.
* ``exploding_gradient`` / ``vanishing_gradient``: a parameter's
  gradient-to-weight norm ratio ``‖g‖/‖w‖`` more than :data:`EXPLODING_FACTOR`
  times the median ratio of the model's parameters, or less than
  :data:`VANISHING_FACTOR` times it, or a gradient that is exactly zero.
  Relative to the median, because the scale of the loss (a synthetic loss
  most of all) moves every ratio alike; what tells a layer apart is how far
  it is from the rest.
* ``no_gradient``: a trainable parameter that received no gradient (unused
  in the forward, or cut off by a ``detach``).
"""
from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping

from .graph import Graph
from .modpath import prefixes
from .report import ModuleRow, ReportNode, ReportWarning, Totals

EXPLODING_FACTOR = 1e3
VANISHING_FACTOR = 1e-3
WARNINGS_PER_KIND = 50


def _roll_up(values: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for path, v in values.items():
        for p in prefixes(path):
            out[p] = out.get(p, 0) + v
    return out


def _by_module(per_param: dict[str, int]) -> dict[str, int]:
    """Parameter figures summed by the module that owns each parameter."""
    out: dict[str, int] = {}
    for name, v in per_param.items():
        path = name.rpartition(".")[0]
        out[path] = out.get(path, 0) + v
    return out


def _gradient_warnings(graph: Graph, nodes: list[ReportNode]) -> list[ReportWarning]:
    train = graph.train
    assert train is not None
    out: list[ReportWarning] = []
    for rn, n in zip(nodes, graph.nodes):
        s = rn.stats
        if n.phase == "backward" and s is not None and (s.nan_count or s.inf_count):
            src = graph.nodes[n.grad_of] if n.grad_of >= 0 else None
            of = (f", the gradient of node {src.id} ({src.op.split('.')[1]}) in '{src.module_path or '<root>'}'"
                  if src is not None else "")
            out.append(ReportWarning("nan_backward", rn.id, f"first NaN/Inf in backward: node {rn.id} "
                                     f"({rn.op.split('.')[1] if '.' in rn.op else rn.op}){of}: "
                                     f"{s.nan_count} NaN, {s.inf_count} Inf"))
            break
    ratios = [g.ratio for g in train.grads if g.ratio is not None and g.ratio > 0]
    median = statistics.median(ratios) if ratios else None
    counts = {"exploding_gradient": 0, "vanishing_gradient": 0}
    for g in train.grads:
        kind = None
        if g.norm == 0.0:
            kind, why = "vanishing_gradient", "its gradient is exactly zero"
        elif median is not None and g.ratio is not None and g.ratio > EXPLODING_FACTOR * median:
            kind, why = "exploding_gradient", f"‖g‖/‖w‖ = {g.ratio:.3g}, over {EXPLODING_FACTOR:g}× the median {median:.3g}"
        elif median is not None and g.ratio is not None and g.ratio < VANISHING_FACTOR * median:
            kind, why = "vanishing_gradient", f"‖g‖/‖w‖ = {g.ratio:.3g}, under {VANISHING_FACTOR:g}× the median {median:.3g}"
        if kind is not None:
            counts[kind] += 1
            if counts[kind] <= WARNINGS_PER_KIND:
                out.append(ReportWarning(kind, None, f"parameter '{g.param}': {why}"))
    for kind, count in counts.items():
        if count > WARNINGS_PER_KIND:
            out.append(ReportWarning(kind, None, f"{count - WARNINGS_PER_KIND} more '{kind}' warnings not listed"))
    for i, name in enumerate(train.untrained):
        if i == WARNINGS_PER_KIND:
            out.append(ReportWarning("no_gradient", None, f"{len(train.untrained) - i} more parameters without a gradient"))
            break
        out.append(ReportWarning("no_gradient", None, f"trainable parameter '{name}' received no gradient in backward"))
    return out


def with_training(graph: Graph, nodes: list[ReportNode], totals: Totals, modules: tuple[ModuleRow, ...],
                  ) -> tuple[Totals, tuple[ModuleRow, ...], list[int], list[ReportWarning]]:
    """The totals and module rows with the step's figures; the step's memory timeline; gradient warnings."""
    train = graph.train
    assert train is not None
    backward = [rn for rn in nodes if rn.phase == "backward"]
    optimizer = [rn for rn in nodes if rn.phase == "optimizer"]
    bw_macs: dict[str, float] = {}
    bw_time: dict[str, float] = {}
    untimed: set[str] = set()
    for rn in backward:
        for p in prefixes(rn.module_path):
            bw_macs[p] = bw_macs.get(p, 0) + (rn.macs or 0)
            if rn.latency_ms is None:
                untimed.add(p)
            else:
                bw_time[p] = bw_time.get(p, 0.0) + rn.latency_ms
    timed = bool(graph.measurements.node_latency_ms)
    saved = _roll_up(dict(train.saved_bytes))
    grads = _roll_up(_by_module(train.grad_bytes))
    state = _roll_up(_by_module(train.optimizer_state_by_param))
    rows = tuple(dataclasses.replace(
        row, saved_activation_bytes=int(saved.get(row.path, 0)), grad_bytes=int(grads.get(row.path, 0)),
        optimizer_state_bytes=int(state.get(row.path, 0)), backward_macs=int(bw_macs.get(row.path, 0)),
        backward_latency_ms=bw_time.get(row.path, 0.0) if timed and row.path not in untimed else None,
    ) for row in modules)
    live = list(train.live_bytes)
    totals = dataclasses.replace(
        totals,
        backward_macs=sum(rn.macs or 0 for rn in backward), backward_flops=sum(rn.flops or 0 for rn in backward),
        optimizer_flops=sum(rn.flops or 0 for rn in optimizer), grad_bytes=sum(train.grad_bytes.values()),
        optimizer_state_bytes=train.optimizer_state_bytes, saved_activation_bytes=sum(train.saved_bytes.values()),
        train_peak_bytes=totals.param_bytes + totals.buffer_bytes + max(live, default=0),
        measured_train_peak_bytes=train.measured_peak_bytes,
        latency_ms=_forward_latency(nodes) if timed else None,
    )
    return totals, rows, live, _gradient_warnings(graph, nodes)


def _forward_latency(nodes: list[ReportNode]) -> float | None:
    """The forward part of a timed step: the sum of its ops' medians (None when one has no time)."""
    times = [rn.latency_ms for rn in nodes if rn.phase == "forward"]
    return None if any(t is None for t in times) else float(sum(t for t in times if t is not None))


__all__ = ["EXPLODING_FACTOR", "VANISHING_FACTOR", "with_training"]
