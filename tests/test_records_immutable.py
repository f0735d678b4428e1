"""Frozen records hold no mutable containers (issue 13).

``@dataclass(frozen=True)`` stops attribute assignment only; a dict or list
inside could still be changed under the analysis.  The capture stage's mappings
are read-only copies, and a captured graph and its report hold only tuples,
read-only mappings and scalars.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest
import torch

from mevreport.analyze import analyze_graph
from mevreport.capture import capture
from mevreport.graph import Measurements, TensorStats
from mevreport.report import Environment

from .models import Nested


def _mutable_inside(value: object, where: str = "") -> list[str]:
    """Paths of every list, dict or set reachable through dataclass fields, tuples and mappings."""
    found: list[str] = []
    stack = [(where, value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, (list, dict, set, bytearray)):
            found.append(f"{path}: {type(v).__name__}")
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            stack.extend((f"{path}.{f.name}", getattr(v, f.name)) for f in dataclasses.fields(v))
        elif isinstance(v, tuple):
            stack.extend((f"{path}[{i}]", x) for i, x in enumerate(v))
        elif isinstance(v, MappingProxyType):
            stack.extend((f"{path}[{k!r}]", x) for k, x in v.items())
    return found


def test_measurements_copy_their_mappings_read_only() -> None:
    stats = TensorStats(0.0, 1.0, -1.0, 1.0, 1.0, 0.5, 0, 0, None, 4)
    source = {3: stats}
    m = Measurements(node_stats=source, node_latency_ms={3: 0.25}, stats_failures={4: "RuntimeError: x"})
    source[5] = stats                        # the observer's dict changes afterwards: the record does not
    assert dict(m.node_stats) == {3: stats} and dict(m.node_latency_ms) == {3: 0.25}
    with pytest.raises(TypeError):
        m.node_stats[6] = stats              # type: ignore[index]
    with pytest.raises(TypeError):
        m.stats_failures[4] = "changed"      # type: ignore[index]
    assert dataclasses.replace(m, latency_runs=2).node_stats == m.node_stats


def test_a_captured_graph_and_its_report_hold_no_mutable_container() -> None:
    torch.manual_seed(0)
    graph = capture(Nested().eval(), torch.randn(2, 4), runs=2)
    assert isinstance(graph.measurements.node_stats, MappingProxyType) and len(graph.measurements.node_stats) > 0
    assert len(graph.measurements.node_latency_ms) > 0
    assert _mutable_inside(graph, "graph") == []
    report = analyze_graph(graph, created_at="2026-01-01T00:00:00+00:00", environment=Environment(
        torch="t", python="p", platform="x", device="cpu"), tool_version="0")
    assert _mutable_inside(report, "report") == []
    assert _mutable_inside({"a": [1]}, "doc") == ["doc: dict"]   # the walk finds what it looks for
