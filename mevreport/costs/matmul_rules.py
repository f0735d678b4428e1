"""Cost rules for matmul-like work: MACs, and FLOPs = 2·MACs + bias adds.

Formulas follow ``torch.utils.flop_counter`` where it is right (mm, addmm,
bmm, baddbmm, convolution) and cover what it misses: the CPU flash-attention
kernel, every fused SDPA kernel, the ``nn.MultiheadAttention`` fast path,
and ``aten.linear`` / ``conv*d`` / ``einsum`` as they appear in export graphs.
Attention counts Q·Kᵀ and A·V over the full L×S square; masks and causality
are ignored (DESIGN §3).
"""
from __future__ import annotations

import torch

from ..graph import Node, TensorMeta
from .registry import Cost, arg, out_numel, prod, register, tensor_args

SOFTMAX_FLOPS_PER_ELEMENT = 5  # max, subtract, exp, sum, divide


def _mm(m: int, k: int, n: int, bias: bool) -> Cost:
    macs = m * k * n
    return Cost(macs, 2 * macs + (m * n if bias else 0))


@register("aten.mm", formula="MACs m·k·n; FLOPs 2·MACs")
def mm_cost(node: Node) -> Cost:
    a, b = tensor_args(node)[:2]
    return _mm(a.shape[0], a.shape[1], b.shape[1], bias=False)


@register("aten.addmm", formula="MACs m·k·n; FLOPs 2·MACs + m·n (bias add)")
def addmm_cost(node: Node) -> Cost:
    _, a, b = tensor_args(node)[:3]
    return _mm(a.shape[0], a.shape[1], b.shape[1], bias=True)


@register("aten._addmm_activation", formula="MACs m·k·n; FLOPs 2·MACs + m·n (bias add) + m·n (activation)")
def addmm_activation_cost(node: Node) -> Cost:
    c = addmm_cost(node)
    return Cost(c.macs, c.flops + out_numel(node))


@register("aten.bmm", formula="MACs b·m·k·n; FLOPs 2·MACs")
def bmm_cost(node: Node) -> Cost:
    a, b = tensor_args(node)[:2]
    macs = a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
    return Cost(macs, 2 * macs)


@register("aten.baddbmm", formula="MACs b·m·k·n; FLOPs 2·MACs + b·m·n (bias add)")
def baddbmm_cost(node: Node) -> Cost:
    _, a, b = tensor_args(node)[:3]
    macs = a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
    return Cost(macs, 2 * macs + out_numel(node))


@register("aten.mv", formula="MACs m·n; FLOPs 2·MACs")
def mv_cost(node: Node) -> Cost:
    a = tensor_args(node)[0]
    return Cost(prod(a.shape), 2 * prod(a.shape))


@register("aten.addmv", formula="MACs m·n; FLOPs 2·MACs + m")
def addmv_cost(node: Node) -> Cost:
    _, a = tensor_args(node)[:2]
    return Cost(prod(a.shape), 2 * prod(a.shape) + a.shape[0])


@register("aten.dot", "aten.vdot", formula="MACs n; FLOPs 2·n")
def dot_cost(node: Node) -> Cost:
    n = tensor_args(node)[0].numel
    return Cost(n, 2 * n)


@register("aten.matmul", formula="MACs numel(output)·k (k the contracted size; 1-d·1-d: k); FLOPs 2·MACs")
def matmul_cost(node: Node) -> Cost:
    # Every output element of a (broadcast, batched) matrix product is one
    # length-k dot product, whatever the ranks of the operands.
    a, b = tensor_args(node)[:2]
    k = a.shape[-1]
    macs = k if len(a.shape) == 1 and len(b.shape) == 1 else out_numel(node) * k
    return Cost(macs, 2 * macs)


@register("aten.linear", formula="MACs numel(input)·out_features; FLOPs 2·MACs + numel(output) with bias")
def linear_cost(node: Node) -> Cost:
    ts = tensor_args(node)
    x, w = ts[0], ts[1]
    macs = x.numel * w.shape[0] if len(w.shape) == 2 else x.numel
    bias = arg(node, 2, "bias") is not None
    return Cost(macs, 2 * macs + (out_numel(node) if bias else 0))


