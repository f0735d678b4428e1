"""The capture stage: run the model once under the recorder, then time it.

This is the only stage that executes torch.  It leaves the model as it found
it (mode, device, parameters, ``requires_grad``) and returns a :class:`Graph`
with all observations already on the host.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import linecache
import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..distributed.tensors import class_name
from ..errors import NO_CUDA_HINT, ModelRunError, UsageError, no_cuda, one_line
from ..gcpause import freeze_more, heap_frozen
from ..graph import CaptureInfo, Graph, InputInfo, Measurements, ParamInfo, WeightStats
from .dispatch import OpRecorder, TensorNames, name_inputs
from .fake import fake_runner
from .inputs import argument_names, iter_output_tensors, map_tensors, named_leaves, normalize_inputs
from .modules import ModelTensors, ModuleTracker, module_param_counts
from .nodes import ParamRef, dtype_name, module_infos, output_node_ids
from .param_guard import ParamGuard
from .parts import CaptureParts
from .state import model_on, moves, rng_kept
from .stats import StatsCollector
from .timing import OpTimer, forward_latency, per_op_latency
from .weight_stats import weight_stats_all

CAPTURE_METHODS = ("auto", "dispatch", "export")


def parse_device(device: str | torch.device | None, model: nn.Module,
                 tensors: ModelTensors | None = None) -> torch.device:
    if device is None:
        tensors = tensors or ModelTensors.of(model)
        return torch.device("meta") if tensors.is_meta else tensors.device
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


_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


def failing_call(exc: BaseException) -> str | None:
    """The Python call that raised, for failures before any aten op ran.

    Argument checks such as conv2d's rank check fail inside a composite op
    that the dispatch recorder never sees; the innermost frame outside
    mevreport (with Python 3.11 column positions) still names the call,
    like ``F.conv2d``, or at least the function it was in.
    """
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_PACKAGE_DIR)]
    if not frames:
        return None
    frame = frames[-1]
    line = linecache.getline(frame.filename, frame.lineno or 0)
    col = getattr(frame, "colno", None)
    match = re.match(r"\s*([A-Za-z_][\w.]*)\s*\(", line[col:]) if col is not None and line else None
    return match.group(1) if match else f"{frame.name}()"


def param_records(tensors: ModelTensors) -> tuple[ParamInfo, ...]:
    """Parameters then buffers, each tensor once; tied names listed on the first."""
    records: list[ParamInfo] = []
    for is_buffer, items in ((False, tensors.params), (True, tensors.buffers)):
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


def _is_exported_module(model: nn.Module) -> bool:
    """A module rebuilt by ``ExportedProgram.module()``: running it calls no submodules,
    so only its graph's ``nn_module_stack`` knows where each op came from."""
    return isinstance(model, torch.fx.GraphModule) and any(
        "nn_module_stack" in n.meta for n in model.graph.nodes if n.op == "call_function")


