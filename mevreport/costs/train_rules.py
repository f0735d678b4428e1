"""Cost rules for the ops a training step adds: backward kernels and optimizer updates.

The matmul-like backward kernels get MACs: ``convolution_backward`` and the
SDPA backward kernels by ``torch.utils.flop_counter``'s formulas
(fused_rules.py), the CPU flash-attention backward here by the same
``sdpa_backward_flop_count``; a linear layer's backward is plain ``mm`` /
``bmm`` (matmul_rules.py).  Everything else is FLOPs by the table's
conventions:

* activation backward (``threshold_backward``, ``gelu_backward``, ...):
  2 per element (the local derivative, then its product with the incoming
  gradient);
* softmax / log-softmax backward: 4 per element (product, row sum, subtract, scale);
* norm backward (layer, group, batch, RMS): 8 per element for the input
  gradient, 2 per element for the weight gradient, 1 for the bias gradient,
  each only when ``output_mask`` asks for it;
* loss backward: 3 per element for MSE, 1 per target element for NLL;
* pooling backward: max pooling 1 per gradient element (a scatter), average
  pooling ``prod(kernel)`` per gradient element, adaptive pooling 1 per
  input element;
* ``embedding_dense_backward``: 1 per gradient element (a scatter-add);
  ``select_backward`` / ``slice_backward`` and kin: 0 (a zero fill and a copy);
* ``_foreach_*`` (multi-tensor optimizer kernels): the per-element rule of
  the op they apply, over every tensor of the list.
"""
from __future__ import annotations

import math

import torch

from ..graph import Node
from .pointwise_rules import _ELEMENTWISE, _REDUCTIONS, _ZERO
from .registry import ZERO, Cost, arg, register_rule, tensor_args

ACTIVATION_BACKWARD_FLOPS = 2
SOFTMAX_BACKWARD_FLOPS = 4
NORM_INPUT_GRAD_FLOPS, NORM_WEIGHT_GRAD_FLOPS, NORM_BIAS_GRAD_FLOPS = 8, 2, 1

_ACTIVATIONS = ["threshold", "gelu", "silu", "sigmoid", "tanh", "hardtanh", "leaky_relu", "elu", "hardswish",
                "hardsigmoid", "softplus", "mish", "log_sigmoid", "glu", "softshrink", "hardshrink", "rrelu_with_noise"]


def _grad_numel(node: Node) -> int:
    return tensor_args(node)[0].numel


@register_rule(*[f"aten.{a}_backward" for a in _ACTIVATIONS if hasattr(torch.ops.aten, f"{a}_backward")],
          "aten._prelu_kernel_backward",
          prose=f"{ACTIVATION_BACKWARD_FLOPS} per gradient element (local derivative, product with the gradient)")
def activation_backward_cost(node: Node) -> Cost:
    return Cost(0, ACTIVATION_BACKWARD_FLOPS * _grad_numel(node))


@register_rule("aten._softmax_backward_data", "aten._log_softmax_backward_data",
          prose=f"{SOFTMAX_BACKWARD_FLOPS} per element (product, row sum, subtract, scale)")
def softmax_backward_cost(node: Node) -> Cost:
    return Cost(0, SOFTMAX_BACKWARD_FLOPS * _grad_numel(node))


def _norm_backward(node: Node, mask_index: int, mask_default: tuple[bool, ...]) -> Cost:
    n = tensor_args(node)[1].numel  # the input (grad_out and input have one size)
    mask = arg(node, mask_index, "output_mask", mask_default)
    mask = tuple(mask) if isinstance(mask, (tuple, list)) else mask_default
    per = (NORM_INPUT_GRAD_FLOPS, NORM_WEIGHT_GRAD_FLOPS, NORM_BIAS_GRAD_FLOPS)
    return Cost(0, n * sum(p for p, m in zip(per, mask) if m))


@register_rule("aten.native_layer_norm_backward",
          prose=f"per element: {NORM_INPUT_GRAD_FLOPS} for the input gradient, {NORM_WEIGHT_GRAD_FLOPS} for the "
                  f"weight's, {NORM_BIAS_GRAD_FLOPS} for the bias's (as output_mask asks)")
def layer_norm_backward_cost(node: Node) -> Cost:
    return _norm_backward(node, 7, (True, True, True))


@register_rule("aten.native_group_norm_backward", prose="as aten.native_layer_norm_backward")
def group_norm_backward_cost(node: Node) -> Cost:
    return _norm_backward(node, 9, (True, True, True))


@register_rule("aten.native_batch_norm_backward", "aten.miopen_batch_norm_backward",
          prose="as aten.native_layer_norm_backward")
def batch_norm_backward_cost(node: Node) -> Cost:
    return _norm_backward(node, 9, (True, True, True))


@register_rule("aten.cudnn_batch_norm_backward", prose="as aten.native_layer_norm_backward, all three gradients")
def cudnn_batch_norm_backward_cost(node: Node) -> Cost:
    n = tensor_args(node)[0].numel
    return Cost(0, n * (NORM_INPUT_GRAD_FLOPS + NORM_WEIGHT_GRAD_FLOPS + NORM_BIAS_GRAD_FLOPS))


