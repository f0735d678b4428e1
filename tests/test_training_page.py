"""The training section of the report page (DESIGN §6), on crafted training reports with known figures.

Forward-only pages have no trace of it (the gold test holds them byte for byte).
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

import mevreport
from mevreport.render.html import page_context, render_html
from mevreport.render.training import depth_order, grad_rows, memory_parts, training_context
from mevreport.render.training_plots import gradient_flow, memory_stack
from mevreport.report import GradStats, LossInfo, OptimizerInfo, TrainingInfo

from . import models_report as M
from . import models_training as T


def test_forward_page_has_no_training_section():
    model, inputs = M.small_net()
    report = mevreport.analyze(model, inputs, runs=0, stats=False)
    assert training_context(report) is None
    html = render_html(report)
    assert 'id="training"' not in html and 'href="#training"' not in html
    assert "Phase</th>" not in html and "phase-backward" not in html and "Training step peak" not in html


def test_totals_and_cards_of_the_step():
    report = T.training_report()
    ctx = page_context(report)
    totals = dict((k, v) for k, v, _ in ctx["training"]["totals"])
    # 6,000 MACs -> "6.00 KMACs"; 4,000 B / 1024 = 3.906 KiB; 20,000 B / 1024 = 19.53 KiB
    assert totals == {"Backward": "6.00 KMACs · 12.5 KFLOPs", "Optimizer step": "4.00 KFLOPs",
                      "Gradients": "3.91 KiB", "Optimizer state": "7.81 KiB", "Saved activations": "2.93 KiB",
                      "Train peak": "19.5 KiB"}  # no measured peak off CUDA: no row for it
    card = next(c for c in ctx["cards"] if c["label"] == "Training step peak")
    assert card["value"] == "19.5 KiB" and "AdamW state" in card["detail"] and card["href"] == "#training"
    assert (ctx["training"]["loss_name"], ctx["training"]["loss_source"], ctx["training"]["optimizer"]) == (
        "cross_entropy", "callable", "AdamW")
    assert ctx["training"]["backward_nodes"] == len(report.nodes) // 2
    measured = dataclasses.replace(report, totals=dataclasses.replace(report.totals, measured_train_peak_bytes=3 << 20))
    assert ("Measured peak", "3.00 MiB") in [(k, v) for k, v, _ in training_context(measured)["totals"]]


def test_memory_parts_per_top_module_and_whole_step():
    report = T.training_report()
    parts = {p.label: p for p in memory_parts(report)}
    assert list(parts) == ["conv", "bn", "relu", "pool", "blocks", "head", "whole step"]
    index = {m.path: i for i, m in enumerate(report.modules)}  # the fixture saves 100 * (index + 1) bytes
    # blocks: 3 x Linear(16, 16) = 3 * (256 + 16) float32 parameters; grads 4 bytes per parameter
    assert (parts["blocks"].params, parts["blocks"].grads, parts["blocks"].saved) == (
        3 * 272 * 4, 3 * 272 * 4, 100 * (index["blocks"] + 1))
    assert parts["conv"].params == 4 * 3 * 3 * 3 * 4 and parts["relu"].params == 0
    # bn: weight and bias, running mean and var (4 float32 each), num_batches_tracked (one int64)
    assert parts["bn"].params == 4 * 4 * 4 + 8
    assert parts["blocks"].optimizer == 8 * 3 * 272 and parts["conv"].temporaries is None
    whole = parts["whole step"]
    weights = (108 + 8 + 3 * 272 + 85) * 4 + 2 * 4 * 4 + 8
    assert (whole.params, whole.grads, whole.optimizer, whole.saved) == (weights, 4_000, 8_000, 3_000)
    assert whole.temporaries == 20_000 - (weights + 4_000 + 8_000 + 3_000)
    tight = dataclasses.replace(report, totals=dataclasses.replace(report.totals, train_peak_bytes=1_000))
    assert memory_parts(tight)[-1].temporaries == 0  # the parts are not all alive at once: never negative


class Reversed(nn.Module):
    """Registered ``late`` then ``early``, executed ``early`` then ``late``."""

    def __init__(self) -> None:
        super().__init__()
        self.late = nn.Linear(3, 2)
        self.early = nn.Linear(4, 3)

    def forward(self, x):
        return self.late(self.early(x))


def test_depth_order_follows_execution_not_registration():
    torch.manual_seed(0)
    r = mevreport.analyze(Reversed(), torch.randn(2, 4), runs=0, stats=False)
    grads = tuple(GradStats(p.name, p.shape, p.dtype, 1.0, 1.0, 1.0, None) for p in r.params)
    assert [g.param for g in grads] == ["late.weight", "late.bias", "early.weight", "early.bias"]
    r = dataclasses.replace(r, grads=grads, training=TrainingInfo(LossInfo("synthetic", "sum"), OptimizerInfo("SGD")))
    assert [g.param for g in depth_order(r)] == ["early.weight", "early.bias", "late.weight", "late.bias"]


def test_gradient_table_flags_nan_and_missing():
    report = T.training_report()
    rows = {r["param"]: r for r in grad_rows(report)}
    assert rows[T.NAN_PARAM]["flags"] == "2 NaN" and rows[T.NAN_PARAM]["bad"]
    assert rows[T.NO_GRAD_PARAM]["flags"] == "no gradient" and rows[T.NO_GRAD_PARAM]["norm"] == "\u2014"
    assert rows["conv.weight"]["flags"] == "" and not rows["conv.weight"]["bad"]
    # conv.weight is parameter 0: norm 10**0 = 1, ratio 1 / 2
    assert (rows["conv.weight"]["norm"], rows["conv.weight"]["ratio"]) == ("1", "0.5")
    fake = dataclasses.replace(report, capture=dataclasses.replace(report.capture, fake=True))
    assert {r["param"]: r["flags"] for r in grad_rows(fake)}[T.NO_GRAD_PARAM] == ""  # no values to flag


def test_training_warnings_and_links():
    report = T.training_report()
    ctx = training_context(report)
    kinds = [(w["kind"], w["label"]) for w in ctx["warnings"]]
    assert kinds == [("nan_backward", "NaN / Inf in backward"), ("no_gradient", "No gradient"),
                     ("vanishing_gradient", "Vanishing gradient")]
    nan = ctx["warnings"][0]
    assert report.nodes[nan["node"]].phase == "backward"
    html = render_html(report)
    section = html[html.index('<section id="training">'):html.index("</section>", html.index('<section id="training">'))]
    assert f'data-goto-op="{nan["node"]}"' in section
    assert '<a href="#training">Training</a>' in html and '<th scope="col">Phase</th>' in html
    assert 'colspan="14"' in html


def test_charts_drawn_and_not_drawn():
    report = T.training_report()
    flow, stack = gradient_flow(report), memory_stack(report)
    assert flow.svg is not None and stack.svg is not None
    # one tick label per parameter, in depth order; matplotlib writes labels as SVG text
    for g in report.grads:
        assert g.param in str(flow.svg)
    assert "whole step" in str(stack.svg) and "train peak 19.5 KiB" in str(stack.svg)
    empty = dataclasses.replace(report, grads=tuple(dataclasses.replace(g, norm=None, stats=None)
                                                    for g in report.grads))
    assert gradient_flow(empty).svg is None and gradient_flow(empty).caption == "no parameter has a gradient norm"


def test_memory_timeline_marks_the_phases():
    from mevreport.render.plots import memory_timeline
    report = T.training_report()
    plot = memory_timeline(report)
    assert plot.svg is not None and "> backward<" in str(plot.svg) and "training step made" in plot.caption
    forward = dataclasses.replace(report, training=None)
    assert "backward" not in str(memory_timeline(forward).svg)


def _renamed(report, param: str, loss: str, optimizer: str, message: str):
    grads = tuple(dataclasses.replace(g, param=f"{param}{i}") for i, g in enumerate(report.grads))
    warnings = tuple(dataclasses.replace(w, message=message) if w.kind in ("no_gradient", "nan_backward") else w
                     for w in report.warnings)
    training = TrainingInfo(LossInfo("callable", loss), OptimizerInfo(optimizer))
    return dataclasses.replace(report, grads=grads, warnings=warnings, training=training)


def test_hostile_training_names_are_inert():
    """Parameter, loss and optimizer names and warning text reach the section only as text (DESIGN §4)."""
    from .test_fuzz_escaping import parse
    hostile = "</script><script>alert(1)</script><!--\"'<img src=x onerror=alert(1)>${x}\u2028"
    report = T.training_report()
    got = parse(render_html(_renamed(report, hostile, hostile, hostile, hostile)))
    want = parse(render_html(_renamed(report, "p", "loss", "Opt", "plain")))
    assert got.tags == want.tags and got.others == want.others == ["decl:DOCTYPE html"]
    assert [(s["type"], s["id"]) for s in got.scripts] == [(s["type"], s["id"]) for s in want.scripts]
    assert not [a for a in got.attributes if a.lower().startswith("on")]
    assert hostile + "0" in "".join(got.text["code"])  # the gradient table shows the name as written


def test_fake_tensor_step_page():
    """``device="meta"``: no gradient values, so no flow plot and no flags; the memory chart is drawn."""
    model, inputs = M.small_net()
    report = mevreport.analyze(model.train(), inputs, train=True, device="meta", runs=0)
    ctx = training_context(report)
    flow, stack = gradient_flow(report), memory_stack(report)
    assert flow.svg is None and flow.caption == "fake tensors hold no gradient values"
    assert stack.svg is not None and "whole step" in str(stack.svg)
    assert [r["flags"] for r in ctx["grads"]] == [""] * 11 and not any(r["bad"] for r in ctx["grads"])
    assert "Not drawn: fake tensors hold no gradient values." in render_html(report)


def test_module_table_has_training_columns():
    report = T.training_report()
    html = render_html(report)
    assert '<th class="n" data-sort="bwmacs" scope="col">Backward MACs</th>' in html
    blocks = next(m for m in report.modules if m.path == "blocks")
    # the fixture: backward MACs twice the forward's, 4 bytes of gradient per parameter
    assert blocks.backward_macs == 2 * 768 and blocks.grad_bytes == 4 * 816
    assert 'data-path="blocks" data-parent="" ' in html
    row = html[html.index('data-path="blocks" '):]
    row = row[:row.index("</tr>")]
    assert 'data-bwmacs="1536"' in row and f'data-grads="{4 * 816}"' in row and ">1.54 K</td>" in row
    model, inputs = M.small_net()
    forward = render_html(mevreport.analyze(model, inputs, runs=0, stats=False))
    assert "data-bwmacs" not in forward and "Backward MACs" not in forward


def test_phase_times_in_the_totals():
    """Times show only when every op of the phase was timed; backward's is the root row's roll-up."""
    report = T.training_report()
    assert dict((k, v) for k, v, _ in training_context(report)["totals"])["Backward"] == "6.00 KMACs · 12.5 KFLOPs"
    modules = tuple(dataclasses.replace(m, backward_latency_ms=1.25 if m.path == "" else 0.5) for m in report.modules)
    n = len(report.nodes)
    optimizer = tuple(dataclasses.replace(node, id=n + k, phase="optimizer", latency_ms=0.25 * (k + 1))
                      for k, node in enumerate(report.nodes[:2]))
    timed = dataclasses.replace(report, modules=modules, nodes=report.nodes + optimizer)
    rows = dict((k, v) for k, v, _ in training_context(timed)["totals"])
    assert rows["Backward"] == "6.00 KMACs · 12.5 KFLOPs · 1.25 ms"
    assert rows["Optimizer step"] == "4.00 KFLOPs · 0.75 ms"  # 0.25 + 0.5
    untimed = dataclasses.replace(timed, nodes=timed.nodes[:-1] + (dataclasses.replace(timed.nodes[-1],
                                                                                       latency_ms=None),))
    assert dict((k, v) for k, v, _ in training_context(untimed)["totals"])["Optimizer step"] == "4.00 KFLOPs"
