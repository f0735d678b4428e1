"""Capture: exact nodes, edges, module paths, params and bytes on hand-written models.

Every expected value below is worked out by hand from the fixture model in
tests/models.py; the op sequences are what PyTorch executes for them
(``nn.Linear`` on a 2-d input runs ``t`` + ``addmm`` under dispatch, and is
kept as one ``aten.linear`` in torch.export's IR).
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import mevreport
from mevreport.capture import capture
from mevreport.errors import ModelLoadError, ModelRunError

from . import models as M

F32 = 4  # bytes per float32 element


def ops(graph) -> list[str]:
    return [n.op for n in graph.nodes]


def paths(graph) -> list[str]:
    return [n.module_path for n in graph.nodes]


# --- dispatch capture: exact graphs ------------------------------------------------

def test_two_linear_nodes_edges_bytes_exact():
    g = capture(M.TwoLinear(), torch.randn(2, 4), runs=0)
    assert g.capture.method == "dispatch"
    assert ops(g) == ["aten.t.default", "aten.addmm.default", "aten.relu.default", "aten.t.default",
                      "aten.addmm.default"]
    assert paths(g) == ["fc1", "fc1", "act", "fc2", "fc2"]
    assert [n.inputs for n in g.nodes] == [(), (0,), (1,), (), (2, 3)]
    assert [tuple(o.shape for o in n.outputs) for n in g.nodes] == [((4, 8),), ((2, 8),), ((2, 8),), ((8, 3),), ((2, 3),)]
    assert all(o.dtype == "float32" for n in g.nodes for o in n.outputs)
    # t is a view (0 bytes); addmm/relu allocate batch x features floats
    assert [n.output_bytes for n in g.nodes] == [0, 2 * 8 * F32, 2 * 8 * F32, 0, 2 * 3 * F32]
    assert [n.param_inputs for n in g.nodes] == [("fc1.weight",), ("fc1.bias",), (), ("fc2.weight",), ("fc2.bias",)]
    assert g.nodes[1].input_names == ("x",)
    assert g.output_node_ids == (4,)
    assert [(m.path, m.class_name, m.calls, m.params) for m in g.modules] == [
        ("", "TwoLinear", 1, 4 * 8 + 8 + 8 * 3 + 3), ("fc1", "Linear", 1, 40), ("act", "ReLU", 1, 0),
        ("fc2", "Linear", 1, 27)]


def test_nested_blocks_module_paths_and_every_module_listed():
    model = M.Nested()
    g = capture(model, torch.randn(2, 4), runs=0)
    assert paths(g) == ["body.0.fc", "body.0.fc", "body.0.act", "body.0", "body.1.fc", "body.1.fc", "body.1.act",
                        "body.1", "head", "head"]
    # the residual add of block 1 reads block 1's relu and block 0's output
    assert g.nodes[7].op == "aten.add.Tensor" and g.nodes[7].inputs == (6, 3)
    named = dict(model.named_modules())
    assert [m.path for m in g.modules] == list(named)  # every module ran, root "" first
    assert all(m.calls == 1 for m in g.modules)
    assert {m.path: m.depth for m in g.modules}["body.1.fc"] == 3


@pytest.mark.parametrize("method", ["dispatch", "export"])
def test_module_called_twice_records_both_calls(method):
    g = capture(M.CalledTwice(), torch.randn(2, 4), runs=0, method=method)
    assert g.capture.method == method
    mods = {m.path: m.calls for m in g.modules}
    assert mods == {"": 1, "shared": 2}
    shared = [(n.op, n.module_call) for n in g.nodes]
    if method == "dispatch":
        assert shared == [("aten.t.default", 0), ("aten.addmm.default", 0), ("aten.t.default", 1),
                          ("aten.addmm.default", 1)]
    else:
        assert shared == [("aten.linear.default", 0), ("aten.linear.default", 1)]
    report = mevreport.analyze(M.CalledTwice(), torch.randn(2, 4), runs=0, capture=method)
    assert report.totals.params == 20  # one Linear(4, 4), counted once although called twice
    assert report.totals.macs == 2 * (2 * 4 * 4)


def test_tied_weights_counted_once_with_integer_inputs():
    model = M.TiedLM()
    ids = torch.tensor([[1, 2, 3]])
    g = capture(model, ids, runs=0)
    params = {p.name: p for p in g.params}
    assert set(params) == {"embed.weight", "norm.weight", "norm.bias"}
    assert params["embed.weight"].tied_names == ("head.weight",)
    assert params["embed.weight"].numel == 10 * 6
    assert g.inputs[0].name == "ids" and g.inputs[0].dtype == "int64" and g.inputs[0].shape == (1, 3)
    assert g.nodes[0].op == "aten.embedding.default" and g.nodes[0].input_names == ("ids",)
    # the head reads the shared weight under the embedding's name
    head_t = next(n for n in g.nodes if n.module_path == "head" and n.op == "aten.t.default")
    assert head_t.param_inputs == ("embed.weight",)
    report = mevreport.analyze(model, ids, runs=0)
    assert report.totals.params == 60 + 6 + 6
    assert report.totals.param_bytes == 72 * F32
    assert {m.path: m.params for m in report.modules} == {"": 72, "embed": 60, "norm": 12, "head": 60}
    logits = next(n for n in report.nodes if n.id == g.output_node_ids[0])
    assert logits.outputs[0].shape == (1, 3, 10) and logits.outputs[0].dtype == "float32"
    # linear on a 3-d input ends in _unsafe_view: a view of mm's output, no new storage
    assert [(n.op, n.output_bytes) for n in g.nodes if n.module_path == "head"] == [
        ("aten.t.default", 0), ("aten.view.default", 0), ("aten.mm.default", 3 * 10 * F32),
        ("aten._unsafe_view.default", 0)]


def test_trainable_frozen_and_buffers_apart():
    report = mevreport.analyze(M.FrozenWithBuffers(), torch.randn(2, 4), runs=0)
    t = report.totals
    assert t.params == 16 + 4 + 4 + 4 + 8
    assert t.trainable_params == 4 + 4 + 8
    assert t.frozen_params == 16 + 4
    assert t.buffers == 4 + 4 + 1
    assert t.buffer_bytes == (4 + 4) * F32 + 8  # running mean/var float32, num_batches_tracked int64
    assert t.param_bytes == 36 * F32
    buffers = [p.name for p in report.params if p.is_buffer]
    assert buffers == ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]


@pytest.mark.parametrize("method", ["dispatch", "export"])
def test_inplace_and_views_allocate_nothing(method):
    g = capture(M.InPlaceViews(), torch.randn(2, 3), runs=0, method=method)
    assert g.capture.method == method
    assert [(n.op, n.output_bytes, n.alias_of) for n in g.nodes] == [
        ("aten.mul.Tensor", 6 * F32, (-1,)),
        ("aten.view.default", 0, (0,)),
        ("aten.add_.Tensor", 0, (0,)),
        ("aten.t.default", 0, (0,)),
        ("aten.clone.default", 6 * F32, (-1,)),
    ]
    assert [n.inputs for n in g.nodes] == [(), (0,), (1,), (0,), (3,)]
    assert [n.outputs[0].shape for n in g.nodes] == [(2, 3), (6,), (6,), (3, 2), (3, 2)]
    report = mevreport.analyze(M.InPlaceViews(), torch.randn(2, 3), runs=0, capture=method)
    assert report.totals.activation_bytes == 12 * F32
    assert report.totals.peak_activation_bytes == 12 * F32  # mul's storage is alive until clone reads it


def test_empty_reserve_buffers_are_not_nodes_and_timing_still_matches():
    """Batch norm's zero-element ``aten.empty`` reserve buffer is neither recorded nor timed, while a
    real zero-element output computed from an input still is (it read data)."""

    class ConvBnEmpty(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn(self.conv(x)))
            return y, x[:, :0] * 2  # a zero-element result of real ops

    model = ConvBnEmpty().eval()
    g = capture(model, torch.randn(1, 3, 6, 6), runs=2)
    ops = [n.op for n in g.nodes]
    assert "aten.empty.memory_format" not in ops
    assert ops[:3] == ["aten.convolution.default", "aten._native_batch_norm_legit_no_training.default",
                       "aten.relu.default"] or ops[:3] == ["aten.convolution.default", "aten.native_batch_norm.default",
                                                           "aten.relu.default"]
    assert "aten.mul.Tensor" in ops  # zero elements, but computed from an input
    assert set(g.measurements.node_latency_ms) == {n.id for n in g.nodes}  # the timed runs matched the capture
    assert not g.measurements.notes


def test_tuple_and_dict_outputs_and_dict_inputs():
    model = M.TupleDictOutputs()
    g = capture(model, {"x": torch.randn(2, 4), "extra": {"bias": torch.randn(2)}}, runs=0)
    assert ops(g) == ["aten.t.default", "aten.addmm.default", "aten._softmax.default", "aten.add.Tensor",
                      "aten.sum.default"]
    assert [i.name for i in g.inputs] == ["x", "extra.bias"]
    assert g.nodes[3].input_names == ("extra.bias",)
    # sum, logits, probs, shifted: every tensor in the tuple/dict output
    assert g.output_node_ids == (4, 1, 2, 3)


def test_data_dependent_if_runs_the_branch_taken():
    model = M.DataDependentIf()
    with torch.no_grad():
        model.fc.weight.copy_(torch.eye(4))
        model.fc.bias.zero_()
    pos = capture(model, torch.ones(2, 4), runs=0)
    neg = capture(model, -torch.ones(2, 4), runs=0)
    head = ["aten.t.default", "aten.addmm.default", "aten.sum.default", "aten.gt.Scalar"]
    assert ops(pos) == head + ["aten.relu.default"]
    assert ops(neg) == head + ["aten.neg.default"]
    assert paths(pos) == ["fc", "fc", "", "", ""]


def test_data_dependent_if_export_falls_back_with_one_note(capfd):
    lines: list[str] = []
    g = capture(M.DataDependentIf(), torch.randn(2, 4), runs=0, method="export", progress=lines.append)
    assert g.capture.method == "dispatch"
    fallback = [n for n in g.capture.notes if n.startswith("torch.export failed")]
    assert len(fallback) == 1 and "data-dependent" in fallback[0]
    assert [ln for ln in lines if ln.startswith("warning:")] == ["warning: " + fallback[0]]
    assert ops(g)[-1] in ("aten.relu.default", "aten.neg.default")
    out, err = capfd.readouterr()
    assert err == "" and out == ""  # torch's partial graph and tracebacks are kept off the terminal


@pytest.mark.parametrize("make", [M.TwoLinear, M.Nested, M.TiedLM, M.FrozenWithBuffers, M.MixedOps])
def test_export_and_dispatch_agree_on_macs_and_params(make):
    inputs = {M.TiedLM: torch.tensor([[1, 2, 3]]), M.MixedOps: torch.randn(1, 4, 8, 8)}.get(make, torch.randn(2, 4))
    torch.manual_seed(0)
    model = make().eval()
    d = mevreport.analyze(model, inputs, runs=0, capture="dispatch")
    e = mevreport.analyze(model, inputs, runs=0, capture="export")
    assert e.capture.method == "export"
    assert e.totals.macs == d.totals.macs and e.totals.macs > 0
    assert e.totals.params == d.totals.params
    assert e.totals.trainable_params == d.totals.trainable_params
    assert e.totals.buffer_bytes == d.totals.buffer_bytes
    assert [m.path for m in e.modules] == [m.path for m in d.modules]
    assert not e.uncounted_ops and not d.uncounted_ops


def test_mixed_ops_macs_by_hand():
    conv = 8 * 4 * 4 * (4 // 2) * 3 * 3        # out elements x (in/groups) x kernel
    up = (4 * 4) * 8 * 4 * (2 * 2)             # transposed: input pixels x cin x cout x k^2
    proj = 16 * 4 * 12
    sdpa = 16 * 16 * 4 * 2                     # Q.K^T and A.V
    matmul = 16 * 4 * 16
    for method in ("dispatch", "export"):
        r = mevreport.analyze(M.MixedOps(), torch.randn(1, 4, 8, 8), runs=0, stats=False, capture=method)
        assert r.capture.method == method
        assert r.totals.macs == conv + up + proj + sdpa + matmul, method


def test_export_demo_model_matches_dispatch():
    from mevreport.demo import build
    model, x = build()
    d = mevreport.analyze(model, x, runs=0, capture="dispatch")
    e = mevreport.analyze(model, x, runs=0, capture="export")
    assert e.capture.method == "export"
    assert (e.totals.macs, e.totals.flops, e.totals.params) == (d.totals.macs, d.totals.flops, d.totals.params)
    assert not e.uncounted_ops


def test_export_two_linear_nodes_exact_and_observed():
    model = M.TwoLinear()
    x = torch.randn(2, 4)
    g = capture(model, x, runs=2, method="export")
    assert g.capture.method == "export"
    assert ops(g) == ["aten.linear.default", "aten.relu.default", "aten.linear.default"]
    assert paths(g) == ["fc1", "act", "fc2"]
    assert [n.inputs for n in g.nodes] == [(), (0,), (1,)]
    assert [n.param_inputs for n in g.nodes] == [("fc1.weight", "fc1.bias"), (), ("fc2.weight", "fc2.bias")]
    assert g.nodes[0].input_names == ("x",)
    assert [n.output_bytes for n in g.nodes] == [2 * 8 * F32, 2 * 8 * F32, 2 * 3 * F32]
    assert g.output_node_ids == (2,)
    # statistics come from running the exported graph on the real input
    with torch.no_grad():
        h = model.act(model.fc1(x))
        y = model.fc2(h)
    s_relu, s_out = g.measurements.node_stats[1], g.measurements.node_stats[2]
    assert s_out.mean == pytest.approx(float(y.mean()), rel=1e-5, abs=1e-6)
    assert s_out.max == pytest.approx(float(y.max()), rel=1e-6)
    assert s_relu.zero_fraction == pytest.approx(float((h == 0).float().mean()))
    assert set(g.measurements.node_latency_ms) == {0, 1, 2}
    assert g.measurements.forward_latency_ms is not None and g.measurements.latency_runs == 2


def test_dispatch_stats_match_the_real_output():
    model = M.TwoLinear()
    x = torch.randn(2, 4)
    g = capture(model, x, runs=0)
    with torch.no_grad():
        y = model(x)
    s = g.measurements.node_stats[4]
    assert s.mean == pytest.approx(float(y.mean()), rel=1e-5, abs=1e-6)
    assert s.min == pytest.approx(float(y.min()), rel=1e-6)
    assert s.numel == 6


# --- the model is left as found -----------------------------------------------------

@pytest.mark.parametrize("method", ["dispatch", "export"])
@pytest.mark.parametrize("training", [True, False])
def test_model_left_as_found(method, training):
    model = M.FrozenWithBuffers().train(training)
    model.out.weight.requires_grad_(False)
    before = copy.deepcopy(model.state_dict())
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    modes = {n: m.training for n, m in model.named_modules()}
    mevreport.analyze(model, torch.randn(2, 4), runs=2, capture=method)
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k in before:  # parameters and buffers (batch norm running stats too)
        assert torch.equal(before[k], after[k]), k
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert torch.is_grad_enabled()  # grad mode restored for the caller


# --- errors name the op and module --------------------------------------------------

@pytest.mark.parametrize("method", ["dispatch", "export"])
def test_shape_mismatch_names_op_and_nested_module(method):
    with pytest.raises(ModelRunError) as info:
        capture(M.ShapeMismatchInside(), torch.randn(2, 5), runs=0, method=method)
    err = info.value
    assert err.op == "aten.addmm.default" and err.module_path == "stage.0.fc"
    msg = str(err)
    assert "\n" not in msg
    assert "aten.addmm.default" in msg and "'stage.0.fc' (Linear)" in msg and "2x5 and 8x8" in msg


@pytest.mark.parametrize("method", ["dispatch", "export"])
def test_python_raise_in_submodule_names_module(method):
    with pytest.raises(ModelRunError) as info:
        capture(M.RaisesInSubmodule(), torch.randn(2, 8), runs=0, method=method)
    err = info.value
    # no aten op failed: the Python function that raised is named instead
    assert err.module_path == "guard.0" and err.op == "forward()"
    assert str(err) == ("the model failed in forward() at module 'guard.0' (Check): ValueError: expected 3 features, got 4")


# --- torch.export archives ------------------------------------------------------------

def test_pt2_archive_loads_and_keeps_module_paths(tmp_path):
    from mevreport.loader import load_model
    model = M.TwoLinear().eval()
    x = torch.randn(2, 4)
    path = tmp_path / "two.pt2"
    torch.export.save(torch.export.export(model, (x,)), str(path))
    loaded = load_model(str(path))
    assert loaded.name == "two"
    assert isinstance(loaded.inputs, tuple) and torch.equal(loaded.inputs[0], x)
    report = mevreport.analyze(loaded.module, loaded.inputs, runs=0)
    assert report.capture.method == "export"
    assert [n.op for n in report.nodes] == ["aten.linear.default", "aten.relu.default", "aten.linear.default"]
    assert [n.module_path for n in report.nodes] == ["fc1", "act", "fc2"]
    assert {m.path: m.class_name for m in report.modules}["fc1"] == "Linear"
    assert report.totals.macs == 2 * 4 * 8 + 2 * 8 * 3
    assert report.totals.params == 67


@pytest.mark.parametrize("content", [b"not a zip", b"PK\x03\x04broken"])
def test_pt2_that_is_not_an_archive_is_one_line_error(tmp_path, content, capfd):
    from mevreport.loader import load_model
    path = tmp_path / "bad.pt2"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError) as info:
        load_model(str(path))
    assert "not a torch.export archive" in str(info.value) and "\n" not in str(info.value)
    assert capfd.readouterr().err == ""


# --- Hugging Face models from tiny configs ------------------------------------------------

def _gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=64,
                     bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(cfg).eval()


def _llama() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                      num_key_value_heads=1, vocab_size=100, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


@pytest.mark.parametrize("build", [_gpt2, _llama], ids=["gpt2", "llama"])
def test_hf_models_capture_with_cache_outputs(build):
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = build()
    ids = torch.randint(0, 100, (1, 8))
    with torch.no_grad():
        expected = model(input_ids=ids)
    assert expected.past_key_values is not None  # the output object holds a cache
    report = mevreport.analyze(model, {"input_ids": ids}, runs=0, capture="export")
    # export refuses the cache object in the output and falls back
    assert report.capture.method == "dispatch"
    assert any(n.startswith("torch.export failed") for n in report.capture.notes)
    named = dict(model.named_modules())
    assert report.nodes and all(n.module_path in named for n in report.nodes)
    assert {m.path for m in report.modules} <= set(named) and report.modules[0].path == ""
    assert "model.layers.1.self_attn" in {m.path for m in report.modules} or \
        "transformer.h.1.attn" in {m.path for m in report.modules}
    assert report.inputs[0].name == "input_ids" and report.inputs[0].dtype == "int64"
    outs = {n.id: n for n in report.nodes}
    out_shapes = [outs[i].outputs[0].shape for i in _output_ids(model, ids)]
    assert (1, 8, 100) in out_shapes  # logits
    assert report.totals.params == sum(p.numel() for p in model.parameters())  # tied lm_head counted once
    assert report.totals.macs > 0


def _output_ids(model: nn.Module, ids: torch.Tensor) -> tuple[int, ...]:
    g = capture(model, {"input_ids": ids}, runs=0, stats=False)
    assert g.output_node_ids
    return g.output_node_ids


def test_hf_gpt2_export_without_cache_matches_dispatch():
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = _gpt2()
    inputs = {"input_ids": torch.randint(0, 100, (1, 8)), "use_cache": False}
    e = mevreport.analyze(model, inputs, runs=0, stats=False, capture="export")
    d = mevreport.analyze(model, inputs, runs=0, stats=False, capture="dispatch")
    assert e.capture.method == "export"
    named = dict(model.named_modules())
    assert all(n.module_path in named for n in e.nodes)
    assert "transformer.h.1.mlp.c_fc" in {m.path for m in e.modules}
    assert e.totals.macs == d.totals.macs and e.totals.params == d.totals.params
    assert not e.uncounted_ops


def test_export_on_meta_model_is_exact_without_data():
    model = M.Nested().to("meta")
    r = mevreport.analyze(model, torch.randn(2, 4), capture="export")
    assert r.capture.method == "export" and r.capture.fake
    assert r.totals.macs == 2 * (2 * 4 * 4) + 2 * 4 * 2 and r.totals.params == 50
    assert all(n.stats is None and n.latency_ms is None for n in r.nodes)
