"""The analyze stage: a pure function from :class:`Graph` to :class:`Report`.

No torch execution and no I/O happen here (DESIGN §1): costs come from the
registry, memory from liveness over execution order, module figures from
rolling node figures up their module paths, so every module's number is the
sum of its nodes' and the root's is the total.
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import torch

from .costs import cost_of
from .distributed.comm import comm_bytes
from .flow import input_dependent, non_finite_origins, reaching_output
from .graph import Graph, Node, TensorStats, frozen_map, op_short
from .modpath import prefixes
from .report import (
    SCHEMA_VERSION,
    CaptureSummary,
    Environment,
    InputSummary,
    ModelInfo,
    ModuleRow,
    ParamSummary,
    Report,
    ReportNode,
    ReportWarning,
    ToolInfo,
    Totals,
    UncountedOp,
)

DEAD_ZERO_FRACTION = 0.99  # an output this fraction zeros is flagged as dead
LARGE_ABS_VALUE = 1e4      # float32 outputs beyond this are flagged (halves: a quarter of their range)
_HALVES = ("float16", "bfloat16")
_CREATION_OPS = {"zeros", "zeros_like", "new_zeros", "full", "full_like", "new_full", "fill", "fill_", "zero_",
                 "empty", "empty_like", "new_empty", "empty_strided", "arange", "ones", "ones_like", "scalar_tensor",
                 "lift_fresh", "lift_fresh_copy", "tril", "triu", "masked_fill", "masked_fill_", "where"}
WARNINGS_PER_KIND = 50


def liveness(nodes: tuple[Node, ...], output_ids: tuple[int, ...]) -> tuple[int, list[int]]:
    """Peak bytes of op outputs alive at once, and live bytes after each node.

    A node's new storage is alive from its production until the last node that
    reads it or any view of it; model outputs stay alive to the end.
    Parameters and inputs are not op outputs and are not counted.
    """
    last_use = {n.id: n.id for n in nodes}
    owner_of = {}  # node id -> storage owner for alias outputs
    for n in nodes:
        owner_of[n.id] = next((a for a in n.alias_of if a >= 0), n.id)
    for n in nodes:
        for src in n.inputs:
            for owner in {src, owner_of.get(src, src)}:
                last_use[owner] = max(last_use.get(owner, owner), n.id)
        for a in n.alias_of:
            if a >= 0:
                last_use[a] = max(last_use.get(a, a), n.id)
    end = len(nodes)
    for out in output_ids:
        last_use[out] = end
        last_use[owner_of.get(out, out)] = end
    frees: dict[int, int] = Counter()
    for n in nodes:
        if n.output_bytes:
            frees[last_use[n.id]] += n.output_bytes
    live = peak = 0
    timeline: list[int] = []
    for n in nodes:
        live += n.output_bytes
        peak = max(peak, live)
        timeline.append(live)
        live -= frees.get(n.id, 0)
    return peak, timeline


def _dtype_max(dtype: str) -> float | None:
    """``torch.finfo(dtype).max`` for a floating dtype named as the report names it, else None."""
    t = getattr(torch, dtype, None)
    return torch.finfo(t).max if isinstance(t, torch.dtype) and t.is_floating_point else None


def _large_value_limit(dtype: str) -> float:
    """Beyond this an output is flagged: ``LARGE_ABS_VALUE``, or a quarter of a half type's range."""
    top = _dtype_max(dtype) if dtype in _HALVES else None
    return top / 4 if top is not None else LARGE_ABS_VALUE


def _mask_sentinel(abs_max: float, dtype: str) -> bool:
    """Attention masks fill with ``torch.finfo(dtype).min`` on purpose: a magnitude
    within a factor 2 of the dtype's largest finite value is a sentinel, not a
    value growing out of range (that shows up as Inf, reported as nan_origin)."""
    top = _dtype_max(dtype)
    return top is not None and abs_max >= top / 2


