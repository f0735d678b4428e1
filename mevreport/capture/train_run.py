"""Capture of a training step (``train=True``): the recorded step, then timed steps (DESIGN §6).

Each step, recorded or timed, starts from fresh copies and a fresh optimizer
(:func:`~.train.setup_step`), so every one runs the same ops: an Adam step
that finds its state already made would skip the ``zeros_like`` of its first
step and no timed run would match the recorded one.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import ModelRunError, UsageError
from ..graph import Measurements, TrainMeasurements
from .dispatch import TensorNames, name_inputs
from .inputs import iter_output_tensors
from .modules import ModuleTracker
from .nodes import ParamRef, module_infos, output_node_ids
from .parts import CaptureParts
from .stats import StatsCollector
from .timing import OpKey, OpTimer, match_by_module_call, node_medians
from .train import TrainRecorder, TrainSpec, existing_storages, names_of, run_step, setup_step, train_measurements
from .train_memory import SavedTensors, StorageLedger


def loss_inputs(inputs: Any) -> Callable[[tuple, dict], Any]:
    """The inputs as ``loss(outputs, inputs)`` gets them: in the form the caller gave, on the step's device."""
    if isinstance(inputs, torch.Tensor):
        return lambda args, kwargs: args[0]
    if isinstance(inputs, dict):
        return lambda args, kwargs: kwargs
    if isinstance(inputs, (tuple, list)):
        return lambda args, kwargs: args
    return lambda args, kwargs: (args, kwargs)


class _ForwardHooks:
    """The saved-tensor hooks on for the forward and loss, off from the backward on (a phase callback
    of :func:`~.train.run_step`); also the recorder's phase, when there is one."""

    def __init__(self, saved: SavedTensors, recorder: TrainRecorder | None = None) -> None:
        self._ctx = saved.active()
        self._recorder = recorder
        self._on = False

    def __enter__(self) -> _ForwardHooks:
        self._ctx.__enter__()
        self._on = True
        return self

    def phase(self, p: str) -> None:
        if self._recorder is not None:
            self._recorder.phase = p
        if p == "backward":
            self._off()

    def _off(self) -> None:
        if self._on:
            self._on = False
            self._ctx.__exit__(None, None, None)

    def __exit__(self, *exc: object) -> None:
        self._off()


def _cuda_mark(dev: torch.device) -> int | None:
    if dev.type != "cuda":
        return None
    torch.cuda.synchronize(dev)
    return torch.cuda.memory_allocated(dev)


def train_parts(model: nn.Module, args: tuple, kwargs: dict, dev: torch.device, *, inputs: Any, fake: bool,
                stats: bool, runs: int, param_counts: dict[str, int], spec: TrainSpec,
                say: Callable[[str], None], model_failure: Callable[..., ModelRunError],
                ) -> tuple[CaptureParts, TrainMeasurements]:
    """Record one training step, measure it, time ``runs`` more; the model is in train mode throughout."""
    model.train()
    for_loss = loss_inputs(inputs)
    originals = {n: t.detach() for n, t in model.named_parameters()}
    say("capturing a training step")
    base = _cuda_mark(dev)
    s = setup_step(model, args, kwargs, dev, fake, spec)
    if base is not None:
        torch.cuda.reset_peak_memory_stats(dev)
    names = TensorNames()
    for n, t in s.unique:
        names[t] = ParamRef(n)
    name_inputs(model, s.args, s.kwargs, names)
    tracker = ModuleTracker(model)
    collector = StatsCollector() if stats and not fake else None
    ledger = StorageLedger(existing_storages(s))
    saved = SavedTensors(tracker, existing_storages(s))
    recorder = TrainRecorder(tracker, names, collector, ledger=ledger, param_names=names_of(s))
    try:
        with s.mode, torch.enable_grad(), tracker.active(), recorder, _ForwardHooks(saved, recorder) as hooks:
            output, info = run_step(model, s, spec, for_loss, hooks.phase)
        output_ids = output_node_ids(recorder.ref(t) for t in iter_output_tensors(output))
    except (ModelRunError, UsageError):
        raise
    except Exception as exc:
        raise model_failure(exc, recorder.failed_at, tracker, model) from exc
    finally:
        recorder.clear_tags()
    del output
    peak = None
    if base is not None:
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) - base
    train = train_measurements(s, info, saved, ledger, stats=stats, originals=originals, measured_peak=peak)
    expected: list[OpKey] = [(n.op, n.module_path, n.module_call) for n in recorder.nodes]
    nodes = tuple(recorder.attributed())
    del s
    measurements = Measurements(node_stats=collector.finish() if collector else {},
                                stats_failures=dict(collector.failures) if collector else {})
    if not fake and runs > 0:
        say(f"timing {runs} training steps")
        latency, notes = _timed_steps(model, args, kwargs, dev, spec, for_loss, expected, runs)
        measurements = Measurements(node_stats=measurements.node_stats, stats_failures=measurements.stats_failures,
                                    node_latency_ms=latency, latency_runs=runs, notes=tuple(notes))
    modules = module_infos(tracker.order, tracker.class_names, tracker.calls, param_counts)
    return CaptureParts(nodes, modules, output_ids, measurements, "dispatch"), train


def _timed_steps(model: nn.Module, args: tuple, kwargs: dict, dev: torch.device, spec: TrainSpec,
                 for_loss: Callable[[tuple, dict], Any], expected: list[OpKey], runs: int,
                 ) -> tuple[dict[int, float], list[str]]:
    """Median per-op time over ``runs`` steps, each from fresh copies, matched to the recorded ops."""
    samples: list[dict[int, float]] = []
    differed = 0
    for _ in range(runs):
        s = setup_step(model, args, kwargs, dev, False, spec)
        tracker = ModuleTracker(model)
        timer = OpTimer(dev, tracker)
        # the same saved-tensor hooks as the recorded step: without them autograd saves an output
        # through a detach (an op) in the forward instead of in the backward, and no op sequence matches
        with torch.enable_grad(), tracker.active(), timer, _ForwardHooks(SavedTensors(tracker, ())) as hooks:
            run_step(model, s, spec, for_loss, hooks.phase)
        times = timer.times_ms()
        if timer.ops != expected:
            differed += 1
        samples.append(match_by_module_call(expected, timer.ops, times))
        del s
    medians = node_medians(samples)
    notes = []
    if differed:
        notes.append(f"{differed} of {runs} timed training steps executed a different op sequence: "
                     f"{len(expected) - len(medians)} of {len(expected)} ops have no time")
    return medians, notes


__all__ = ["loss_inputs", "train_parts"]
