"""The report page's Python side: repeat groups, plots, escaping, size (the layout is the page's: test_browser_graph.py)."""
from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import mevreport
from mevreport.render import plots
from mevreport.render.graphview import repeat_groups
from mevreport.render.html import module_rows, render_html, summary_cards

from . import models_report as M


@pytest.fixture(scope="module")
def small() -> mevreport.Report:
    model, x = M.small_net()
    return mevreport.analyze(model, x, runs=0)


def test_repeat_groups_of_a_deep_model():
    model, x = M.deep_mlp()
    report = mevreport.analyze(model, x, runs=0, stats=False)
    assert len(report.nodes) == 70 * 4 + 2  # t, addmm, layer_norm, gelu per block; t, addmm for the head
    groups = repeat_groups(report)
    assert groups["layers.0"][1] == 70 and groups["layers.69"] == groups["layers.0"]
    assert groups["layers.3.0"][1] == 70 and "out" not in groups  # the 8->2 head is unlike the 8->8 layers


def test_summary_cards_and_module_shares(small):
    cards = {c["label"]: c for c in summary_cards(small)}
    assert cards["Parameters"]["value"] == "1.02 K"  # 108 + 8 (bn) + 3 * 272 + 85
    assert small.totals.params == 3 * 4 * 9 + 8 + 3 * (16 * 16 + 16) + 16 * 5 + 5
    assert cards["Forward latency"]["value"] == "not measured"
    macs = 4 * 3 * 9 * 64 + 3 * 16 * 16 + 16 * 5
    assert small.totals.macs == macs and cards["Compute"]["value"] == "7.76 KMACs"
    rows = {r["path"]: r for r in module_rows(small)}
    assert rows[""]["share"]["macs"] == 100.0
    assert rows["blocks"]["share"]["macs"] == round(100 * 3 * 256 / macs, 1)
    assert rows["blocks.1"]["parent"] == "blocks" and rows["blocks"]["has_children"] and not rows["head"]["has_children"]


def test_plots_are_inline_svg_following_the_theme(small):
    drawn = {p.key: p for p in plots.all_plots(small)}
    assert drawn["op_types"].svg is None  # runs=0: no latency to plot
    mem = str(drawn["memory"].svg)
    assert mem.startswith('<svg class="plot" role="img"') and "currentColor" in mem and plots.FG not in mem
    peak = max(small.memory_timeline)
    assert f"peak {mevreport.render.format.nbytes(peak)}" in mem
    assert "blocks.0.fc (Linear)" in str(drawn["modules"].svg)
    assert "<script" not in "".join(str(p.svg) for p in drawn.values() if p.svg)


def test_plot_labels_are_escaped_and_not_mathtext():
    model, x = M.hostile_net()
    report = mevreport.analyze(model, x, runs=1)
    svg = str(plots.module_costs(report).svg)
    assert "&lt;img src=x onerror=alert(1)&gt; (Linear)" in svg and "q'\"&lt;b&gt; (Linear)" in svg
    assert "<img" not in svg and "<b>" not in svg


def test_hostile_strings_are_escaped_in_every_context(tmp_path):
    model, x = M.hostile_net()
    report = mevreport.analyze(model, x, runs=1, title=M.HOSTILE)
    html = render_html(report)
    # the only </script> closers are the page's own three script elements (+1 in the head): data, view, page script
    assert html.count("</script>") == 4
    assert "<img src=x" not in html
    embedded = re.search(r'<script type="application/json" id="mevreport-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in embedded and "\\u003c/script\\u003e" in embedded
    path = report.save_html(tmp_path / "hostile.html")
    assert mevreport.load(path) == report


def test_resnet50_report_is_under_3_mb(tmp_path):
    report = mevreport.analyze(M.ResNet50().eval(), torch.randn(1, 3, 224, 224), device="meta")
    assert report.totals.macs == 4_089_184_256  # DESIGN §3 reference: 4.089 G
    size = report.save_html(tmp_path / "r50.html").stat().st_size
    assert size < 3_000_000, f"ResNet-50 report is {size / 1e6:.2f} MB"


def test_report_renders_without_any_measurement():
    """A fake-tensor report (no stats, no timing) still renders every section, saying what is missing."""
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
    report = mevreport.analyze(model, torch.randn(2, 8), device="meta")
    html = render_html(report)
    assert "not measured" in html and "Not drawn: weight statistics were not measured." in html


def test_measured_cuda_peak_is_shown_beside_the_estimate(small):
    """On CUDA the capture fills measured_peak_bytes; the card shows both figures."""
    import dataclasses
    cuda = dataclasses.replace(small, totals=dataclasses.replace(small.totals, measured_peak_bytes=3 * 1024 * 1024))
    card = next(c for c in summary_cards(cuda) if c["label"] == "Peak activation memory")
    assert card["detail"] == "estimated from liveness, measured on device 3.00 MiB"
    card = next(c for c in summary_cards(small) if c["label"] == "Peak activation memory")
    assert card["detail"] == "estimated from liveness"
