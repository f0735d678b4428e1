"""The measured per-op timeline as a Chrome trace (``--trace``, ``Report.save_trace``).

The Trace Event Format's JSON object form, which Perfetto and
``chrome://tracing`` open: one complete event (``"ph": "X"``) per timed node,
placed end to end in execution order from the measured per-op latencies
(the ops ran one after another on one stream; the gaps between them are not
measured, so they are not drawn), and the modules as enclosing slices on the
same track, so the nesting reads like a profiler's.  Each phase the report
holds (forward; backward and the optimizer step for a training step) gets its
own track; collectives of a distributed run (nodes with ``comm_bytes``) have
the category ``comm`` and their bytes in ``args``, so a trace viewer can
filter or colour the communication apart from the compute.

Module slices come from runs of consecutive nodes under one module path: a
module called twice is two slices, and a parent's run always contains its
children's, so the slices nest as the format requires.
"""
from __future__ import annotations

import json
from typing import Any

from ..modpath import prefixes
from ..report import Report

_PHASES = ("forward", "backward", "optimizer")


def trace_events(report: Report) -> dict[str, Any]:
    """The trace document: ``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``."""
    classes = {m.path: m.class_name for m in report.modules}
    events: list[dict[str, Any]] = [
        {"ph": "M", "pid": 1, "name": "process_name", "args": {"name": f"mevreport: {report.model.name}"}}]
    tracks = {phase: i + 1 for i, phase in enumerate(_PHASES)}
    for phase, tid in tracks.items():
        events.append({"ph": "M", "pid": 1, "tid": tid, "name": "thread_name", "args": {"name": phase}})
    clock = 0.0  # microseconds, one clock for all phases: backward follows forward
    open_slices: dict[int, list[tuple[str, float]]] = {tid: [] for tid in tracks.values()}

    def close_to(tid: int, depth: int, at: float) -> None:
        """End the open module slices of a track deeper than ``depth``, innermost first."""
        stack = open_slices[tid]
        while len(stack) > depth:
            path, start = stack.pop()
            events.append({"ph": "X", "pid": 1, "tid": tid, "cat": "module", "ts": start, "dur": at - start,
                           "name": path or "<root>", "args": {"class": classes.get(path, "")}})

    for node in report.nodes:
        if node.latency_ms is None:
            continue
        tid = tracks.get(node.phase or "forward", 1)
        chain = prefixes(node.module_path)
        stack = open_slices[tid]
        common = 0
        while common < len(stack) and common < len(chain) and stack[common][0] == chain[common]:
            common += 1
        close_to(tid, common, clock)
        for path in chain[len(stack):]:
            stack.append((path, clock))
        dur = node.latency_ms * 1000.0
        args: dict[str, Any] = {"node": node.id, "module": node.module_path,
                                "outputs": [list(o.shape) for o in node.outputs]}
        if node.macs is not None:
            args["macs"] = node.macs
        if node.comm_bytes is not None:
            args["comm_bytes"] = node.comm_bytes
        events.append({"ph": "X", "pid": 1, "tid": tid, "cat": "op" if node.comm_bytes is None else "comm",
                       "ts": clock, "dur": dur, "name": node.op, "args": args})
        clock += dur
    for tid in tracks.values():
        close_to(tid, 0, clock)
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"model": report.model.name, "created_at": report.created_at,
                          "note": "per-op latencies measured by mevreport, placed end to end in execution order"}}


def trace_json(report: Report) -> str:
    return json.dumps(trace_events(report), separators=(",", ":"), allow_nan=False)