def _conv(node: Node, x: TensorMeta, w: TensorMeta, bias: bool, transposed: bool) -> Cost:
    # Each output (or, transposed, each input) element gathers weight.shape[1]·prod(kernel)
    # products: weight is (Cout, Cin/groups, k…) or, transposed, (Cin, Cout/groups, k…).
    per = prod(w.shape[1:])
    macs = (x.numel if transposed else out_numel(node)) * per
    return Cost(macs, 2 * macs + (out_numel(node) if bias else 0))


@register("aten.convolution", "aten._convolution", "aten.convolution_overrideable",
          "aten.cudnn_convolution", "aten.cudnn_convolution_transpose", "aten.mkldnn_convolution",
          formula="MACs numel(output)·(Cin/groups)·prod(kernel) (transposed: numel(input)·(Cout/groups)·prod(kernel)); "
                  "FLOPs 2·MACs + numel(output) with bias")
def convolution_cost(node: Node) -> Cost:
    ts = tensor_args(node)
    x, w = ts[0], ts[1]
    transposed = "transpose" in node.op or bool(arg(node, 6, "transposed", False))
    bias = arg(node, 2, "bias") is not None
    return _conv(node, x, w, bias and not node.op.startswith("aten.cudnn"), transposed)


@register("aten.conv1d", "aten.conv2d", "aten.conv3d",
          "aten.conv_transpose1d", "aten.conv_transpose2d", "aten.conv_transpose3d",
          formula="as aten.convolution")
def convnd_cost(node: Node) -> Cost:
    ts = tensor_args(node)
    bias = arg(node, 2, "bias") is not None
    return _conv(node, ts[0], ts[1], bias, "transpose" in node.op)


def _attention(b: int, h: int, l: int, s: int, e: int, ev: int) -> Cost:
    macs = b * h * l * s * (e + ev)
    return Cost(macs, 2 * macs + SOFTMAX_FLOPS_PER_ELEMENT * b * h * l * s)


@register("aten._scaled_dot_product_flash_attention_for_cpu", "aten._scaled_dot_product_flash_attention",
          "aten._scaled_dot_product_efficient_attention", "aten._scaled_dot_product_cudnn_attention",
          "aten._scaled_dot_product_fused_attention_overrideable", "aten.scaled_dot_product_attention",
          "aten._scaled_dot_product_attention_math", "aten._scaled_dot_product_attention_math_for_mps",
          formula="q (…,H,L,E), k (…,Hk,S,E), v (…,Hk,S,Ev): MACs B·H·L·S·(E+Ev); "
                  "FLOPs 2·MACs + 5·B·H·L·S (softmax)")
def sdpa_cost(node: Node) -> Cost:
    # H comes from q: grouped-query attention (Hk < H) still scores every query head.
    q, k, v = tensor_args(node)[:3]
    *batch, h, l, e = q.shape
    return _attention(prod(batch), h, l, k.shape[-2], e, v.shape[-1])


def _bshd_attention(node: Node, q: TensorMeta, k: TensorMeta, v: TensorMeta, max_k_index: int) -> Cost:
    """Kernels that take (B, L, H, E); packed variable-length batches are (total_L, H, E)."""
    if len(q.shape) == 3:  # varlen: each query attends to at most max_k keys (an upper bound)
        total_l, h, e = q.shape
        s = int(arg(node, max_k_index, "max_k", k.shape[0]) or k.shape[0])
        return _attention(1, h, total_l, s, e, v.shape[-1])
    b, l, h, e = q.shape
    return _attention(b, h, l, k.shape[1], e, v.shape[-1])


@register("aten._flash_attention_forward",
          formula="q (B,L,H,E), k (B,S,Hk,E), v (B,S,Hk,Ev): MACs B·H·L·S·(E+Ev); FLOPs 2·MACs + 5·B·H·L·S; "
                  "packed varlen q (ΣL,H,E): S = max_k (upper bound)")
def flash_forward_cost(node: Node) -> Cost:
    q, k, v = tensor_args(node)[:3]
    return _bshd_attention(node, q, k, v, 6)


@register("aten._efficient_attention_forward", formula="as aten._flash_attention_forward (S = max_seqlen_k when packed)")
def efficient_forward_cost(node: Node) -> Cost:
    q, k, v = tensor_args(node)[:3]
    return _bshd_attention(node, q, k, v, 7)


