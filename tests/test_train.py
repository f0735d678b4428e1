"""The training step (DESIGN §6): backward costs, memory, optimizer state, gradients, the model left as found.

Every expected number is derived by hand in the test from the shapes.
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import mevreport
from mevreport.errors import UsageError

from . import models_train as M

F32 = 4


def _train(model, x, **kw):
    kw.setdefault("runs", 0)
    kw.setdefault("stats", False)
    return mevreport.analyze(model, x, train=True, **kw)


def _backward_mm_macs(model, x) -> int:
    """FlopCounterMode's count of the backward alone (a step minus the forward), as MACs."""
    with FlopCounterMode(display=False) as fc:
        model(x)
    forward = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc:
        model(x).mean().backward()
    model.zero_grad(set_to_none=True)
    return (fc.get_total_flops() - forward) // 2


def test_mlp_step_costs_and_memory_by_hand():
    # Linear(4, 8) -> ReLU -> Linear(8, 2) on a batch of 3; x needs no gradient.
    r = _train(M.mlp(), torch.randn(3, 4), optimizer="sgd")
    t = r.totals
    # fc0 backward: grad of weight only (3x8)^T(3x4) = 3*4*8; fc2: grad of input 3*2*8 and of weight 3*8*2
    assert t.backward_macs == 3 * 4 * 8 + 3 * 2 * 8 + 3 * 8 * 2 == 192
    assert t.macs == 3 * 4 * 8 + 3 * 8 * 2  # the forward's stay the forward's
    # autograd saves x (an input), the weights' transposes (parameters) and the ReLU output, once though
    # both ReLU's backward and fc2's weight gradient need it: 3*8 float32
    assert t.saved_activation_bytes == 3 * 8 * F32 == 96
    assert t.grad_bytes == (4 * 8 + 8 + 8 * 2 + 2) * F32 == 232
    assert t.optimizer_state_bytes == 0  # plain SGD keeps nothing
    assert t.optimizer_flops == 58  # p -= lr * g: one fused add per element
    assert r.training.loss.source == "synthetic" and r.training.optimizer.class_name == "SGD"
    rows = {m.path: m for m in r.modules}
    assert rows["0"].backward_macs == 96 and rows["2"].backward_macs == 96 and rows[""].backward_macs == 192
    assert rows["1"].saved_activation_bytes == 96 and rows[""].saved_activation_bytes == 96
    assert rows["0"].grad_bytes == 40 * F32 and rows["2"].grad_bytes == 18 * F32
    phases = [n.phase for n in r.nodes]
    assert phases == sorted(phases, key=["forward", "backward", "optimizer"].index)  # one step, in order
    mms = [n for n in r.nodes if n.phase == "backward" and n.op == "aten.mm.default"]
    assert [n.module_path for n in mms] == ["2", "2", "0"]
    assert [g.param for g in r.grads] == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_mlp_backward_macs_equal_flop_counter():
    model, x = M.mlp(), torch.randn(3, 4)
    assert _train(model, x, optimizer="sgd").totals.backward_macs == _backward_mm_macs(model, x)


def test_conv_net_backward_macs_by_hand_and_flop_counter():
    model, x = M.ConvNet(), torch.randn(2, 3, 8, 8)
    r = _train(model, x, optimizer="sgd")
    # conv: the input needs no gradient, so only the weight's: out (2,4,8,8) x C_in 3 x 3x3 kernel
    conv = 2 * 4 * 8 * 8 * 3 * 3 * 3
    fc = 2 * 5 * 256 + 5 * 2 * 256  # grad of input (2x5)(5x256), of weight (5x2)(2x256)
    assert r.totals.backward_macs == conv + fc == 18944
    assert {m.path: m.backward_macs for m in r.modules} == {"": conv + fc, "conv": conv, "fc": fc}
    assert r.totals.backward_macs == _backward_mm_macs(model, x)
    assert any(n.op == "aten.convolution_backward.default" and n.phase == "backward" for n in r.nodes)


def test_transformer_block_backward_macs_by_hand():
    model, x = M.Block(8), torch.randn(2, 4, 8)
    r = _train(model, x, optimizer="sgd")
    tokens = 2 * 4
    # every linear's input depends on a LayerNorm's trainable weight: grads of input and weight, 2*T*in*out
    linears = 4 * (2 * tokens * 8 * 8) + 2 * (2 * tokens * 8 * 16)
    # SDPA backward (B=2, H=1, L=S=4, E=Ev=8): recomputed scores, grad of values, of probabilities,
    # of queries and keys: 4*B*H*L*S*E + B*H*L*S*Ev
    attention = 4 * 2 * 1 * 4 * 4 * 8 + 2 * 1 * 4 * 4 * 8
    assert r.totals.backward_macs == linears + attention == 9472
    kernels = [n.op for n in r.nodes if n.phase == "backward" and "attention" in n.op]
    assert kernels == ["aten._scaled_dot_product_flash_attention_for_cpu_backward.default"]
    # FlopCounterMode has no rule for the CPU flash-attention kernels; its matmuls agree
    assert _backward_mm_macs(model, x) == linears
    assert r.uncounted_ops == ()


