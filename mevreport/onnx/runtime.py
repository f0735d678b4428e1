"""Running an ONNX model with onnxruntime: values, per-node times, latency.

Three sessions, each for one purpose, because what makes one measurement
right spoils another:

* values: every intermediate value is added to the graph outputs (on a copy)
  and graph optimizations are off, so each ONNX node's own output comes back
  once, for activation statistics and for shapes inference could not find;
* per-node times: onnxruntime's profiler, optimizations off, so every ONNX
  node runs as itself and its kernel time maps to it (nodes renamed on a copy
  so names are unique); like the PyTorch path, this is an unfused, per-op view;
* forward latency: the model as given, all optimizations on, plain timed runs
  (median), which is what a deployment sees.
"""
from __future__ import annotations

import copy
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from ..errors import UsageError, one_line
from ..graph import frozen_map


@dataclass(frozen=True)
class RuntimeResult:
    values: Mapping[str, np.ndarray]     # value name -> array (intermediates included), read-only
    node_ms: Mapping[int, float]         # index in model.graph.node -> median kernel ms, read-only
    forward_ms: float | None
    spread_ms: float | None
    runs: int
    provider: str
    notes: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", frozen_map(self.values))
        object.__setattr__(self, "node_ms", frozen_map(self.node_ms))


def providers_for(device: str | None) -> list[str]:
    """CPU, or CUDA where asked for and onnxruntime has the provider."""
    import onnxruntime as ort
    available = ort.get_available_providers()
    if device and device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise UsageError(f"device {device!r} asked for, but this onnxruntime has no CUDAExecutionProvider "
                             f"(has: {', '.join(available)}); use --device cpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device not in (None, "cpu"):
        raise UsageError(f"unsupported device {device!r} for an ONNX model: use cpu, cuda or meta")
    return ["CPUExecutionProvider"]


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**63


def random_feeds(shapes: dict[str, tuple[int, ...]], dtypes: dict[str, str], seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic inputs: normal floats, integers in [0, 100) (token ids), random bools."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, shape in shapes.items():
        dtype = dtypes.get(name, "float32")
        numel = math.prod(int(d) for d in shape)
        try:
            if numel * 8 > _physical_memory():  # numpy draws float64 first: refuse before the kernel's OOM killer
                raise MemoryError
            if dtype.startswith(("float", "bfloat")):
                feeds[name] = rng.standard_normal(shape).astype(dtype if dtype != "bfloat16" else "float32")
            elif dtype == "bool":
                feeds[name] = rng.integers(0, 2, shape).astype(bool)
            else:
                feeds[name] = rng.integers(0, 100, shape).astype(dtype)
        except (ValueError, MemoryError, OverflowError) as exc:
            size = numel * (np.dtype(dtype).itemsize if dtype != "bfloat16" else 2)
            why = "not enough memory" if isinstance(exc, MemoryError) or "too big" in str(exc) \
                or "allocate" in str(exc) else one_line(exc, None, typed=False)
            example = ",".join(str(min(int(d), 8)) for d in shape)
            raise UsageError(f"cannot create the random input {name!r} of shape {list(shape)} "
                             f"({size / 1e9:,.1f} GB of {dtype}): {why}; give a smaller shape, e.g. "
                             f"--input-shape {name}={example}, or --device meta to analyse without data") from None
    return feeds


def _session(model: onnx.ModelProto, providers: list[str], optimize: bool, profile_dir: str | None = None):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if profile_dir is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(profile_dir, "mevreport_ort")
    return ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=providers)


def _all_values_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy that outputs every node output (typed where inference knows the type)."""
    m = copy.deepcopy(model)
    typed = {vi.name: vi for vi in m.graph.value_info}
    present = {o.name for o in m.graph.output}
    for node in m.graph.node:
        for name in node.output:
            if name and name not in present:
                present.add(name)
                m.graph.output.append(copy.deepcopy(typed[name]) if name in typed else helper.ValueInfoProto(name=name))
    return m


def node_times(model: onnx.ModelProto, feeds: dict[str, np.ndarray], providers: list[str],
               runs: int) -> dict[int, float]:
    """Median kernel time (ms) per node index, from onnxruntime's profiler."""
    m = copy.deepcopy(model)
    for i, node in enumerate(m.graph.node):
        node.name = f"mevreport_node_{i}"
    with tempfile.TemporaryDirectory(prefix="mevreport-ort-") as tmp:
        sess = _session(m, providers, optimize=False, profile_dir=tmp)
        sess.run(None, feeds)  # warm-up, in the profile too; dropped below
        for _ in range(runs):
            sess.run(None, feeds)
        path = sess.end_profiling()
        with open(path, encoding="utf-8") as f:
            events = json.load(f)
    samples: dict[int, list[float]] = {}
    for ev in events:
        name = ev.get("name", "")
        if ev.get("cat") != "Node" or not name.endswith("_kernel_time") or not name.startswith("mevreport_node_"):
            continue
        try:
            idx = int(name[len("mevreport_node_"):-len("_kernel_time")])
        except ValueError:
            continue
        samples.setdefault(idx, []).append(float(ev.get("dur", 0)) / 1e3)
    # the first sample of each node is the warm-up run
    return {i: statistics.median(v[1:] if len(v) > 1 else v) for i, v in samples.items()}


def forward_times(model: onnx.ModelProto, feeds: dict[str, np.ndarray], providers: list[str],
                  runs: int) -> tuple[float, float]:
    sess = _session(model, providers, optimize=True)
    sess.run(None, feeds)  # warm-up
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples), max(samples) - min(samples)


def run_model(model: onnx.ModelProto, feeds: dict[str, np.ndarray], providers: list[str], runs: int,
              values: bool = True, large: bool = False) -> RuntimeResult:
    """Values, per-node times and latency; an op onnxruntime cannot run gives notes, not an error."""
    import onnxruntime as ort
    provider = providers[0]
    notes = [f"onnxruntime {ort.__version__} on {provider}"]
    if large:
        notes.append("model over 2 GiB: not run with onnxruntime; statistics and latency not measured")
        return RuntimeResult({}, {}, None, None, 0, provider, tuple(notes))
    got: dict[str, np.ndarray] = {}
    try:
        if values:
            m = _all_values_model(model)
            sess = _session(m, providers, optimize=False)
            names = [o.name for o in sess.get_outputs()]
            got = dict(zip(names, sess.run(names, feeds)))
    except Exception as exc:  # any runtime failure leaves a static report
        notes.append(f"onnxruntime could not run the model ({one_line(exc, 300)}); statistics and latency not measured, "
                     f"shapes, parameters and MACs/FLOPs are from static analysis")
        return RuntimeResult({}, {}, None, None, 0, provider, tuple(notes))
    node_ms: dict[int, float] = {}
    fwd = spread = None
    if runs > 0:
        try:
            node_ms = node_times(model, feeds, providers, runs)
            fwd, spread = forward_times(model, feeds, providers, runs)
            notes.append("per-node latency: onnxruntime profiler kernel times with graph optimizations off; "
                         f"forward latency: median of {runs} runs with all optimizations on")
        except Exception as exc:
            notes.append(f"onnxruntime timing failed ({one_line(exc, 300)}); latency not measured")
            return RuntimeResult(got, {}, None, None, 0, provider, tuple(notes))
    return RuntimeResult(got, node_ms, fwd, spread, runs if fwd is not None else 0, provider, tuple(notes))
