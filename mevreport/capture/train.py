"""One training step under the recorder: forward, loss, backward, optimizer step (DESIGN §6).

The step runs on copies of the parameters and buffers (fake ones on
``device="meta"``), swapped in through ``functional_call`` as the fake path
does, with a fresh optimizer built over the copies (or a copy of the user's,
its state included).  So the user's parameters, their ``.grad``, the
optimizer and its state are never touched; :func:`~.state.model_on` keeps
mode, attributes and RNG as for a forward capture.

Backward ops are recorded by the same :class:`~.dispatch.OpRecorder`; each is
attributed to the forward op whose autograd node it runs in, as torch's own
tracing does (``torch/fx/proxy.py``): every autograd node takes the next
autograd sequence number when the forward creates it, and during backward
``torch._C._current_autograd_node()`` says which node is running.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import UsageError
from ..graph import GradStats, LossInfo, Node, OptimizerInfo, TrainingInfo, TrainMeasurements
from .dispatch import OpRecorder
from .fake import fake_runner
from .inputs import iter_output_tensors, map_tensors
from .nodes import dtype_name
from .train_memory import SavedTensors, StorageLedger, optimizer_state_bytes, storage_keys
from .weight_stats import l2_norm, tensor_stats_all

OPTIMIZERS: dict[str, Any] = {  # name -> optimizer class, built with torch's defaults
    "sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
DEFAULT_OPTIMIZER = "adamw"
SYNTHETIC_LOSS = "sum of the means of the floating-point outputs"

LossFn = Callable[[Any, Any], torch.Tensor]
OptimizerSpec = str | torch.optim.Optimizer | Callable[[Any], torch.optim.Optimizer] | None


@dataclass
class TrainSpec:
    """What the step uses besides the model: ``loss(outputs, inputs)`` (None: the default loss)
    and the optimizer (a name, an instance to copy, or a factory of the parameters)."""

    loss: LossFn | None = None
    optimizer: OptimizerSpec = None


# --- the loss ----------------------------------------------------------------------------------

def _output_loss(outputs: Any) -> torch.Tensor | None:
    value = outputs.get("loss") if isinstance(outputs, Mapping) else getattr(outputs, "loss", None)
    return value if isinstance(value, torch.Tensor) and value.numel() == 1 else None


def compute_loss(loss_fn: LossFn | None, outputs: Any, inputs: Any) -> tuple[torch.Tensor, LossInfo]:
    """The scalar the step differentiates, and where it came from.

    Default: the output's ``.loss`` (Hugging Face models given labels), else
    the synthetic loss :data:`SYNTHETIC_LOSS`: every floating output that
    depends on a trainable parameter then gets a gradient of 1/numel per
    element, which is what a real loss's gradient flows through too.
    """
    value: Any
    if loss_fn is not None:
        value = loss_fn(outputs, inputs)
        name = getattr(loss_fn, "__qualname__", None) or type(loss_fn).__name__
        info = LossInfo("callable", name)
    else:
        value = _output_loss(outputs)
        info = LossInfo("output", "loss")
        if value is None:
            terms = [t.mean() for t in iter_output_tensors(outputs)
                     if (t.is_floating_point() or t.is_complex()) and t.requires_grad and t.numel()]
            if not terms:
                raise UsageError("train=True: no output of the model depends on a trainable parameter, so "
                                 "there is nothing to differentiate; pass a loss (--loss pkg.mod:fn)")
            value = terms[0] if len(terms) == 1 else torch.stack([t.real if t.is_complex() else t for t in terms]).sum()
            info = LossInfo("synthetic", SYNTHETIC_LOSS)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise UsageError(f"the loss must be a tensor with one element, got "
                         f"{type(value).__name__}{tuple(value.shape) if isinstance(value, torch.Tensor) else ''}")
    if not value.requires_grad:
        raise UsageError(f"the loss ({info.name}) does not depend on any trainable parameter: nothing to differentiate")
    return value.reshape(()), info


# --- the optimizer -----------------------------------------------------------------------------

def _copy_optimizer(opt: torch.optim.Optimizer, copy_of: dict[int, torch.Tensor],
                    to_step: Callable[[torch.Tensor], torch.Tensor]) -> torch.optim.Optimizer:
    """The same optimizer class, groups and state over the copies: the user's is never stepped."""
    groups = []
    for g in opt.param_groups:
        missing = [p for p in g["params"] if id(p) not in copy_of]
        if missing:
            raise UsageError(f"the optimizer ({type(opt).__name__}) holds {len(missing)} parameter(s) that are not "
                             f"the model's; build it over model.parameters()")
        groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": [copy_of[id(p)] for p in g["params"]]})
    cls: Any = type(opt)
    try:
        new = cls(groups)
    except Exception as exc:
        raise UsageError(f"cannot rebuild the optimizer {type(opt).__name__} from its param_groups ({exc}); "
                         f"pass a factory instead: optimizer=lambda params: ...") from exc
    state = opt.state_dict()
    state = {**state, "state": {k: {n: to_step(v) if isinstance(v, torch.Tensor) else copy.deepcopy(v)
                                    for n, v in s.items()} for k, s in state["state"].items()}}
    new.load_state_dict(state)
    return new


