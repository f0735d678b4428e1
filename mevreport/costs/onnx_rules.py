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

from collections.abc import Callable

from ..graph import Node, TensorMeta
from .matmul_rules import SOFTMAX_FLOPS_PER_ELEMENT, _attention, einsum_macs
from .registry import ZERO, Cost, prod, register

OnnxRule = Callable[[Node], Cost | None]


def _inp(node: Node, i: int) -> TensorMeta | None:
    v = node.args[i] if i < len(node.args) else None
    return v if isinstance(v, TensorMeta) else None


def _known(*ts: TensorMeta | None) -> bool:
    return all(t is not None and all(d >= 0 for d in t.shape) for t in ts)


def _out(node: Node) -> TensorMeta | None:
    return node.outputs[0] if node.outputs else None


def _shaped(rule: OnnxRule) -> OnnxRule:
    """Uncounted (None) when the inputs or first output have unknown dimensions."""

    def wrapped(node: Node) -> Cost | None:
        ts = [t for t in node.args if isinstance(t, TensorMeta)] + list(node.outputs[:1])
        if not _known(*ts):
            return None
        return rule(node)

    wrapped.__doc__ = rule.__doc__
    return wrapped


def _reg(ops: str, formula: str, domain: str = "onnx") -> Callable[[OnnxRule], OnnxRule]:
    names = [f"{domain}.{op}" for op in ops.split()]

    def deco(rule: OnnxRule) -> OnnxRule:
        register(*names, formula=formula)(_shaped(rule))  # type: ignore[arg-type]
        return rule

    return deco


# --- matmul-like -------------------------------------------------------------

@_reg("Conv ConvInteger", "as aten.convolution: MACs numel(Y)·(C/group)·prod(kernel); FLOPs 2·MACs + numel(Y) with bias")
def conv_cost(node: Node) -> Cost:
    w, y = _inp(node, 1), _out(node)
    assert w is not None and y is not None
    macs = y.numel * prod(w.shape[1:])
    return Cost(macs, 2 * macs + (y.numel if _inp(node, 2) is not None and node.op == "onnx.Conv" else 0))


@_reg("ConvTranspose", "as aten.convolution transposed: MACs numel(X)·(M/group)·prod(kernel); FLOPs 2·MACs + numel(Y) with bias")
def conv_transpose_cost(node: Node) -> Cost:
    x, w, y = _inp(node, 0), _inp(node, 1), _out(node)
    assert x is not None and w is not None and y is not None
    macs = x.numel * prod(w.shape[1:])
    return Cost(macs, 2 * macs + (y.numel if _inp(node, 2) is not None else 0))


@_reg("Gemm", "as aten.addmm: MACs M·K·N; FLOPs 2·MACs + M·N with C")
def gemm_cost(node: Node) -> Cost:
    a, b = _inp(node, 0), _inp(node, 1)
    assert a is not None and b is not None
    m, k = (a.shape[1], a.shape[0]) if node.kwarg("transA", 0) else (a.shape[0], a.shape[1])
    n = b.shape[0] if node.kwarg("transB", 0) else b.shape[1]
    macs = m * k * n
    return Cost(macs, 2 * macs + (m * n if _inp(node, 2) is not None else 0))


@_reg("MatMul MatMulInteger", "as aten.matmul: MACs numel(Y)·K (1-d·1-d: K); FLOPs 2·MACs")
def matmul_cost(node: Node) -> Cost:
    a, y = _inp(node, 0), _out(node)
    assert a is not None and y is not None
    k = a.shape[-1]
    macs = k if len(y.shape) == 0 else y.numel * k
    return Cost(macs, 2 * macs)


@_reg("MatMulNBits", "MACs numel(Y)·K (K from the input's last dim); FLOPs 2·MACs", domain="com_microsoft")
def matmul_nbits_cost(node: Node) -> Cost:
    return matmul_cost(node)


@_reg("Einsum", "as aten.einsum, contracted pairwise left to right; FLOPs 2·MACs")
def einsum_cost(node: Node) -> Cost:
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


@_reg("Attention", "opset 23 Attention: MACs B·H·L·S·(E+Ev) (S includes past_key); FLOPs 2·MACs + 5·B·H·L·S")
def onnx_attention_cost(node: Node) -> Cost:
    q, k, v, past = _inp(node, 0), _inp(node, 1), _inp(node, 2), _inp(node, 4)
    assert q is not None and k is not None and v is not None
    b, h, l, e = _heads_split(q, int(node.kwarg("q_num_heads", 1) or 1))
    kv_heads = int(node.kwarg("kv_num_heads", h) or h)
    s = _heads_split(k, kv_heads)[2] + (past.shape[-2] if past is not None else 0)
    ev = _heads_split(v, kv_heads)[3]
    return _attention(b, h, l, s, e, ev)


@_reg("Attention", "MACs B·S·Din·(3·D) (QKV projection) + B·S·S_total·2·D (Q·Kᵀ, A·V); FLOPs 2·MACs + bias adds + 5·B·heads·S·S_total",
      domain="com_microsoft")
