"""Cost rules for ONNX ops, in the same registry as the aten rules.

A graph read from an ONNX file (:mod:`mevreport.onnx`) has nodes named
``onnx.<OpType>`` (default domain) or ``<domain with '_' for '.'>.<OpType>``
(``com_microsoft.Attention``).  Their ``args`` are the node's inputs in order
(a :class:`TensorMeta` each, ``None`` for an omitted optional input) and their
``kwargs`` the node's attributes as plain values.

The formulas are the torch-side ones (:mod:`.matmul_rules`,
:mod:`.pointwise_rules`) applied to what each ONNX op computes, so that a
model and its ONNX export get the same MACs: Conv is ``aten.convolution``,
Gemm is ``aten.addmm``, MatMul is ``aten.matmul``, the attention ops are
Q·Kᵀ + A·V over the full square.  A tensor whose shape could not be inferred
(a dimension of -1) makes its node uncounted rather than wrong: the rule
returns ``None``.
"""
from __future__ import annotations

import math
from collections.abc import Callable

from ..graph import Node, TensorMeta
from . import formulas as F
from .formulas import Formula
from .matmul_rules import CONV, einsum_macs
from .registry import Cost, Symbols, register, register_rule

OnnxBinder = Callable[[Node], Symbols]


def _inp(node: Node, i: int) -> TensorMeta | None:
    v = node.args[i] if i < len(node.args) else None
    return v if isinstance(v, TensorMeta) else None


def _known(*ts: TensorMeta | None) -> bool:
    return all(t is not None and all(d >= 0 for d in t.shape) for t in ts)


def _out(node: Node) -> TensorMeta | None:
    return node.outputs[0] if node.outputs else None


def _shaped(node: Node) -> bool:
    """Whether the inputs and first output have known dimensions (else the node is uncounted)."""
    return _known(*[t for t in node.args if isinstance(t, TensorMeta)], *node.outputs[:1])


def _reg(ops: str, formula: Formula, where: str = "", domain: str = "onnx") -> Callable[[OnnxBinder], OnnxBinder]:
    names = [f"{domain}.{op}" for op in ops.split()]

    def deco(bind: OnnxBinder) -> OnnxBinder:
        register(*names, formula=formula, where=where)(lambda node: bind(node) if _shaped(node) else None)
        return bind

    return deco


# --- matmul-like -------------------------------------------------------------

@_reg("Conv ConvInteger", F.conv, CONV + " (ConvInteger: no bias)")
def conv_cost(node: Node) -> Symbols:
    x, w, y = _inp(node, 0), _inp(node, 1), _out(node)
    assert x is not None and w is not None and y is not None
    bias = _inp(node, 2) is not None and node.op == "onnx.Conv"
    return {"x": tuple(x.shape), "w": tuple(w.shape), "y": tuple(y.shape), "transposed": False, "bias": bias}


@_reg("ConvTranspose", F.conv, CONV)
def conv_transpose_cost(node: Node) -> Symbols:
    x, w, y = _inp(node, 0), _inp(node, 1), _out(node)
    assert x is not None and w is not None and y is not None
    return {"x": tuple(x.shape), "w": tuple(w.shape), "y": tuple(y.shape), "transposed": True,
            "bias": _inp(node, 2) is not None}


@_reg("Gemm", F.addmm, "A (m,k), B (k,n) after transA/transB, bias = 1 with C")
def gemm_cost(node: Node) -> Symbols:
    a, b = _inp(node, 0), _inp(node, 1)
    assert a is not None and b is not None
    m, k = (a.shape[1], a.shape[0]) if node.kwarg("transA", 0) else (a.shape[0], a.shape[1])
    n = b.shape[0] if node.kwarg("transB", 0) else b.shape[1]
    return {"m": m, "k": k, "n": n, "bias": _inp(node, 2) is not None}


@_reg("MatMul MatMulInteger", F.matmul, "y = numel(Y) (1-d·1-d: 1), k = A's last dim, bias = 0")
def matmul_cost(node: Node) -> Symbols:
    a, y = _inp(node, 0), _out(node)
    assert a is not None and y is not None
    return {"y": 1 if len(y.shape) == 0 else y.numel, "k": a.shape[-1], "bias": False}


