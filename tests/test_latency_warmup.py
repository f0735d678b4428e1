"""Latency users can believe: a warm-up before capture, per-op times kept module call by
module call when timed runs differ, no figure that was not measured, the model left as found."""
from __future__ import annotations

import pytest
import torch

import mevreport
from mevreport.capture import capture
from mevreport.capture.timing import match_by_module_call, node_medians
from mevreport.render.html import summary_cards
from mevreport.render.plots import op_type_latency

from . import models_latency as L

RUNS = 3


def test_lazy_buffer_gets_per_op_latency_after_a_warm_up():
    model = L.LazyBuffer()
    g = capture(model, torch.randn(2, 8), runs=RUNS)
    # the recorded call is a warmed-up one: no arange/sin table building in the graph
    assert [n.op for n in g.nodes] == ["aten.t.default", "aten.addmm.default", "aten.add.Tensor"]
    assert set(g.measurements.node_latency_ms) == {0, 1, 2}
    assert not any("different op sequence" in n for n in g.capture.notes)
    warm = [n for n in g.capture.notes if n.startswith("the first call (an untimed warm-up) executed 5 ops")]
    assert len(warm) == 1 and "the recorded call 3" in warm[0]
    # left as found: the lazily built buffer is gone again, so a second capture sees the same
    assert not hasattr(model, "table") and "table" not in model._buffers
    assert "table" not in model._non_persistent_buffers_set
    again = capture(model, torch.randn(2, 8), runs=RUNS)
    assert [n.op for n in again.nodes] == [n.op for n in g.nodes] and len(again.capture.notes) == len(g.capture.notes)


def test_without_timing_there_is_no_warm_up():
    g = capture(L.LazyBuffer(), torch.randn(2, 8), runs=0)
    assert [n.op for n in g.nodes] == ["aten.arange.default", "aten.sin.default", "aten.t.default",
                                       "aten.addmm.default", "aten.add.Tensor"]
    assert not g.measurements.node_latency_ms and not g.capture.notes


def test_plain_attributes_and_containers_are_put_back():
    model = L.LazyCacheDict()
    cache = model.cache
    g = capture(model, torch.randn(2, 8), runs=RUNS)
    assert model.calls == 0 and model.cache is cache and model.cache == {}
    assert set(g.measurements.node_latency_ms) == {n.id for n in g.nodes}


def test_op_sequence_that_differs_every_call_keeps_the_matching_module_calls():
    model = L.EveryCallDifferent()
    report = mevreport.analyze(model, torch.randn(2, 8), runs=RUNS)
    ops = [(n.op, n.module_path) for n in report.nodes]
    # warm-up is call 1, the recorded call is call 2: two muls at the root
    assert ops == [("aten.t.default", "fc1"), ("aten.addmm.default", "fc1"), ("aten.mul.Tensor", ""),
                   ("aten.mul.Tensor", ""), ("aten.t.default", "fc2"), ("aten.addmm.default", "fc2")]
    timed = {n.id for n in report.nodes if n.latency_ms is not None}
    assert timed == {0, 1, 4, 5}  # fc1 and fc2 matched in every run; the root's muls never did
    assert all(report.nodes[i].latency_ms > 0 for i in timed)
    rows = {m.path: m for m in report.modules}
    assert rows["fc1"].latency_ms == pytest.approx(report.nodes[0].latency_ms + report.nodes[1].latency_ms)
    assert rows["fc2"].latency_ms == pytest.approx(report.nodes[4].latency_ms + report.nodes[5].latency_ms)
    assert rows[""].latency_ms is None  # its own muls were never timed: no partial sum
    note = next(n for n in report.capture.notes if "different op sequence" in n)
    assert note.startswith(f"{RUNS} of {RUNS} timed runs executed a different op sequence")
    assert "2 of 6 ops have no time" in note
    # the card says what was measured: the forward passes, and per-op times for 4 of 6 ops
    card = next(c for c in summary_cards(report) if c["label"] == "Forward latency")
    assert card["detail"].startswith(f"median of {RUNS} runs") and card["detail"].endswith("per-op times for 4 of 6 ops")
    assert "2 ops have no time" in op_type_latency(report).caption
    assert model.calls == 0


def test_rng_left_as_found_and_the_recorded_call_draws_what_a_first_call_draws():
    x = torch.zeros(4, 4)
    torch.manual_seed(123)
    expected = L.RandomDraws()(x)  # what the user's own call draws
    torch.manual_seed(123)
    before = torch.get_rng_state()
    g = capture(L.RandomDraws(), x, runs=RUNS)
    assert torch.equal(torch.get_rng_state(), before)
    add = next(n for n in g.nodes if n.op == "aten.add.Tensor")
    stats = g.measurements.node_stats[add.id]
    assert stats.min == pytest.approx(expected.min().item()) and stats.max == pytest.approx(expected.max().item())
    assert stats.mean == pytest.approx(expected.mean().item(), rel=1e-6)


def test_match_by_module_call():
    expected = [("a", "m", 0), ("b", "m", 0), ("c", "", 0), ("a", "m", 1)]
    assert match_by_module_call(expected, expected, [1.0, 2.0, 3.0, 4.0]) == {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}
    got = [("a", "m", 0), ("b", "m", 0), ("c", "", 0), ("c", "", 0), ("x", "m", 1)]
    assert match_by_module_call(expected, got, [1.0, 2.0, 3.0, 3.5, 9.0]) == {0: 1.0, 1: 2.0}
    assert node_medians([{0: 1.0, 1: 5.0}, {0: 3.0}, {0: 2.0, 1: 7.0}]) == {0: 2.0, 1: 6.0}


def test_model_that_runs_only_once_says_to_skip_timing():
    class Once(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.left = iter([1])

        def forward(self, x):
            return x * next(self.left)

    with pytest.raises(mevreport.errors.ModelRunError, match="skip timing with --runs 0"):
        capture(Once(), torch.randn(2), runs=2)
    assert capture(Once(), torch.randn(2), runs=0).nodes[0].op == "aten.mul.Tensor"


def test_a_module_that_changes_its_class_is_left_as_it_became():
    """Lazy modules turn into their real class on the first call and drop their init hooks;
    putting their old attributes back would leave a half-lazy module that fails on the next call."""
    from mevreport.capture.state import attributes_kept

    class Real(torch.nn.Module):
        def forward(self, x):
            return x * 2

    class Becomes(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pending = True

        def forward(self, x):
            del self.pending
            self.__class__ = Real
            return x * 2

    m = torch.nn.Sequential(Becomes())
    with attributes_kept(m):
        m(torch.ones(2))
    assert type(m[0]) is Real and not hasattr(m[0], "pending")
