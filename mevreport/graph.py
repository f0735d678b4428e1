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
    # the training step (DESIGN §6): which part ran the op, and for a backward op the forward
    # node whose autograd node it ran in (-1: none, e.g. gradient accumulation or the seed gradient)
    phase: str = "forward"
    grad_of: int = -1

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
    train: TrainMeasurements | None = None