@_reg("MatMulNBits", F.matmul, "y = numel(Y), k = the input's last dim, bias = 0", domain="com_microsoft")
def matmul_nbits_cost(node: Node) -> Symbols:
    return matmul_cost(node)


@register_rule("onnx.Einsum", prose="as aten.einsum, contracted pairwise left to right; FLOPs 2·MACs")
def einsum_cost(node: Node) -> Cost | None:
    if not _shaped(node):
        return None
    equation = str(node.kwarg("equation", "")).replace(" ", "")
    operands = [t for t in node.args if isinstance(t, TensorMeta)]
    y = _out(node)
    assert y is not None
    if len(operands) == 1:
        return Cost(0, operands[0].numel if operands[0].numel != y.numel else 0)
    macs = einsum_macs(equation, operands, len(y.shape))  # pairwise, left to right
    return Cost(macs, 2 * macs)


def _heads_split(t: TensorMeta, heads: int) -> tuple[int, int, int, int]:
    """(B, H, L, E) from a (B, H, L, E) tensor or a (B, L, H·E) one."""
    if len(t.shape) == 4:
        b, h, l, e = t.shape
        return b, h, l, e
    b, l, hidden = t.shape
    return b, heads, l, hidden // max(heads, 1)


@_reg("Attention", F.attention, "opset 23 Attention, q/k/v (B,H,L,E) or (B,L,H·E): S includes past_key")
def onnx_attention_cost(node: Node) -> Symbols:
    q, k, v, past = _inp(node, 0), _inp(node, 1), _inp(node, 2), _inp(node, 4)
    assert q is not None and k is not None and v is not None
    b, h, l, e = _heads_split(q, int(node.kwarg("q_num_heads", 1) or 1))
    kv_heads = int(node.kwarg("kv_num_heads", h) or h)
    s = _heads_split(k, kv_heads)[2] + (past.shape[-2] if past is not None else 0)
    return {"b": b, "h": h, "l": l, "s": s, "e": e, "ev": _heads_split(v, kv_heads)[3]}


@_reg("Attention", F.qkv_attention,
      "input (B,S,Din), dq/dk/dv = qkv_hidden_sizes (else a third of W's columns each), "
      "total = S + past length, heads = num_heads, bias = 1 with bias", domain="com_microsoft")
