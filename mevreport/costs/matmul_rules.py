"""Cost rules for matmul-like work: MACs, and FLOPs = 2·MACs + bias adds.

Formulas follow ``torch.utils.flop_counter`` where it is right (mm, addmm,
bmm, baddbmm, convolution) and cover what it misses: the CPU flash-attention
kernel, every fused SDPA kernel, the ``nn.MultiheadAttention`` fast path,
and ``aten.linear`` / ``conv*d`` / ``einsum`` as they appear in export graphs.
Attention counts Q·Kᵀ and A·V over the full L×S square; masks and causality
are ignored (DESIGN §3).
"""
from __future__ import annotations

import math

import torch

from ..graph import Node, TensorMeta
from . import formulas as F
from .registry import Cost, Symbols, arg, out_numel, out_shape, register, register_rule, tensor_args

MM = "a (m,k), b (k,n)"
BMM = "a (b,m,k), b (b,k,n)"


@register("aten.mm", formula=F.mm, where=MM)
def mm_cost(node: Node) -> Symbols:
    a, b = tensor_args(node)[:2]
    return {"m": a.shape[0], "k": a.shape[1], "n": b.shape[1]}


@register("aten.addmm", formula=F.addmm, where=MM + ", bias = 1")
def addmm_cost(node: Node) -> Symbols:
    _, a, b = tensor_args(node)[:3]
    return {"m": a.shape[0], "k": a.shape[1], "n": b.shape[1], "bias": True}


@register("aten._addmm_activation", formula=F.addmm_activation, where=MM + " (bias add and activation)")
def addmm_activation_cost(node: Node) -> Symbols:
    _, a, b = tensor_args(node)[:3]
    return {"m": a.shape[0], "k": a.shape[1], "n": b.shape[1]}


@register("aten.bmm", formula=F.bmm, where=BMM)
def bmm_cost(node: Node) -> Symbols:
    a, b = tensor_args(node)[:2]
    return {"b": a.shape[0], "m": a.shape[1], "k": a.shape[2], "n": b.shape[2]}


@register("aten.baddbmm", formula=F.baddbmm, where=BMM + " (bias add)")
def baddbmm_cost(node: Node) -> Symbols:
    _, a, b = tensor_args(node)[:3]
    return {"b": a.shape[0], "m": a.shape[1], "k": a.shape[2], "n": b.shape[2]}


@register("aten.mv", formula=F.mv, where="a (m,n), bias = 0")
def mv_cost(node: Node) -> Symbols:
    m, n = tensor_args(node)[0].shape
    return {"m": m, "n": n, "bias": False}


@register("aten.addmv", formula=F.mv, where="a (m,n), bias = 1")
def addmv_cost(node: Node) -> Symbols:
    m, n = tensor_args(node)[1].shape
    return {"m": m, "n": n, "bias": True}


@register("aten.dot", "aten.vdot", formula=F.mv, where="m = 1, n = numel(a), bias = 0")
def dot_cost(node: Node) -> Symbols:
    return {"m": 1, "n": tensor_args(node)[0].numel, "bias": False}


@register("aten.matmul", formula=F.matmul,
          where="y = numel(output) (1-d·1-d: 1), k the contracted size, bias = 0")
def matmul_cost(node: Node) -> Symbols:
    a, b = tensor_args(node)[:2]
    y = 1 if len(a.shape) == 1 and len(b.shape) == 1 else out_numel(node)
    return {"y": y, "k": a.shape[-1], "bias": False}


@register("aten.linear", formula=F.matmul, where="y = numel(output), k = in_features, bias = 1 with bias")
def linear_cost(node: Node) -> Symbols:
    # out = x @ wᵀ: numel(output)·in_features = numel(x)·out_features (w 1-d: numel(x))
    x = tensor_args(node)[0]
    return {"y": out_numel(node), "k": x.shape[-1], "bias": arg(node, 2, "bias") is not None}


CONV = ("x input, w weight, y output, batched (an unbatched input gets N = 1), "
        "transposed and bias 0/1")


def conv_symbols(x: TensorMeta, w: TensorMeta, y: tuple[int, ...], transposed: bool, bias: bool) -> Symbols:
    """The conv formula's symbols; an unbatched input (rank of the weight less one) gets N = 1."""
    xs, ys = tuple(x.shape), tuple(y)
    if len(xs) == len(w.shape) - 1:
        xs, ys = (1, *xs), (1, *ys)
    return {"x": xs, "w": tuple(w.shape), "y": ys, "transposed": transposed, "bias": bias}


@register("aten.convolution", "aten._convolution", "aten.convolution_overrideable",
          "aten.cudnn_convolution", "aten.cudnn_convolution_transpose", "aten.mkldnn_convolution",
          "aten.conv1d", "aten.conv2d", "aten.conv3d",
          "aten.conv_transpose1d", "aten.conv_transpose2d", "aten.conv_transpose3d",
          formula=F.conv, where=CONV)
