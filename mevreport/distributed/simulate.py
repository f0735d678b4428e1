"""Planning past the machine: a sharded model analysed for N ranks without N processes (DESIGN §7).

torch ships a process group that answers every collective at once without
moving data (``torch.testing._internal.distributed.fake_pg``: ``FakeStore`` and
the "fake" backend), made for exactly this.  It lives under ``_internal``, so
this module is the only one that touches it, or the private helpers below:
a torch upgrade changes one file.

The run: a process group of ``world_size`` fake ranks (this process is rank
0), a device mesh, a copy of the model whose parameters are fake tensors
(no memory; the user's module is not touched), sharded as asked with torch's
own ``fully_shard`` and ``parallelize_module``, then the ordinary fake-tensor
capture of that copy: the collectives FSDP2 and DTensor issue are recorded
with their bytes like in a real job.  Every rank runs the same program
(SPMD), so rank 0's graph, peak and traffic stand for each rank; each rank's
parameter shard is computed from the placements for its mesh coordinate.
"""
from __future__ import annotations

import contextlib
import copy
import fnmatch
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from ..errors import UsageError
from ..report import MeshInfo, RankRow

SHARDS = ("fsdp", "tp", "fsdp+tp")
DEFAULT_TP = 8  # tensor parallelism within a node of 8 accelerators, the common layout
_ACTIVE: dict[str, Any] = {}


def check(world_size: int, shard: str | None, tp_size: int | None) -> tuple[str, int]:
    """The shard kind and tensor-parallel degree, or one clear line (raised before anything runs)."""
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise UsageError(f"world_size must be a positive number of ranks, not {world_size!r}")
    shard = shard or "fsdp"
    if shard not in SHARDS:
        raise UsageError(f"unknown shard {shard!r}: use one of {', '.join(SHARDS)}")
    if torch.distributed.is_initialized():
        raise UsageError("a simulated world_size needs no process group: run it outside torchrun "
                         "(inside one, analyze the real sharded model instead)")
    tp = world_size if shard == "tp" else (tp_size or min(DEFAULT_TP, world_size)) if shard == "fsdp+tp" else 1
    if world_size % tp:
        raise UsageError(f"world_size {world_size} is not a multiple of the tensor-parallel size {tp}")
    return shard, tp


@contextlib.contextmanager
def fake_world(world_size: int) -> Iterator[None]:
    """A fake process group of ``world_size`` ranks for the block (this process: rank 0)."""
    from torch.testing._internal.distributed.fake_pg import FakeStore
    torch.distributed.init_process_group("fake", rank=0, world_size=world_size, store=FakeStore())
    _ACTIVE["world"] = world_size
    try:
        yield
    finally:
        _ACTIVE.clear()
        torch.distributed.destroy_process_group()


def simulating() -> bool:
    return bool(_ACTIVE)


