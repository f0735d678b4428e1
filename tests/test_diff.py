"""mevreport.diff.compare on two versions of small models, values derived by hand.

TinyMLP, batch 2 (tests/models_diff.py).  Linear(i, o) on a [2, i] input is one
addmm: params i*o + o, MACs 2*i*o, FLOPs 2*MACs + 2*o (bias adds).  ReLU/Tanh:
1 FLOP per output element.  LayerNorm(16) on [2, 16]: params 32, FLOPs 5*32 + 2*32.

v1: fc1 8->16 (144 params, 256 MACs, 544 FLOPs), act ReLU (32 FLOPs), fc2 16->16 (272, 512, 1056),
    act2 Tanh (32 FLOPs), out 16->4 (68, 128, 264).  Totals 484 params, 896 MACs, 1928 FLOPs.
v2: fc1 8->32 (288, 512, 1088), act ReLU (64 FLOPs), fc2 32->16 (528, 1024, 2080),
    norm LayerNorm(16) (32, 0, 224), out unchanged.  Totals 916 params, 1664 MACs, 3720 FLOPs.
"""
from __future__ import annotations

import dataclasses

import pytest

import mevreport
from mevreport.diff import compare, relative_change
from mevreport.report import Report

from .models_diff import Encoder, TinyMLP, mlp_v1, mlp_v2


def _report(model, x, **kw) -> Report:
    return mevreport.analyze(model, x, runs=0, stats=False, **kw)


@pytest.fixture(scope="module")
def mlp_reports() -> tuple[Report, Report]:
    return _report(*mlp_v1(), label="v1"), _report(*mlp_v2(), label="v2")


def test_totals_side_by_side(mlp_reports):
    d = compare(*mlp_reports)
    got = {t.metric: (t.base, t.head, t.change, t.status) for t in d.totals}
    assert got["params"] == (484, 916, 432, "up")
    assert got["macs"] == (896, 1664, 768, "up")
    assert got["flops"] == (1928, 3720, 1792, "up")
    # Peak: v1 two [2,16] fp32 tensors alive at once (2*128 B); v2 addmm [2,32] + relu [2,32] (2*256 B).
    assert got["peak_activation_bytes"] == (256, 512, 256, "up")
    assert got["latency_ms"] == (None, None, None, "n/a")
    assert d.total("macs").relative == pytest.approx(768 / 896)
    assert d.total("params").relative == pytest.approx(432 / 484)


def test_modules_added_removed_changed(mlp_reports):
    d = compare(*mlp_reports)
    rows = [(m.kind, m.path, m.changed) for m in d.modules]
    # Sorted by the largest change as a share of the bigger model's total:
    # root FLOPs 1792/3720, fc2 MACs 512/1664, fc1 params 144/916, norm FLOPs 224/3720,
    # then act (32/3720 FLOPs, head position 2) and act2 (32/3720, base position 4).
    assert rows == [
        ("changed", "", ("params", "macs", "flops")),
        ("changed", "fc2", ("params", "macs", "flops")),
        ("changed", "fc1", ("params", "macs", "flops", "output_shapes")),
        ("added", "norm", ()),
        ("changed", "act", ("flops", "output_shapes")),
        ("removed", "act2", ()),
    ]
    sizes = [m.size for m in d.modules]
    assert sizes == pytest.approx([1792 / 3720, 512 / 1664, 144 / 916, 224 / 3720, 32 / 3720, 32 / 3720])
    assert d.unchanged_modules == 1  # out
    by_path = {m.path: m for m in d.modules}
    fc1 = by_path["fc1"]
    assert (fc1.base.params, fc1.head.params, fc1.delta("params")) == (144, 288, 144)
    assert (fc1.base.macs, fc1.head.macs, fc1.delta("macs")) == (256, 512, 256)
    assert fc1.base.output_shapes == ((2, 16),) and fc1.head.output_shapes == ((2, 32),)
    assert by_path["fc2"].head.output_shapes == ((2, 16),)
    norm = by_path["norm"]
    assert norm.base is None and (norm.head.class_name, norm.head.params, norm.head.macs, norm.head.flops) == \
        ("LayerNorm", 32, 0, 224)
    # native_layer_norm also returns mean and rstd; only the first output leaves the module.
    assert norm.head.output_shapes == ((2, 16),)
    act2 = by_path["act2"]
    assert act2.head is None and (act2.base.class_name, act2.base.flops) == ("Tanh", 32)
    assert (d.count("changed"), d.count("added"), d.count("removed"), d.count("renamed")) == (4, 1, 1, 0)