def ms_attention_cost(node: Node) -> Cost:
    x, w, bias, past = _inp(node, 0), _inp(node, 1), _inp(node, 2), _inp(node, 4)
    assert x is not None and w is not None
    b, s, din = x.shape
    sizes = node.kwarg("qkv_hidden_sizes") or (w.shape[1] // 3,) * 3
    dq, dk, dv = (int(d) for d in sizes)
    heads = int(node.kwarg("num_heads", 1))
    total = s + (past.shape[-2] if past is not None else 0)
    proj = b * s * din * (dq + dk + dv)
    attn = b * s * total * (dq + dv)
    macs = proj + attn
    bias_adds = b * s * (dq + dk + dv) if bias is not None else 0
    return Cost(macs, 2 * macs + bias_adds + SOFTMAX_FLOPS_PER_ELEMENT * b * heads * s * total)


@_reg("MultiHeadAttention", "query (B,L,D), key (B,S,D) or (B,H,S,E), value (B,S,Dv): MACs B·L·S·(D+Dv); "
      "packed QKV (B,L,H,3,E): S=L; FLOPs 2·MACs + 5·B·H·L·S", domain="com_microsoft")
def ms_mha_cost(node: Node) -> Cost:
    q, k, v = _inp(node, 0), _inp(node, 1), _inp(node, 2)
    assert q is not None
    heads = int(node.kwarg("num_heads", 1))
    if len(q.shape) == 5:  # packed QKV (B, L, H, 3, E)
        b, l, h, _, e = q.shape
        return _attention(b, h, l, l, e, e)
    b, l, d = q.shape
    if k is None:
        return ZERO
    if len(k.shape) == 5:  # packed KV (B, S, H, 2, E)
        s, dv = k.shape[1], k.shape[2] * k.shape[4]
    elif len(k.shape) == 4:  # (B, H, S, E)
        s = k.shape[2]
        dv = (v.shape[1] * v.shape[3]) if v is not None and len(v.shape) == 4 else (v.shape[-1] if v is not None else d)
    else:
        s = k.shape[1]
        dv = v.shape[-1] if v is not None else d
    return _attention(b, heads, l, s, d // heads, dv // heads)


# --- no MACs: FLOPs by the pointwise table -----------------------------------

_ELEMENTWISE = ["Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Neg", "Abs", "Exp", "Log", "Erf", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign", "Mish", "Gelu", "ThresholdedRelu", "Shrink", "Clip", "Min", "Max", "Mean", "Sum", "Floor", "Ceil", "Round", "Sign", "Mod", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not", "IsNaN", "IsInf", "Where", "Swish"]

_ZERO = ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Cast", "CastLike", "Shape", "Size", "Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND", "ScatterElements", "ScatterND", "Scatter", "Expand", "Tile", "Pad", "Constant", "ConstantOfShape", "Range", "DepthToSpace", "SpaceToDepth", "Dropout", "Trilu", "OneHot", "NonZero", "EyeLike", "Compress", "ReverseSequence", "SequenceAt", "SequenceConstruct", "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalGetElement", "OptionalHasElement", "Upsample", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "NonMaxSuppression"]
# Quantize/dequantize are counted as casts (data movement), as aten._to_copy is.

_REDUCTIONS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "CumSum", "TopK", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"]


def _first_in(node: Node) -> int:
    x = _inp(node, 0)
    return x.numel if x is not None else 0


@_reg(" ".join(_ELEMENTWISE), "1 per output element")
def elementwise_cost(node: Node) -> Cost:
    y = _out(node)
    return Cost(0, y.numel if y is not None else 0)


@_reg(" ".join(_ZERO), "0 (data movement, view, copy, cast or generation)")
def zero_cost(node: Node) -> Cost:
    return ZERO


@_reg(" ".join(_REDUCTIONS), "1 per input element (global pooling as adaptive pooling)")
def reduction_cost(node: Node) -> Cost:
    return Cost(0, _first_in(node))


@_reg("Softmax LogSoftmax", "5 per element (max, subtract, exp, sum, divide)")
def softmax_cost(node: Node) -> Cost:
    y = _out(node)
    return Cost(0, SOFTMAX_FLOPS_PER_ELEMENT * (y.numel if y is not None else 0))


@_reg("LayerNormalization InstanceNormalization GroupNormalization",
      "5 per element + 2 per element with scale/bias (as the aten norms)")
def norm_cost(node: Node) -> Cost:
    n = _first_in(node)
    return Cost(0, 5 * n + (2 * n if _inp(node, 1) is not None else 0))


@_reg("RMSNormalization", "4 per element + 1 per element with scale (as aten.rms_norm)")
def rms_norm_cost(node: Node) -> Cost:
    n = _first_in(node)
    return Cost(0, 4 * n + (n if _inp(node, 1) is not None else 0))


@_reg("SimplifiedLayerNormalization", "4 per element + 1 per element with scale (RMS norm)")
def simplified_norm_cost(node: Node) -> Cost:
    return rms_norm_cost(node)


@_reg("SkipLayerNormalization", "1 per element (skip add) + 5 per element + 2 with gamma/beta", domain="com_microsoft")
def skip_norm_cost(node: Node) -> Cost:
    n = _first_in(node)
    return Cost(0, 6 * n + 2 * n)


@_reg("BatchNormalization", "4 per element; +4 per element with training_mode=1 (batch statistics)")
def batch_norm_cost(node: Node) -> Cost:
    n = _first_in(node)
    return Cost(0, 4 * n + (4 * n if node.kwarg("training_mode", 0) else 0))


@_reg("MaxPool AveragePool LpPool", "prod(kernel_shape) per output element")
def pool_cost(node: Node) -> Cost:
    y = _out(node)
    kernel = node.kwarg("kernel_shape") or ()
    return Cost(0, (y.numel if y is not None else 0) * prod(kernel))


@_reg("Resize", "nearest 0; linear 2 per output element per resized dim; cubic 8 per resized dim (as aten.upsample_*)")
def resize_cost(node: Node) -> Cost:
    x, y = _inp(node, 0), _out(node)
    assert x is not None and y is not None
    mode = str(node.kwarg("mode", "nearest"))
    if mode == "nearest":
        return ZERO
    dims = sum(1 for a, b in zip(x.shape, y.shape) if a != b) or max(len(y.shape) - 2, 1)
    return Cost(0, y.numel * (8 if mode == "cubic" else 2) * dims)