def ms_attention_cost(node: Node) -> Symbols:
    x, w, bias, past = _inp(node, 0), _inp(node, 1), _inp(node, 2), _inp(node, 4)
    assert x is not None and w is not None
    b, s, din = x.shape
    sizes = node.kwarg("qkv_hidden_sizes") or (w.shape[1] // 3,) * 3
    dq, dk, dv = (int(d) for d in sizes)
    return {"b": b, "s": s, "din": din, "dq": dq, "dk": dk, "dv": dv,
            "total": s + (past.shape[-2] if past is not None else 0),
            "heads": int(node.kwarg("num_heads", 1)), "bias": bias is not None}


@_reg("MultiHeadAttention", F.attention,
      "query (B,L,D), key (B,S,D) or (B,H,S,E) or packed KV (B,S,H,2,E), value (B,S,Dv): h = num_heads, "
      "e = D/h, ev = Dv/h; packed QKV (B,L,H,3,E): S = L, Ev = E; no key: S = 0", domain="com_microsoft")
def ms_mha_cost(node: Node) -> Symbols:
    q, k, v = _inp(node, 0), _inp(node, 1), _inp(node, 2)
    assert q is not None
    heads = int(node.kwarg("num_heads", 1))
    if len(q.shape) == 5:  # packed QKV (B, L, H, 3, E)
        b, l, h, _, e = q.shape
        return {"b": b, "h": h, "l": l, "s": l, "e": e, "ev": e}
    b, l, d = q.shape
    if k is None:
        return {"b": b, "h": heads, "l": l, "s": 0, "e": 0, "ev": 0}
    if len(k.shape) == 5:  # packed KV (B, S, H, 2, E)
        s, dv = k.shape[1], k.shape[2] * k.shape[4]
    elif len(k.shape) == 4:  # (B, H, S, E)
        s = k.shape[2]
        dv = (v.shape[1] * v.shape[3]) if v is not None and len(v.shape) == 4 else (v.shape[-1] if v is not None else d)
    else:
        s = k.shape[1]
        dv = v.shape[-1] if v is not None else d
    return {"b": b, "h": heads, "l": l, "s": s, "e": d // heads, "ev": dv // heads}


# --- no MACs: FLOPs by the pointwise table -----------------------------------

_ELEMENTWISE = ["Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Neg", "Abs", "Exp", "Log", "Erf", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign", "Mish", "Gelu", "ThresholdedRelu", "Shrink", "Clip", "Min", "Max", "Mean", "Sum", "Floor", "Ceil", "Round", "Sign", "Mod", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not", "IsNaN", "IsInf", "Where", "Swish"]

_ZERO = ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Cast", "CastLike", "Shape", "Size", "Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND", "ScatterElements", "ScatterND", "Scatter", "Expand", "Tile", "Pad", "Constant", "ConstantOfShape", "Range", "DepthToSpace", "SpaceToDepth", "Dropout", "Trilu", "OneHot", "NonZero", "EyeLike", "Compress", "ReverseSequence", "SequenceAt", "SequenceConstruct", "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalGetElement", "OptionalHasElement", "Upsample", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "NonMaxSuppression"]
# Quantize/dequantize are counted as casts (data movement), as aten._to_copy is.

_REDUCTIONS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "CumSum", "TopK", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"]


def _first_in(node: Node) -> int:
    x = _inp(node, 0)
    return x.numel if x is not None else 0


def _y(node: Node) -> int:
    y = _out(node)
    return y.numel if y is not None else 0


@_reg(" ".join(_ELEMENTWISE), F.elementwise, "y = numel(Y) (elementwise, 1 each)")
def elementwise_cost(node: Node) -> Symbols:
    return {"y": _y(node)}


@_reg(" ".join(_ZERO), F.zero, "data movement, view, copy, cast or generation")
def zero_cost(node: Node) -> Symbols:
    return {}


@_reg(" ".join(_REDUCTIONS), F.reduction, "x = numel(X) (reduction, 1 each; global pooling as adaptive pooling)")
def reduction_cost(node: Node) -> Symbols:
    return {"x": _first_in(node)}


@_reg("Softmax LogSoftmax", F.softmax, "y = numel(Y) (max, subtract, exp, sum, divide)")
def softmax_cost(node: Node) -> Symbols:
    return {"y": _y(node)}


@_reg("LayerNormalization InstanceNormalization GroupNormalization", F.layer_norm,
      "x = numel(X), affine = 1 with scale/bias (as the aten norms)")
def norm_cost(node: Node) -> Symbols:
    return {"x": _first_in(node), "affine": _inp(node, 1) is not None}


@_reg("RMSNormalization SimplifiedLayerNormalization", F.rms_norm,
      "x = numel(X), affine = 1 with scale (as aten.rms_norm)")
def rms_norm_cost(node: Node) -> Symbols:
    return {"x": _first_in(node), "affine": _inp(node, 1) is not None}


@_reg("SkipLayerNormalization", F.skip_layer_norm, "x = numel(input) (skip add, then gamma/beta)",
      domain="com_microsoft")
def skip_norm_cost(node: Node) -> Symbols:
    return {"x": _first_in(node)}


@_reg("BatchNormalization", F.batch_norm, "x = numel(X), training = training_mode (batch statistics)")
def batch_norm_cost(node: Node) -> Symbols:
    return {"x": _first_in(node), "training": bool(node.kwarg("training_mode", 0))}


@_reg("MaxPool AveragePool LpPool", F.pool, "y = numel(Y), window = prod(kernel_shape)")
def pool_cost(node: Node) -> Symbols:
    return {"y": _y(node), "window": math.prod(node.kwarg("kernel_shape") or ())}


@_reg("Resize", F.interpolate,
      "y = numel(Y), dims = resized dims, per = 0 (nearest), 2 (linear) or 8 (cubic) (as aten.upsample_*)")
def resize_cost(node: Node) -> Symbols:
    x, y = _inp(node, 0), _out(node)
    assert x is not None and y is not None
    mode = str(node.kwarg("mode", "nearest"))
    dims = sum(1 for a, b in zip(x.shape, y.shape) if a != b) or max(len(y.shape) - 2, 1)
    return {"y": y.numel, "per": {"nearest": 0, "cubic": 8}.get(mode, 2), "dims": dims}
