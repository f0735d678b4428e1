"""The analysis result: a frozen :class:`Report` and its JSON document.

Field order here is the JSON document's key order (DESIGN §2,
``schema_version`` 1); fields are only ever added.  These dataclasses are the
one statement of the document's shape: the JSON Schema shipped as
``mevreport/schema.json`` is generated from them (``python -m mevreport.schema``)
and ``from_dict`` validates against them with pydantic, so ``to_dict`` and
``from_dict`` are exact inverses and ``mevreport.load`` of a saved report gives
an equal :class:`Report`.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Literal

from annotated_types import Ge

from .gcpause import gc_paused
from .graph import (
    Count,
    DistributedInfo,
    Duration,
    GradStats,
    Histogram,
    LossInfo,
    MeshInfo,
    OptimizerInfo,
    RankRow,
    TensorMeta,
    TensorStats,
    TrainingInfo,
    WeightStats,
)

if TYPE_CHECKING:
    from pydantic import TypeAdapter

SCHEMA_VERSION: Final = 1
ArgScalar = bool | int | float | str  # an op argument the report keeps (ReportNode.args)

# Fields added for one kind of run (the training step, DESIGN §6; distributed, §7) are left out of the
# document while they hold their default, so every other document stays byte for byte what it was;
# readers treat absent as the default.
OMIT_DEFAULT = {"omit_default": True}


@dataclass(frozen=True)
class ToolInfo:
    name: Literal["mevreport"]
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
    shape: tuple[Count, ...]
    dtype: str


@dataclass(frozen=True)
class Totals:
    params: Count
    trainable_params: Count
    param_bytes: Count
    buffer_bytes: Count
    macs: Count | None
    flops: Count | None
    activation_bytes: Count
    peak_activation_bytes: Count
    latency_ms: Duration | None
    frozen_params: Count = 0
    buffers: Count = 0
    measured_peak_bytes: Count | None = None
    training_memory_estimate_bytes: Count = 0
    latency_spread_ms: Duration | None = None
    latency_runs: Count = 0
    nodes: Count = 0
    uncounted_nodes: Count = 0
    # the training step (DESIGN §6); absent from forward-only documents
    backward_macs: Count | None = field(default=None, metadata=OMIT_DEFAULT)
    backward_flops: Count | None = field(default=None, metadata=OMIT_DEFAULT)
    optimizer_flops: Count | None = field(default=None, metadata=OMIT_DEFAULT)
    grad_bytes: Count | None = field(default=None, metadata=OMIT_DEFAULT)
    optimizer_state_bytes: Count | None = field(default=None, metadata=OMIT_DEFAULT)
    saved_activation_bytes: Count | None = field(default=None, metadata=OMIT_DEFAULT)
    train_peak_bytes: Count | None = field(default=None, metadata=OMIT_DEFAULT)
    measured_train_peak_bytes: Count | None = field(default=None, metadata=OMIT_DEFAULT)
    # distributed (DESIGN §7): Σ nodes[].comm_bytes of the forward ops, and of a training step's backward
    comm_bytes: Count | None = field(default=None, metadata=OMIT_DEFAULT)
    backward_comm_bytes: Count | None = field(default=None, metadata=OMIT_DEFAULT)


@dataclass(frozen=True)
class ModuleRow:
    path: str
    class_name: str
    params: Count
    macs: Count | None
    flops: Count | None
    latency_ms: Duration | None
    activation_bytes: Count
    calls: Count = 1
    depth: Count = 0
    nodes: Count = 0
    # the training step (DESIGN §6): bytes autograd saved for backward by this module's ops,
    # gradients of its parameters, MACs and time of the backward ops that differentiate it
    saved_activation_bytes: Count | None = field(default=None, metadata=OMIT_DEFAULT)
    grad_bytes: Count | None = field(default=None, metadata=OMIT_DEFAULT)
    backward_macs: Count | None = field(default=None, metadata=OMIT_DEFAULT)
    optimizer_state_bytes: Count | None = field(default=None, metadata=OMIT_DEFAULT)  # of its parameters
    backward_latency_ms: Duration | None = field(default=None, metadata=OMIT_DEFAULT)


@dataclass(frozen=True)
class ReportNode:
    id: Count
    op: str
    module_path: str
    inputs: tuple[Count, ...]
    outputs: tuple[TensorMeta, ...]
    macs: Count | None
    flops: Count | None
    output_bytes: Count
    latency_ms: Duration | None
    stats: TensorStats | None
    module_call: Count = 0
    uncounted: bool = False
    phase: str | None = field(default=None, metadata=OMIT_DEFAULT)  # "forward" | "backward" | "optimizer"; absent (None) means forward
    # the op's non-tensor arguments by schema name (kernel, stride, padding, dim, ...); omitted from
    # the JSON when empty, so documents of ops without any stay as they were
    args: Mapping[str, ArgScalar | tuple[ArgScalar, ...]] = field(default_factory=lambda: MappingProxyType({}),
                                                                  metadata={"omit_empty": True})
    comm_bytes: Count | None = field(default=None, metadata=OMIT_DEFAULT)  # a collective: bytes this rank contributes
    # tensor parallelism: the op ran on each rank's 1/shard_factor of its tensor; ``outputs`` are one rank's
    # shapes, MACs, FLOPs, bytes and statistics are the global tensor's
    shard_factor: Count = field(default=1, metadata=OMIT_DEFAULT)


@dataclass(frozen=True)
class UncountedOp:
    op: str
    count: Annotated[int, Ge(1)]


# Kinds that inform rather than warn: listed with the warnings, never counted as one.
NOTE_KINDS = frozenset({"capture_note", "nan_discarded"})


@dataclass(frozen=True)
class ReportWarning:
    kind: str
    node: Count | None
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
    shape: tuple[Count, ...]
    dtype: str
    numel: Count
    trainable: bool
    is_buffer: bool
    tied_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class OnnxExport:
    """The ``--onnx`` export beside the report: where, by which exporter, or why not."""

    path: str
    exporter: Literal["dynamo", "torchscript"] | None  # None when both failed
    opset: int | None
    error: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    """The JSON document written by 'mevreport report --json' and embedded in every HTML report
    (<script type="application/json" id="mevreport-data">). DESIGN.md section 2. Fields are only
    ever added within schema_version 1, so objects accept properties not listed here."""

    # pydantic reads the string after a field as its description in the generated schema
    __pydantic_config__: ClassVar[dict[str, Any]] = {"use_attribute_docstrings": True}

    schema_version: Literal[1]
    tool: ToolInfo
    created_at: str
    """ISO 8601 time of the run (UTC)"""
    model: ModelInfo
    environment: Environment
    capture: CaptureSummary
    inputs: tuple[InputSummary, ...]
    totals: Totals
    modules: tuple[ModuleRow, ...]
    """One row per module that ran; "" is the root."""
    nodes: tuple[ReportNode, ...]
    """Executed ops in execution order; id is the index."""
    uncounted_ops: tuple[UncountedOp, ...]
    warnings: tuple[ReportWarning, ...]
    title: str | None = None
    label: str | None = None
    params: tuple[ParamSummary, ...] = ()
    weight_stats: tuple[WeightStats, ...] = ()
    memory_timeline: tuple[Count, ...] = field(default=(), repr=False)
    """Bytes of op outputs alive after each node, in execution order."""
    onnx_export: OnnxExport | None = None
    """the --onnx export beside the report (null when none was asked for)"""
    training: TrainingInfo | None = field(default=None, metadata=OMIT_DEFAULT)  # None (absent): a forward-only report
    grads: tuple[GradStats, ...] = field(default=(), metadata=OMIT_DEFAULT)  # one per parameter after backward, tied once
    distributed: DistributedInfo | None = field(default=None, metadata=OMIT_DEFAULT)  # None (absent): one process

    # --- the API of DESIGN §2 ----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        with gc_paused():
            return _to_plain(self)

    def to_json(self) -> str:
        from .jsontext import document_text  # orjson: the standard library indents in pure Python
        with gc_paused():
            return document_text(self.to_dict())

    def save_json(self, path: str | Path) -> Path:
        from .fileio import atomic_write_text
        return atomic_write_text(path, self.to_json() + "\n")

    def save_html(self, path: str | Path) -> Path:
        from .fileio import atomic_write_text
        return atomic_write_text(path, _renderer("html")(self))

    def save_trace(self, path: str | Path) -> Path:
        """The measured op timeline as Chrome trace JSON (Perfetto, ``chrome://tracing``)."""
        from .fileio import atomic_write_text
        return atomic_write_text(path, _renderer("trace")(self) + "\n")

    def save_csv(self, directory: str | Path) -> list[Path]:
        """``ops.csv`` and ``modules.csv`` in ``directory`` (created if missing), written as one step."""
        from .fileio import atomic_write_texts
        files = _renderer("csv")(self)
        return atomic_write_texts([(Path(directory) / name, text) for name, text in files.items()])

    def _repr_html_(self) -> str:
        """A notebook cell ending in a Report shows the report (framed: see render/notebook.py)."""
        return str(_renderer("notebook")(self))

    def __repr__(self) -> str:
        """One line: the dataclass repr of a report runs to thousands of characters."""
        t = self.totals
        macs = "MACs not counted" if t.macs is None else f"{t.macs:,} MACs"
        if t.macs is not None and t.uncounted_nodes:  # a lower bound, as the Compute card says
            macs = f"≥ {macs} ({t.uncounted_nodes:,} op(s) without a cost rule)"
        return (f"<mevreport.Report {self.model.name!r} ({self.model.class_name}): {t.params:,} params, "
                f"{len(self.nodes):,} ops, {macs}>")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """The report of a plain JSON document, checked as ``mevreport.load`` checks it
        (raises ``pydantic.ValidationError``)."""
        return cls.from_json(json.dumps(data, allow_nan=False))

    @classmethod
    def from_json(cls, text: str | bytes) -> Report:
        """The report of a JSON document, checked against the dataclasses' types and constraints.

        Strict: an integer field takes no string, float or boolean (a float field
        takes an integer); keys no field names are ignored (fields are only ever added).
        """
        return report_adapter().validate_json(text, strict=True)


# Pages, traces and tables are drawn by the render stage, which this data module must not
# import (issue 13).  mevreport/api.py installs the renderers here when it is imported, and
# package mevreport resolves ``Report`` through it, so they are set before a Report is used.
_RENDERERS: dict[str, Callable[[Report], Any]] = {}
RENDERER_KINDS = ("html", "notebook", "trace", "csv")


def set_renderer(kind: str, render: Callable[[Report], Any]) -> None:
    """Install how a report becomes a page (``html``), a notebook cell (``notebook``), a Chrome
    trace (``trace``) or its CSV tables (``csv``: file name -> text); called by the API layer."""
    if kind not in RENDERER_KINDS:
        raise ValueError(f"unknown renderer kind {kind!r}")
    _RENDERERS[kind] = render


def _renderer(kind: str) -> Callable[[Report], Any]:
    if kind not in _RENDERERS:
        raise RuntimeError(f"no {kind} renderer installed: import mevreport (its API installs them)")
    return _RENDERERS[kind]


_Plan = tuple[tuple[str, bool, Any, bool], ...]
_PLANS: dict[type, _Plan] = {}
_PLAIN = frozenset({int, str, bool, type(None)})


def _plan(cls: type) -> _Plan:
    """A dataclass's fields as (name, omit_default, default, omit_empty), read once per class:
    ``dataclasses.fields`` and ``is_dataclass`` per value cost more than the copy itself
    (100,000 nodes are about 5 million values)."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = tuple((f.name, bool(f.metadata.get("omit_default")), f.default,
                                    bool(f.metadata.get("omit_empty"))) for f in dataclasses.fields(cls))
    return plan


def _to_plain(value: Any) -> Any:
    cls = type(value)
    if cls in _PLAIN:
        return value
    if cls is float:
        return value if math.isfinite(value) else None  # NaN and infinities are not JSON
    if cls in _PLANS or dataclasses.is_dataclass(value):
        out = {}
        for name, omit_default, default, omit_empty in _plan(cls):
            v = getattr(value, name)
            if omit_default and (v is None if default is None else v == default):
                continue
            if omit_empty and not v:
                continue
            out[name] = _to_plain(v)
        return out
    if isinstance(value, (tuple, list)):
        return [_to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@functools.cache
def report_adapter() -> TypeAdapter[Report]:
    """pydantic's validator and schema generator for :class:`Report`, built on first use
    (about 30 ms; ``import mevreport`` does not import pydantic)."""
    from pydantic import TypeAdapter
    return TypeAdapter(Report)


__all__ = [
    "SCHEMA_VERSION",
    "CaptureSummary",
    "DistributedInfo",
    "Environment",
    "GradStats",
    "Histogram",
    "InputSummary",
    "LossInfo",
    "MeshInfo",
    "ModelInfo",
    "ModuleRow",
    "OnnxExport",
    "OptimizerInfo",
    "ParamSummary",
    "RankRow",
    "Report",
    "ReportNode",
    "ReportWarning",
    "TensorMeta",
    "TensorStats",
    "ToolInfo",
    "Totals",
    "TrainingInfo",
    "UncountedOp",
    "WeightStats",
    "report_adapter",
]