@pytest.mark.parametrize(("name", "factory", "per_param_bytes"), [
    ("sgd-momentum", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), lambda numel: numel * F32),
    # exp_avg and exp_avg_sq like the parameter, and a float32 step count per parameter
    ("adam", lambda p: torch.optim.Adam(p), lambda numel: 2 * numel * F32 + F32),
    ("adamw", lambda p: torch.optim.AdamW(p), lambda numel: 2 * numel * F32 + F32),
    ("adam-foreach", lambda p: torch.optim.Adam(p, foreach=True), lambda numel: 2 * numel * F32 + F32),
])
def test_optimizer_state_bytes_by_hand(name, factory, per_param_bytes):
    r = _train(M.mlp(), torch.randn(3, 4), optimizer=factory)
    numels = [4 * 8, 8, 8 * 2, 2]
    assert r.totals.optimizer_state_bytes == sum(per_param_bytes(n) for n in numels)
    assert {m.path: m.optimizer_state_bytes for m in r.modules}["2"] == per_param_bytes(16) + per_param_bytes(2)


def test_optimizer_names_and_adam_flops_agree_across_implementations():
    x = torch.randn(3, 4)
    single = _train(M.mlp(), x, optimizer=lambda p: torch.optim.Adam(p, foreach=False))
    multi = _train(M.mlp(), x, optimizer=lambda p: torch.optim.Adam(p, foreach=True))
    assert single.totals.optimizer_flops == multi.totals.optimizer_flops > 0
    assert _train(M.mlp(), x).training.optimizer.class_name == "AdamW"  # the default
    assert _train(M.mlp(), x, optimizer="adam").training.optimizer.class_name == "Adam"


def _snapshot(model, opt):
    return {
        "params": {n: (p.detach().clone(), None if p.grad is None else p.grad.clone(), p.requires_grad)
                   for n, p in model.named_parameters()},
        "buffers": {n: b.clone() for n, b in model.named_buffers()},
        "opt": copy.deepcopy(opt.state_dict()),
        "rng": torch.get_rng_state(),
        "training": [m.training for m in model.modules()],
        "ids": [id(p) for p in model.parameters()],
    }


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_model_left_exactly_as_found(mode):
    model = M.BNNet()
    x = torch.randn(2, 3, 6, 6)
    opt = torch.optim.Adam(model.parameters())
    model(x).mean().backward()  # the user's own step: grads and Adam state exist
    opt.step()
    model(x).sum().backward()   # and a gradient accumulated since
    model.train(mode == "train")
    before = _snapshot(model, opt)
    r = mevreport.analyze(model, x, train=True, optimizer=opt, runs=2)
    assert r.training.optimizer.class_name == "Adam"
    assert r.totals.optimizer_state_bytes == sum(2 * p.numel() * F32 + F32 for p in model.parameters())
    assert _same(before, _snapshot(model, opt))


def test_loss_from_output_and_callable():
    model, x, labels = M.WithLoss(), torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    r = _train(model, {"x": x, "labels": labels})
    assert (r.training.loss.source, r.training.loss.name) == ("output", "loss")
    assert any(n.op.startswith("aten.nll_loss_backward") and n.phase == "backward" for n in r.nodes)

    def my_loss(outputs, inputs):
        return (outputs["logits"] ** 2).mean() + 0 * inputs["x"].sum()

    r = _train(model, {"x": x}, loss=my_loss)
    assert r.training.loss.source == "callable" and r.training.loss.name.endswith("my_loss")


def test_gradient_warnings_nan_in_backward_no_gradient_and_zero():
    model = M.Troubled()
    x = torch.randn(3, 4)
    assert 0 < (model.fc(x) <= 0).sum() < 24  # the ReLU is zero somewhere: there sqrt's backward divides by 0
    r = mevreport.analyze(model, x, train=True, optimizer="sgd", runs=0)
    nan = [w for w in r.warnings if w.kind == "nan_backward"]
    assert len(nan) == 1
    node = r.nodes[nan[0].node]
    assert node.phase == "backward" and node.module_path == ""
    assert "sqrt" in nan[0].message  # linked to the forward op it differentiates
    assert sorted(w.message.split("'")[1] for w in r.warnings if w.kind == "no_gradient") == ["unused.bias",
                                                                                             "unused.weight"]
    assert [w.message.split("'")[1] for w in r.warnings if w.kind == "vanishing_gradient"] == ["dead.weight"]
    grads = {g.param: g for g in r.grads}
    assert grads["unused.weight"].stats is None and grads["unused.weight"].norm is None
    assert grads["head.weight"].stats is not None and grads["head.weight"].weight_norm > 0


