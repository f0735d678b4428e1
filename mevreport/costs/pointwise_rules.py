"""Cost rules for everything that is not a matmul: no MACs, FLOPs by table.

The conventions (written in the README's FLOP table, generated from here):
elementwise arithmetic and activations 1 FLOP per output element; softmax 5
per element; layer/group/instance norms 5 per element plus 2 with an affine
transform; batch norm 4 per element (plus 4 more in training, for the batch
statistics); reductions 1 per input element; pooling 1 per window element of
each output; data movement, views, copies, casts, indexing and random
generation 0.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ..graph import Node
from . import formulas as F
from .registry import Symbols, arg, in_numel, out_numel, register, tensor_args

_ELEMENTWISE = ["add", "sub", "rsub", "mul", "div", "neg", "reciprocal", "pow", "sqrt", "rsqrt", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "abs", "sign", "sgn", "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "erf", "erfc", "erfinv", "sigmoid", "logit", "relu", "relu6", "gelu", "silu", "mish", "hardtanh", "hardsigmoid", "hardswish", "leaky_relu", "elu", "selu", "celu", "softplus", "softshrink", "hardshrink", "threshold", "prelu", "_prelu_kernel", "glu", "clamp", "clamp_min", "clamp_max", "clip", "maximum", "minimum", "fmax", "fmin", "floor", "ceil", "round", "trunc", "frac", "remainder", "fmod", "floor_divide", "lerp", "addcmul", "addcdiv", "square", "xlogy", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "isnan", "isinf", "isfinite", "nan_to_num", "where", "masked_fill", "gelu_", "silu_", "relu_", "add_", "sub_", "mul_", "div_", "clamp_", "hardtanh_", "leaky_relu_", "sigmoid_", "tanh_", "neg_", "exp_", "pow_", "sqrt_", "rsqrt_", "abs_", "masked_fill_", "threshold_", "elu_", "hardswish_", "hardsigmoid_", "mish_", "copysign", "heaviside", "diff", "__and__", "__or__", "__xor__"]
# diff and the Python operators (__and__ ...) appear under torch.export, which keeps them undecomposed.
# `where`, `masked_fill` and comparisons are counted as one operation per element, like arithmetic.

_ZERO = ["view", "_unsafe_view", "reshape", "_reshape_alias", "alias", "detach", "detach_", "permute", "transpose", "t", "expand", "expand_as", "slice", "select", "unsqueeze", "squeeze", "flatten", "unflatten", "unfold", "as_strided", "as_strided_", "narrow", "split", "split_with_sizes", "chunk", "unbind", "movedim", "view_as_real", "view_as_complex", "real", "imag", "clone", "contiguous", "copy", "copy_", "_to_copy", "to", "_copy_from", "_copy_from_and_resize", "lift_fresh", "lift_fresh_copy", "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "new_zeros", "new_ones", "new_full", "fill", "fill_", "zero_", "arange", "linspace", "scalar_tensor", "tensor", "cat", "stack", "hstack", "vstack", "index_select", "gather", "take", "embedding", "index", "index_put", "index_put_", "scatter", "scatter_", "masked_select", "masked_scatter", "repeat", "repeat_interleave", "tile", "roll", "flip", "constant_pad_nd", "pad", "tril", "triu", "tril_", "triu_", "diagonal", "diag_embed", "_local_scalar_dense", "item", "rand", "randn", "randint", "rand_like", "randn_like", "randint_like", "bernoulli", "bernoulli_", "normal_", "uniform_", "random_", "exponential_", "multinomial", "set_", "resize_", "_unsafe_index", "dropout", "alpha_dropout", "feature_dropout", "one_hot", "_assert_async", "_assert_tensor_metadata", "sym_constrain_range_for_size", "select_scatter", "slice_scatter", "_pin_memory", "pin_memory", "_has_compatible_shallow_copy_type", "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "_upsample_nearest_exact1d", "_upsample_nearest_exact2d", "_upsample_nearest_exact3d", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "im2col", "col2im", "sort", "argsort", "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk", "_reshape_copy", "view_as", "split_copy", "type_as", "tensor_split", "swapaxes", "squeeze_", "unsqueeze_"]
# sort/argsort are counted as data movement; topk likewise below.

_REDUCTIONS = ["sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "prod", "all", "any", "norm", "linalg_vector_norm", "logsumexp", "cumsum", "cumprod", "nansum", "nanmean", "count_nonzero", "aminmax", "topk", "kthvalue", "median", "nanmedian", "mode", "histc", "bincount"]


Y = "y = numel(output)"
X = "x = numel(input)"


def _elementwise(node: Node) -> Symbols:
    return {"y": out_numel(node)}


def _reduction(node: Node) -> Symbols:
    return {"x": in_numel(node)}


def _zero(node: Node) -> Symbols:
    return {}


def _with_variants(names: list[str], suffixes: tuple[str, ...]) -> list[str]:
    """The names plus those of their in-place (``add_``) or functional-copy (``view_copy``)
    variants that exist in this torch, once each (so the docs' table lists real ops only)."""
    out = dict.fromkeys(names)
    for n in names:
        if not n.endswith("_"):
            for suffix in suffixes:
                if hasattr(torch.ops.aten, n + suffix):
                    out.setdefault(n + suffix)
    return list(out)


for _name in _with_variants(_ELEMENTWISE, ("_",)):
    register(f"aten.{_name}", formula=F.elementwise, where=Y + " (elementwise, 1 each)")(_elementwise)
for _name in _with_variants(_ZERO, ("_", "_copy")):
    register(f"aten.{_name}", formula=F.zero, where="data movement, view, copy or generation")(_zero)
for _name in _REDUCTIONS:
    register(f"aten.{_name}", formula=F.reduction, where=X + " (reduction, 1 each)")(_reduction)


@register("aten.var", "aten.std", "aten.var_mean", "aten.std_mean", formula=F.variance,
          where=X + " (mean, subtract, square-accumulate)")
def variance_cost(node: Node) -> Symbols:
    return {"x": in_numel(node)}


@register("aten._softmax", "aten.softmax", "aten._log_softmax", "aten.log_softmax", "aten._safe_softmax",
          formula=F.softmax, where=Y + " (max, subtract, exp, sum, divide)")
def softmax_cost(node: Node) -> Symbols:
    return {"y": out_numel(node)}


def _norm(node: Node, weight_index: int) -> Symbols:
    return {"x": in_numel(node), "affine": arg(node, weight_index, "weight") is not None}


NORM = X + ", affine = 1 with weight/bias"


@register("aten.native_layer_norm", "aten.layer_norm", formula=F.layer_norm, where=NORM)
def layer_norm_cost(node: Node) -> Symbols:
    return _norm(node, 2)


@register("aten.native_group_norm", "aten.group_norm", formula=F.layer_norm, where=NORM)
def group_norm_cost(node: Node) -> Symbols:
    return _norm(node, 1 if node.op.startswith("aten.native_group_norm") else 2)


@register("aten._fused_rms_norm", "aten.rms_norm", formula=F.rms_norm, where=X + ", affine = 1 with weight")
def rms_norm_cost(node: Node) -> Symbols:
    return _norm(node, 2)


@register("aten.instance_norm", formula=F.layer_norm, where=NORM)
def instance_norm_cost(node: Node) -> Symbols:
    return _norm(node, 1)


@register("aten._native_batch_norm_legit_no_training", "aten._native_batch_norm_legit", "aten.native_batch_norm",
          "aten.batch_norm", "aten.cudnn_batch_norm", "aten.miopen_batch_norm", "aten._native_batch_norm_legit_functional",
          formula=F.batch_norm, where=X + ", training = 1 in training mode (batch statistics)")
def batch_norm_cost(node: Node) -> Symbols:
    training = False
    if node.op.startswith("aten._native_batch_norm_legit_no_training"):
        training = False
    elif node.op.startswith("aten._native_batch_norm_legit"):
        training = bool(arg(node, 5, "training", True)) if ".no_stats" not in node.op else bool(arg(node, 3, "training", True))
    elif node.op.startswith(("aten.native_batch_norm", "aten.batch_norm", "aten.cudnn_batch_norm", "aten.miopen_batch_norm")):
        training = bool(arg(node, 5, "training", False))
    return {"x": in_numel(node), "training": training}


def _window(kernel: Any, ndim: int) -> int:
    if isinstance(kernel, (tuple, list)):
        ks = list(kernel) if len(kernel) > 1 else list(kernel) * ndim
        return math.prod(ks)
    return int(kernel) ** ndim


@register("aten.max_pool1d", "aten.max_pool2d", "aten.max_pool3d", "aten.max_pool1d_with_indices",
          "aten.max_pool2d_with_indices", "aten.max_pool3d_with_indices", "aten.avg_pool1d", "aten.avg_pool2d",
          "aten.avg_pool3d", formula=F.pool, where=Y + ", window = prod(kernel)")
def pool_cost(node: Node) -> Symbols:
    ndim = int(next(c for c in node.op.split(".")[1] if c.isdigit()))
    return {"y": out_numel(node), "window": _window(arg(node, 1, "kernel_size"), ndim)}


@register("aten._adaptive_avg_pool2d", "aten._adaptive_avg_pool3d",
          "aten.adaptive_avg_pool1d", "aten.adaptive_avg_pool2d", "aten.adaptive_avg_pool3d",
          "aten.adaptive_max_pool1d", "aten.adaptive_max_pool2d", "aten.adaptive_max_pool3d",
          formula=F.reduction, where=X + " (each input read into a window once, for non-overlapping windows)")
def adaptive_pool_cost(node: Node) -> Symbols:
    return {"x": in_numel(node)}


@register("aten.upsample_bilinear2d", "aten.upsample_linear1d", "aten.upsample_trilinear3d", "aten.upsample_bicubic2d",
          "aten._upsample_bilinear2d_aa", formula=F.interpolate,
          where=Y + ", dims = interpolated dims, per = 2 (linear) or 8 (bicubic)")
def upsample_interp_cost(node: Node) -> Symbols:
    return {"y": out_numel(node), "per": 8 if "bicubic" in node.op else 2, "dims": len(node.outputs[0].shape) - 2}


@register("aten.native_dropout", formula=F.dropout, where=X + " (mask draw and scale)")
def dropout_cost(node: Node) -> Symbols:
    return {"x": in_numel(node)}


@register("aten._embedding_bag", "aten._embedding_bag_forward_only", formula=F.embedding_bag,
          where="g = numel(indices)·D gathered elements, weighted = 1 with per-sample weights")
def embedding_bag_cost(node: Node) -> Symbols:
    weight, indices = tensor_args(node)[:2]
    return {"g": indices.numel * weight.shape[-1], "weighted": arg(node, 6, "per_sample_weights") is not None}


@register("aten.nll_loss_forward", "aten.nll_loss2d_forward", "aten.nll_loss", "aten.nll_loss_nd",
          formula=F.reduction, where="x = numel(target) (gather, negate and sum)")
def nll_loss_cost(node: Node) -> Symbols:
    return {"x": tensor_args(node)[1].numel}
