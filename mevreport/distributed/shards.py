"""Which plain tensors of a recorded run are local shards of a larger tensor (tensor parallelism).

``ColwiseParallel`` hands the next op its DTensor output's local shard as a
plain tensor (``use_local_output``): a GELU, an attention kernel over the
rank's heads then runs on 1/N of the global tensor, and its recorded shape
is the shard's.  The recorder asks this tracker after each op: a DTensor
output's local tensor is marked with the groups its values are split across;
a plain op reading a marked tensor makes marked outputs.  Such a node's
``shard_factor`` (the product of those groups' sizes) scales its MACs, FLOPs
and bytes to the global figures, and its statistics are taken over the union
of all ranks' shards (:func:`~.tensors.union_values`).  Only created inside a
process group, so other runs pay nothing.
"""
from __future__ import annotations

import itertools
from typing import Any

import torch

from .tensors import group_size, is_dtensor, local_nbytes, local_tensor, shard_groups


class LocalShards:
    """Marks on tensors (an attribute named per capture, dying with the tensor)."""

    _serial = itertools.count()

    def __init__(self) -> None:
        self.key = f"_mevreport_shard_{next(self._serial)}"

    def groups(self, t: Any) -> tuple[Any, ...]:
        return getattr(t, self.key, ()) if isinstance(t, torch.Tensor) else ()

    def after_op(self, in_tensors: list[torch.Tensor], outs: list[torch.Tensor]) -> tuple[tuple[Any, ...], int]:
        """Mark this op's outputs; returns the groups its plain outputs are shards across (() when none)
        and this rank's bytes of its DTensor outputs' new storage divisor (1 when none is sharded)."""
        groups: tuple[Any, ...] = ()
        for t in in_tensors:
            g = () if is_dtensor(t) else self.groups(t)
            if g and group_size(g) > group_size(groups):
                groups = g
        plain = False
        divisor = 1
        for t in outs:
            if is_dtensor(t):
                g = shard_groups(t)
                if g:
                    self._mark(local_tensor(t), g)
                    divisor = max(divisor, group_size(g))
            else:
                plain = True
                if groups:
                    self._mark(t, groups)
        return (groups if plain else ()), divisor

    def _mark(self, t: torch.Tensor, groups: tuple[Any, ...]) -> None:
        try:
            setattr(t, self.key, groups)
        except (AttributeError, TypeError, RuntimeError):
            pass


__all__ = ["LocalShards", "local_nbytes"]
