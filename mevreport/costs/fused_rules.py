"""Cost rules for fused and newer kernels: grouped (MoE) matmuls, scaled (float8) matmuls,
the ``nn.TransformerEncoderLayer`` fast path, the recurrent layers as export graphs keep
them, and the backward kernels ``torch.utils.flop_counter`` counts.

Where ``torch.utils.flop_counter`` has the right formula (backward of convolution and
of the attention kernels) its formula is called, through :func:`_flop_counter_cost`,
rather than copied; its FLOPs are 2·MACs of matmul work.
"""
from __future__ import annotations

from typing import Any

import torch

from ..graph import Node, TensorMeta
from .matmul_rules import SOFTMAX_FLOPS_PER_ELEMENT, _conv
from .registry import Cost, arg, out_numel, prod, register, tensor_args

LAYER_NORM_FLOPS_PER_ELEMENT = 7  # as the layer_norm rule with weight and bias: 5 + 2


def _grouped_macs(a: TensorMeta, b: TensorMeta) -> int:
    """MACs of a grouped matmul, for the four layouts ``_grouped_mm`` accepts.

    * a (M, K), b (G, K, N), offs splitting M: each row meets one group, M·K·N;
    * a (G, M, K), b (G, K, N): a batched matmul, G·M·K·N;
    * a (M, K), b (K, N), offs splitting K (output (G, M, N)): Σ_g M·K_g·N = M·K·N;
    * a (G, M, K), b (K, N), offs splitting N: Σ_g M·K·N_g = M·K·N.

    Rows (or columns) past ``offs[-1]`` are counted too: offsets are data, and
    MoE layers (transformers' ``grouped_mm`` experts) cover every routed row.
    """
    if len(a.shape) == 3 and len(b.shape) == 3:
        return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
    return prod(a.shape[-2:]) * b.shape[-1]


@register("aten._grouped_mm",
          formula="a (M,K)·b (G,K,N) or a (M,K)·b (K,N) or a (G,M,K)·b (K,N): MACs M·K·N; a (G,M,K)·b (G,K,N): "
                  "G·M·K·N (rows past offs[-1] included); FLOPs 2·MACs + numel(output) with bias")
def grouped_mm_cost(node: Node) -> Cost:
    a, b = tensor_args(node)[:2]
    macs = _grouped_macs(a, b)
    return Cost(macs, 2 * macs + (out_numel(node) if arg(node, 3, "bias") is not None else 0))


@register("aten._scaled_grouped_mm", "aten._scaled_grouped_mm_v2",
          formula="as aten._grouped_mm (the scales are not MACs)")
def scaled_grouped_mm_cost(node: Node) -> Cost:
    a, b = tensor_args(node)[:2]
    macs = _grouped_macs(a, b)
    bias = arg(node, 5 if node.op.startswith("aten._scaled_grouped_mm.") else 9, "bias")
    return Cost(macs, 2 * macs + (out_numel(node) if bias is not None else 0))


@register("aten._scaled_mm", "aten._scaled_mm_v2",
          formula="a (m,k)·b (k,n): MACs m·k·n; FLOPs 2·MACs + m·n with bias (the scales are not MACs)")
def scaled_mm_cost(node: Node) -> Cost:
    a, b = tensor_args(node)[:2]
    macs = a.shape[0] * a.shape[1] * b.shape[1]
    bias = arg(node, 4 if node.op.startswith("aten._scaled_mm.") else 8, "bias")
    return Cost(macs, 2 * macs + (out_numel(node) if bias is not None else 0))


@register("aten._slow_conv2d_forward", "aten.thnn_conv2d", "aten._conv_depthwise2d",
          formula="as aten.convolution (the CPU fallback kernels; bias is argument 3)")
def slow_conv2d_cost(node: Node) -> Cost:
    # torch.utils.flop_counter reads argument 6 of this op as `transposed`; here it is `padding`, so
    # it counts a stride-2 convolution as transposed (4x high): the rule is ours.
    x, w = tensor_args(node)[:2]
    return _conv(node, x, w, arg(node, 3, "bias") is not None, transposed=False)


@register("aten._transformer_encoder_layer_fwd",
          formula="src (B,L,E), F = rows(ffn_weight_1): MACs B·L·(3E² + E² + 2·E·F) + 2·B·L²·E; FLOPs 2·MACs + "
                  "bias adds B·L·(5E + F) + 5·B·H·L² (softmax) + 2·7·B·L·E (layer norms) + B·L·F (activation) "
                  "+ 2·B·L·E (residual adds)")