def test_identical_reports_have_no_changes(mlp_reports):
    d = compare(mlp_reports[0], mlp_reports[0])
    assert d.modules == () and d.unchanged_modules == 6
    assert all(t.status in ("same", "n/a") for t in d.totals)


def test_rename_detected_by_subtree_signature():
    x = Encoder.example_input()
    base, head = _report(Encoder(1), x), _report(Encoder(2), x)
    d = compare(base, head)
    rows = [(m.kind, m.base.path if m.base else None, m.head.path if m.head else None, m.changed, m.submodules, m.note)
            for m in d.modules]
    # Blocks are Linear(8, 8) (72 params) + GELU: moving them changes no total.
    assert rows == [
        ("changed", "encoder", "encoder", ("class_name",), 0, ""),
        ("added", None, "encoder.blocks", (), 0, "wraps 2 renamed module(s)"),
        ("renamed", "encoder.0", "encoder.blocks.0", (), 2, ""),
        ("renamed", "encoder.1", "encoder.blocks.1", (), 2, ""),
    ]
    assert [m.size for m in d.modules] == [0, 0, 0, 0]
    assert d.unchanged_modules == 3  # root, stem, head
    assert all(t.change == 0 for t in d.totals if t.metric != "latency_ms")


def test_changed_block_is_not_a_rename():
    """Version 3 moves the blocks and swaps block 1's GELU for Tanh: only identical subtrees are renames."""
    x = Encoder.example_input()
    d = compare(_report(Encoder(1), x), _report(Encoder(3), x))
    rows = sorted((m.kind, m.base.path if m.base else "", m.head.path if m.head else "") for m in d.modules)
    assert rows == [
        ("added", "", "encoder.blocks"),
        ("added", "", "encoder.blocks.1"),
        ("added", "", "encoder.blocks.1.act"),
        ("changed", "encoder", "encoder"),
        ("removed", "encoder.1", ""),
        ("removed", "encoder.1.act", ""),
        ("renamed", "encoder.0", "encoder.blocks.0"),
        ("renamed", "encoder.1.fc", "encoder.blocks.1.fc"),
    ]
    notes = {m.path: m.note for m in d.modules if m.kind == "added"}
    assert notes == {"encoder.blocks": "wraps 2 renamed module(s)", "encoder.blocks.1": "wraps 1 renamed module(s)",
                     "encoder.blocks.1.act": ""}


def with_latency(report: Report, total: float, spread: float, modules: dict[str, float]) -> Report:
    """The same report with given latencies, as a timed run would have measured them."""
    totals = dataclasses.replace(report.totals, latency_ms=total, latency_spread_ms=spread, latency_runs=5)
    rows = tuple(dataclasses.replace(m, latency_ms=modules.get(m.path, 0.5)) for m in report.modules)
    return dataclasses.replace(report, totals=totals, modules=rows)


def test_latency_within_spread_is_noise(mlp_reports):
    v1 = mlp_reports[0]
    base = with_latency(v1, 10.0, 1.0, {"": 10.0, "fc1": 1.0, "fc2": 1.0})
    noisy = with_latency(v1, 10.6, 0.5, {"": 10.6, "fc1": 1.5, "fc2": 3.0})
    d = compare(base, noisy)
    lat = d.total("latency_ms")
    # the spreads 1.0 and 0.5 ms together: medians 1.5 ms apart may still come from overlapping runs
    assert (lat.change, lat.status, d.latency_noise_ms) == (pytest.approx(0.6), "noise", 1.5)
    # fc1 moved 0.5 ms (within the 1.5 ms): unchanged; fc2 moved 2.0 ms: a change.
    assert [(m.path, m.changed) for m in d.modules] == [("fc2", ("latency_ms",))]
    assert d.modules[0].size == pytest.approx(2.0 / 10.6)
    slower = with_latency(v1, 12.0, 0.5, {"": 12.0})
    lat = compare(base, slower).total("latency_ms")
    assert (lat.status, lat.relative) == ("up", pytest.approx(0.2))
    # The root moved 2.0 ms, beyond the spread: a change of 2/12 of the latency.
    root = next(m for m in compare(base, slower).modules if m.path == "")
    assert root.changed == ("latency_ms",) and root.size == pytest.approx(2.0 / 12.0)


