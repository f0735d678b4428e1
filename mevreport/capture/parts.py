"""What one capture method hands back to :func:`~mevreport.capture.run.capture`.

Both methods (dispatch and ``torch.export``) produce the same parts; the
orchestrator adds what is common to both (parameters, inputs, capture info),
so a :class:`~mevreport.graph.Graph` is built in exactly one place.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..graph import Measurements, ModuleInfo, Node


@dataclass(frozen=True)
class CaptureParts:
    nodes: tuple[Node, ...]
    modules: tuple[ModuleInfo, ...]
    output_node_ids: tuple[int, ...]
    measurements: Measurements
    method: str