def make_optimizer(spec: OptimizerSpec, params: list[torch.Tensor], copy_of: dict[int, torch.Tensor],
                   to_step: Callable[[torch.Tensor], torch.Tensor]) -> torch.optim.Optimizer:
    """A fresh optimizer over the step's parameter copies."""
    spec = DEFAULT_OPTIMIZER if spec is None else spec
    if isinstance(spec, torch.optim.Optimizer):
        return _copy_optimizer(spec, copy_of, to_step)
    if isinstance(spec, str):
        cls = OPTIMIZERS.get(spec.lower())
        if cls is None:
            raise UsageError(f"unknown optimizer {spec!r}: use {', '.join(OPTIMIZERS)} or pkg.module:factory")
        return cls(params)
    if callable(spec):
        opt = spec(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise UsageError(f"the optimizer factory returned {type(opt).__name__}, not a torch.optim.Optimizer")
        return opt
    raise UsageError(f"optimizer must be a name ({', '.join(OPTIMIZERS)}), an optimizer or a factory, "
                     f"not {type(spec).__name__}")


# --- the recorder -------------------------------------------------------------------------------

class TrainRecorder(OpRecorder):
    """The op recorder, also noting each op's phase, the autograd node it ran in and live memory."""

    def __init__(self, *args: Any, ledger: StorageLedger, param_names: dict[int, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ledger = ledger
        self.phase = "forward"
        self.phases: list[str] = []
        self.grad_of: list[int] = []
        self.param_of: list[str | None] = []  # gradient accumulation: the parameter
        self.seq_to_node: dict[int, int] = {}
        self._last_seq = torch.autograd._get_sequence_nr()
        self._param_names = param_names

    def _record(self, func: Any, args: tuple, kwargs: dict, outs: list[torch.Tensor]) -> None:
        node_id = len(self.nodes)
        super()._record(func, args, kwargs, outs)
        self.ledger.add(outs)
        self.phases.append(self.phase)
        grad_of, param = -1, None
        if self.phase == "forward":
            # the autograd nodes this op created took the sequence numbers since the last op
            seq = torch.autograd._get_sequence_nr()
            for s in range(self._last_seq, seq):
                self.seq_to_node[s] = node_id
            self._last_seq = seq
        elif self.phase == "backward":
            current = torch._C._current_autograd_node()
            if current is not None:
                variable = getattr(current, "variable", None)  # AccumulateGrad: the parameter
                if variable is not None:
                    param = self._param_names.get(id(variable))
                else:
                    grad_of = self.seq_to_node.get(current._sequence_nr(), -1)
        self.grad_of.append(grad_of)
        self.param_of.append(param)

    def attributed(self) -> list[Node]:
        """The nodes with their phase, and backward ones under the module of the forward op they differentiate."""
        out: list[Node] = []
        for n, phase, fwd, param in zip(self.nodes, self.phases, self.grad_of, self.param_of):
            changes: dict[str, Any] = {"phase": phase, "grad_of": fwd} if phase != "forward" else {}
            if fwd >= 0:
                src = self.nodes[fwd]
                changes.update(module_path=src.module_path, module_call=src.module_call)
            elif param is not None:
                changes.update(module_path=param.rpartition(".")[0], module_call=0)
            out.append(dataclasses.replace(n, **changes) if changes else n)
        return out


# --- the step ----------------------------------------------------------------------------------

@dataclass
class StepSetup:
    """The copies one step runs on."""

    state: dict[str, torch.Tensor]
    unique: list[tuple[str, torch.Tensor]]   # each copy once, first name
    trainable: list[tuple[str, torch.Tensor]]
    optimizer: torch.optim.Optimizer
    args: tuple
    kwargs: dict
    mode: Any  # the FakeTensorMode of a fake step, else a null context


def setup_step(model: nn.Module, args: tuple, kwargs: dict, dev: torch.device, fake: bool,
               spec: TrainSpec) -> StepSetup:
    named = list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers(remove_duplicate=False))
    mode: Any
    if fake:
        _, mode, state, args, kwargs = fake_runner(model, args, kwargs, dev)
        def to_step(t: torch.Tensor) -> torch.Tensor:
            # a one-element state (Adam's step count) is read with .item(): made from its value under the
            # mode, as the optimizer makes it, a fake tensor keeps that value as a constant
            if t.numel() == 1 and t.device.type == "cpu":
                from torch._subclasses.fake_tensor import unset_fake_temporarily
                with unset_fake_temporarily():  # the real value, read outside the mode
                    value = t.item()
                return torch.tensor(value, dtype=t.dtype)
            return mode.from_tensor(t)
    else:
        mode = contextlib.nullcontext()
        copies: dict[int, torch.Tensor] = {}
        for _, t in named:
            if id(t) not in copies:
                c = t.detach().clone()
                copies[id(t)] = c.requires_grad_(t.requires_grad) if isinstance(t, nn.Parameter) else c
        state = {n: copies[id(t)] for n, t in named}
        args = map_tensors(args, lambda t: t.to(dev))
        kwargs = map_tensors(kwargs, lambda t: t.to(dev))
        to_step = lambda t: t.detach().clone()  # noqa: E731
    copy_of = {id(t): state[n] for n, t in named}
    seen: set[int] = set()
    unique = [(n, state[n]) for n, t in named if not (id(t) in seen or seen.add(id(t)))]  # type: ignore[func-returns-value]
    params = {id(p) for p in model.parameters()}
    original = dict(named)
    trainable = [(n, c) for n, c in unique if c.requires_grad and id(original[n]) in params]
    if not trainable:
        raise UsageError("train=True: the model has no trainable parameter (none requires grad), so there is "
                         "nothing to differentiate")
    with mode:
        optimizer = make_optimizer(spec.optimizer, [c for _, c in trainable], copy_of, to_step)
    return StepSetup(state, unique, trainable, optimizer, args, kwargs, mode)


def run_step(model: nn.Module, s: StepSetup, spec: TrainSpec, inputs_for_loss: Callable[[tuple, dict], Any],
             phase: Callable[[str], None] = lambda _p: None) -> tuple[Any, LossInfo]:
    """Forward, loss, backward, optimizer step on the copies; the outputs and the loss record."""
    output = torch.func.functional_call(model, s.state, s.args, s.kwargs, tie_weights=True, strict=False)
    loss, info = compute_loss(spec.loss, output, inputs_for_loss(s.args, s.kwargs))
    phase("backward")
    loss.backward()
    phase("optimizer")
    s.optimizer.step()
    return output, info


def train_measurements(s: StepSetup, info: LossInfo, saved: SavedTensors, ledger: StorageLedger, *,
                       stats: bool, originals: dict[str, torch.Tensor], measured_peak: int | None) -> TrainMeasurements:
    """Gradients, optimizer state and memory of a finished step, brought to the host."""
    grads = {n: p.grad for n, p in s.trainable if p.grad is not None}
    grad_stats = tensor_stats_all(list(grads.items())) if stats else {}
    weight_stats = tensor_stats_all([(n, originals[n]) for n in grads if n in originals]) if stats else {}
    rows = []
    for n, p in s.trainable:
        g = grads.get(n)
        gs = grad_stats.get(n)
        ws = weight_stats.get(n)
        norm = l2_norm(gs) if gs is not None else None
        wnorm = l2_norm(ws) if ws is not None else None
        ratio = norm / wnorm if norm is not None and wnorm else None
        rows.append(GradStats(n, tuple(p.shape), dtype_name(g.dtype if g is not None else p.dtype), norm, wnorm,
                              ratio, gs))
    names = {id(p): n for n, p in s.unique}
    state_total, state_by, state_local = optimizer_state_bytes(s.optimizer, names)
    return TrainMeasurements(
        training=TrainingInfo(info, OptimizerInfo(type(s.optimizer).__name__)),
        grads=tuple(rows),
        grad_bytes={n: g.numel() * g.element_size() for n, g in grads.items()},
        saved_bytes=dict(saved.by_module), optimizer_state_bytes=state_total, optimizer_state_by_param=state_by,
        local_optimizer_state_bytes=state_local, live_bytes=tuple(ledger.timeline),
        measured_peak_bytes=measured_peak,
        untrained=tuple(n for n, _ in s.trainable if n not in grads),
    )


def existing_storages(s: StepSetup) -> set[int]:
    """Storages that exist before the step: the copies and the inputs (not new memory of the step)."""
    return storage_keys([t for _, t in s.unique] + list(iter_output_tensors((s.args, s.kwargs))))


def names_of(s: StepSetup) -> dict[int, str]:
    return {id(t): n for n, t in s.unique}


__all__ = ["DEFAULT_OPTIMIZER", "OPTIMIZERS", "SYNTHETIC_LOSS", "StepSetup", "TrainRecorder", "TrainSpec",
           "compute_loss", "make_optimizer", "run_step", "setup_step", "train_measurements"]