def capture(model: nn.Module, inputs: Any, *, device: str | torch.device | None = None,
            method: str = "auto", stats: bool = True, grad: bool = False, runs: int = 3,
            name: str | None = None, progress: Callable[[str], None] | None = None,
            weights: bool | None = None, train: Any = None) -> Graph:
    """Run ``model`` on ``inputs`` and record what it executed (DESIGN §1).

    ``method`` "auto" and "dispatch" record the ops the model executes;
    "export" uses ``torch.export`` and, when export refuses the model, says so
    through ``progress``, records why in ``capture.notes`` and falls back to
    dispatch capture.  ``weights`` (default: as ``stats``) adds per-parameter
    statistics, a cost proportional to the parameter count, apart from the
    instrumented pass.

    ``train`` (a :class:`~.train.TrainSpec`) records one training step instead of a
    forward pass (DESIGN §6; capture/train_run.py).
    """
    if not isinstance(model, nn.Module):
        raise UsageError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    if method not in CAPTURE_METHODS:
        raise UsageError(f"unknown capture method {method!r}: use one of {', '.join(CAPTURE_METHODS)}")
    args, kwargs = normalize_inputs(inputs)
    tensors = ModelTensors.of(model)
    current = tensors.device
    dev = parse_device(device, model, tensors)
    fake = dev.type == "meta" or tensors.is_meta
    say = progress or (lambda _msg: None)
    notes: list[str] = []

    graph_inputs = tuple(
        InputInfo(leaf_name, tuple(t.shape), dtype_name(t.dtype))
        for arg_name, value in argument_names(model, args, kwargs)
        for leaf_name, t in named_leaves(value, arg_name)
    )
    if method == "auto" and _is_exported_module(model):
        method = "export"
        notes.append("the model is a torch.export module: export capture keeps its module paths")
    counts = module_param_counts(model)
    want_weights = stats if weights is None else weights
    if train is not None and method == "export":
        raise UsageError("a training step is captured by running it: use capture 'auto' or 'dispatch' with train=True")
    train_figures = None
    with heap_frozen(), model_on(model, dev, current, tensors) as guard:
        parts: CaptureParts | None = None
        if train is not None:
            from .train_run import train_parts
            parts, train_figures = train_parts(model, args, kwargs, dev, inputs=inputs, fake=fake, stats=stats,
                                               runs=runs, param_counts=counts, spec=train, say=say,
                                               model_failure=_model_failure)
            if want_weights and not fake:
                rows = weight_stats_all([(n, p) for n, p in tensors.unique("params") if p.is_floating_point()])
                parts = dataclasses.replace(parts, measurements=dataclasses.replace(parts.measurements,
                                                                                    weight_stats=rows))
            method = "dispatch"
        fallback: str | None = None
        if method == "export" and parts is None:
            from .export import ExportFailed, export_parts
            # export only traces (with fake tensors): inputs go where the parameters are
            where = torch.device("meta") if tensors.is_meta else (current if fake else dev)
            eargs = map_tensors(args, lambda t: t.to(where))
            ekwargs = map_tensors(kwargs, lambda t: t.to(where))
            names = TensorNames()
            name_inputs(model, eargs, ekwargs, names)
            try:
                parts = export_parts(model, eargs, ekwargs, dev, names=names, fake=fake, stats=stats, runs=runs,
                                     grad=grad, param_counts=counts, say=say, weights=want_weights)
            except ExportFailed as exc:
                fallback = f"torch.export failed, fell back to dispatch capture: {exc.reason}"
                notes.append(fallback)
        if parts is None:
            # the fallback is said as soon as the model has run (before timing, in the order things happened),
            # not when export refused it: a model that then fails gets only its error line
            run_parts = functools.partial(
                _dispatch_parts, model, args, kwargs, dev, fake=fake, stats=stats, runs=runs, grad=grad,
                param_counts=counts, say=say, weights=want_weights,
                tensors=ModelTensors.of(model) if moves(dev, current) else tensors,
                guard=None if fake else guard, ran=f"warning: {fallback}" if fallback else None)
            parts = _with_data_dependent_sizes(run_parts, notes) if fake else run_parts()

    if fake:
        notes.append("fake tensors (no data): statistics and latency not measured")
    capture_info = CaptureInfo(
        method=parts.method, notes=tuple(notes) + parts.measurements.notes, device=str(dev),
        grad_enabled=grad or train is not None, training=model.training or train is not None, fake=fake,
    )
    return Graph(
        model_name=name or class_name(model), model_class=class_name(model),
        nodes=parts.nodes, modules=parts.modules, params=param_records(tensors), inputs=graph_inputs,
        output_node_ids=parts.output_node_ids, capture=capture_info, measurements=parts.measurements,
        train=train_figures,
    )


