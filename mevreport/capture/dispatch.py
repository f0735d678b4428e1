"""Capture by running: a TorchDispatchMode that records every executed aten op.

Running the model (rather than tracing it) is what lets data-dependent
control flow, Hugging Face cache objects and dict inputs through (DESIGN §1).
Each op becomes a :class:`~mevreport.graph.Node` through the one
:class:`~mevreport.capture.nodes.NodeBuilder` (shared with export capture);
this recorder only says what it knows of each tensor: the node that produced
it (a tag on the tensor) or its name (parameters, buffers, inputs).
"""
from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .fake_ops import call_op
from .inputs import argument_names, named_leaves
from .modules import ModuleTracker
from .nodes import InputRef, NodeBuilder, ParamRef, Produced, Ref, source_for

# Ops that return no tensor or only describe one; they are not work.
_SKIP_NAMESPACES = {"prim"}

StatsHook = Callable[[int, torch.Tensor], None]
# Views that can repeat or drop elements even when numel is unchanged: their
# values are not a permutation of their base's, so they get their own stats.
_NON_PERMUTING_VIEWS = {"as_strided", "unfold", "diagonal", "view_as_real", "view_as_complex", "real", "imag"}
# Outputs whose values are not there when the op returns, so they get no statistics (nor do views of them):
# a collective fills its buffers asynchronously, until its wait (FSDP2's all-gather, DTensor's all-reduce),
# FSDP2's own ops pack and unpack those buffers, and an uninitialised allocation holds whatever the
# allocator left (FSDP2 allocates its all-gather output so: read early, it showed NaN "origins").
_NO_VALUES_NAMESPACES = {"c10d", "_c10d_functional", "fsdp"}
_UNINITIALISED = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"}


def tensors_in(values: Any) -> list[torch.Tensor]:
    """Tensors among op arguments or results: aten nests at most one list deep.

    ``tree_leaves`` costs about 20 µs a call; this costs about 1.
    """
    if isinstance(values, torch.Tensor):
        return [values]
    if not isinstance(values, (list, tuple, type({}.values()))):  # scalars: bool, int, float, None
        return []
    found: list[torch.Tensor] = []
    for v in values:
        if isinstance(v, torch.Tensor):
            found.append(v)
        elif type(v) in (list, tuple):
            found.extend(x for x in v if isinstance(x, torch.Tensor))
    return found


_WRITTEN_ONLY: dict[Any, tuple[int, ...]] = {}


def written_outputs(func: Any, args: tuple, kwargs: dict) -> list[torch.Tensor]:
    """The tensors an op that returns nothing writes in place (``_foreach_add_`` and the other
    multi-tensor optimizer kernels): they are its outputs, or its work would go unrecorded."""
    found = _WRITTEN_ONLY.get(func)
    if found is None:
        schema = getattr(func, "_schema", None)
        found = () if schema is None or schema.returns else tuple(
            i for i, a in enumerate(schema.arguments) if a.alias_info is not None and a.alias_info.is_write)
        _WRITTEN_ONLY[func] = found
    if not found:
        return []
    schema_args = func._schema.arguments
    values = [args[i] if i < len(args) else kwargs.get(schema_args[i].name) for i in found]
    return tensors_in(values)


def is_work(args: tuple, kwargs: dict, outs: list[torch.Tensor]) -> bool:
    """False for an op that reads no tensor and makes only empty ones.

    Batch norm on the CPU allocates a zero-element reserve buffer per call
    (``aten.empty``): no data, no work, one more box in the graph and one more
    recorded op.  The recorder and the per-op timer both skip these, so their
    op sequences still match.
    """
    for o in outs:
        n = o.numel()
        if type(n) is not int or n:
            return True
    return bool(tensors_in(args) or (kwargs and tensors_in(kwargs.values())))


def work_outputs(func: Any, args: tuple, kwargs: dict, out: Any) -> list[torch.Tensor]:
    """The tensors an op made when it is work to count, else ``[]``: not a ``prim`` op, a tensor
    out, and :func:`is_work`.  The recorder and the per-op timer share this one test, so their
    op sequences match."""
    if func.namespace in _SKIP_NAMESPACES:
        return []
    outs = tensors_in(out) or written_outputs(func, args, kwargs)  # in-place ops returning nothing: _foreach_add_
    return outs if outs and is_work(args, kwargs, outs) else []


