"""Fused and newer kernels (issue 12): exact MACs derived by hand, and the registry's completeness.

Before these rules a small Mixtral reported 46,080 of its 119,808 MACs (the
expert ``_grouped_mm`` uncounted), ``nn.TransformerEncoder`` in eval mode 0,
an export-captured three-operand einsum 32x too many and an exported LSTM 0.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import flop_registry

import mevreport
from mevreport.costs import cost_of, lookup, rule_table
from mevreport.graph import Node, TensorMeta


def _node(op: str, *args: object, outputs: tuple[TensorMeta, ...] = ()) -> Node:
    return Node(id=0, op=op, module_path="", module_call=0, inputs=(), outputs=outputs, output_bytes=0,
                alias_of=(), args=args)


def macs_by_op(report) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for n in report.nodes:
        if n.macs:
            out.setdefault(n.op, []).append(n.macs)
    return out


# --- the registry against torch ------------------------------------------------------------------

def test_every_op_flop_counter_counts_has_a_rule():
    """Walk torch.utils.flop_counter's registry: each aten op it counts is counted here too.
    (flex_attention is a higher-order operator, not an aten op: its work reaches the dispatch
    capture as the aten ops it runs.)"""
    missing = []
    for op in flop_registry:
        if isinstance(op, torch._ops.HigherOrderOperator):
            continue
        name = op._qualified_op_name.replace("::", ".")
        for overload in op.overloads():
            full = f"{name}.{overload}"
            if lookup(full) is None:
                missing.append(full)
    assert not missing


def test_every_registered_rule_is_an_op_of_this_torch():
    """No rule under a name torch does not have (zeros_like_, lp_pool2d, _adaptive_avg_pool1d were)."""
    from torch.distributed.fsdp._fully_shard import _fsdp_collectives  # noqa: F401  (registers the fsdp ops)
    not_ops = []
    for name, _ in rule_table():
        domain, *rest = name.split(".")
        if domain in ("onnx", "com_microsoft"):
            continue
        assert domain in ("aten", "c10d", "_c10d_functional", "fsdp"), name
        packet = getattr(getattr(torch.ops, domain), rest[0], None)
        if packet is None or (len(rest) > 1 and rest[1] not in packet.overloads()):
            not_ops.append(name)
    assert not_ops == []
    for gone in ("aten.zeros_like_", "aten.lp_pool2d", "aten._adaptive_avg_pool1d"):
        assert lookup(gone + ".default") is None


# --- grouped (MoE) matmuls -----------------------------------------------------------------------

def test_small_mixtral_counts_its_experts():
    """transformers' Mixtral runs its experts as aten._grouped_mm (experts_implementation "grouped_mm")."""
    transformers = pytest.importorskip("transformers")
    h, inter, experts, top_k, heads, kv_heads, vocab, seq = 32, 48, 4, 2, 4, 2, 64, 8
    cfg = transformers.MixtralConfig(vocab_size=vocab, hidden_size=h, intermediate_size=inter, num_hidden_layers=1,
                                     num_attention_heads=heads, num_key_value_heads=kv_heads,
                                     num_local_experts=experts, num_experts_per_tok=top_k, max_position_embeddings=32)
    torch.manual_seed(0)
    model = transformers.MixtralForCausalLM(cfg).eval()
    report = mevreport.analyze(model, {"input_ids": torch.randint(0, vocab, (1, seq))}, runs=0, stats=False)
    d, kv = h // heads, kv_heads * (h // heads)
    routed = seq * top_k                          # every token goes to top_k experts
    gate_up, down = routed * h * 2 * inter, routed * inter * h
    attention = seq * (h * h + 2 * h * kv + h * h) + heads * seq * seq * 2 * d
    router, head = seq * h * experts, seq * h * vocab
    assert macs_by_op(report)["aten._grouped_mm.default"] == [gate_up, down]
    assert report.totals.macs == attention + router + gate_up + down + head == 119_808
    assert report.uncounted_ops == ()


class _Grouped(nn.Module):
    def __init__(self, a: torch.Tensor, b: torch.Tensor, offs: torch.Tensor | None) -> None:
        super().__init__()
        self.b, self.offs = nn.Parameter(b), offs

    def forward(self, a):
        return torch._grouped_mm(a, self.b, self.offs)