def _with_data_dependent_sizes(run_parts: Callable[..., CaptureParts], notes: list[str]) -> CaptureParts:
    """A fake run; where an op's output size depends on the data (``nonzero`` in detection models), again
    with such sizes unbacked and bounded by their input's size, and a note that the figures after it are
    upper bounds.  A model that then needs the values themselves cannot be analysed without data: one
    line naming the op and the module, and what to do."""
    from torch._subclasses.fake_tensor import DataDependentOutputException, DynamicOutputShapeException
    from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

    try:
        return run_parts()
    except ModelRunError as exc:
        if not isinstance(exc.__cause__, DynamicOutputShapeException):
            raise
        first = exc
    try:
        parts = run_parts(data_dependent=True)
    except ModelRunError as exc:
        if not isinstance(exc.__cause__, (GuardOnDataDependentSymNode, DataDependentOutputException,
                                          DynamicOutputShapeException)):
            raise
        raise ModelRunError(
            f"the model cannot be analysed without data: {_model_line(exc.__cause__) or exc.op or 'an op'} at "
            f"module '{exc.module_path or '<root>'}' needs values that fake tensors do not have (after "
            f"{first.op} at '{first.module_path or '<root>'}' made a size depend on the data); "
            f"run it on real data with --device cpu (device='cpu' in the API)",
            op=exc.op, module_path=exc.module_path) from exc
    notes.append(f"{first.op} at module '{first.module_path or '<root>'}' makes an output size that depends on "
                 f"the data: analysed at its upper bound (every element selected), so shapes, MACs and bytes "
                 f"that follow from it are upper bounds")
    return parts


def _model_line(exc: BaseException | None) -> str | None:
    """``file.py:12 (if keep.numel() > 5:)``: the model's own line that asked for data, outside torch."""
    torch_dir = str(Path(torch.__file__).parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__ if exc else None)
              if not f.filename.startswith((_PACKAGE_DIR, torch_dir))]
    if not frames:
        return None
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.lineno} ({(f.line or '').strip()})"


def _dispatch_parts(model: nn.Module, args: tuple, kwargs: dict, dev: torch.device, *, fake: bool, stats: bool,
                    runs: int, grad: bool, param_counts: dict[str, int], say: Callable[[str], None],
                    weights: bool, tensors: ModelTensors, guard: ParamGuard | None = None,
                    data_dependent: bool = False, ran: str | None = None) -> CaptureParts:
    """Capture by running under the :class:`OpRecorder` (the default method); ``ran`` is said once the recorded
    call has returned."""
    names = TensorNames()
    fake_ctx: contextlib.AbstractContextManager[Any]
    if fake:
        run, fake_ctx, state, args, kwargs = fake_runner(model, args, kwargs, dev, data_dependent)
        for pname, t in state.items():
            names[t] = ParamRef(pname)
    else:
        fake_ctx = contextlib.nullcontext()
        args = map_tensors(args, lambda t: t.to(dev))
        kwargs = map_tensors(kwargs, lambda t: t.to(dev))
        for pname, t in tensors.unique():
            names[t] = ParamRef(pname)
        run = lambda: model(*args, **kwargs)  # noqa: E731
    name_inputs(model, args, kwargs, names)

    grad_ctx = torch.enable_grad if grad else torch.no_grad
    say("capturing")
    warm_ops = _warm_up(run, model, dev, grad_ctx, guard) if not fake and runs > 0 else None
    tracker = ModuleTracker(model)
    collector = StatsCollector() if stats and not fake else None
    recorder = OpRecorder(tracker, names, collector, before_op=guard.before if guard is not None else None)
    try:
        with fake_ctx, grad_ctx(), tracker.active(), recorder:
            output = run()
        output_ids = output_node_ids(recorder.ref(t) for t in iter_output_tensors(output))
    except ModelRunError:
        raise
    except Exception as exc:  # the model's own failure: name where it happened
        hint = "" if warm_ops is None else " (it ran once, in the warm-up: skip timing with --runs 0, runs=0 in the API)"
        raise _model_failure(exc, recorder.failed_at, tracker, model, hint) from exc
    finally:
        recorder.clear_tags()
    del output
    freeze_more()  # the recorded graph is long-lived: the timed runs' collections need not walk it again
    if ran:
        say(ran)

    node_stats = collector.finish() if collector else {}
    weight_rows: tuple[WeightStats, ...] = ()
    if weights and not fake:  # needs data, not timing: also with runs=0
        weight_rows = weight_stats_all([(n, p) for n, p in tensors.unique("params") if p.is_floating_point()])
    notes: tuple[str, ...] = ()
    if warm_ops is not None and warm_ops != [n.op for n in recorder.nodes]:
        notes = (f"the first call (an untimed warm-up) executed {len(warm_ops)} ops, the recorded call "
                 f"{len(recorder.nodes)}: the graph is of a later call, so one-time work of a first call "
                 f"(a lazily built buffer or cache) is not in it",)
    measurements = Measurements(node_stats=node_stats, weight_stats=weight_rows, notes=notes,
                                stats_failures=dict(collector.failures) if collector else {})
    if not fake and runs > 0:
        try:
            measurements = _measure(run, model, dev, recorder, runs, grad_ctx, measurements, say)
        except Exception as exc:  # a model that runs twice but not three times (state, exhausted iterators)
            raise ModelRunError(f"the model ran but failed in a timed run ({one_line(exc, None)}); "
                                f"skip timing with --runs 0 (runs=0 in the API)", op=failing_call(exc)) from exc
    modules = module_infos(tracker.order, tracker.class_names, tracker.calls, param_counts)
    return CaptureParts(tuple(recorder.nodes), modules, output_ids, measurements, "dispatch")


