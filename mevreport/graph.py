"""The capture stage's output: what the model executed, as frozen records.

A :class:`Graph` is everything the analysis needs and nothing that ties it
to torch objects: shapes, dtypes, scalar arguments, module paths, parameter
records and on-device observations already brought to the host.  Analysis is
then a pure function of it (DESIGN §1), so it can be tested without running a
model and re-run without the model at hand.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Scalar arguments are kept as plain Python values; tensors become TensorMeta.
ArgValue = Any


@dataclass(frozen=True)
class TensorMeta:
    """Shape and dtype of one tensor (an op input or output)."""

    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class Node:
    """One executed aten op.

    ``args``/``kwargs`` mirror the op's call with every tensor replaced by its
    :class:`TensorMeta`, so cost rules can read strides, groups, transposition
    and the like without the tensors.  ``inputs`` are the ids of the nodes
    that produced the op's tensor arguments (parameters and model inputs have
    no producer).  ``alias_of`` gives, for each output, the node id whose
    storage it shares (views and in-place ops), or -1 when it is new storage.
    """

    id: int
    op: str
    module_path: str
    module_call: int
    inputs: tuple[int, ...]
    outputs: tuple[TensorMeta, ...]
    output_bytes: int
    alias_of: tuple[int, ...]
    args: tuple[ArgValue, ...] = ()
    kwargs: tuple[tuple[str, ArgValue], ...] = ()
    param_inputs: tuple[str, ...] = ()
    input_names: tuple[str, ...] = ()
    arg_names: tuple[str, ...] = ()  # the schema's names of ``args``, position by position (empty: unknown)

    def kwarg(self, name: str, default: Any = None) -> Any:
        for k, v in self.kwargs:
            if k == name:
                return v
        return default


@dataclass(frozen=True)
class ModuleInfo:
    """A module that ran at least once, by its ``named_modules()`` path."""

    path: str
    class_name: str
    calls: int
    params: int
    depth: int


@dataclass(frozen=True)
class ParamInfo:
    """One parameter or buffer, counted once even when shared or tied."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    numel: int
    nbytes: int
    trainable: bool
    is_buffer: bool
    tied_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class InputInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Histogram:
    min: float
    max: float
    counts: tuple[int, ...]


@dataclass(frozen=True)
class TensorStats:
    """Statistics of one floating tensor, reduced on the model's device."""

    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    abs_max: float | None
    zero_fraction: float
    nan_count: int
    inf_count: int
    histogram: Histogram | None
    numel: int = 0


@dataclass(frozen=True)
class WeightStats:
    name: str
    norm: float | None
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    histogram: Histogram | None


@dataclass(frozen=True)
class CaptureInfo:
    method: str
    notes: tuple[str, ...]
    device: str
    grad_enabled: bool
    training: bool
    fake: bool


@dataclass(frozen=True)
class Measurements:
    """What observers saw on the device; everything may be absent (fake runs)."""

    node_stats: dict[int, TensorStats] = field(default_factory=dict)
    node_latency_ms: dict[int, float] = field(default_factory=dict)
    forward_latency_ms: float | None = None
    forward_latency_spread_ms: float | None = None
    measured_peak_bytes: int | None = None
    weight_stats: tuple[WeightStats, ...] = ()
    latency_runs: int = 0
    notes: tuple[str, ...] = ()
    # node id -> why its statistics could not be taken: it gets ``stats: null`` and a "stats_failed" warning
    stats_failures: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    """Everything captured from one forward pass."""

    model_name: str
    model_class: str
    nodes: tuple[Node, ...]
    modules: tuple[ModuleInfo, ...]
    params: tuple[ParamInfo, ...]
    inputs: tuple[InputInfo, ...]
    output_node_ids: tuple[int, ...]
    capture: CaptureInfo
    measurements: Measurements = field(default_factory=Measurements)