def convolution_cost(node: Node) -> Symbols:
    ts = tensor_args(node)
    x, w = ts[0], ts[1]
    is_convnd = node.op.split(".")[1].startswith(("conv1d", "conv2d", "conv3d", "conv_transpose"))
    transposed = "transpose" in node.op or (not is_convnd and bool(arg(node, 6, "transposed", False)))
    bias = arg(node, 2, "bias") is not None and not node.op.startswith("aten.cudnn")
    return conv_symbols(x, w, out_shape(node), transposed, bias)


SDPA = "q (…,H,L,E), k (…,Hk,S,E), v (…,Hk,S,Ev), B = prod(…)"


@register("aten._scaled_dot_product_flash_attention_for_cpu", "aten._scaled_dot_product_flash_attention",
          "aten._scaled_dot_product_efficient_attention", "aten._scaled_dot_product_cudnn_attention",
          "aten._scaled_dot_product_fused_attention_overrideable", "aten.scaled_dot_product_attention",
          "aten._scaled_dot_product_attention_math", "aten._scaled_dot_product_attention_math_for_mps",
          formula=F.attention, where=SDPA + " (H from q: grouped-query attention scores every query head)")
def sdpa_cost(node: Node) -> Symbols:
    q, k, v = tensor_args(node)[:3]
    *batch, h, l, e = q.shape
    return {"b": math.prod(batch), "h": h, "l": l, "s": k.shape[-2], "e": e, "ev": v.shape[-1]}


def _bshd_attention(node: Node, q: TensorMeta, k: TensorMeta, v: TensorMeta, max_k_index: int) -> Symbols:
    """Kernels that take (B, L, H, E); packed variable-length batches are (total_L, H, E)."""
    if len(q.shape) == 3:  # varlen: each query attends to at most max_k keys (an upper bound)
        total_l, h, e = q.shape
        s = int(arg(node, max_k_index, "max_k", k.shape[0]) or k.shape[0])
        return {"b": 1, "h": h, "l": total_l, "s": s, "e": e, "ev": v.shape[-1]}
    b, l, h, e = q.shape
    return {"b": b, "h": h, "l": l, "s": k.shape[1], "e": e, "ev": v.shape[-1]}


BSHD = "q (B,L,H,E), k (B,S,Hk,E), v (B,S,Hk,Ev); packed varlen q (ΣL,H,E): B = 1, L = ΣL, S = max_k (upper bound)"


@register("aten._flash_attention_forward", formula=F.attention, where=BSHD)
def flash_forward_cost(node: Node) -> Symbols:
    q, k, v = tensor_args(node)[:3]
    return _bshd_attention(node, q, k, v, 6)


@register("aten._efficient_attention_forward", formula=F.attention, where=BSHD.replace("max_k", "max_seqlen_k"))
def efficient_forward_cost(node: Node) -> Symbols:
    q, k, v = tensor_args(node)[:3]
    return _bshd_attention(node, q, k, v, 7)


@register("aten._flash_attention_forward_no_dropout_inplace", formula=F.attention,
          where=BSHD + " (the first argument is the output buffer)")
def flash_inplace_cost(node: Node) -> Symbols:
    _, q, k, v = tensor_args(node)[:4]
    return _bshd_attention(node, q, k, v, 7)


@register("aten._native_multi_head_attention", formula=F.native_mha,
          where="query (…,L,E), key (…,S,E), B = prod(…), heads = num_head")
def native_mha_cost(node: Node) -> Symbols:
    # The fused fast path of nn.MultiheadAttention (eval, no_grad): it does the
    # packed in-projection, both attention products and the out-projection.
    q, k = tensor_args(node)[:2]
    lead = q.shape[:-2]
    return {"b": math.prod(lead) if lead else 1, "l": q.shape[-2], "s": k.shape[-2], "e": q.shape[-1],
            "heads": int(arg(node, 4, "num_head"))}


def _einsum_tokens(spec: str, rank: int) -> list[str]:
    """Index names of one operand; ellipsis dims become ``…0``, ``…1`` (right-aligned, as broadcasting)."""
    letters = spec.replace("...", "")
    n_ell = rank - len(letters)
    out: list[str] = []
    rest = spec
    while rest:
        if rest.startswith("..."):
            out.extend(f"…{i}" for i in reversed(range(n_ell)))
            rest = rest[3:]
        else:
            out.append(rest[0])
            rest = rest[1:]
    return out