def _meta_copy(model: nn.Module) -> nn.Module:
    """A copy of the module tree with every parameter and buffer on meta (no weights copied)."""
    memo: dict[int, Any] = {}
    for t in list(model.parameters()) + list(model.buffers()):
        m = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(m, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else m
    return copy.deepcopy(model, memo)


def tp_plan_of(model: nn.Module, plan: dict[str, str] | None) -> dict[str, Any]:
    """The tensor-parallel plan: ``plan`` ({module name pattern: "colwise" | "rowwise"}), else the one a
    transformers model ships (``config.base_model_tp_plan`` under its base model, and its ``_tp_plan``)."""
    from torch.distributed.tensor import Replicate
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel
    styles: dict[str, Callable[[], Any]] = {"colwise": ColwiseParallel, "rowwise": RowwiseParallel,
              "colwise_gather_output": lambda: ColwiseParallel(output_layouts=Replicate())}
    if plan is None:
        config = getattr(model, "config", None)
        base = getattr(config, "base_model_tp_plan", None) or {}
        prefix = getattr(model, "base_model_prefix", "")
        plan = {(f"{prefix}.{k}" if prefix and hasattr(model, prefix) else k): v for k, v in base.items()}
        plan.update(getattr(model, "_tp_plan", None) or {})
    if not plan:
        raise UsageError("--shard tp needs a tensor-parallel plan: a transformers model brings its own "
                         "(config.base_model_tp_plan); otherwise pass tp_plan={'layers.*.fc1': 'colwise', ...}")
    out: dict[str, Any] = {}
    for name, _ in model.named_modules():
        style = next((v for k, v in plan.items() if fnmatch.fnmatchcase(name, k)), None)
        if style is not None and style in styles:
            out[name] = styles[style]()
    if not out:
        raise UsageError(f"the tensor-parallel plan matches no module of {type(model).__name__}")
    return out


def _blocks(model: nn.Module) -> list[nn.Module]:
    """The modules FSDP2 shards one by one: every entry of every ``nn.ModuleList`` (transformer layers)."""
    return [m for mod in model.modules() if isinstance(mod, nn.ModuleList) for m in mod]


def sharded_copy(model: nn.Module, shard: str, world_size: int, tp: int, plan: dict[str, str] | None
                 ) -> tuple[nn.Module, Any]:
    """A fake-tensor copy of ``model`` sharded as ``shard`` over a mesh of the fake world, and its mesh."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor.parallel import parallelize_module

    if shard == "fsdp":
        mesh = init_device_mesh("cpu", (world_size,), mesh_dim_names=("dp",))
        dp, tpm = mesh, None
    elif shard == "tp":
        mesh = init_device_mesh("cpu", (world_size,), mesh_dim_names=("tp",))
        dp, tpm = None, mesh
    else:
        mesh = init_device_mesh("cpu", (world_size // tp, tp), mesh_dim_names=("dp", "tp"))
        dp, tpm = mesh["dp"], mesh["tp"]
    styles = tp_plan_of(model, plan) if tpm is not None else {}
    twin = _meta_copy(model)
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    with mode:
        twin.to_empty(device="cpu")
    # sharding outside the mode: fake parameters keep their mode in every op, while the device mesh's own
    # index tensors must stay real (a 2-d mesh's sub-mesh bookkeeping calls nonzero on them)
    if True:
        if tpm is not None:
            parallelize_module(twin, tpm, styles)
        if dp is not None:
            for block in _blocks(twin):
                fully_shard(block, mesh=dp)
            fully_shard(twin, mesh=dp)
    return twin, mesh


def mesh_info(mesh: Any) -> MeshInfo:
    return MeshInfo(tuple(int(d) for d in mesh.mesh.shape), tuple(mesh.mesh_dim_names or ()))


def _local_numel(t: torch.Tensor, coordinate: list[int]) -> int:
    """Elements of DTensor ``t`` held by the rank at ``coordinate`` of its mesh (torch's own split rule)."""
    from torch.distributed.tensor._utils import _compute_local_shape_and_global_offset
    mesh = t.device_mesh  # type: ignore[attr-defined]
    shape, _ = _compute_local_shape_and_global_offset(t.shape, mesh.shape, coordinate, t.placements,  # type: ignore[attr-defined]
                                                      skip_offset=True)
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _coordinates(mesh: Any, root: Any) -> dict[int, list[int]]:
    """Each rank's coordinate on ``mesh``: a sub-mesh (FSDP's "dp" of a 2-d mesh) holds only this rank's
    slice of the world, so the coordinate of another rank is its root-mesh coordinate on the same dims."""
    where = {int(r): [int(c) for c in (root.mesh == r).nonzero()[0]] for r in root.mesh.reshape(-1).tolist()}
    names = list(root.mesh_dim_names or ())
    if mesh.mesh_dim_names and all(n in names for n in mesh.mesh_dim_names):
        dims = [names.index(n) for n in mesh.mesh_dim_names]
        return {r: [c[d] for d in dims] for r, c in where.items()}
    return {int(r): [int(c) for c in (mesh.mesh == r).nonzero()[0]] for r in mesh.mesh.reshape(-1).tolist()}


def rank_rows(params: list[torch.Tensor], root: Any, peak: int, comm: int) -> tuple[RankRow, ...]:
    """Every rank's row: its parameter (and gradient) shards for its mesh coordinate; rank 0's peak and
    traffic for all (the same program on every rank); no latency (nothing ran).

    Parameters are grouped by (shape, placements, mesh, dtype) first: a 70B Llama has 723 parameters
    but a handful of kinds, so 64 ranks cost a few hundred shape computations, not 46,000.
    """
    from .tensors import is_dtensor
    kinds: dict[tuple, list] = {}
    for p in params:
        mesh = p.device_mesh if is_dtensor(p) else None  # type: ignore[attr-defined]
        key = (tuple(p.shape), tuple(p.placements) if mesh is not None else (), id(mesh),  # type: ignore[attr-defined]
               p.element_size(), bool(p.requires_grad))
        entry = kinds.setdefault(key, [p, 0])
        entry[1] += 1
    coords: dict[int, dict[int, list[int]]] = {}
    rows = []
    for rank in range(root.size()):
        pb = gb = 0
        for (_, _, mesh_id, size, trainable), (p, count) in kinds.items():
            if is_dtensor(p):
                mesh = p.device_mesh
                by_rank = coords.get(mesh_id)
                if by_rank is None:
                    by_rank = coords[mesh_id] = _coordinates(mesh, root)
                nbytes = _local_numel(p, by_rank[rank]) * size * count
            else:
                nbytes = p.numel() * size * count
            pb += nbytes
            gb += nbytes if trainable else 0
        rows.append(RankRow(rank=rank, param_bytes=pb, grad_bytes=gb, optimizer_state_bytes=0,
                            peak_activation_bytes=peak, latency_ms=None, comm_bytes=comm))
    return tuple(rows)


__all__ = ["SHARDS", "check", "fake_world", "mesh_info", "rank_rows", "sharded_copy", "simulating", "tp_plan_of"]