def transformer_encoder_layer_cost(node: Node) -> Cost:
    # The fused fast path of nn.TransformerEncoderLayer (eval mode, no grad): in-projection, both
    # attention products, out-projection, two layer norms and the feed-forward block in one op.
    src = tensor_args(node)[0]
    e = int(arg(node, 1, "embed_dim"))
    heads = int(arg(node, 2, "num_heads"))
    ffn = arg(node, 14, "ffn_weight_1")
    f = ffn.shape[0] if isinstance(ffn, TensorMeta) else 0
    l = src.shape[-2]
    b = prod(src.shape[:-2]) if len(src.shape) > 2 else 1
    tokens = b * l
    macs = tokens * (4 * e * e + 2 * e * f) + 2 * b * l * l * e
    flops = (2 * macs + tokens * (5 * e + f) + SOFTMAX_FLOPS_PER_ELEMENT * b * heads * l * l
             + 2 * LAYER_NORM_FLOPS_PER_ELEMENT * tokens * e + tokens * f + 2 * tokens * e)
    return Cost(macs, flops)


def _rnn_cost(node: Node, x: TensorMeta, weights: tuple, hidden: int, groups: int) -> Cost:
    """A whole recurrent layer stack: every weight matrix once per step (time × batch), as _cudnn_rnn."""
    ws = [w for w in weights if isinstance(w, TensorMeta)]
    steps = x.numel // x.shape[-1]
    matrices = [w for w in ws if len(w.shape) == 2]
    macs = steps * sum(w.numel for w in matrices)
    biases = steps * sum(w.numel for w in ws if len(w.shape) == 1)
    per_group = len(ws) // max(groups, 1)
    gate_rows = sum(ws[g * per_group].shape[0] for g in range(groups)) if per_group else 0
    return Cost(macs, 2 * macs + biases + steps * gate_rows + 3 * steps * hidden * groups)


@register("aten.lstm", "aten.gru", "aten.rnn_tanh", "aten.rnn_relu",
          formula="a whole RNN/LSTM/GRU as torch.export keeps it (.input, .data): as aten._cudnn_rnn")
def rnn_stack_cost(node: Node) -> Cost:
    packed = node.op.endswith(".data")
    x = node.args[0]
    params = node.args[3 if packed else 2]
    num_layers = int(node.args[5 if packed else 4])
    bidirectional = bool(node.args[8 if packed else 7])
    params = params if isinstance(params, tuple) else ()
    w_hh = next((w for w in params[1:2] if isinstance(w, TensorMeta)), None)
    hidden = w_hh.shape[1] if w_hh is not None else 0
    return _rnn_cost(node, x, params, hidden, num_layers * (2 if bidirectional else 1))


# --- backward kernels, by torch.utils.flop_counter's own formulas ---------------------------------

def _meta(v: Any) -> Any:
    """Captured arguments back as meta tensors (flop_counter reads shapes, and ``is_nested``)."""
    if isinstance(v, TensorMeta):
        return torch.empty(v.shape, dtype=getattr(torch, v.dtype, torch.float32), device="meta")
    if isinstance(v, tuple):
        return tuple(_meta(x) for x in v)
    return v


def _flop_counter_cost(node: Node, outputs: Any = None) -> Cost:
    from torch.utils.flop_counter import flop_registry

    packet = getattr(torch.ops.aten, node.op.split(".")[1])
    formula = flop_registry[packet]
    if outputs is None:
        outs = tuple(_meta(o) for o in node.outputs)
        outputs = outs[0] if len(outs) == 1 else outs
    flops = int(formula(*_meta(node.args), **{k: _meta(v) for k, v in node.kwargs}, out_val=outputs))
    return Cost(flops // 2, flops)


@register("aten.convolution_backward",
          formula="torch.utils.flop_counter's conv_backward_flop: the grad-input and grad-weight convolutions "
                  "that output_mask asks for; FLOPs 2·MACs")
def convolution_backward_cost(node: Node) -> Cost:
    # The outputs it did not compute (output_mask False) are None, not recorded: put them back in place.
    mask = arg(node, 10, "output_mask", (True, True, True))
    recorded = iter(_meta(o) for o in node.outputs)
    outputs = tuple(next(recorded, None) if m else None for m in mask)
    return _flop_counter_cost(node, outputs)


@register("aten._scaled_dot_product_efficient_attention_backward",
          "aten._scaled_dot_product_flash_attention_backward", "aten._scaled_dot_product_cudnn_attention_backward",
          "aten._flash_attention_backward", "aten._efficient_attention_backward",
          formula="torch.utils.flop_counter's sdpa_backward_flop: recomputed scores, grad of values, of the "
                  "probabilities, of queries and keys (4·B·H·L·S·E + B·H·L·S·Ev MACs); FLOPs 2·MACs")
def attention_backward_cost(node: Node) -> Cost:
    return _flop_counter_cost(node)