def _pairwise_path(n: int, shapes: list[tuple[int, ...]], equation: str) -> list[tuple[int, int]]:
    """The order torch.einsum contracts its operands in: opt_einsum's path when torch uses it,
    else left to right."""
    if n > 2 and torch.backends.opt_einsum.is_available() and torch.backends.opt_einsum.enabled:
        import opt_einsum

        strategy = torch.backends.opt_einsum.strategy or "auto"
        path, _ = opt_einsum.contract_path(equation, *shapes, shapes=True, optimize=strategy)
        return [tuple(p) for p in path]
    return [(0, 1)] * (n - 1)


@register_rule("aten.einsum", prose="contracted pairwise as torch executes it (left to right, or opt_einsum's "
                                 "path when enabled): each pair costs the product of the sizes of its "
                                 "indices, less those summed out of one operand alone; one operand: "
                                 "numel(input) adds if it reduces; FLOPs 2·MACs")
def einsum_cost(node: Node) -> Cost:
    equation = str(node.args[0]).replace(" ", "")
    operands = tensor_args(node)
    if len(operands) == 1:
        reduces = operands[0].numel != out_numel(node)
        return Cost(0, operands[0].numel if reduces else 0)
    path = _pairwise_path(len(operands), [t.shape for t in operands], equation)
    macs = einsum_macs(equation, operands, len(node.outputs[0].shape) if node.outputs else 0, path)
    return Cost(macs, 2 * macs)


def einsum_macs(equation: str, operands: list[TensorMeta], out_rank: int,
                path: list[tuple[int, int]] | None = None) -> int:
    """MACs of an einsum of two or more operands contracted pairwise along ``path`` (default left to right)."""
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    terms = [_einsum_tokens(spec, len(t.shape)) for spec, t in zip(lhs.split(","), operands)]
    sizes: dict[str, int] = {}
    for toks, t in zip(terms, operands):
        for tok, d in zip(toks, t.shape):
            sizes[tok] = max(sizes.get(tok, 1), int(d))
    if arrow:
        out = set(_einsum_tokens(rhs, out_rank))
    else:  # implicit output: ellipsis dims and the letters used once
        flat = [tok for toks in terms for tok in toks]
        out = {tok for tok in flat if tok.startswith("…") or flat.count(tok) == 1}
    sets = [set(toks) for toks in terms]
    macs = 0
    for i, j in path or [(0, 1)] * (len(sets) - 1):
        a, b = sets[i], sets[j]
        rest = [s for k, s in enumerate(sets) if k not in (i, j)]
        needed = out.union(*rest)
        # an index only one side has and nothing later needs is summed out of that side first (no MACs)
        used = (a & b) | ((a | b) & needed)
        macs += math.prod(sizes[tok] for tok in used)
        sets = rest + [(a | b) & needed]
    return macs


@register("aten.mkldnn_rnn_layer", formula=F.rnn_layer,
          where="one RNN/LSTM/GRU layer: steps = T·B, gates = rows(w_ih) (G·H), i input size, h hidden size, "
                "bias = has_biases")
def mkldnn_rnn_layer_cost(node: Node) -> Symbols:
    # The CPU kernel behind nn.LSTM (and the other RNNs when oneDNN takes them).
    x, w_ih, w_hh = tensor_args(node)[:3]
    gates, i = w_ih.shape
    return {"steps": x.numel // x.shape[-1],  # T·B, whatever the batch_first layout
            "gates": gates, "i": i, "h": w_hh.shape[1], "bias": bool(arg(node, 12, "has_biases", True))}


RNN_STACK = ("a whole RNN stack, groups = layers × directions, steps = T·B (or the packed sum of batch sizes): "
             "weights = Σ numel(weight matrices) (w_ih, w_hh, any projection), biases = Σ numel(biases), "
             "gate_rows = Σ rows(w_ih) over groups, hidden the hidden size")


def rnn_stack_symbols(x: TensorMeta, weights: tuple, hidden: int, groups: int) -> Symbols:
    """The rnn_stack formula's symbols: every weight matrix is applied once per step (time × batch)."""
    ws = [w for w in weights if isinstance(w, TensorMeta)]
    per_group = len(ws) // max(groups, 1)
    return {"steps": x.numel // x.shape[-1],
            "weights": sum(w.numel for w in ws if len(w.shape) == 2),
            "biases": sum(w.numel for w in ws if len(w.shape) == 1),
            "gate_rows": sum(ws[g * per_group].shape[0] for g in range(groups)) if per_group else 0,
            "hidden": hidden, "groups": groups}


@register("aten._cudnn_rnn", formula=F.rnn_stack, where=RNN_STACK)
def cudnn_rnn_cost(node: Node) -> Symbols:
    # CUDA's kernel behind nn.LSTM/GRU/RNN.
    x = node.args[0]
    weights = node.args[1] if isinstance(node.args[1], tuple) else ()
    groups = int(arg(node, 9, "num_layers", 1)) * (2 if bool(arg(node, 13, "bidirectional", False)) else 1)
    return rnn_stack_symbols(x, weights, int(arg(node, 7, "hidden_size", 0)), groups)