def test_gradient_norms_and_ratio():
    model, x = M.mlp(), torch.randn(3, 4)
    r = mevreport.analyze(model, x, train=True, optimizer="sgd", runs=0)
    ref = M.mlp()
    ref(x).mean().backward()
    for g in r.grads:
        p = dict(ref.named_parameters())[g.param]
        assert g.norm == pytest.approx(p.grad.norm().item(), rel=1e-5)
        assert g.weight_norm == pytest.approx(p.norm().item(), rel=1e-5)
        assert g.ratio == pytest.approx(g.norm / g.weight_norm)
        assert g.stats.numel == p.numel() and g.shape == tuple(p.shape)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"optimizer": "lion"}, "unknown optimizer 'lion'"),
    ({"optimizer": "os:nope"}, "bad --optimizer"),
    ({"loss": "nomodule_xyz:fn"}, "bad --loss"),
    ({"loss": lambda out, inp: out}, "one element"),
    ({"optimizer": lambda params: 3}, "not a torch.optim.Optimizer"),
])
def test_bad_loss_or_optimizer_is_one_line_usage_error(kwargs, match):
    with pytest.raises(UsageError, match=match) as info:
        _train(M.mlp(), torch.randn(3, 4), **kwargs)
    assert "\n" not in str(info.value)


def test_nothing_to_train_and_loss_without_train():
    frozen = M.mlp().requires_grad_(False)
    with pytest.raises(UsageError, match="nothing to differentiate"):
        _train(frozen, torch.randn(3, 4))
    with pytest.raises(UsageError, match="train=True"):
        mevreport.analyze(M.mlp(), torch.randn(3, 4), optimizer="sgd", runs=0)


def test_timed_step_gives_every_node_a_time():
    r = mevreport.analyze(M.mlp(), torch.randn(3, 4), train=True, optimizer="adam", runs=2)
    assert all(n.latency_ms is not None for n in r.nodes)
    rows = {m.path: m for m in r.modules}
    assert rows[""].backward_latency_ms == pytest.approx(sum(n.latency_ms for n in r.nodes if n.phase == "backward"))
    assert not [w for w in r.warnings if w.kind == "capture_note"]


def test_transformer_block_saved_activation_bytes_by_hand():
    r = _train(M.Block(8), torch.randn(2, 4, 8), optimizer="sgd")
    t, d = 2 * 4, 8  # tokens, width; float32 throughout; x is an input and excluded
    ln1 = 2 * t * F32                    # mean and rstd, one per token
    qkv_input = t * d * F32              # ln1's output, saved by q, k and v: one storage
    sdpa = 3 * t * d * F32 + t * d * F32 + 2 * 1 * 4 * F32  # q, k, v, the output, logsumexp (B, H, L)
    ln2 = t * d * F32 + 2 * t * F32      # the residual sum it normalises, mean, rstd
    up_input = t * d * F32               # ln2's output
    gelu = t * 2 * d * F32               # up's output (GELU's input)
    down_input = t * 2 * d * F32         # GELU's output
    assert r.totals.saved_activation_bytes == ln1 + qkv_input + sdpa + ln2 + up_input + gelu + down_input == 2976
    rows = {m.path: m.saved_activation_bytes for m in r.modules}
    # by the innermost module running when autograd saved it: the first to save a storage has it
    assert rows == {"": 2976, "ln1": ln1, "q": qkv_input, "k": 0, "v": 0, "o": 0, "ln2": ln2, "up": up_input,
                    "down": down_input}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_measured_train_peak_beside_the_counted_one():
    r = mevreport.analyze(M.mlp(), torch.randn(3, 4), device="cuda", train=True, optimizer="adam", runs=1)
    t = r.totals
    # the allocator rounds every block up (512 bytes) and the inputs are on the device too: never below
    assert t.measured_train_peak_bytes is not None and t.measured_train_peak_bytes >= t.train_peak_bytes
    assert t.optimizer_state_bytes == (58 * 2 + 4) * F32
    assert all(n.latency_ms is not None for n in r.nodes)
