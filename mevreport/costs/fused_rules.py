"""Cost rules for fused and newer kernels: grouped (MoE) matmuls, scaled (float8) matmuls,
the ``nn.TransformerEncoderLayer`` fast path, the recurrent layers as export graphs keep
them, and the backward kernels ``torch.utils.flop_counter`` counts.

Where ``torch.utils.flop_counter`` has the right formula (backward of convolution and
of the attention kernels) its formula is called, through :func:`_flop_counter_cost`,
rather than copied; its FLOPs are 2·MACs of matmul work.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ..graph import Node, TensorMeta
from . import formulas as F
from .matmul_rules import CONV, RNN_STACK, conv_symbols, rnn_stack_symbols
from .registry import Cost, Symbols, arg, out_numel, out_shape, register, register_rule, tensor_args


def _grouped_symbols(a: TensorMeta, b: TensorMeta, y: int, bias: bool) -> Symbols:
    """Symbols of a grouped matmul, for the four layouts ``_grouped_mm`` accepts.

    * a (M, K), b (G, K, N), offs splitting M: each row meets one group, M·K·N;
    * a (G, M, K), b (G, K, N): a batched matmul, G·M·K·N;
    * a (M, K), b (K, N), offs splitting K (output (G, M, N)): Σ_g M·K_g·N = M·K·N;
    * a (G, M, K), b (K, N), offs splitting N: Σ_g M·K·N_g = M·K·N.

    Rows (or columns) past ``offs[-1]`` are counted too: offsets are data, and
    MoE layers (transformers' ``grouped_mm`` experts) cover every routed row.
    """
    g = a.shape[0] if len(a.shape) == 3 and len(b.shape) == 3 else 1
    m, k = a.shape[-2:]
    return {"g": g, "m": m, "k": k, "n": b.shape[-1], "y": y, "bias": bias}


GROUPED = ("a (M,K)·b (G,K,N), a (M,K)·b (K,N) or a (G,M,K)·b (K,N): g = 1; a (G,M,K)·b (G,K,N): g = G "
           "(rows past offs[-1] included); y = numel(output), bias 0/1")


@register("aten._grouped_mm", formula=F.grouped_mm, where=GROUPED)
def grouped_mm_cost(node: Node) -> Symbols:
    a, b = tensor_args(node)[:2]
    return _grouped_symbols(a, b, out_numel(node), arg(node, 3, "bias") is not None)


@register("aten._scaled_grouped_mm", "aten._scaled_grouped_mm_v2", formula=F.grouped_mm,
          where=GROUPED + " (the scales are not MACs)")
def scaled_grouped_mm_cost(node: Node) -> Symbols:
    a, b = tensor_args(node)[:2]
    bias = arg(node, 5 if node.op.startswith("aten._scaled_grouped_mm.") else 9, "bias")
    return _grouped_symbols(a, b, out_numel(node), bias is not None)


@register("aten._scaled_mm", "aten._scaled_mm_v2", formula=F.addmm,
          where="a (m,k), b (k,n), bias 0/1 (the scales are not MACs)")
def scaled_mm_cost(node: Node) -> Symbols:
    a, b = tensor_args(node)[:2]
    bias = arg(node, 4 if node.op.startswith("aten._scaled_mm.") else 8, "bias")
    return {"m": a.shape[0], "k": a.shape[1], "n": b.shape[1], "bias": bias is not None}


@register("aten._slow_conv2d_forward", "aten.thnn_conv2d", "aten._conv_depthwise2d", formula=F.conv,
          where=CONV + " (the CPU fallback kernels: never transposed, bias is argument 3)")
def slow_conv2d_cost(node: Node) -> Symbols:
    # torch.utils.flop_counter reads argument 6 of this op as `transposed`; here it is `padding`, so
    # its conv_flop counts a stride-2 convolution as transposed (4x high): we bind the shapes ourselves.
    x, w = tensor_args(node)[:2]
    return conv_symbols(x, w, out_shape(node), False, arg(node, 3, "bias") is not None)


@register("aten._transformer_encoder_layer_fwd", formula=F.transformer_encoder_layer,
          where="src (…,L,E), B = prod(…), F = rows(ffn_weight_1), heads = num_heads")
def transformer_encoder_layer_cost(node: Node) -> Symbols:
    # The fused fast path of nn.TransformerEncoderLayer (eval mode, no grad): in-projection, both
    # attention products, out-projection, two layer norms and the feed-forward block in one op.
    src = tensor_args(node)[0]
    ffn = arg(node, 14, "ffn_weight_1")
    return {"b": math.prod(src.shape[:-2]) if len(src.shape) > 2 else 1, "l": src.shape[-2],
            "e": int(arg(node, 1, "embed_dim")),
            "f": ffn.shape[0] if isinstance(ffn, TensorMeta) else 0,
            "heads": int(arg(node, 2, "num_heads"))}


@register("aten.lstm", "aten.gru", "aten.rnn_tanh", "aten.rnn_relu", formula=F.rnn_stack,
          where=RNN_STACK + " (as torch.export keeps them: .input, .data)")
def rnn_stack_cost(node: Node) -> Symbols:
    packed = node.op.endswith(".data")
    x = node.args[0]
    params = node.args[3 if packed else 2]
    num_layers = int(node.args[5 if packed else 4])
    bidirectional = bool(node.args[8 if packed else 7])
    params = params if isinstance(params, tuple) else ()
    w_hh = next((w for w in params[1:2] if isinstance(w, TensorMeta)), None)
    hidden = w_hh.shape[1] if w_hh is not None else 0
    return rnn_stack_symbols(x, params, hidden, num_layers * (2 if bidirectional else 1))


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


@register_rule("aten.convolution_backward",
               prose="torch.utils.flop_counter's conv_backward_flop: the grad-input and grad-weight convolutions "
                  "that output_mask asks for; FLOPs 2·MACs")
def convolution_backward_cost(node: Node) -> Cost:
    # The outputs it did not compute (output_mask False) are None, not recorded: put them back in place.
    mask = arg(node, 10, "output_mask", (True, True, True))
    recorded = iter(_meta(o) for o in node.outputs)
    outputs = tuple(next(recorded, None) if m else None for m in mask)
    return _flop_counter_cost(node, outputs)


@register_rule("aten._scaled_dot_product_efficient_attention_backward",
          "aten._scaled_dot_product_flash_attention_backward", "aten._scaled_dot_product_cudnn_attention_backward",
          "aten._flash_attention_backward", "aten._efficient_attention_backward",
          prose="torch.utils.flop_counter's sdpa_backward_flop: recomputed scores, grad of values, of the "
                  "probabilities, of queries and keys (4·B·H·L·S·E + B·H·L·S·Ev MACs); FLOPs 2·MACs")
def attention_backward_cost(node: Node) -> Cost:
    return _flop_counter_cost(node)