class TensorNames:
    """What a capture knows by name (parameters, buffers, inputs), by tensor identity.

    A dict keyed by ``id`` that also holds the tensor, so the id stays valid
    for the capture (these tensors outlive it anyway); a ``WeakIdKeyDictionary``
    costs about 2 µs a set or get, 0.6 ms for a ResNet-50's 320 tensors.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[torch.Tensor, InputRef | ParamRef]] = {}

    def __setitem__(self, t: torch.Tensor, ref: InputRef | ParamRef) -> None:
        self._by_id[id(t)] = (t, ref)

    def get(self, t: Any, default: Any = None) -> InputRef | ParamRef | Any:
        entry = self._by_id.get(id(t))
        return entry[1] if entry is not None and entry[0] is t else default

    def by_id(self) -> dict[int, InputRef | ParamRef]:
        return {i: ref for i, (_, ref) in self._by_id.items()}


class TensorTags:
    """Which node produced a tensor and which node owns its storage (a :class:`Produced`).

    Kept as an attribute on the tensor object itself (named per recorder), so
    it dies with the tensor and costs no weak reference per op, unlike a
    ``WeakIdKeyDictionary`` (about 2.5 µs a set or get).
    """

    _serial = itertools.count()

    def __init__(self) -> None:
        # A process-wide serial, never an id(): a tag left on a long-lived tensor by an
        # earlier capture must not be mistaken for one of this capture's.
        self.key = f"_mevreport_tag_{next(self._serial)}"

    def tag(self, t: torch.Tensor) -> Produced | None:
        return getattr(t, self.key, None)

    def get(self, t: torch.Tensor, default: Any = None) -> Any:
        """The id of the node that produced ``t``."""
        tag = getattr(t, self.key, None)
        return tag.node if tag is not None else default

    def clear(self, t: torch.Tensor) -> None:
        try:
            t.__dict__.pop(self.key, None)
        except (AttributeError, TypeError, RuntimeError):
            pass

    def set(self, t: torch.Tensor, produced: Produced) -> None:
        try:
            setattr(t, self.key, produced)
        except (AttributeError, TypeError, RuntimeError):  # a tensor type without attributes
            pass


def _local_shards() -> Any:
    """A :class:`~mevreport.distributed.shards.LocalShards` inside a process group, else None (no cost)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    from ..distributed.shards import LocalShards
    return LocalShards()