def _warnings(graph: Graph, nodes: list[ReportNode], uncounted: Counter) -> list[ReportWarning]:
    out: list[ReportWarning] = []
    stats = graph.measurements.node_stats
    # Infinities written by creation and masking ops (a causal mask filled with -inf) are
    # deliberate; a NaN never is.
    deliberate = {n.id for n in nodes if n.stats and not n.stats.nan_count and op_short(n.op) in _CREATION_OPS}
    reported = False
    origins = non_finite_origins(graph.nodes, stats, deliberate)
    to_output = reaching_output(graph.nodes, stats, graph.output_node_ids) if origins else set()
    for origin in origins:
        n = nodes[origin]
        s = n.stats
        assert s is not None
        counts = f"{s.nan_count} NaN, {s.inf_count} Inf"
        where = f"node {n.id} ({op_short(n.op)}) in module '{n.module_path or '<root>'}'"
        if origin in to_output:
            if not reported:  # the first origin whose values reach an output: where the model's NaN comes from
                out.append(ReportWarning("nan_origin", n.id, f"first NaN/Inf produced by {where}: {counts}"))
                reported = True
        elif sum(1 for w in out if w.kind == "nan_discarded") < WARNINGS_PER_KIND:
            out.append(ReportWarning("nan_discarded", n.id, f"{where} produced {counts}, none of which reaches an "
                                     f"output (masked, replaced or unused downstream)"))
    # a model called without inputs computes from its parameters alone: then everything counts
    from_input = input_dependent(graph.nodes) if graph.inputs else {n.id for n in graph.nodes}
    per_kind: Counter = Counter()

    def add(kind: str, node: int | None, message: str) -> None:
        per_kind[kind] += 1
        if per_kind[kind] <= WARNINGS_PER_KIND:
            out.append(ReportWarning(kind, node, message))

    for n in nodes:
        s = n.stats
        # constants, masks, index tables and bias slices are zero or large by construction
        if s is None or op_short(n.op) in _CREATION_OPS or s.numel < 16 or n.id not in from_input:
            continue
        where = f"node {n.id} ({op_short(n.op)}) in '{n.module_path or '<root>'}'"
        if s.zero_fraction >= DEAD_ZERO_FRACTION:
            add("dead_activation", n.id, f"{where}: {s.zero_fraction:.1%} of outputs are exactly zero")
        limit = _large_value_limit(n.outputs[0].dtype)
        if s.abs_max is not None and s.abs_max > limit and not _mask_sentinel(s.abs_max, n.outputs[0].dtype):
            add("large_values", n.id, f"{where}: |max| = {s.abs_max:.4g}")
    for kind, count in sorted(per_kind.items()):
        if count > WARNINGS_PER_KIND:
            out.append(ReportWarning(kind, None, f"{count - WARNINGS_PER_KIND} more '{kind}' warnings not listed"))
    for op, count in sorted(uncounted.items()):
        first = next((n.id for n in nodes if n.op == op), None)  # None: only backward ops have it
        out.append(ReportWarning("uncounted_op", first, f"no cost rule for {op} ({count} node(s)); not in MACs/FLOPs"))
    for node_id, why in sorted(graph.measurements.stats_failures.items()):
        hit = next((n for n in nodes if n.id == node_id), None)
        where = f"node {node_id} ({hit.op}) in '{hit.module_path or '<root>'}'" if hit else f"node {node_id}"
        out.append(ReportWarning("stats_failed", node_id, f"statistics of {where} could not be taken ({why}); "
                                                          f"its stats are null, the rest of the report stands"))
    for note in graph.capture.notes:
        out.append(ReportWarning("capture_note", None, note))
    return out


def _stats_or_none(stats: Mapping[int, TensorStats], node_id: int) -> TensorStats | None:
    return stats.get(node_id)


