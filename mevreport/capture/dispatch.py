"""Capture by running: a TorchDispatchMode that records every executed aten op.

Running the model (rather than tracing it) is what lets data-dependent
control flow, Hugging Face cache objects and dict inputs through (DESIGN §1).
Each op becomes a :class:`~mevreport.graph.Node` with edges from the nodes
that produced its tensor arguments; aliasing comes from the op's schema, so
views and in-place ops are known to allocate nothing, also under fake
tensors where there is no storage to compare.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..graph import Node, TensorMeta
from .fake_ops import call_op, concrete
from .modules import ModuleTracker

# Ops that return no tensor or only describe one; they are not work.
_SKIP_NAMESPACES = {"prim"}

StatsHook = Callable[[int, torch.Tensor], None]
# Views that can repeat or drop elements even when numel is unchanged: their
# values are not a permutation of their base's, so they get their own stats.
_NON_PERMUTING_VIEWS = {"as_strided", "unfold", "diagonal", "view_as_real", "view_as_complex", "real", "imag"}


_DTYPE_NAMES: dict[torch.dtype, str] = {}


def dtype_name(dtype: torch.dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


_META_CACHE: dict[tuple[torch.Size, torch.dtype], TensorMeta] = {}
_META_CACHE_MAX = 1 << 14


def tensor_meta(t: torch.Tensor) -> TensorMeta:
    """The (frozen, shareable) shape and dtype record of ``t``.

    A model repeats few shapes, and this is asked for every input and output
    of every op, so records are shared through a small cache; symbolic sizes
    (unhashable) skip it and record their hints.
    """
    key = (t.shape, t.dtype)
    try:
        meta = _META_CACHE.get(key)
    except TypeError:  # symbolic sizes
        return TensorMeta(tuple(concrete(d) for d in t.shape), dtype_name(t.dtype))
    if meta is None:
        shape = tuple(t.shape)
        if not all(type(d) is int for d in shape):  # symbolic sizes with a hash: their hints
            return TensorMeta(tuple(concrete(d) for d in shape), dtype_name(t.dtype))
        if len(_META_CACHE) >= _META_CACHE_MAX:
            _META_CACHE.clear()
        meta = _META_CACHE[key] = TensorMeta(shape, dtype_name(t.dtype))
    return meta


def storage_bytes(t: torch.Tensor) -> int:
    """Bytes of the storage a new tensor needs (works for fake tensors too)."""
    if t.is_contiguous():
        return concrete(t.numel()) * t.element_size()
    if concrete(t.numel()) == 0:
        return 0
    span = 1 + sum((concrete(s) - 1) * abs(concrete(st)) for s, st in zip(t.shape, t.stride()))
    return span * t.element_size()


_PLAIN = (type(None), bool, int, float, str)


def to_arg_value(value: Any) -> Any:
    """A plain, hashable, torch-free copy of an op argument."""
    tp = type(value)
    if tp in _PLAIN:
        return value
    if isinstance(value, torch.Tensor):
        return tensor_meta(value)
    if tp is list or tp is tuple:
        if all(type(v) is int for v in value):  # sizes, strides, dims: the common case
            return tuple(value)
        return tuple(to_arg_value(v) for v in value)
    if isinstance(value, (list, tuple)):
        return tuple(to_arg_value(v) for v in value)
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        if isinstance(value, torch.SymInt):
            return concrete(value)
        return value.node.hint if hasattr(value.node, "hint") else str(value)
    if isinstance(value, (torch.dtype,)):
        return dtype_name(value)
    return str(value)


# Ops whose schema declares no alias but whose output shares its input's
# storage: ``_unsafe_view`` is a view hidden from autograd (linear on 3-d
# inputs ends with one).
_UNDECLARED_VIEWS = {"aten::_unsafe_view"}


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


class TensorNames:
    """Names of the tensors a capture knows by name (parameters, buffers, inputs), by identity.

    A dict keyed by ``id`` that also holds the tensor, so the id stays valid
    for the capture (these tensors outlive it anyway); a ``WeakIdKeyDictionary``
    costs about 2 µs a set or get, 0.6 ms for a ResNet-50's 320 tensors.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[torch.Tensor, str]] = {}

    def __setitem__(self, t: torch.Tensor, name: str) -> None:
        self._by_id[id(t)] = (t, name)

    def get(self, t: Any, default: Any = None) -> Any:
        entry = self._by_id.get(id(t))
        return entry[1] if entry is not None and entry[0] is t else default

    def by_id(self) -> dict[int, str]:
        return {i: name for i, (_, name) in self._by_id.items()}


