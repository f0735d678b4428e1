"""Collectives and FSDP2's buffer copies: no arithmetic (0 FLOPs), counted so they are never "uncounted".

What a collective costs is bytes on the wire, not FLOPs: analysis reads those
from :func:`mevreport.distributed.comm.comm_bytes` into ``nodes[].comm_bytes``.
FSDP2's own ops (``fsdp.all_gather_copy_in``, ``fsdp.split_with_sizes_copy``,
``fsdp.chunk_cat``, ``fsdp.copy_``) pack and unpack the flat all-gather and
reduce-scatter buffers: data movement, 0 like every copy.
"""
from __future__ import annotations

from ..distributed.comm import CONTRIBUTED_ARG, NO_TRAFFIC
from ..graph import Node
from . import formulas as F
from .registry import Symbols, register

FSDP_COPIES = ("fsdp.all_gather_copy_in", "fsdp.split_with_sizes_copy", "fsdp.chunk_cat", "fsdp.copy_")


def _zero(node: Node) -> Symbols:
    return {}


register(*CONTRIBUTED_ARG, *NO_TRAFFIC, formula=F.zero, where="communication: its bytes are the node's comm_bytes")(_zero)
register(*FSDP_COPIES, formula=F.zero, where="FSDP2 packing of the communication buffers: data movement")(_zero)
