"""Capture by running: a TorchDispatchMode that records every executed aten op.

Running the model (rather than tracing it) is what lets data-dependent
control flow, Hugging Face cache objects and dict inputs through (DESIGN §1).
Each op becomes a :class:`~mevreport.graph.Node` with edges from the nodes
that produced its tensor arguments; aliasing comes from the op's schema, so
views and in-place ops are known to allocate nothing, also under fake
tensors where there is no storage to compare.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakIdKeyDictionary

from ..graph import Node, TensorMeta
from .modules import ModuleTracker

# Ops that return no tensor or only describe one; they are not work.
_SKIP_NAMESPACES = {"prim"}

StatsHook = Callable[[int, torch.Tensor], None]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def tensor_meta(t: torch.Tensor) -> TensorMeta:
    return TensorMeta(tuple(int(d) for d in t.shape), dtype_name(t.dtype))


def storage_bytes(t: torch.Tensor) -> int:
    """Bytes of the storage a new tensor needs (works for fake tensors too)."""
    if t.numel() == 0:
        return 0
    span = 1 + sum((int(s) - 1) * abs(int(st)) for s, st in zip(t.shape, t.stride()))
    return span * t.element_size()


def to_arg_value(value: Any) -> Any:
    """A plain, hashable, torch-free copy of an op argument."""
    if isinstance(value, torch.Tensor):
        return tensor_meta(value)
    if isinstance(value, (list, tuple)):
        return tuple(to_arg_value(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        return value.node.hint if hasattr(value.node, "hint") else str(value)
    if isinstance(value, (torch.dtype,)):
        return dtype_name(value)
    return str(value)


# Ops whose schema declares no alias but whose output shares its input's
# storage: ``_unsafe_view`` is a view hidden from autograd (linear on 3-d
# inputs ends with one).
_UNDECLARED_VIEWS = {"aten::_unsafe_view"}


def _alias_sources(func: Any) -> list[int | None]:
    """For each return of ``func``, the index of the argument it aliases."""
    schema = func._schema
    if schema.name in _UNDECLARED_VIEWS:
        return [0]
    sources: list[int | None] = []
    for ret in schema.returns:
        found = None
        if ret.alias_info is not None:
            for i, arg in enumerate(schema.arguments):
                if arg.alias_info is not None and arg.alias_info.before_set & ret.alias_info.before_set:
                    found = i
                    break
        sources.append(found)
    return sources


class OpRecorder(TorchDispatchMode):
    """Records nodes while the model runs; see the module docstring."""

    def __init__(
        self,
        tracker: ModuleTracker,
        names: WeakIdKeyDictionary,
        stats_hook: StatsHook | None = None,
    ) -> None:
        super().__init__()
        self.tracker = tracker
        self.names = names  # parameter / input tensors -> their names
        self.stats_hook = stats_hook
        self.nodes: list[Node] = []
        self.producer: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self.owner: WeakIdKeyDictionary = WeakIdKeyDictionary()
        self.failed_at: tuple[str, str] | None = None
        self._alias_cache: dict[Any, list[int | None]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        try:
            out = func(*args, **kwargs)
        except Exception:
            if self.failed_at is None:
                self.failed_at = (str(func), self.tracker.current[0])
            raise
        if func.namespace in _SKIP_NAMESPACES:
            return out
        outs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        if not outs:
            return out
        self._record(func, args, kwargs, out, outs)
        return out

    def _record(self, func: Any, args: tuple, kwargs: dict, out: Any, outs: list[torch.Tensor]) -> None:
        node_id = len(self.nodes)
        in_tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        inputs: list[int] = []
        params: list[str] = []
        input_names: list[str] = []
        for t in in_tensors:
            pid = self.producer.get(t)
            if pid is not None:
                if pid not in inputs:
                    inputs.append(pid)
            else:
                name = self.names.get(t)
                if name is not None:
                    (input_names if name.startswith("input:") else params).append(name.removeprefix("input:"))

        sources = self._alias_cache.get(func)
        if sources is None:
            sources = self._alias_cache[func] = _alias_sources(func)
        flat_args = list(args) + [kwargs.get(a.name) for a in func._schema.arguments[len(args):]]
        alias_of: list[int] = []
        new_bytes = 0
        returns = out if isinstance(out, (tuple, list)) else (out,)
        for i, t in enumerate(outs):
            src = sources[i] if i < len(sources) else (sources[-1] if sources and len(returns) == 1 else None)
            if src is not None and src < len(flat_args):
                base = flat_args[src]
                base_t = base[0] if isinstance(base, (list, tuple)) and base else base
                owner = self.owner.get(base_t, -1) if isinstance(base_t, torch.Tensor) else -1
                alias_of.append(owner)
                self.owner[t] = owner
            else:
                alias_of.append(-1)
                self.owner[t] = node_id
                new_bytes += storage_bytes(t)
            self.producer[t] = node_id

        module_path, call = self.tracker.current
        self.nodes.append(
            Node(
                id=node_id,
                op=str(func),
                module_path=module_path,
                module_call=call,
                inputs=tuple(inputs),
                outputs=tuple(tensor_meta(t) for t in outs),
                output_bytes=new_bytes,
                alias_of=tuple(alias_of),
                args=tuple(to_arg_value(a) for a in args),
                kwargs=tuple((k, to_arg_value(v)) for k, v in kwargs.items()),
                param_inputs=tuple(params),
                input_names=tuple(input_names),
            )
        )
        if self.stats_hook is not None:
            for t in outs:
                if t.is_floating_point() or t.is_complex():
                    self.stats_hook(node_id, t)
                    break  # one output's stats per node: the first floating one
