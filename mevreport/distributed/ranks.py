"""The per-rank view of a distributed run (DESIGN §7): each rank's shard bytes, peak, time and traffic.

Called by the API on every rank after the rank's own analysis: one
``all_gather_object`` of a small row per rank (the only collective here), so
every rank ends with the same ``distributed`` record and the writer rank can
write the one report.  Runs outside a process group are not touched: the
report then has no ``distributed`` record at all.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..analyze import liveness, rank_bytes
from ..errors import UsageError
from ..graph import Graph
from ..report import DistributedInfo, MeshInfo, RankRow, Report
from .tensors import is_dtensor, local_nbytes


def process_group_active() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def check_writer_rank(writer_rank: int) -> None:
    """A writer rank outside the group would leave the job without a report: refuse it on every rank alike."""
    world = torch.distributed.get_world_size() if process_group_active() else 1
    if not isinstance(writer_rank, int) or isinstance(writer_rank, bool) or not 0 <= writer_rank < world:
        raise UsageError(f"writer_rank must be a rank of the process group (0..{world - 1}), not {writer_rank!r}")


def is_writer(writer_rank: int) -> bool:
    """Whether this process writes the report: the writer rank of a process group, or the only process."""
    return not process_group_active() or torch.distributed.get_rank() == writer_rank


def held_params(model: nn.Module) -> list[torch.Tensor]:
    """The parameters as this rank holds them between steps, each once.

    FSDP2 swaps a module's registered parameters for unsharded ones during
    forward and keeps the root's unsharded afterwards (``reshard_after_forward``
    does not apply to it), so ``parameters()`` can show full tensors; the
    sharded parameter of each is FSDP's own ``sharded_param``.
    """
    managed: set[int] = set()
    out: list[torch.Tensor] = []
    from torch.distributed.fsdp import FSDPModule
    for module in model.modules():
        if not isinstance(module, FSDPModule):
            continue
        group = module._get_fsdp_state()._fsdp_param_group  # private: no public accessor for the shards
        for fp in group.fsdp_params if group is not None else ():
            info = fp._module_info
            shard = fp.sharded_param
            if id(shard) not in managed:
                out.append(shard)
            managed.update((id(shard), id(getattr(info.module, info.param_name))))
    seen = set(managed)
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def mesh_of(tensors: Iterable[torch.Tensor]) -> MeshInfo | None:
    """The device mesh of the model's DTensors (the one with most dimensions: FSDP+TP's 2-d mesh)."""
    best = None
    for t in tensors:
        if is_dtensor(t):
            mesh = t.device_mesh  # type: ignore[attr-defined]
            if best is None or mesh.ndim > best.ndim:
                best = mesh
    if best is None:
        return None
    names = best.mesh_dim_names or tuple(f"dim{i}" for i in range(best.ndim))
    return MeshInfo(tuple(int(d) for d in best.mesh.shape), tuple(names))


def forward_peak(graph: Graph) -> int:
    """This rank's peak of forward activations (its local shards), as ``peak_activation_bytes`` counts."""
    forward = tuple(n for n in graph.nodes if n.phase == "forward")
    return liveness(rank_bytes(forward), graph.output_node_ids)[0]


def step_comm_bytes(report: Report) -> int:
    """Bytes a rank contributes to collectives in the captured pass: forward, plus backward for a step."""
    return (report.totals.comm_bytes or 0) + (report.totals.backward_comm_bytes or 0)


def rank_row(report: Report, graph: Graph, params: list[torch.Tensor], rank: int) -> RankRow:
    """This rank's row: its parameter shards and the gradients of the trainable ones (a gradient has its
    parameter's layout under DDP, FSDP2 and tensor parallelism alike), its own peak, latency and traffic.
    Optimizer state is a training step's (its local shards); forward-only analysis creates none."""
    param_bytes = sum(local_nbytes(p) for p in params)
    grad_bytes = sum(local_nbytes(p) for p in params if p.requires_grad)
    state = graph.train.local_optimizer_state_bytes if graph.train is not None else 0
    return RankRow(rank=rank, param_bytes=param_bytes, grad_bytes=grad_bytes, optimizer_state_bytes=state,
                   peak_activation_bytes=forward_peak(graph), latency_ms=report.totals.latency_ms,
                   comm_bytes=step_comm_bytes(report))


def with_ranks(report: Report, graph: Graph, model: nn.Module, writer_rank: int,
               notes: tuple[str, ...] = (), mesh: Any = None) -> Report:
    """``report`` with the ``distributed`` record of the running process group (a collective: every rank
    calls it once, after its own analysis).  In a simulated world (``mesh`` given) the rows are computed,
    not gathered."""
    dist = torch.distributed
    params = held_params(model)
    if mesh is not None:
        from .simulate import mesh_info, rank_rows
        ranks = rank_rows(params, mesh, forward_peak(graph), step_comm_bytes(report))
        mesh_record: MeshInfo | None = mesh_info(mesh)
    else:
        row = rank_row(report, graph, params, dist.get_rank())
        rows: list[RankRow | None] = [None] * dist.get_world_size()
        dist.all_gather_object(rows, row)
        ranks = tuple(r for r in rows if r is not None)
        mesh_record = mesh_of(params)
    info = DistributedInfo(
        world_size=dist.get_world_size(), backend=str(dist.get_backend()), mesh=mesh_record,
        writer_rank=writer_rank, simulated=mesh is not None, ranks=ranks, notes=notes)
    totals = dataclasses.replace(report.totals, comm_bytes=report.totals.comm_bytes or 0)
    return dataclasses.replace(report, distributed=info, totals=totals)


__all__ = ["check_writer_rank", "held_params", "is_writer", "mesh_of", "process_group_active", "rank_row",
           "with_ranks"]