@register("aten._flash_attention_forward_no_dropout_inplace",
          formula="as aten._flash_attention_forward (the first argument is the output buffer)")
def flash_inplace_cost(node: Node) -> Cost:
    _, q, k, v = tensor_args(node)[:4]
    return _bshd_attention(node, q, k, v, 7)


@register("aten._native_multi_head_attention",
          formula="in-projections B·(L+2S)·E², attention 2·B·L·S·E, out-projection B·L·E²; "
                  "FLOPs 2·MACs + bias adds + 5·B·heads·L·S (softmax)")
def native_mha_cost(node: Node) -> Cost:
    # The fused fast path of nn.MultiheadAttention (eval, no_grad): it does the
    # packed in-projection, both attention products and the out-projection.
    q, k = tensor_args(node)[:2]
    heads = int(arg(node, 4, "num_head"))
    e = q.shape[-1]
    lead = q.shape[:-2]
    b = prod(lead) if lead else 1
    l, s = q.shape[-2], k.shape[-2]
    proj = b * (l + 2 * s) * e * e + b * l * e * e
    attn = 2 * b * l * s * e
    macs = proj + attn
    bias_adds = b * (l + 2 * s) * e + b * l * e
    return Cost(macs, 2 * macs + bias_adds + SOFTMAX_FLOPS_PER_ELEMENT * b * heads * l * s)


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


@register("aten.einsum", formula="contracted pairwise as torch executes it (left to right, or opt_einsum's "
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
        macs += prod([sizes[tok] for tok in used])
        sets = rest + [(a | b) & needed]
    return macs


@register("aten.mkldnn_rnn_layer",
          formula="one RNN/LSTM/GRU layer, T·B steps of G·H gates (G = rows(w_ih)/H): "
                  "MACs T·B·G·H·(I+H); FLOPs 2·MACs + 2·T·B·G·H (biases) + T·B·G·H (gate activations) "
                  "+ 3·T·B·H (state update)")
def mkldnn_rnn_layer_cost(node: Node) -> Cost:
    # The CPU kernel behind nn.LSTM (and the other RNNs when oneDNN takes them).
    x, w_ih, w_hh = tensor_args(node)[:3]
    steps = x.numel // x.shape[-1]  # T·B, whatever the batch_first layout
    gates, i = w_ih.shape
    h = w_hh.shape[1]
    macs = steps * gates * (i + h)
    biases = 2 * steps * gates if bool(arg(node, 12, "has_biases", True)) else 0
    return Cost(macs, 2 * macs + biases + steps * gates + 3 * steps * h)


@register("aten._cudnn_rnn",
          formula="a whole cuDNN RNN (all layers and directions), T·B steps: MACs T·B·Σ numel(weight "
                  "matrices) (w_ih, w_hh and any projection); FLOPs 2·MACs + T·B·Σ numel(biases) + per layer "
                  "and direction T·B·G·H (gate activations) + 3·T·B·H (state update), as for mkldnn_rnn_layer")
def cudnn_rnn_cost(node: Node) -> Cost:
    # CUDA's kernel behind nn.LSTM/GRU/RNN: every weight matrix is applied once per step (time × batch).
    x = node.args[0]
    weights = [w for w in node.args[1] if isinstance(w, TensorMeta)] if isinstance(node.args[1], tuple) else []
    steps = x.numel // x.shape[-1]  # T·B (or the packed sum of batch sizes)
    hidden = int(arg(node, 7, "hidden_size", 0))
    groups = int(arg(node, 9, "num_layers", 1)) * (2 if bool(arg(node, 13, "bidirectional", False)) else 1)
    per_group = len(weights) // max(groups, 1)
    matrices = [w for w in weights if len(w.shape) == 2]
    macs = steps * sum(w.numel for w in matrices)
    biases = steps * sum(w.numel for w in weights if len(w.shape) == 1)
    gate_rows = sum(weights[g * per_group].shape[0] for g in range(groups)) if per_group else 0
    return Cost(macs, 2 * macs + biases + steps * gate_rows + 3 * steps * hidden * groups)
