"""The analysis result: a frozen :class:`Report` and its JSON document.

Field order here is the JSON document's key order (DESIGN §2,
``schema_version`` 1); fields are only ever added.  ``to_dict`` and
``from_dict`` are exact inverses, so ``mevreport.load`` of a saved report
gives an equal :class:`Report`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .graph import Histogram, TensorMeta, TensorStats, WeightStats

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ToolInfo:
    name: str
    version: str


@dataclass(frozen=True)
class ModelInfo:
    name: str
    class_name: str


@dataclass(frozen=True)
class Environment:
    torch: str
    python: str
    platform: str
    device: str
    device_name: str = ""
    git_commit: str | None = None


@dataclass(frozen=True)
class CaptureSummary:
    method: str
    notes: tuple[str, ...]
    grad_enabled: bool = False
    training: bool = False
    fake: bool = False


@dataclass(frozen=True)
class InputSummary:
    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Totals:
    params: int
    trainable_params: int
    param_bytes: int
    buffer_bytes: int
    macs: int | None
    flops: int | None
    activation_bytes: int
    peak_activation_bytes: int
    latency_ms: float | None
    frozen_params: int = 0
    buffers: int = 0
    measured_peak_bytes: int | None = None
    training_memory_estimate_bytes: int = 0
    latency_spread_ms: float | None = None
    latency_runs: int = 0
    nodes: int = 0
    uncounted_nodes: int = 0


@dataclass(frozen=True)
class ModuleRow:
    path: str
    class_name: str
    params: int
    macs: int | None
    flops: int | None
    latency_ms: float | None
    activation_bytes: int
    calls: int = 1
    depth: int = 0
    nodes: int = 0


@dataclass(frozen=True)
class ReportNode:
    id: int
    op: str
    module_path: str
    inputs: tuple[int, ...]
    outputs: tuple[TensorMeta, ...]
    macs: int | None
    flops: int | None
    output_bytes: int
    latency_ms: float | None
    stats: TensorStats | None
    module_call: int = 0
    uncounted: bool = False
    # the op's non-tensor arguments by schema name (kernel, stride, padding, dim, ...); omitted from
    # the JSON when empty, so documents of ops without any stay as they were
    args: dict[str, Any] = field(default_factory=dict, metadata={"omit_empty": True})


@dataclass(frozen=True)
class UncountedOp:
    op: str
    count: int


# Kinds that inform rather than warn: listed with the warnings, never counted as one.
NOTE_KINDS = frozenset({"capture_note", "nan_discarded"})


@dataclass(frozen=True)
class ReportWarning:
    kind: str
    node: int | None
    message: str

    @property
    def is_note(self) -> bool:
        return self.kind in NOTE_KINDS


@dataclass(frozen=True)
class WarningCount:
    """How many warnings and notes a report has: the one count every page element shows."""

    warnings: int
    notes: int

    @classmethod
    def of(cls, warnings: tuple[ReportWarning, ...] | list[ReportWarning]) -> WarningCount:
        notes = sum(1 for w in warnings if w.is_note)
        return cls(len(warnings) - notes, notes)


@dataclass(frozen=True)
class ParamSummary:
    name: str
    shape: tuple[int, ...]
    dtype: str
    numel: int
    trainable: bool
    is_buffer: bool
    tied_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class OnnxExport:
    """The ``--onnx`` export beside the report: where, by which exporter, or why not."""

    path: str
    exporter: str | None  # "dynamo" or "torchscript"; None when both failed
    opset: int | None
    error: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    schema_version: int
    tool: ToolInfo
    created_at: str
    model: ModelInfo
    environment: Environment
    capture: CaptureSummary
    inputs: tuple[InputSummary, ...]
    totals: Totals
    modules: tuple[ModuleRow, ...]
    nodes: tuple[ReportNode, ...]
    uncounted_ops: tuple[UncountedOp, ...]
    warnings: tuple[ReportWarning, ...]
    title: str | None = None
    label: str | None = None
    params: tuple[ParamSummary, ...] = ()
    weight_stats: tuple[WeightStats, ...] = ()
    memory_timeline: tuple[int, ...] = field(default=(), repr=False)
    onnx_export: OnnxExport | None = None

    # --- the API of DESIGN §2 ----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False, allow_nan=False)

    def save_json(self, path: str | Path) -> Path:
        from .fileio import atomic_write_text
        return atomic_write_text(path, self.to_json() + "\n")

    def save_html(self, path: str | Path) -> Path:
        from .fileio import atomic_write_text
        from .render.html import render_html
        return atomic_write_text(path, render_html(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        return _build(cls, data)


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not (f.metadata.get("omit_empty") and not getattr(value, f.name))}
    if isinstance(value, (tuple, list)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):  # NaN and infinities are not JSON
        return None
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _expect(value: Any, kinds: type | tuple[type, ...], what: str) -> None:
    """A JSON value of the wrong kind is a malformed document (TypeError), never a crash further on."""
    if not isinstance(value, kinds) or (isinstance(value, bool) and kinds in (int, float, (int, float))):
        raise TypeError(f"expected {what}, got {type(value).__name__} {str(value)[:40]!r}")


def _build(tp: Any, value: Any) -> Any:
    """Rebuild typed values from plain JSON data, following type hints."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _build(options[0], value)
    if origin is tuple:
        (item, *_rest) = typing.get_args(tp)
        _expect(value, (list, tuple), "a list")
        return tuple(_build(item, v) for v in value)
    if origin is dict:
        _, item = typing.get_args(tp)
        _expect(value, dict, "an object")
        return {k: _build(item, v) for k, v in value.items()}
    if tp in (int, str, bool):
        _expect(value, tp, tp.__name__)
    if tp is float:
        _expect(value, (int, float), "a number")
    if dataclasses.is_dataclass(tp):
        _expect(value, dict, f"an object for {tp.__name__}")
        hints = _HINTS.get(tp)
        if hints is None:
            hints = _HINTS[tp] = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        return tp(**{k: _build(hints[k], v) for k, v in value.items() if k in names})
    if tp is float and isinstance(value, int):
        return float(value)
    return value


__all__ = [
    "SCHEMA_VERSION",
    "CaptureSummary",
    "Environment",
    "Histogram",
    "InputSummary",
    "ModelInfo",
    "ModuleRow",
    "OnnxExport",
    "ParamSummary",
    "Report",
    "ReportNode",
    "ReportWarning",
    "TensorMeta",
    "TensorStats",
    "ToolInfo",
    "Totals",
    "UncountedOp",
    "WeightStats",
]