@register_rule("aten._fused_rms_norm_backward",
          prose=f"per element: {NORM_INPUT_GRAD_FLOPS} for the input gradient, {NORM_WEIGHT_GRAD_FLOPS} for "
                  f"the weight's (as output_mask asks)")
def rms_norm_backward_cost(node: Node) -> Cost:
    return _norm_backward(node, 5, (True, True))


@register_rule("aten._scaled_dot_product_flash_attention_for_cpu_backward",
          prose="torch.utils.flop_counter's sdpa_backward_flop_count on (grad_out, query, key, value); "
                  "MACs FLOPs/2")
def cpu_flash_backward_cost(node: Node) -> Cost:
    from torch.utils.flop_counter import sdpa_backward_flop_count

    g, q, k, v = tensor_args(node)[:4]
    flops = int(sdpa_backward_flop_count(g.shape, q.shape, k.shape, v.shape))
    return Cost(flops // 2, flops)


@register_rule("aten.mse_loss", prose="3 per input element (subtract, square, reduce)")
def mse_loss_cost(node: Node) -> Cost:
    return Cost(0, 3 * tensor_args(node)[0].numel)


@register_rule("aten.mse_loss_backward", prose="3 per input element (subtract, scale, product with the gradient)")
def mse_loss_backward_cost(node: Node) -> Cost:
    return Cost(0, 3 * tensor_args(node)[1].numel)


@register_rule("aten.nll_loss_backward", "aten.nll_loss2d_backward", prose="1 per target element (a scatter)")
def nll_loss_backward_cost(node: Node) -> Cost:
    return Cost(0, tensor_args(node)[2].numel)


@register_rule("aten.max_pool2d_with_indices_backward",
          "aten.max_pool3d_with_indices_backward", "aten.embedding_dense_backward", "aten.native_dropout_backward",
          "aten.upsample_nearest1d_backward", "aten.upsample_nearest2d_backward", "aten.upsample_nearest3d_backward",
          prose="1 per gradient element (a scatter, scatter-add or masked scale)")
def scatter_backward_cost(node: Node) -> Cost:
    return Cost(0, _grad_numel(node))


@register_rule("aten.avg_pool2d_backward", "aten.avg_pool3d_backward",
          prose="math.prod(kernel) per gradient element (each spread over its window)")
def avg_pool_backward_cost(node: Node) -> Cost:
    kernel = arg(node, 2, "kernel_size")
    ndim = 2 if "2d" in node.op else 3
    ks = list(kernel) if isinstance(kernel, (tuple, list)) else [int(kernel)]
    return Cost(0, _grad_numel(node) * math.prod(ks if len(ks) > 1 else ks * ndim))


@register_rule("aten._adaptive_avg_pool2d_backward", "aten._adaptive_avg_pool3d_backward",
          "aten.adaptive_max_pool2d_backward", "aten.adaptive_max_pool3d_backward",
          prose="1 per input element")
def adaptive_pool_backward_cost(node: Node) -> Cost:
    return Cost(0, tensor_args(node)[1].numel)


@register_rule("aten.select_backward", "aten.slice_backward", "aten.diagonal_backward", "aten.as_strided_scatter",
          "aten.index_select_backward", "aten.unfold_backward", "aten.masked_scatter_backward",
          prose="0 (a zero fill and a copy: data movement)")
def movement_backward_cost(node: Node) -> Cost:
    return ZERO


# --- multi-tensor optimizer kernels ----------------------------------------------------------

def _foreach_elementwise(node: Node) -> Cost:
    return Cost(0, sum(o.numel for o in node.outputs))


def _foreach_reduction(node: Node) -> Cost:
    return Cost(0, sum(t.numel for t in tensor_args(node)))


def _foreach_ops() -> dict[str, str]:
    """``_foreach_*`` op packet -> the rule kind of the op it applies, for those this torch has."""
    kinds: dict[str, str] = {}
    elementwise, reductions, zero = set(_ELEMENTWISE), set(_REDUCTIONS), set(_ZERO)
    packets = {n.split("::")[1].split(".")[0] for n in torch._C._dispatch_get_all_op_names() if n.startswith("aten::")}
    for name in packets:
        if not name.startswith("_foreach_"):
            continue
        base = name.removeprefix("_foreach_").rstrip("_")
        if base in elementwise:
            kinds[name] = "elementwise"
        elif base in reductions:
            kinds[name] = "reduction"
        elif base in zero or base + "_" in zero:
            kinds[name] = "zero"
    return kinds


for _name, _kind in sorted(_foreach_ops().items()):
    if _kind == "elementwise":
        register_rule(f"aten.{_name}", prose="1 per element of every tensor in the list")(_foreach_elementwise)
    elif _kind == "reduction":
        register_rule(f"aten.{_name}", prose="1 per input element of every tensor in the list")(_foreach_reduction)
    else:
        register_rule(f"aten.{_name}", prose="0 (data movement, copy or fill)")(lambda node: ZERO)