class TensorTags:
    """Which node produced a tensor and which node owns its storage.

    Kept as an attribute on the tensor object itself (named per recorder), so
    it dies with the tensor and costs no weak reference per op, unlike a
    ``WeakIdKeyDictionary`` (about 2.5 µs a set or get).
    """

    _serial = itertools.count()

    def __init__(self) -> None:
        # A process-wide serial, never an id(): a tag left on a long-lived tensor by an
        # earlier capture must not be mistaken for one of this capture's.
        self.key = f"_mevreport_tag_{next(self._serial)}"

    def get(self, t: torch.Tensor, default: Any = None) -> Any:
        tag = getattr(t, self.key, None)
        return tag[0] if tag is not None else default

    def owner(self, t: torch.Tensor, default: int = -1) -> int:
        tag = getattr(t, self.key, None)
        return tag[1] if tag is not None else default

    def clear(self, t: torch.Tensor) -> None:
        try:
            t.__dict__.pop(self.key, None)
        except (AttributeError, TypeError, RuntimeError):
            pass

    def set(self, t: torch.Tensor, producer: int, owner: int) -> None:
        try:
            setattr(t, self.key, (producer, owner))
        except (AttributeError, TypeError, RuntimeError):  # a tensor type without attributes
            pass


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
            if found is None and not ret.alias_info.before_set:
                # ``Tensor(a)[]`` (split, unbind, chunk): the set sits on the list's elements
                # and is not exposed; the argument is the one marked ``(a -> *)``.
                found = next((i for i, arg in enumerate(schema.arguments)
                              if arg.alias_info is not None and "*" in arg.alias_info.after_set), None)
        sources.append(found)
    return sources


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
        self.names = names  # parameter / input tensors -> their names
        # The named tensors stay alive for the whole capture, so their ids are stable keys.
        self._name_by_id = names.by_id()
        self._tagged_named: list[torch.Tensor] = []  # named tensors written in place, tagged as outputs
        self.stats_hook = stats_hook
        self.nodes: list[Node] = []
        self.producer = TensorTags()
        self.failed_at: tuple[str, str] | None = None
        self._alias_cache: dict[Any, list[int | None]] = {}
        self._view_cache: dict[Any, bool | None] = {}
        self._op_names: dict[Any, str] = {}
        self._arg_names: dict[Any, list[str]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if self.before_op is not None:
            self.before_op(func, args, kwargs)
        try:
            out = call_op(func, args, kwargs)
        except Exception:
            if self.failed_at is None:
                self.failed_at = (str(func), self.tracker.current[0])
            raise
        if func.namespace in _SKIP_NAMESPACES:
            return out
        outs = tensors_in(out)
        if not outs or not is_work(args, kwargs, outs):
            return out
        self._record(func, args, kwargs, out, outs)
        return out

    def _record(self, func: Any, args: tuple, kwargs: dict, out: Any, outs: list[torch.Tensor]) -> None:
        node_id = len(self.nodes)
        in_tensors = tensors_in(args)
        if kwargs:
            in_tensors += tensors_in(kwargs.values())
        inputs: list[int] = []
        params: list[str] = []
        input_names: list[str] = []
        tags = self.producer
        for t in in_tensors:
            pid = tags.get(t)
            if pid is not None:
                if pid not in inputs:
                    inputs.append(pid)
            else:
                name = self._name_by_id.get(id(t))
                if name is not None:
                    (input_names if name.startswith("input:") else params).append(name.removeprefix("input:"))

        sources = self._alias_cache.get(func)
        if sources is None:
            sources = self._alias_cache[func] = _alias_sources(func)
            self._arg_names[func] = [a.name for a in func._schema.arguments]
        flat_args: list = list(args)
        if len(args) < len(self._arg_names[func]) and any(s is not None for s in sources):
            flat_args += [kwargs.get(name) for name in self._arg_names[func][len(args):]]
        alias_of: list[int] = []
        new_bytes = 0
        for i, t in enumerate(outs):
            # One schema return may be a list (split, unbind, chunk): all its tensors share that alias.
            src = sources[i] if i < len(sources) else (sources[0] if len(sources) == 1 else None)
            if src is not None and src < len(flat_args):
                base = flat_args[src]
                base_t = base[0] if isinstance(base, (list, tuple)) and base else base
                owner = tags.owner(base_t, -1) if isinstance(base_t, torch.Tensor) else -1
                alias_of.append(owner)
            else:
                owner = node_id
                alias_of.append(-1)
                new_bytes += storage_bytes(t)
            tags.set(t, node_id, owner)
            if id(t) in self._name_by_id:  # a parameter, buffer or input written in place
                self._tagged_named.append(t)

        module_path, call = self.tracker.current
        op = self._op_names.get(func)
        if op is None:
            op = self._op_names[func] = str(func)
        self.nodes.append(
            Node(
                id=node_id,
                op=op,
                module_path=module_path,
                module_call=call,
                inputs=tuple(inputs),
                outputs=tuple(tensor_meta(t) for t in outs),
                output_bytes=new_bytes,
                alias_of=tuple(alias_of),
                args=tuple(to_arg_value(a) for a in args),
                kwargs=tuple((k, to_arg_value(v)) for k, v in kwargs.items()) if kwargs else (),
                param_inputs=tuple(params),
                input_names=tuple(input_names),
            )
        )
        if self.stats_hook is not None:
            self._observe(func, node_id, outs, flat_args, sources)

    def clear_tags(self) -> None:
        """Take the tags off parameters, buffers and inputs written in place
        (BatchNorm running statistics, caches), so the model is left as found:
        a tensor attribute would otherwise travel into ``torch.save``."""
        for t in self._tagged_named:
            self.producer.clear(t)

    def _view_kind(self, func: Any) -> bool | None:
        """None: the op computes values; True: a pure view whose values are its base's
        (when numel is unchanged); False: another pure view (slices may drop, strides repeat)."""
        kind = self._view_cache.get(func, 0)
        if kind == 0:
            rets = func._schema.returns
            pure = bool(rets) and all(r.alias_info is not None and not r.alias_info.is_write for r in rets)
            kind = None if not pure else func._schema.name.split("::")[-1] not in _NON_PERMUTING_VIEWS
            self._view_cache[func] = kind
        return kind

    def _observe(self, func: Any, node_id: int, outs: list[torch.Tensor], flat_args: list, sources: list) -> None:
        """Statistics of the node's first floating output, unless they are known already.

        A reshape/permute of a tensor whose statistics were taken (and which was
        not written since: same version counter) has the same statistics, so they
        are shared instead of reduced again; a view of a parameter gets none
        (weight statistics cover parameters).  This halves the work on
        transformers, where every linear layer transposes its weight.
        """
        index, t = next(((i, o) for i, o in enumerate(outs) if o.is_floating_point() or o.is_complex()), (-1, None))
        if t is None:
            return
        view = self._view_kind(func)
        if view is not None:
            src = sources[index] if index < len(sources) else (sources[0] if len(sources) == 1 else None)
            base = flat_args[src] if src is not None and src < len(flat_args) else None
            if isinstance(base, (list, tuple)):
                base = base[0] if base else None
            if isinstance(base, torch.Tensor):
                pid = self.producer.get(base) if base is not t else None
                if pid is None:
                    name = self._name_by_id.get(id(base))
                    if name is not None and not name.startswith("input:"):
                        return
                elif view and t.numel() == base.numel():
                    share = getattr(self.stats_hook, "share", None)
                    if share is not None and share(node_id, pid, base):
                        return
        self.stats_hook(node_id, t)
