"""DTensor awareness for capture: the one place that asks whether a tensor is sharded.

FSDP2 (``fully_shard``) and tensor parallelism keep parameters as
``torch.distributed.tensor.DTensor``: ``shape`` and ``numel()`` are the global
figures (what the report counts), while storage, data pointers and kernels
such as ``aten.sign.out`` see or refuse the local shard.  Capture code that
needs the storage or the values asks here, so a plain tensor passes through
untouched and importing ``torch.distributed`` costs nothing when it is absent.
"""
from __future__ import annotations

from typing import Any

import torch


def _dtensor_type() -> type | None:
    if not torch.distributed.is_available():
        return None
    from torch.distributed.tensor import DTensor
    return DTensor


_DTENSOR = _dtensor_type()


def is_dtensor(t: Any) -> bool:
    return _DTENSOR is not None and isinstance(t, _DTENSOR)


def local_tensor(t: torch.Tensor) -> torch.Tensor:
    """The rank's own shard of a DTensor (its storage); a plain tensor itself.

    Under ``no_grad`` because with autograd on ``to_local`` returns a fresh view of the shard (its
    backward hook), not the shard: a mark put on that view would never reach the ops that read it."""
    if not is_dtensor(t):
        return t
    with torch.no_grad():
        return t.to_local()  # type: ignore[attr-defined]


def local_nbytes(t: torch.Tensor) -> int:
    """Bytes this rank holds of ``t``: its shard for a DTensor, all of it otherwise."""
    loc = local_tensor(t)
    return loc.numel() * loc.element_size()


def full_values(t: torch.Tensor) -> torch.Tensor:
    """The global values of ``t`` on every rank (a collective for a DTensor: every rank must call it)."""
    return t.full_tensor() if is_dtensor(t) else t  # type: ignore[attr-defined]



def unwrap_ddp(model: torch.nn.Module) -> tuple[torch.nn.Module, str | None]:
    """The module inside ``DistributedDataParallel``, and the note saying so.

    DDP's forward adds nothing to the graph under ``no_grad`` (its work is the
    gradient all-reduce, issued from C++ in backward, and the buffer broadcast,
    both outside the dispatcher), while its ``module.`` prefix would make every
    path differ from the same model's single-process report (``mevreport diff``).
    """
    if not torch.distributed.is_available():
        return model, None
    from torch.nn.parallel import DistributedDataParallel
    if isinstance(model, DistributedDataParallel):
        return model.module, ("DistributedDataParallel: its module was analysed (paths without 'module.'); "
                              "DDP's gradient all-reduce runs in backward from C++, outside the recorded graph")
    return model, None


def shard_groups(t: torch.Tensor) -> tuple[Any, ...]:
    """The process groups across which a DTensor's values are split (its ``Shard`` mesh dimensions)."""
    if not is_dtensor(t):
        return ()
    mesh = t.device_mesh  # type: ignore[attr-defined]
    return tuple(mesh.get_group(i) for i, p in enumerate(t.placements) if p.is_shard())  # type: ignore[attr-defined]


def group_size(groups: tuple[Any, ...]) -> int:
    n = 1
    for g in groups:
        n *= torch.distributed.get_world_size(g)
    return n


def union_values(t: torch.Tensor, groups: tuple[Any, ...]) -> torch.Tensor:
    """Every rank's elements of a plain tensor that is one shard of a larger one, as one flat tensor.

    A local shard (what ``ColwiseParallel`` hands the next op) is a plain
    tensor: the global tensor is the union of the shards across ``groups``.
    Statistics do not depend on element order, so the union's are the global
    tensor's.  Shards may differ in size (uneven splits): sizes first, then
    equal padded buffers (``all_gather`` needs them).  A collective over each
    group: every rank of the group calls it at the same op.
    """
    flat = t.detach().reshape(-1)
    dist = torch.distributed
    for g in groups:
        n = dist.get_world_size(g)
        sizes = [torch.zeros((), dtype=torch.int64) for _ in range(n)]
        dist.all_gather(sizes, torch.tensor(flat.numel(), dtype=torch.int64), group=g)
        counts = [int(s) for s in sizes]
        top = max(counts)
        padded = torch.zeros(top, dtype=flat.dtype, device=flat.device)
        padded[: flat.numel()] = flat
        parts = [torch.empty_like(padded) for _ in range(n)]
        dist.all_gather(parts, padded, group=g)
        flat = torch.cat([p[:c] for p, c in zip(parts, counts)])
    return flat




def class_name(module: Any) -> str:
    """The user's class name of a module: FSDP2 turns ``Block`` into a generated subclass ``FSDPBlock``
    (``FSDPModule`` first among its bases), which would make every sharded report's classes differ."""
    cls = type(module)
    if torch.distributed.is_available() and cls.__name__.startswith("FSDP"):
        from torch.distributed.fsdp import FSDPModule
        if issubclass(cls, FSDPModule):
            cls = next((b for b in cls.__bases__ if b is not FSDPModule), cls)
    return cls.__name__


__all__ = ["class_name", "full_values", "group_size", "is_dtensor", "local_nbytes", "local_tensor", "shard_groups",
           "union_values", "unwrap_ddp"]