def test_notes_when_inputs_differ(mlp_reports):
    import torch
    other = _report(TinyMLP(1).eval(), torch.randn(3, 8))
    d = compare(mlp_reports[0], other)
    assert d.notes == ("inputs differ: base x [2, 8] float32; head x [3, 8] float32",)
    # batch 3: every Linear's MACs grow by half.
    assert d.total("macs").head == 896 * 3 // 2


def test_relative_change_edge_cases():
    assert relative_change(0, 0) == 0.0
    assert relative_change(0, 5) == float("inf")
    assert relative_change(10, 5) == -0.5
    assert relative_change(None, 5) is None


def test_new_subtree_is_one_addition():
    """A third block (Linear(8, 8) + GELU on [3, 8]: 72 params, 3*8*8 = 192 MACs) is one added row."""
    x = Encoder.example_input()
    d = compare(_report(Encoder(1, n=2), x), _report(Encoder(1, n=3), x))
    rows = [(m.kind, m.path, m.submodules, m.delta("params"), m.delta("macs")) for m in d.modules]
    assert rows == [
        ("changed", "", 0, 72, 192),
        ("changed", "encoder", 0, 72, 192),
        ("added", "encoder.2", 2, 72, 192),
    ]
    removed = [(m.kind, m.path, m.submodules) for m in
               compare(_report(Encoder(1, n=3), x), _report(Encoder(1, n=2), x)).modules if m.kind == "removed"]
    assert removed == [("removed", "encoder.2", 2)]


def test_moved_and_grown():
    """4 blocks moved under encoder.blocks and 2 more added: 4 renames, 2 new blocks of 2 submodules each."""
    x = Encoder.example_input()
    d = compare(_report(Encoder(1, n=4), x), _report(Encoder(2, n=6), x))
    rows = [(m.kind, m.base.path if m.kind == "renamed" else m.path, m.path, m.submodules, m.note) for m in d.modules]
    assert rows == [
        ("changed", "", "", 0, ""),
        ("changed", "encoder", "encoder", 0, ""),
        ("added", "encoder.blocks", "encoder.blocks", 0, "wraps 4 renamed module(s)"),
        ("added", "encoder.blocks.4", "encoder.blocks.4", 2, ""),
        ("added", "encoder.blocks.5", "encoder.blocks.5", 2, ""),
    ] + [("renamed", f"encoder.{i}", f"encoder.blocks.{i}", 2, "") for i in range(4)]
    assert d.total("params").change == 2 * 72 and d.total("macs").change == 2 * 3 * 8 * 8


def test_latency_medians_apart_but_runs_overlapping_is_within_noise(mlp_reports):
    """Base runs 10..40 ms (median 40, spread 30), head 0.06..10.06 ms (median 0.12, spread 10): −99.7 %,
    yet the ranges overlap (10 ≤ 10.06), so the medians say nothing; the larger spread alone (30) called it
    "decreased"."""
    from mevreport.render.markdown import render_markdown
    base = with_latency(mlp_reports[0], 40.0, 30.0, {"": 40.0})
    head = with_latency(mlp_reports[1], 0.12, 10.0, {"": 0.12})
    d = compare(base, head)
    lat = d.total("latency_ms")
    assert (round(lat.relative, 3), lat.status, d.latency_noise_ms) == (-0.997, "noise", 40.0)
    row = next(line for line in render_markdown(d).splitlines() if line.startswith("| Latency"))
    assert row == "| Latency | 40.0 ms | 0.12 ms | \u221239.9 ms (\u221299.7%) _within noise (runs overlap; spreads sum to 40.0 ms)_ |"