class OpRecorder(TorchDispatchMode):
    """Records nodes while the model runs; see the module docstring."""

    def __init__(
        self,
        tracker: ModuleTracker,
        names: TensorNames,
        stats_hook: StatsHook | None = None,
        before_op: Callable[[Any, tuple, dict], None] | None = None,
    ) -> None:
        super().__init__()
        self.before_op = before_op  # e.g. ParamGuard.before: save a parameter an op is about to write
        self.tracker = tracker
        self.names = names  # parameter / input tensors -> their refs
        # The named tensors stay alive for the whole capture, so their ids are stable keys.
        self._name_by_id = names.by_id()
        self._tagged_named: list[torch.Tensor] = []  # named tensors written in place, tagged as outputs
        self.stats_hook = stats_hook
        self.builder = NodeBuilder()
        self.nodes = self.builder.nodes
        self.producer = TensorTags()
        self.failed_at: tuple[str, str] | None = None
        self._view_cache: dict[Any, bool | None] = {}
        # inside a process group: which plain tensors are local shards of DTensors (tensor parallelism)
        self.shards = _local_shards()
        self._no_values_ops: dict[Any, bool] = {}
        self._no_values: set[int] = set()  # node ids whose outputs hold no values yet (see _NO_VALUES_NAMESPACES)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.before_op is not None:
            self.before_op(func, args, kwargs)
        try:
            out = call_op(func, args, kwargs)
        except Exception:
            if self.failed_at is None:
                self.failed_at = (str(func), self.tracker.current[0])
            raise
        outs = work_outputs(func, args, kwargs, out)
        if not outs:
            return out
        self._record(func, args, kwargs, outs)
        return out

    def ref(self, t: Any) -> Ref:
        """What this capture knows of tensor ``t``: its producer, else its name."""
        tag = getattr(t, self.producer.key, None)
        if tag is not None:
            return tag
        return self._name_by_id.get(id(t))

    def _base_of(self, t: Any) -> tuple[Ref, Any]:
        return (self.ref(t), t) if isinstance(t, torch.Tensor) else (None, None)

    def _record(self, func: Any, args: tuple, kwargs: dict, outs: list[torch.Tensor]) -> None:
        in_tensors = tensors_in(args)
        if kwargs:
            in_tensors += tensors_in(kwargs.values())
        produced = self.builder.add(func, refs=[self.ref(t) for t in in_tensors], outs=outs, args=args,
                                    kwargs=kwargs, base_of=self._base_of, module=self.tracker.current)
        for t, p in zip(outs, produced):
            self.producer.set(t, p)
            if id(t) in self._name_by_id:  # a parameter, buffer or input written in place
                self._tagged_named.append(t)
        groups: tuple = ()
        if self.shards is not None:
            groups = self._mark_shards(in_tensors, outs, produced)
        if self.stats_hook is not None:
            self._observe(func, produced[0].node, outs, self.builder.flat_args(func, args, kwargs),
                          self.builder.sources(func), groups)

    def _mark_shards(self, in_tensors: list[torch.Tensor], outs: list[torch.Tensor], produced: list) -> tuple:
        """Tensor parallelism: a DTensor output's local tensor is what the next plain op reads, so it carries
        the producer's tag too (the edge); the node records how it relates to the global tensor."""
        from ..distributed.tensors import group_size, is_dtensor, local_tensor
        assert self.shards is not None
        for t, p in zip(outs, produced):
            if is_dtensor(t):
                self.producer.set(local_tensor(t), p)
        groups, divisor = self.shards.after_op(in_tensors, outs)
        node = self.nodes[-1]
        if groups:
            self.nodes[-1] = dataclasses.replace(node, shard_factor=group_size(groups))
        elif divisor > 1 and node.output_bytes:
            self.nodes[-1] = dataclasses.replace(node, local_output_bytes=node.output_bytes // divisor)
        return groups

    def clear_tags(self) -> None:
        """Take the tags off parameters, buffers and inputs written in place
        (BatchNorm running statistics, caches), so the model is left as found:
        a tensor attribute would otherwise travel into ``torch.save``."""
        for t in self._tagged_named:
            self.producer.clear(t)

    def _view_kind(self, func: Any) -> bool | None:
        """None: the op computes values; True: a pure view whose values are its base's
        (when numel is unchanged); False: another pure view (slices may drop, strides repeat)."""
        if func in self._view_cache:
            return self._view_cache[func]
        if True:
            rets = func._schema.returns
            pure = bool(rets) and all(r.alias_info is not None and not r.alias_info.is_write for r in rets)
            kind = None if not pure else func._schema.name.split("::")[-1] not in _NON_PERMUTING_VIEWS
            self._view_cache[func] = kind
        return kind

    def _observe(self, func: Any, node_id: int, outs: list[torch.Tensor], flat_args: list, sources: list,
                 groups: tuple = ()) -> None:
        """Statistics of the node's first floating output, unless they are known already.

        A reshape/permute of a tensor whose statistics were taken (and which was
        not written since: same version counter) has the same statistics, so they
        are shared instead of reduced again; a view of a parameter gets none
        (weight statistics cover parameters).  This halves the work on
        transformers, where every linear layer transposes its weight.
        """
        hook = self.stats_hook
        index, t = next(((i, o) for i, o in enumerate(outs) if o.is_floating_point() or o.is_complex()), (-1, None))
        if t is None or hook is None:
            return
        no_values = self._no_values_ops.get(func)
        if no_values is None:
            no_values = self._no_values_ops[func] = (func.namespace in _NO_VALUES_NAMESPACES
                                                     or func._schema.name.split("::")[-1] in _UNINITIALISED)
        if no_values:
            self._no_values.add(node_id)
            return
        view = self._view_kind(func)
        if view is not None:
            src = source_for(sources, index)
            base = flat_args[src] if src is not None and src < len(flat_args) else None
            if isinstance(base, (list, tuple)):
                base = base[0] if base else None
            if isinstance(base, torch.Tensor):
                pid = self.producer.get(base) if base is not t else None
                if pid in self._no_values:
                    self._no_values.add(node_id)
                    return
                if pid is None:
                    named = self._name_by_id.get(id(base))
                    if type(named) is ParamRef:
                        return
                    # inside a process group, a view of a tensor made outside the graph is FSDP2's view of
                    # its all-gather buffers, read before the collective has filled them
                    if named is None and self.shards is not None:
                        return
                elif view and t.numel() == base.numel():
                    share = getattr(hook, "share", None)
                    if share is not None and share(node_id, pid, base):
                        return
        if groups:  # a local shard: the statistics of every rank's shards together, the global tensor's
            from ..distributed.tensors import union_values
            t = union_values(t, groups)
        hook(node_id, t)


def name_inputs(model: torch.nn.Module, args: tuple, kwargs: dict, names: TensorNames) -> None:
    """Each input tensor under the name the report shows (``x``, ``input_ids``, ``batch.0``)."""
    for arg_name, value in argument_names(model, args, kwargs):
        for leaf_name, t in named_leaves(value, arg_name):
            names[t] = InputRef(leaf_name)
