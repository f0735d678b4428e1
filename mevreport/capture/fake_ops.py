"""Running ops whose fake kernels are narrower than their real ones (analysis without data).

``aten._grouped_mm``'s fake (meta) kernel accepts only bfloat16 operands, while
the CPU kernel — and every float32 MoE model in transformers — uses float32:
under ``--device meta`` such a model failed although nothing about its shapes
depends on the dtype.  Such an op is run in a dtype its fake kernel accepts and
its output is cast back to the dtype the real kernel returns, so the recorded
node keeps the model's own dtypes (the recorder sees the original arguments
and the cast-back output).
"""
from __future__ import annotations

from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor

# op packet name -> the dtype its fake kernel accepts for floating operands
_FAKE_DTYPE = {"_grouped_mm": torch.bfloat16}


def call_op(func: Any, args: tuple, kwargs: dict) -> Any:
    """``func(*args, **kwargs)``; on fake tensors, ops of :data:`_FAKE_DTYPE` run in the dtype their fake kernel
    accepts when the model's own dtype differs (checked first: the refused call would log an error)."""
    dtype = _FAKE_DTYPE.get(getattr(func, "__name__", "").split(".")[0])
    if dtype is None:
        return func(*args, **kwargs)
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    own = kwargs.get("out_dtype") or (tensors[0].dtype if tensors else None)
    if own in (None, dtype) or not all(isinstance(t, FakeTensor) for t in tensors):
        return func(*args, **kwargs)

    def cast(v: Any) -> Any:
        return v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v

    retry = {k: cast(v) for k, v in kwargs.items() if k != "out_dtype"}
    return func(*[cast(a) for a in args], **retry).to(own)


def concrete(d: Any) -> int:
    """An int for a size: its value, its hint when symbolic, and for a size the data decides (an unbacked
    ``nonzero`` count under a ShapeEnv) its upper bound — every element selected."""
    if type(d) is int:
        return d
    node = getattr(d, "node", None)
    hint = getattr(node, "hint", None) if node is not None else None
    if hint is not None:
        return int(hint)
    if node is not None and hasattr(node, "shape_env"):
        upper = node.shape_env.bound_sympy(node.expr).upper
        if upper.is_finite:
            return int(upper)
    return int(d)


def data_dependent_sizes() -> Any:
    """A ShapeEnv for a fake run in which ops whose output size depends on data (``nonzero``,
    ``masked_select``, boolean indexing) get unbacked sizes bounded by their input's size."""
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    return ShapeEnv()
