"""The capture stage's output: what the model executed, as frozen records.

A :class:`Graph` is everything the analysis needs and nothing that ties it
to torch objects: shapes, dtypes, scalar arguments, module paths, parameter
records and on-device observations already brought to the host.  Analysis is
then a pure function of it (DESIGN §1), so it can be tested without running a
model and re-run without the model at hand.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, TypeVar

from annotated_types import Ge, Le

# Scalar arguments are kept as plain Python values; tensors become TensorMeta.
ArgValue = Any
K = TypeVar("K")
V = TypeVar("V")

# Constraints on recorded values, stated with the type: they go into the generated JSON
# Schema (mevreport/schema.json) and are checked by ``mevreport.load`` (issue 13).
Count = Annotated[int, Ge(0)]
"""A size, a count, a number of bytes or an index: never negative."""
Duration = Annotated[float, Ge(0)]
"""Milliseconds: never negative."""
Fraction = Annotated[float, Ge(0), Le(1)]


def frozen_map(items: Mapping[K, V]) -> Mapping[K, V]:
    """A read-only copy of ``items`` for a frozen record (``types.MappingProxyType`` over a private dict)."""
    return MappingProxyType(dict(items))


def op_short(op: str) -> str:
    """``aten.convolution.default`` -> ``convolution``.

    Here, with the records, because the analysis and the renderer both name ops
    this way and the renderer must not import the analysis.
    """
    parts = op.split(".")
    return parts[1] if len(parts) >= 2 else op


_ITEMSIZE: dict[str, int] = {}


def itemsize(dtype: str) -> int:
    """Bytes per element of a dtype named as in the JSON (``float32``); 0 for a name torch does not know.

    torch knows, not a table here; it is imported on first use, so reading a report needs no torch.
    """
    size = _ITEMSIZE.get(dtype)
    if size is None:
        import torch
        dt = getattr(torch, dtype, None)
        size = _ITEMSIZE[dtype] = dt.itemsize if isinstance(dt, torch.dtype) else 0
    return size


@dataclass(frozen=True)
class TensorMeta:
    """Shape and dtype of one tensor (an op input or output)."""

    shape: tuple[Count, ...]
    dtype: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


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
    # the training step (DESIGN §6): which part ran the op, and for a backward op the forward
    # node whose autograd node it ran in (-1: none, e.g. gradient accumulation or the seed gradient)
    phase: str = "forward"
    grad_of: int = -1
    arg_names: tuple[str, ...] = ()  # the schema's names of ``args``, position by position (empty: unknown)
    # Tensor parallelism (mevreport/distributed/shards.py): a plain op on this rank's 1/shard_factor of
    # a larger tensor (its shapes are the shard's; costs and bytes scale by the factor); and this rank's
    # bytes of a DTensor output whose global bytes are ``output_bytes`` (None: the same).
    shard_factor: int = 1
    local_output_bytes: int | None = None

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
    """Equal-width bins over [min, max] of the finite values."""

    min: float
    max: float
    counts: tuple[Count, ...]


@dataclass(frozen=True)
class TensorStats:
    """Statistics of one floating tensor, reduced on the model's device.

    Over all elements of a floating (or complex: magnitudes) output; null where nothing finite was seen.
    """

    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    abs_max: float | None
    zero_fraction: Fraction
    nan_count: Count
    inf_count: Count
    histogram: Histogram | None
    numel: Count = 0


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
class GradStats:
    """One parameter's gradient after the training step's backward (DESIGN §6), tied parameters once.

    ``norm`` and ``weight_norm`` are L2 norms; ``ratio`` is ``norm / weight_norm``
    (None when either is unknown or the weight norm is 0).  ``stats`` is None
    for a parameter that received no gradient and on fake tensors.
    """

    param: str
    shape: tuple[int, ...]
    dtype: str
    norm: float | None
    weight_norm: float | None
    ratio: float | None
    stats: TensorStats | None


@dataclass(frozen=True)
class LossInfo:
    """Where the training step's loss came from: ``source`` "output" (the model's ``.loss``),
    "callable" (the user's ``loss(outputs, inputs)``) or "synthetic" (docs/training.md)."""

    source: str
    name: str


@dataclass(frozen=True)
class OptimizerInfo:
    class_name: str


@dataclass(frozen=True)
class TrainingInfo:
    """What a ``train=True`` capture ran besides the forward: the loss and the optimizer."""

    loss: LossInfo
    optimizer: OptimizerInfo


@dataclass(frozen=True)
class TrainMeasurements:
    """What one training step showed besides its nodes (DESIGN §6); analysis rolls these up.

    ``live_bytes``: bytes of the storages made during the step still alive after each
    node (same length as the graph's nodes), from weak references to the storages, so
    it is liveness as the step ran it; parameters, buffers and inputs are not in it.
    """

    training: TrainingInfo
    grads: tuple[GradStats, ...]
    grad_bytes: dict[str, int]                 # parameter (first name) -> bytes of its gradient
    saved_bytes: dict[str, int]                # innermost module running when autograd saved it -> bytes
    optimizer_state_bytes: int
    optimizer_state_by_param: dict[str, int]   # parameter -> bytes of its optimizer state
    live_bytes: tuple[int, ...]
    measured_peak_bytes: int | None = None     # CUDA: max_memory_allocated over the step, above the baseline
    untrained: tuple[str, ...] = ()            # trainable parameters that received no gradient
    local_optimizer_state_bytes: int = 0       # this rank's part of it (local shards; all of it in one process)


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

    node_stats: Mapping[int, TensorStats] = field(default_factory=dict)
    node_latency_ms: Mapping[int, float] = field(default_factory=dict)
    forward_latency_ms: float | None = None
    forward_latency_spread_ms: float | None = None
    measured_peak_bytes: int | None = None
    weight_stats: tuple[WeightStats, ...] = ()
    latency_runs: int = 0
    notes: tuple[str, ...] = ()
    # node id -> why its statistics could not be taken: it gets ``stats: null`` and a "stats_failed" warning
    stats_failures: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A frozen record must not change under the analysis: the dicts the observers filled
        # are copied into read-only views, so neither they nor a reader can alter the record.
        for name in ("node_stats", "node_latency_ms", "stats_failures"):
            object.__setattr__(self, name, frozen_map(getattr(self, name)))


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
    train: TrainMeasurements | None = None


# --- a distributed run (DESIGN §7): the report's ``distributed`` record, kept with the training records


@dataclass(frozen=True)
class RankRow:
    """One rank's own share of a distributed run (DESIGN §7): its shards, its peak, its time."""

    rank: Count
    param_bytes: Count
    grad_bytes: Count
    optimizer_state_bytes: Count
    peak_activation_bytes: Count
    latency_ms: Duration | None
    comm_bytes: Count


@dataclass(frozen=True)
class MeshInfo:
    shape: tuple[Count, ...]
    dim_names: tuple[str, ...]


@dataclass(frozen=True)
class DistributedInfo:
    """The process group the report was made in (or simulated for, ``simulated``): ``Report.distributed``."""

    world_size: Annotated[int, Ge(1)]
    backend: str
    mesh: MeshInfo | None
    writer_rank: Count
    simulated: bool
    ranks: tuple[RankRow, ...]
    notes: tuple[str, ...] = ()

    @property
    def straggler(self) -> RankRow | None:
        """The slowest rank (by measured latency); None when nothing was timed."""
        timed = [r for r in self.ranks if r.latency_ms is not None]
        return max(timed, key=lambda r: r.latency_ms or 0.0) if timed else None
