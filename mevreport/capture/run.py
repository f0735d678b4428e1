"""The capture stage: run the model once under the recorder, then time it.

This is the only stage that executes torch.  It leaves the model as it found
it (mode, device, parameters, ``requires_grad``) and returns a :class:`Graph`
with all observations already on the host.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.weak import WeakIdKeyDictionary

from ..errors import ModelRunError, UsageError
from ..graph import CaptureInfo, Graph, InputInfo, Measurements, ModuleInfo, ParamInfo, WeightStats
from .dispatch import OpRecorder, dtype_name
from .fake import fake_runner
from .inputs import argument_names, iter_output_tensors, map_tensors, named_leaves, normalize_inputs
from .modules import ModuleTracker, is_meta_model, model_device, module_param_counts
from .stats import StatsCollector, weight_stats_all
from .timing import forward_latency, per_op_latency

CAPTURE_METHODS = ("auto", "dispatch", "export")


def parse_device(device: str | torch.device | None, model: nn.Module) -> torch.device:
    if device is None:
        return torch.device("meta") if is_meta_model(model) else model_device(model)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UsageError(f"unknown device {device!r}: use cpu, cuda, cuda:N or meta") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} asked for, but this torch has no CUDA device; use --device cpu or meta")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) present")
    if dev.type not in ("cpu", "cuda", "meta", "mps", "xpu"):
        raise UsageError(f"unsupported device {device!r}: use cpu, cuda, cuda:N or meta")
    return dev


def param_records(model: nn.Module) -> tuple[ParamInfo, ...]:
    """Parameters then buffers, each tensor once; tied names listed on the first."""
    records: list[ParamInfo] = []
    for is_buffer, items in ((False, model.named_parameters(remove_duplicate=False)),
                             (True, model.named_buffers(remove_duplicate=False))):
        first: dict[int, int] = {}
        for name, t in items:
            if id(t) in first:
                i = first[id(t)]
                records[i] = ParamInfo(**{**records[i].__dict__, "tied_names": records[i].tied_names + (name,)})
                continue
            first[id(t)] = len(records)
            records.append(ParamInfo(
                name=name, shape=tuple(t.shape), dtype=dtype_name(t.dtype), numel=t.numel(),
                nbytes=t.numel() * t.element_size(), trainable=bool(t.requires_grad) and not is_buffer,
                is_buffer=is_buffer,
            ))
    return tuple(records)


@contextlib.contextmanager
def _model_on(model: nn.Module, device: torch.device, current: torch.device):
    """Move the model for the run and back afterwards; params keep their identity,
    buffers get their values back."""
    training = model.training
    grads = {id(p): p.requires_grad for p in model.parameters()}
    # Buffers the forward writes in place (BatchNorm running statistics in train
    # mode, caches) would otherwise carry the capture and timed runs' updates.
    # (The version counter is no guide: kernels such as batch norm update running
    # statistics without bumping it.)
    saved = [(n, b, b.detach().clone()) for n, b in model.named_buffers() if b.device.type != "meta"]
    moved = device.type != "meta" and device != current and current.type != "meta"
    if moved:
        model.to(device)
    try:
        yield
    finally:
        if moved:
            model.to(current)
        model.train(training)
        for p in model.parameters():
            p.requires_grad_(grads[id(p)])
        with torch.no_grad():
            for name, buf, value in saved:
                # moving replaced the buffer objects: then find them by name
                (model.get_buffer(name) if moved else buf).copy_(value)


def capture(model: nn.Module, inputs: Any, *, device: str | torch.device | None = None,
            method: str = "auto", stats: bool = True, grad: bool = False, runs: int = 3,
            name: str | None = None, progress: Callable[[str], None] | None = None,
            weights: bool | None = None) -> Graph:
    """Run ``model`` on ``inputs`` and record what it executed (DESIGN §1).

    ``weights`` (default: as ``stats``) adds per-parameter statistics, a cost
    proportional to the parameter count, apart from the instrumented pass.
    """
    if not isinstance(model, nn.Module):
        raise UsageError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    if method not in CAPTURE_METHODS:
        raise UsageError(f"unknown capture method {method!r}: use one of {', '.join(CAPTURE_METHODS)}")
    args, kwargs = normalize_inputs(inputs)
    current = model_device(model)
    dev = parse_device(device, model)
    fake = dev.type == "meta" or is_meta_model(model)
    say = progress or (lambda _msg: None)
    notes: list[str] = []

    graph_inputs = tuple(
        InputInfo(leaf_name, tuple(t.shape), dtype_name(t.dtype))
        for arg_name, value in argument_names(model, args, kwargs)
        for leaf_name, t in named_leaves(value, arg_name)
    )
    if method == "export":
        from .export import export_graph_or_none
        exported, note = export_graph_or_none(model, args, kwargs)
        notes.append(note)
        if exported is not None:
            return exported.with_common(model, graph_inputs, param_records(model), name, dev, grad)

    with _model_on(model, dev, current):
        names = WeakIdKeyDictionary()
        if fake:
            run, fake_ctx, state, args, kwargs = fake_runner(model, args, kwargs, dev)
            for pname, t in state.items():
                names[t] = pname
        else:
            fake_ctx = contextlib.nullcontext()
            args = map_tensors(args, lambda t: t.to(dev))
            kwargs = map_tensors(kwargs, lambda t: t.to(dev))
            for pname, t in list(model.named_parameters()) + list(model.named_buffers()):
                names[t] = pname
            run = lambda: model(*args, **kwargs)  # noqa: E731
        for arg_name, value in argument_names(model, args, kwargs):
            for leaf_name, t in named_leaves(value, arg_name):
                names[t] = "input:" + leaf_name

        tracker = ModuleTracker(model)
        collector = StatsCollector() if stats and not fake else None
        recorder = OpRecorder(tracker, names, collector)
        grad_ctx = torch.enable_grad() if grad else torch.no_grad()
        say("capturing")
        try:
            with fake_ctx, grad_ctx, tracker.active(), recorder:
                output = run()
            output_ids = []
            for t in iter_output_tensors(output):
                pid = recorder.producer.get(t)
                if pid is not None and pid not in output_ids:
                    output_ids.append(pid)
        except ModelRunError:
            raise
        except Exception as exc:  # the model's own failure: name where it happened
            op, path = recorder.failed_at or (None, tracker.current[0])
            where = f" in {op}" if op else ""
            raise ModelRunError(
                f"the model failed{where} at module '{path or '<root>'}' "
                f"({tracker.class_names.get(path, type(model).__name__)}): {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                op=op, module_path=path,
            ) from exc
        finally:
            recorder.clear_tags()
        del output

        node_stats = collector.finish() if collector else {}
        weight_rows: tuple[WeightStats, ...] = ()
        if (stats if weights is None else weights) and not fake:  # need data, not timing: also with runs=0
            weight_rows = weight_stats_all([(n, p) for n, p in model.named_parameters() if p.is_floating_point()])
        measurements = Measurements(node_stats=node_stats, weight_stats=weight_rows)
        if not fake and runs > 0:
            measurements = _measure(run, dev, recorder, runs, grad, measurements, say)

    counts = module_param_counts(model)
    modules = tuple(
        ModuleInfo(path=p, class_name=tracker.class_names[p], calls=tracker.calls[p], params=counts.get(p, 0),
                   depth=0 if p == "" else p.count(".") + 1)
        for p in tracker.order
    )
    if fake:
        notes.append("fake tensors (no data): statistics and latency not measured")
    capture_info = CaptureInfo(
        method="dispatch", notes=tuple(notes) + measurements.notes, device=str(dev),
        grad_enabled=grad, training=model.training, fake=fake,
    )
    return Graph(
        model_name=name or type(model).__name__, model_class=type(model).__name__,
        nodes=tuple(recorder.nodes), modules=modules, params=param_records(model), inputs=graph_inputs,
        output_node_ids=tuple(output_ids), capture=capture_info, measurements=measurements,
    )


def _measure(run: Callable[[], Any], dev: torch.device, recorder: OpRecorder, runs: int, grad: bool,
             base: Measurements, say: Callable[[str], None]) -> Measurements:
    """Timed runs, apart from the capture pass so no statistics work is timed."""
    say(f"timing {runs} runs")
    expected = [n.op for n in recorder.nodes]
    with torch.enable_grad() if grad else torch.no_grad():
        node_latency, notes = per_op_latency(run, dev, expected, runs)
        fwd, spread, peak = forward_latency(run, dev, runs)
    return dataclasses.replace(base, node_latency_ms=node_latency, forward_latency_ms=fwd,
                               forward_latency_spread_ms=spread, measured_peak_bytes=peak,
                               latency_runs=runs, notes=base.notes + tuple(notes))
