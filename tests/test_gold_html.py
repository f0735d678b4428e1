"""Gold test: the rendered HTML of a small model, byte for byte after scrubbing.

The model is captured for real (shapes, MACs, module paths are deterministic)
without statistics or timing; measurements are then filled in from a fixed
formula so every section (warnings of each kind, histograms, latency plots,
weight histograms) has content that does not depend on the machine.  The
scrubber removes what may still differ: dates, versions, the environment,
matplotlib's SVG bodies (which change
with the matplotlib release; the plots have their own tests).

Regenerate after an intended change to the page:

    MEVREPORT_REGENERATE_GOLD=1 python -m pytest tests/test_gold_html.py

and review ``git diff tests/gold/`` before committing.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import mevreport
from mevreport.analyze import analyze_graph
from mevreport.capture import capture
from mevreport.graph import Histogram, Measurements, TensorStats, WeightStats
from mevreport.render.html import render_html
from mevreport.report import Environment

from . import models_report as M

GOLD = Path(__file__).parent / "gold" / "small_model.html"
ENV = Environment(torch="TORCH", python="PYTHON", platform="PLATFORM", device="cpu", device_name="CPU NAME",
                  git_commit="0123456789abcdef0123456789abcdef01234567")


def _stats(i: int, numel: int) -> TensorStats:
    counts = tuple((i * 7 + b * 3) % 11 for b in range(8))
    dead = i == 2    # the first relu: flagged as a dead activation
    nan = i == 1 or i >= 7  # from node 7 on, NaN flows to the output (an origin); node 1's stops at the relu (a note)
    return TensorStats(mean=i / 8, std=1 + i / 16, min=-2.0 - i, max=2.0 + i, abs_max=2e5 if i == 3 else 2.0 + i,
                       zero_fraction=0.995 if dead else (i % 4) / 8, nan_count=3 if nan else 0, inf_count=0,
                       histogram=Histogram(-2.0 - i, 2.0 + i, counts), numel=numel)


def gold_report() -> mevreport.Report:
    model, inputs = M.small_net()
    graph = capture(model, inputs, stats=False, runs=0, name="SmallNet")
    floats = [n for n in graph.nodes if n.outputs and n.outputs[0].dtype == "float32" and n.output_bytes]
    weights = tuple(WeightStats(p.name, 1.0 + k, 0.01 * k, 0.1 + 0.01 * k, -0.5, 0.5,
                                Histogram(-0.5, 0.5, tuple((k + b) % 5 + 1 for b in range(8))))
                    for k, p in enumerate(graph.params) if not p.is_buffer)
    measurements = Measurements(
        node_stats={n.id: _stats(n.id, n.outputs[0].numel) for n in floats},
        node_latency_ms={n.id: 0.01 * (n.id % 5 + 1) for n in graph.nodes},
        forward_latency_ms=0.5, forward_latency_spread_ms=0.05, latency_runs=3, weight_stats=weights,
    )
    graph = dataclasses.replace(graph, measurements=measurements)
    return analyze_graph(graph, created_at="2000-01-01T00:00:00+00:00", environment=ENV, tool_version="VERSION",
                         title="Gold: SmallNet")


def scrub(html: str) -> str:
    """Remove what legitimately changes between machines, library releases and days."""
    html = re.sub(r'(<svg class="plot" role="img")[^>]*>.*?</svg>', r"\1>[matplotlib SVG]</svg>", html,
                  flags=re.DOTALL)
    html = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+\-]\d\d:\d\d", "DATE", html)
    return html


def test_small_model_html_matches_gold():
    html = scrub(render_html(gold_report()))
    assert "vis.Network" not in html  # the graph is our own canvas script, no graph library
    assert html.count("[matplotlib SVG]") == 5
    if os.environ.get("MEVREPORT_REGENERATE_GOLD"):
        GOLD.parent.mkdir(exist_ok=True)
        GOLD.write_text(html, encoding="utf-8")
    expected = GOLD.read_text(encoding="utf-8")
    assert html == expected, (
        "rendered HTML differs from tests/gold/small_model.html; if the change is intended, run "
        "MEVREPORT_REGENERATE_GOLD=1 python -m pytest tests/test_gold_html.py and review the diff")


def test_gold_report_has_every_warning_kind():
    """The gold page exercises each warning kind the page knows how to show (except capture notes)."""
    report = gold_report()
    kinds = {w.kind for w in report.warnings}
    assert {"nan_origin", "nan_discarded", "dead_activation", "large_values"} <= kinds
    assert [(w.kind, w.node) for w in report.warnings if w.kind.startswith("nan")] == [("nan_discarded", 1),
                                                                                       ("nan_origin", 7)]
