"""Latency: per-op times from timed runs, and plain forward passes.

Timed runs are separate from the capture run so they never include the
statistics work.  On CUDA each op gets a pair of events and the run ends with
one synchronisation; on the CPU the op is bracketed by ``perf_counter``, which
excludes this tool's own Python between ops.  The whole-forward latency comes
from plain, uninstrumented forward passes.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .dispatch import _SKIP_NAMESPACES, is_work, tensors_in


class OpTimer(TorchDispatchMode):
    """Times each recorded op, with the same filter as the recorder."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.cuda = device.type == "cuda"
        self.ops: list[str] = []
        self._cpu_ms: list[float] = []
        self._events: list[tuple[Any, Any]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
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
        if func.namespace in _SKIP_NAMESPACES:
            return out
        outs = tensors_in(out)
        if not outs or not is_work(args, kwargs, outs):
            return out
        self.ops.append(str(func))
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


def per_op_latency(run: Callable[[], Any], device: torch.device, expected_ops: list[str],
                   runs: int) -> tuple[dict[int, float], list[str]]:
    """Median per-node latency over ``runs`` timed runs.

    Runs whose op sequence differs from the captured one (data-dependent
    control flow, randomness) are left out and reported in the notes.
    """
    samples: list[list[float]] = []
    notes: list[str] = []
    for _ in range(runs):
        timer = OpTimer(device)
        with timer:
            run()
        times = timer.times_ms()
        if timer.ops == expected_ops:
            samples.append(times)
    if len(samples) < runs:
        notes.append(f"{runs - len(samples)} of {runs} timed runs executed a different op sequence and were left out")
    if not samples:
        return {}, notes
    return {i: statistics.median(col) for i, col in enumerate(zip(*samples))}, notes


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
