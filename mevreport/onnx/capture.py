"""ONNX file to :class:`~mevreport.graph.Graph` (capture method ``onnx``).

Static first, measured second: shapes come from ONNX shape inference on the
model with its inputs bound, parameters from initializers, costs (later, in
the analysis) from the registry.  Then the model runs with onnxruntime for
activation statistics, per-node times and latency; values it returns also
fill in any shape inference could not determine.  A model onnxruntime cannot
run still gets its static report, with the reason in the notes.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from onnx import numpy_helper

from ..capture.stats import cpu_stats
from ..capture.weight_stats import weight_stats
from ..graph import CaptureInfo, Graph, InputInfo, Measurements, TensorStats, WeightStats
from .build import build_nodes, classify_initializers, module_infos, param_records
from .reader import LoadedOnnx, bind_shapes, infer_value_types, read_onnx, with_input_shapes
from .runtime import RuntimeResult, providers_for, random_feeds, run_model


def _fill_runtime_types(types: dict[str, tuple[tuple[int, ...], str]], values: Mapping[str, np.ndarray]) -> int:
    """Take shapes from the run where inference left them unknown; returns how many."""
    filled = 0
    for name, arr in values.items():
        known = types.get(name)
        if known is None or any(d < 0 for d in known[0]) or known[1] == "unknown":
            types[name] = (tuple(int(d) for d in arr.shape), str(arr.dtype))
            filled += 1
    return filled


def _stats_of(arr: np.ndarray) -> TensorStats | None:
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.complexfloating)):
        return None
    return cpu_stats(torch.from_numpy(np.ascontiguousarray(arr)))


def _model_class(loaded: LoadedOnnx) -> str:
    """The exported module's class when the dynamo exporter recorded it, else the graph's name."""
    for node in loaded.model.graph.node:
        for p in node.metadata_props:
            if p.key == "pkg.torch.onnx.class_hierarchy" and p.value.startswith("["):
                first = p.value[1:].split(",")[0].strip().strip("'\"")
                if first:
                    return first.rsplit(".", 1)[-1]
    return loaded.model.graph.name or "ONNX graph"


def capture_onnx(path: str | Path, *, positional_shapes: list[tuple[int, ...]] | None = None,
                 named_shapes: dict[str, tuple[int, ...]] | None = None, device: str | None = None,
                 stats: bool = True, runs: int = 3, name: str | None = None,
                 progress: Callable[[str], None] | None = None) -> Graph:
    """Read, bind, infer, build and (unless ``device="meta"``) run an ONNX model."""
    say = progress or (lambda _m: None)
    loaded = read_onnx(path)
    shapes = bind_shapes(loaded, list(positional_shapes or []), dict(named_shapes or {}))
    bound = with_input_shapes(loaded.model, shapes)
    say("inferring shapes")
    types, inference_error = infer_value_types(bound, loaded.large)
    m = loaded.model
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in m.opset_import)
    notes = [f"read from {loaded.path.name}: producer {m.producer_name or '?'} {m.producer_version}".rstrip()
             + f", IR version {m.ir_version}, opsets {opsets}"]
    if loaded.checker_error:
        notes.append(f"onnx.checker: {loaded.checker_error}")
    if inference_error:
        notes.append(inference_error)

    dtypes = {i.name: i.dtype for i in loaded.inputs}
    dev = device or "cpu"
    result: RuntimeResult | None = None
    if dev == "meta":
        notes.append("device meta: not run; statistics and latency not measured")
    else:
        providers = providers_for(dev)
        say("running with onnxruntime")
        outputs = [o for node in m.graph.node for o in node.output if o]
        gaps = any(o not in types or any(d < 0 for d in types[o][0]) for o in outputs)
        result = run_model(bound, random_feeds(shapes, dtypes), providers, runs, values=stats or gaps,
                           large=loaded.large)
        notes.extend(result.notes)
        filled = _fill_runtime_types(types, result.values)
        if filled:
            notes.append(f"{filled} value shape(s) taken from the onnxruntime run (shape inference left them unknown)")
    kinds = classify_initializers(m)
    params = param_records(m, kinds)
    built = build_nodes(bound, types, kinds, set(shapes))
    unknown = sum(1 for n in built.nodes for o in n.outputs if any(d < 0 for d in o.shape))
    if unknown:
        notes.append(f"{unknown} node output(s) with unknown shapes: nodes that need them are uncounted")
    model_class = _model_class(loaded)
    modules = module_infos(built, params, model_class)

    node_stats: dict[int, TensorStats] = {}
    node_ms: dict[int, float] = {}
    weights: tuple[WeightStats, ...] = ()
    if result is not None:
        if stats:
            for nid, outs in enumerate(built.output_names):
                for o in outs:
                    arr = result.values.get(o)
                    s = _stats_of(arr) if arr is not None else None
                    if s is not None:
                        node_stats[nid] = s
                        break
            if result.values:
                inits = {i.name: i for i in m.graph.initializer}
                weights = tuple(weight_stats(p.name, torch.from_numpy(numpy_helper.to_array(inits[p.name]).copy()))
                                for p in params if not p.is_buffer and p.dtype.startswith("float"))
        node_ms = {nid: result.node_ms[i] for nid, i in enumerate(built.onnx_index) if i in result.node_ms}
    measurements = Measurements(
        node_stats=node_stats, node_latency_ms=node_ms,
        forward_latency_ms=result.forward_ms if result else None,
        forward_latency_spread_ms=result.spread_ms if result else None,
        weight_stats=weights, latency_runs=result.runs if result else 0,
    )
    return Graph(
        model_name=name or loaded.path.stem, model_class=model_class, nodes=built.nodes, modules=modules,
        params=params, inputs=tuple(InputInfo(n, shapes[n], dtypes[n]) for n in shapes),
        output_node_ids=built.output_node_ids,
        capture=CaptureInfo(method="onnx", notes=tuple(notes), device=dev,
                            grad_enabled=False, training=False, fake=result is None),
        measurements=measurements,
    )