def _model_failure(exc: Exception, failed_at: tuple[str, str] | None, tracker: ModuleTracker, model: nn.Module,
                   hint: str = "") -> ModelRunError:
    """One line naming the op and the innermost module that was running when the model raised."""
    op, path = failed_at or (failing_call(exc), tracker.current[0])
    if no_cuda(exc):  # the model moves something to CUDA itself: the fix is where it does so, not the inputs
        hint = f"; {NO_CUDA_HINT}"
    where = f" in {op}" if op else ""
    return ModelRunError(
        f"the model failed{where} at module '{path or '<root>'}' "
        f"({tracker.class_names.get(path, type(model).__name__)}): {one_line(exc, None)}{hint}",
        op=op, module_path=path,
    )


def _warm_up(run: Callable[[], Any], model: nn.Module, dev: torch.device, grad_ctx: Callable[[], Any],
             guard: ParamGuard | None = None) -> list[str]:
    """One untimed call before the recorded one; the ops it executed.

    Models that do one-time work on their first call (a lazily built buffer,
    a detection model's anchor or RoI cache) would otherwise be recorded
    doing it, and no timed run would match the recorded op sequence.  The
    generators are put back afterwards, so the recorded call draws the
    random numbers the user's own first call would; attributes and buffers
    the warm-up changes are put back when capture ends (state.model_on).
    """
    tracker = ModuleTracker(model)
    timer = OpTimer(dev, tracker, before_op=guard.before if guard is not None else None)
    try:
        with rng_kept(dev), grad_ctx(), tracker.active(), timer:
            run()
    except Exception as exc:
        raise _model_failure(exc, timer.failed_at, tracker, model) from exc
    return [op for op, _, _ in timer.ops]


def _measure(run: Callable[[], Any], model: nn.Module, dev: torch.device, recorder: OpRecorder, runs: int,
             grad_ctx: Callable[[], Any], base: Measurements, say: Callable[[str], None]) -> Measurements:
    """Timed runs, apart from the capture pass so no statistics work is timed."""
    say(f"timing {runs} runs")
    expected = [(n.op, n.module_path, n.module_call) for n in recorder.nodes]
    with grad_ctx():
        node_latency, notes = per_op_latency(run, dev, expected, runs, ModuleTracker(model))
        fwd, spread, peak = forward_latency(run, dev, runs)
    return dataclasses.replace(base, node_latency_ms=node_latency, forward_latency_ms=fwd,
                               forward_latency_spread_ms=spread, measured_peak_bytes=peak,
                               latency_runs=runs, notes=base.notes + tuple(notes))
