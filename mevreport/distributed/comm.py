"""Communication bytes of c10d collectives, from a captured node's argument record (DESIGN §7).

Under the dispatch recorder a collective is an op like any other: FSDP2's
all-gather arrives as ``c10d._allgather_base_``, DDP's as ``c10d.allreduce_``,
DTensor redistributions (tensor parallelism) as ``_c10d_functional.*``.  Each
has a schema argument holding the tensor(s) this rank *contributes*; its
bytes are the node's ``comm_bytes``: the size of a rank's send buffer, the
number every ring/tree cost model starts from, whatever the algorithm.
Pure: shapes and dtypes only, so analysis can call it.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..graph import Node, TensorMeta, itemsize

# op packet -> index of the schema argument with the tensor(s) this rank contributes
CONTRIBUTED_ARG: dict[str, int] = {
    # the functional collectives (DTensor redistribute, tensor parallelism, torch.compile'd code)
    "_c10d_functional.all_reduce": 0,
    "_c10d_functional.all_reduce_coalesced": 0,
    "_c10d_functional.all_gather_into_tensor": 0,
    "_c10d_functional.all_gather_into_tensor_coalesced": 0,
    "_c10d_functional.reduce_scatter_tensor": 0,
    "_c10d_functional.reduce_scatter_tensor_coalesced": 0,
    "_c10d_functional.all_to_all_single": 0,
    "_c10d_functional.broadcast": 0,
    "_c10d_functional.isend": 0,
    "_c10d_functional.batch_p2p_ops": 3,
    # the c10d process-group ops (torch.distributed.* calls: DDP, FSDP2, user code)
    "c10d.allreduce_": 0,
    "c10d.allreduce_coalesced_": 0,
    "c10d.allgather_": 1,
    "c10d.allgather_coalesced_": 1,
    "c10d._allgather_base_": 1,
    "c10d.allgather_into_tensor_coalesced_": 1,
    "c10d.reduce_scatter_": 1,
    "c10d._reduce_scatter_base_": 1,
    "c10d.reduce_scatter_tensor_coalesced_": 1,
    "c10d.broadcast_": 0,
    "c10d.reduce_": 0,
    "c10d.gather_": 1,
    "c10d.scatter_": 1,
    "c10d.alltoall_": 1,
    "c10d.alltoall_base_": 1,
    "c10d.send": 0,
}
# Communication bookkeeping that moves no bytes of its own (the wait of an async collective).
NO_TRAFFIC = ("_c10d_functional.wait_tensor", "_c10d_functional._wrap_tensor_autograd", "c10d.barrier",
              "c10d.recv_")


def packet(op: str) -> str:
    """``c10d._allgather_base_.default`` -> ``c10d._allgather_base_``."""
    parts = op.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else op


def is_collective(op: str) -> bool:
    return packet(op) in CONTRIBUTED_ARG


def _metas(value: object) -> Iterator[TensorMeta]:
    if isinstance(value, TensorMeta):
        yield value
    elif isinstance(value, tuple):
        for v in value:
            yield from _metas(v)


def comm_bytes(node: Node) -> int | None:
    """Bytes this rank contributes to the collective ``node``; None for any other op."""
    index = CONTRIBUTED_ARG.get(packet(node.op))
    if index is None:
        return None
    value = node.args[index] if index < len(node.args) else None
    return sum(m.numel * itemsize(m.dtype) for m in _metas(value))


@dataclass(frozen=True)
class CommChange:
    """One kind of collective (``c10d._allgather_base_``) in a diff: how many ran and the bytes each rank
    contributed, on each side.  ``kind``: added, removed, changed or same."""

    op: str
    kind: str
    base_count: int
    head_count: int
    base_bytes: int
    head_bytes: int


def communication_changes(base: Any, head: Any) -> tuple[CommChange, ...]:
    """The collectives of two reports side by side, by op (``mevreport diff``: a sharded report against a
    single-process one lists all its communication as added).  Pure: reads ``nodes[].comm_bytes``."""
    sides: list[dict[str, list[int]]] = []
    for report in (base, head):
        by_op: dict[str, list[int]] = {}
        for n in report.nodes:
            if n.comm_bytes is not None:
                row = by_op.setdefault(packet(n.op), [0, 0])
                row[0] += 1
                row[1] += n.comm_bytes
        sides.append(by_op)
    out = []
    for op in sorted(set(sides[0]) | set(sides[1])):
        (bc, bb), (hc, hb) = sides[0].get(op, [0, 0]), sides[1].get(op, [0, 0])
        kind = "added" if not bc else "removed" if not hc else "same" if (bc, bb) == (hc, hb) else "changed"
        out.append(CommChange(op, kind, bc, hc, bb, hb))
    return tuple(out)


__all__ = ["CONTRIBUTED_ARG", "NO_TRAFFIC", "CommChange", "comm_bytes", "communication_changes", "is_collective",
           "packet"]