@pytest.mark.parametrize("a_shape, b_shape, offs, macs", [
    ((16, 8), (4, 8, 12), [3, 7, 12, 16], 16 * 8 * 12),     # tokens sorted by expert: M·K·N
    ((4, 5, 8), (4, 8, 12), None, 4 * 5 * 8 * 12),          # batched: G·M·K·N
    ((4, 5, 8), (8, 12), [2, 4, 8, 12], 5 * 8 * 12),        # offsets split N: Σ M·K·N_g
    ((5, 16), (16, 12), [2, 4, 8, 16], 5 * 16 * 12),        # offsets split K: Σ M·K_g·N
])
def test_grouped_mm_layouts(a_shape, b_shape, offs, macs):
    offs_t = torch.tensor(offs, dtype=torch.int32) if offs else None
    model = _Grouped(torch.randn(a_shape), torch.randn(b_shape), offs_t)
    with torch.no_grad():
        report = mevreport.analyze(model, torch.randn(a_shape), runs=0, stats=False)
    node = next(n for n in report.nodes if n.op == "aten._grouped_mm.default")
    assert (node.macs, node.flops) == (macs, 2 * macs)


def test_scaled_matmuls():
    """float8 kernels (CUDA only): shapes as they are captured, scales are not MACs."""
    f8, f32 = "float8_e4m3fn", "float32"
    a, b, s = TensorMeta((64, 32), f8), TensorMeta((32, 48), f8), TensorMeta((), f32)
    out = (TensorMeta((64, 48), "bfloat16"),)
    assert cost_of(_node("aten._scaled_mm.default", a, b, s, s, outputs=out)).macs == 64 * 32 * 48
    with_bias = cost_of(_node("aten._scaled_mm.default", a, b, s, s, TensorMeta((48,), f32), outputs=out))
    assert (with_bias.macs, with_bias.flops) == (64 * 32 * 48, 2 * 64 * 32 * 48 + 64 * 48)
    grouped = cost_of(_node("aten._scaled_grouped_mm.default", a, TensorMeta((4, 32, 48), f8), s, s,
                            TensorMeta((4,), "int32"), outputs=out))
    assert grouped.macs == 64 * 32 * 48


# --- fused fast paths and CPU kernels ------------------------------------------------------------

def test_transformer_encoder_fast_path():
    """nn.TransformerEncoder in eval mode under no_grad runs aten._transformer_encoder_layer_fwd (0 MACs before)."""
    b, l, e, heads, f, layers = 2, 5, 16, 4, 24, 2
    layer = nn.TransformerEncoderLayer(d_model=e, nhead=heads, dim_feedforward=f, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False).eval()
    report = mevreport.analyze(model, torch.randn(b, l, e), runs=0, stats=False)
    t = b * l
    per_layer = t * (3 * e * e + e * e + e * f + f * e) + b * l * l * e + b * l * l * e
    flops = 2 * per_layer + t * (3 * e + e + f + e) + 5 * b * heads * l * l + 2 * 7 * t * e + t * f + 2 * t * e
    fused = [n for n in report.nodes if n.op == "aten._transformer_encoder_layer_fwd.default"]
    assert len(fused) == layers and {(n.macs, n.flops) for n in fused} == {(per_layer, flops)}
    # the same layers without the fast path (train mode: the unfused ops) have the same MACs
    slow = mevreport.analyze(model.train(), torch.randn(b, l, e), runs=0, stats=False)
    assert slow.totals.macs == report.totals.macs == layers * per_layer


def test_transformer_decoder_fast_path():
    """nn.TransformerDecoder in eval mode under no_grad: its self-attention takes the MultiheadAttention
    fast path (aten._native_multi_head_attention; torch has no decoder-layer kernel), its
    cross-attention the unfused ops; the same MACs as the train-mode decoder."""
    b, l, s, e, heads, f, layers = 2, 5, 6, 16, 4, 24, 2
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(e, heads, f, batch_first=True), layers)

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dec = dec

        def forward(self, tgt, memory):
            return self.dec(tgt, memory)

    args = (torch.randn(b, l, e), torch.randn(b, s, e))
    with torch.no_grad():
        report = mevreport.analyze(Wrap().eval(), args, runs=0, stats=False)
    t = b * l
    self_attn = t * 3 * e * e + t * e * e + b * l * l * e + b * l * l * e   # in-proj, out-proj, Q·Kᵀ, A·V
    cross = t * e * e + b * s * 2 * e * e + t * e * e + 2 * b * l * s * e  # q from tgt, k/v from memory
    ffn = t * e * f + t * f * e
    fast = [n for n in report.nodes if n.op == "aten._native_multi_head_attention.default"]
    assert len(fast) == layers and {n.macs for n in fast} == {self_attn}
    assert report.uncounted_ops == ()
    assert report.totals.macs == layers * (self_attn + cross + ffn) == 65_408
    slow = mevreport.analyze(Wrap().train(), args, runs=0, stats=False)
    assert not [n for n in slow.nodes if n.op == "aten._native_multi_head_attention.default"]
    assert slow.totals.macs == report.totals.macs