def _json_safe(value: Any) -> Any:
    """A scalar, or a flat tuple of scalars (a loaded report reads JSON arrays back as tuples), else None."""
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        items = tuple(_json_safe(v) for v in value)
        return items if all(i is not None and not isinstance(i, tuple) for i in items) else None
    return None  # a tensor (TensorMeta), None, anything else: not an argument the reader sets


def op_args(n: Node) -> Mapping[str, Any]:
    """The op's non-tensor arguments by schema name: what the details panel lists (kernel, stride, dim...)."""
    out: dict[str, Any] = {}
    named = list(zip(n.arg_names, n.args)) + list(n.kwargs)
    for name, value in named:
        safe = _json_safe(value)
        if safe is not None and name not in out:
            out[name] = safe
        elif name == "weight" and n.op.startswith("aten.convolution") and hasattr(value, "shape"):
            out["kernel"] = tuple(value.shape[2:])  # the kernel is the weight's spatial shape, not an argument
    return frozen_map(out)
def global_bytes(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    """Nodes with the bytes of the whole tensor (tensor-parallel shards scaled by their factor)."""
    if all(n.shard_factor == 1 for n in nodes):
        return nodes
    return tuple(dataclasses.replace(n, output_bytes=n.output_bytes * n.shard_factor) if n.shard_factor != 1 else n
                 for n in nodes)


def rank_bytes(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    """Nodes with the bytes this rank allocates (a DTensor output's local shard)."""
    return tuple(dataclasses.replace(n, output_bytes=n.local_output_bytes) if n.local_output_bytes is not None
                 else n for n in nodes)


def _comm_total(nodes: list[ReportNode]) -> int | None:
    """Bytes this rank contributes to the collectives among ``nodes``; None (absent) when it ran none."""
    sizes = [n.comm_bytes for n in nodes if n.comm_bytes is not None]
    return sum(sizes) if sizes else None


def analyze_graph(graph: Graph, *, created_at: str, environment: Environment, tool_version: str,
                  title: str | None = None, label: str | None = None) -> Report:
    """Build the report from a captured graph (pure)."""
    m = graph.measurements
    uncounted: Counter = Counter()
    nodes: list[ReportNode] = []
    for n in graph.nodes:
        cost = cost_of(n)
        if cost is None:
            uncounted[n.op] += 1
        k = n.shard_factor  # a tensor-parallel op on this rank's shard: the global figures are k times its own
        nodes.append(ReportNode(
            id=n.id, op=n.op, module_path=n.module_path, inputs=n.inputs, outputs=n.outputs,
            macs=cost.macs * k if cost else None, flops=cost.flops * k if cost else None,
            output_bytes=n.output_bytes * k, latency_ms=m.node_latency_ms.get(n.id),
            stats=_stats_or_none(m.node_stats, n.id), module_call=n.module_call, uncounted=cost is None,
            args=op_args(n), phase=n.phase if graph.train is not None else None,
            comm_bytes=comm_bytes(n), shard_factor=k,
        ))
    # a training step's backward and optimizer ops have their own totals (analyze_train.py)
    forward = [rn for rn, n in zip(nodes, graph.nodes) if n.phase == "forward"]

    # A module's latency is the sum of its ops' times, so only a module whose every op was
    # timed has one: a partial sum would be a figure nobody measured.
    agg: dict[str, list[float]] = {mod.path: [0, 0, 0.0, 0, 0, 0] for mod in graph.modules}
    agg.setdefault("", [0, 0, 0.0, 0, 0, 0])
    for rn in forward:
        for p in prefixes(rn.module_path):
            row = agg.get(p)
            if row is None:
                continue
            row[0] += rn.macs or 0
            row[1] += rn.flops or 0
            if rn.latency_ms is None:
                row[5] += 1
            else:
                row[2] += rn.latency_ms
            row[3] += rn.output_bytes
            row[4] += 1

    def module_latency(path: str) -> float | None:
        row = agg[path]
        return row[2] if m.node_latency_ms and not row[5] else None

    module_rows = tuple(
        ModuleRow(path=mod.path, class_name=mod.class_name, params=mod.params, macs=int(agg[mod.path][0]),
                  flops=int(agg[mod.path][1]), latency_ms=module_latency(mod.path),
                  activation_bytes=int(agg[mod.path][3]), calls=mod.calls, depth=mod.depth, nodes=int(agg[mod.path][4]))
        for mod in graph.modules
    )

    weights = [p for p in graph.params if not p.is_buffer]
    buffers = [p for p in graph.params if p.is_buffer]
    peak, timeline = liveness(global_bytes(graph.nodes[:len(forward)]), graph.output_node_ids)
    trainable = sum(p.numel for p in weights if p.trainable)
    param_bytes = sum(p.nbytes for p in weights)
    activation_bytes = sum(n.output_bytes for n in forward)
    # params + grads of trainable params + Adam's two fp32 states + every activation kept for backward
    training_estimate = param_bytes + sum(p.nbytes for p in weights if p.trainable) + 2 * 4 * trainable + activation_bytes
    totals = Totals(
        params=sum(p.numel for p in weights), trainable_params=trainable, param_bytes=param_bytes,
        buffer_bytes=sum(p.nbytes for p in buffers), macs=sum(n.macs or 0 for n in forward),
        flops=sum(n.flops or 0 for n in forward), activation_bytes=activation_bytes, peak_activation_bytes=peak,
        latency_ms=m.forward_latency_ms, frozen_params=sum(p.numel for p in weights if not p.trainable),
        buffers=sum(p.numel for p in buffers), measured_peak_bytes=m.measured_peak_bytes,
        training_memory_estimate_bytes=training_estimate, latency_spread_ms=m.forward_latency_spread_ms,
        latency_runs=m.latency_runs, nodes=len(nodes), uncounted_nodes=sum(uncounted.values()),
        comm_bytes=_comm_total(forward),
    )
    # per-node warnings read forward activations; a step's gradients have their own (analyze_train.py)
    fwd_graph = graph if graph.train is None else dataclasses.replace(graph, nodes=graph.nodes[:len(forward)])
    warnings = _warnings(fwd_graph, nodes[:len(forward)], uncounted)
    training = None
    if graph.train is not None:
        from .analyze_train import with_training
        totals, module_rows, timeline, extra = with_training(graph, nodes, totals, module_rows)
        backward_comm = _comm_total([rn for rn, n in zip(nodes, graph.nodes) if n.phase == "backward"])
        if backward_comm is not None or totals.comm_bytes is not None:  # a distributed step: both, 0 when none
            totals = dataclasses.replace(totals, comm_bytes=totals.comm_bytes or 0,
                                         backward_comm_bytes=backward_comm or 0)
        warnings += extra
        training = graph.train.training
    cap = graph.capture
    return Report(
        schema_version=SCHEMA_VERSION,
        tool=ToolInfo("mevreport", tool_version),
        created_at=created_at,
        model=ModelInfo(graph.model_name, graph.model_class),
        environment=environment,
        capture=CaptureSummary(cap.method, cap.notes, cap.grad_enabled, cap.training, cap.fake),
        inputs=tuple(InputSummary(i.name, i.shape, i.dtype) for i in graph.inputs),
        totals=totals,
        modules=module_rows,
        nodes=tuple(nodes),
        uncounted_ops=tuple(UncountedOp(op, c) for op, c in sorted(uncounted.items(), key=lambda kv: (-kv[1], kv[0]))),
        warnings=tuple(warnings),
        title=title,
        label=label,
        params=tuple(ParamSummary(p.name, p.shape, p.dtype, p.numel, p.trainable, p.is_buffer, p.tied_names)
                     for p in graph.params),
        weight_stats=m.weight_stats,
        memory_timeline=tuple(timeline),
        training=training,
        grads=graph.train.grads if graph.train is not None else (),
    )
