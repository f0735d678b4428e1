"""ONNX in and out (issue 5).

In: :func:`analyze_onnx` reads a ``.onnx`` file into the same
:class:`~mevreport.graph.Graph` the PyTorch capture builds (capture method
``onnx``), so the analysis, the cost registry and the page are shared.
Out: :func:`export_onnx` writes a PyTorch model as ONNX beside its report.
The ``onnx`` and ``onnxruntime`` imports happen inside these modules, so
``import mevreport`` does not pay for them.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from ..report import OnnxExport, Report


def is_onnx_path(spec: str) -> bool:
    return spec.lower().endswith(".onnx") and ":" not in Path(spec).name


def analyze_onnx(path: str | Path, *, input_shapes: list[tuple[int, ...]] | None = None,
                 named_shapes: dict[str, tuple[int, ...]] | None = None, device: str | None = None,
                 stats: bool = True, runs: int = 3, title: str | None = None, label: str | None = None,
                 name: str | None = None, progress: Callable[[str], None] | None = None) -> Report:
    """The report of an ONNX file: static shapes and costs, measured with onnxruntime."""
    from ..assemble import report_of
    from .capture import capture_onnx
    graph = capture_onnx(path, positional_shapes=input_shapes, named_shapes=named_shapes, device=device,
                         stats=stats, runs=runs, name=name, progress=progress)
    return report_of(graph, title=title, label=label)


def export_onnx(model: nn.Module, inputs: Any, path: str | Path) -> OnnxExport:
    from .export import export_onnx as _export
    return _export(model, inputs, path)


def with_export(report: Report, export: OnnxExport) -> Report:
    """The report with the export recorded in ``onnx_export`` and in the capture notes."""
    from ..report import ReportWarning
    from .export import export_note
    note = export_note(export)
    capture = dataclasses.replace(report.capture, notes=report.capture.notes + (note,))
    warnings = report.warnings + ((ReportWarning("onnx_export", None, note),) if export.error else ())
    return dataclasses.replace(report, capture=capture, onnx_export=export, warnings=warnings)


__all__ = ["analyze_onnx", "export_onnx", "is_onnx_path", "with_export"]