class _SlowConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)

    def forward(self, x):
        return torch.ops.aten._slow_conv2d_forward(x, self.conv.weight, [3, 3], self.conv.bias, [2, 2], [1, 1])


def test_slow_conv2d_forward_and_histc():
    """The CPU fallback convolution kernel (flop_counter reads its padding as `transposed`: 4x high here)."""
    with torch.no_grad():
        report = mevreport.analyze(_SlowConv(), torch.randn(1, 3, 9, 9), runs=0, stats=False)
    node = next(n for n in report.nodes if n.op.startswith("aten._slow_conv2d_forward"))
    out = 1 * 4 * 5 * 5
    assert (node.macs, node.flops) == (out * 3 * 9, 2 * out * 3 * 9 + out)
    histc = cost_of(_node("aten.histc.default", TensorMeta((10, 10), "float32"), 20,
                          outputs=(TensorMeta((20,), "float32"),)))
    assert (histc.macs, histc.flops) == (0, 100)


@pytest.mark.parametrize("mask", [(True, True, True), (False, True, True), (True, False, False)])
def test_convolution_backward_by_flop_counters_formula(mask):
    """Grad input and grad weight each cost the forward's MACs; the bias grad none. Checked by hand and
    against FlopCounterMode on the real backward."""
    f32 = "float32"
    n, cin, cout, hw, k = 2, 8, 4, 6, 3
    forward = n * cout * hw * hw * cin * k * k
    g, x, w = TensorMeta((n, cout, hw, hw), f32), TensorMeta((n, cin, hw, hw), f32), TensorMeta((cout, cin, k, k), f32)
    outs = tuple(o for o, m in zip((x, w, TensorMeta((cout,), f32)), mask) if m)
    node = _node("aten.convolution_backward.default", g, x, w, (cout,), (1, 1), (1, 1), (1, 1), False, (0, 0), 1,
                 mask, outputs=outs)
    expected = forward * (int(mask[0]) + int(mask[1]))
    assert (cost_of(node).macs, cost_of(node).flops) == (expected, 2 * expected)
    xt = torch.randn(n, cin, hw, hw, requires_grad=mask[0])
    conv = nn.Conv2d(cin, cout, k, padding=1).requires_grad_(mask[1])
    y = conv(xt)
    if mask[0] or mask[1]:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            y.sum().backward()
        assert counter.get_total_flops() == 2 * expected


# --- export capture: einsum and LSTM equal to dispatch --------------------------------------------

class _Einsum3(nn.Module):
    def forward(self, a, b, c):
        return torch.einsum("bij,bjk,bkl->bil", a, b, c)


def test_three_operand_einsum_equal_between_capture_methods():
    b, i, j, k, l = 2, 3, 4, 5, 6
    args = (torch.randn(b, i, j), torch.randn(b, j, k), torch.randn(b, k, l))
    expected = b * i * j * k + b * i * k * l  # (a·b) then (ab·c), as torch contracts left to right
    dispatch = mevreport.analyze(_Einsum3(), args, runs=0, stats=False, capture="dispatch")
    export = mevreport.analyze(_Einsum3(), args, runs=0, stats=False, capture="export")
    assert dispatch.totals.macs == export.totals.macs == expected == 300  # one product over all indices: 720
    assert export.totals.flops == 2 * expected


def test_einsum_sums_out_private_indices_first():
    """An index only one operand has (and the output lacks) is summed before the contraction: no MACs."""
    op = _node("aten.einsum.default", "ij,jk->k", (TensorMeta((3, 4), "float32"), TensorMeta((4, 5), "float32")),
               outputs=(TensorMeta((5,), "float32"),))
    assert cost_of(op).macs == 4 * 5


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_equal_between_capture_methods(bidirectional):
    t, batch, i, h, layers = 7, 3, 6, 5, 2
    lstm = nn.LSTM(i, h, num_layers=layers, bidirectional=bidirectional)
    dirs = 2 if bidirectional else 1
    expected = dirs * t * batch * 4 * h * ((i + h) + (dirs * h + h))
    dispatch = mevreport.analyze(lstm, torch.randn(t, batch, i), runs=0, stats=False, capture="dispatch")
    export = mevreport.analyze(lstm, torch.randn(t, batch, i), runs=0, stats=False, capture="export")
    assert macs_by_op(export) == {"aten.lstm.input": [expected]}
    assert dispatch.totals.macs == export.totals.macs == expected
    assert dispatch.totals.flops == export.totals.flops
