"""Latency: per-op times from timed runs, and plain forward passes.

Timed runs are separate from the capture run so they never include the
statistics work.  On CUDA each op gets a pair of events and the run ends with
one synchronisation; on the CPU the op is bracketed by ``perf_counter``, which
excludes this tool's own Python between ops.  The whole-forward latency comes
from plain, uninstrumented forward passes.
"""
from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .dispatch import _SKIP_NAMESPACES, is_work, tensors_in, written_outputs
from .modules import ModuleTracker

OpKey = tuple[str, str, int]
"""An op as both the recorder and the timer see it: (op name, module path, module call)."""


class OpTimer(TorchDispatchMode):
    """Times each recorded op, with the same filter as the recorder.

    With a :class:`~mevreport.capture.modules.ModuleTracker` active it also
    notes the module call each op ran in, so a run whose op sequence differs
    from the captured one can still be matched module call by module call.
    """

    def __init__(self, device: torch.device, tracker: ModuleTracker | None = None,
                 before_op: Callable[[Any, tuple, dict], None] | None = None) -> None:
        super().__init__()
        self.before_op = before_op  # e.g. ParamGuard.before in the warm-up: save a parameter it writes
        self.cuda = device.type == "cuda"
        self.tracker = tracker
        self.ops: list[OpKey] = []
        self.failed_at: tuple[str, str] | None = None  # (op, module path) of the op that raised
        self._cpu_ms: list[float] = []
        self._events: list[tuple[Any, Any]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.before_op is not None:
            self.before_op(func, args, kwargs)
        try:
            if self.cuda:
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                out = func(*args, **kwargs)
                end.record()
            else:
                t0 = time.perf_counter()
                out = func(*args, **kwargs)
                elapsed = (time.perf_counter() - t0) * 1e3
        except Exception:
            if self.failed_at is None:
                self.failed_at = (str(func), self.tracker.current[0] if self.tracker is not None else "")
            raise
        if func.namespace in _SKIP_NAMESPACES:
            return out
        outs = tensors_in(out) or written_outputs(func, args, kwargs)
        if not outs or not is_work(args, kwargs, outs):
            return out
        path, call = self.tracker.current if self.tracker is not None else ("", 0)
        self.ops.append((str(func), path, call))
        if self.cuda:
            self._events.append((start, end))
        else:
            self._cpu_ms.append(elapsed)
        return out

    def times_ms(self) -> list[float]:
        if self.cuda:
            torch.cuda.synchronize()  # the one synchronisation of the run
            return [s.elapsed_time(e) for s, e in self._events]
        return self._cpu_ms


def node_medians(samples: Iterable[Mapping[int, float]]) -> dict[int, float]:
    """Median time of each node over the runs that timed it: how per-op latency is attached
    to nodes under either capture method."""
    by_node: dict[int, list[float]] = {}
    for sample in samples:
        for node_id, ms in sample.items():
            by_node.setdefault(node_id, []).append(ms)
    return {i: statistics.median(by_node[i]) for i in sorted(by_node)}


def match_by_module_call(expected: Sequence[OpKey], got: Sequence[OpKey], times: Sequence[float]) -> dict[int, float]:
    """Times of the captured nodes whose module call ran the same ops in this run.

    A run with another op sequence (a data-dependent branch, a random number
    of steps, one-time work) still times every module call that executed
    exactly the ops it executed in the capture, in the same order; the ops of
    other module calls get no time from this run.
    """
    if list(got) == list(expected):
        return dict(enumerate(times))
    want: dict[tuple[str, int], list[int]] = {}
    for i, (_, path, call) in enumerate(expected):
        want.setdefault((path, call), []).append(i)
    ran: dict[tuple[str, int], list[int]] = {}
    for j, (_, path, call) in enumerate(got):
        ran.setdefault((path, call), []).append(j)
    sample: dict[int, float] = {}
    for key, idxs in want.items():
        js = ran.get(key)
        if js is not None and len(js) == len(idxs) and all(expected[i][0] == got[j][0] for i, j in zip(idxs, js)):
            sample.update((i, times[j]) for i, j in zip(idxs, js))
    return sample


def per_op_latency(run: Callable[[], Any], device: torch.device, expected: Sequence[OpKey], runs: int,
                   tracker: ModuleTracker | None = None) -> tuple[dict[int, float], list[str]]:
    """Median per-node latency over ``runs`` timed runs.

    A run whose op sequence differs from the captured one (data-dependent
    control flow, randomness) gives times only to the module calls that ran
    as captured (:func:`match_by_module_call`); the notes say how many runs
    differed and how many ops were left without a time.
    """
    samples: list[dict[int, float]] = []
    differed = 0
    for _ in range(runs):
        timer = OpTimer(device, tracker)
        if tracker is not None:
            tracker.reset()
        with contextlib.ExitStack() as stack:
            if tracker is not None:
                stack.enter_context(tracker.active())
            stack.enter_context(timer)
            run()
        times = timer.times_ms()
        if timer.ops != list(expected):
            differed += 1
        samples.append(match_by_module_call(expected, timer.ops, times))
    medians = node_medians(samples)
    notes: list[str] = []
    if differed:
        untimed = len(expected) - len(medians)
        kept = (f"per-op latency kept for the module calls that ran the captured ops; {untimed} of {len(expected)} "
                f"ops have no time" if untimed else "every op was still timed in some run, module call by module call")
        notes.append(f"{differed} of {runs} timed runs executed a different op sequence: {kept}")
    return medians, notes


def forward_latency(run: Callable[[], Any], device: torch.device, runs: int) -> tuple[float, float, int | None]:
    """Median and spread (max - min) of plain forward passes, and measured peak bytes on CUDA."""
    samples: list[float] = []
    peak: int | None = None
    for i in range(runs):
        if device.type == "cuda":
            if i == 0:
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            torch.cuda.synchronize(device)
            samples.append(start.elapsed_time(end))
            if i == 0:
                peak = torch.cuda.max_memory_allocated(device) - base
        else:
            t0 = time.perf_counter()
            run()
            samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples), max(samples) - min(samples), peak
