"""The one place that turns an executed op into a :class:`~mevreport.graph.Node`.

Both capture methods (the dispatch recorder and ``torch.export``) see the
same thing at each op: a target with a schema, its arguments, its output
tensors (real or fake) and the module running it.  They differ only in how
they name an argument (a live tensor against an fx node), so each hands this
builder a resolver from its own argument values to a :data:`Ref`, and the
builder does the rest: edges, aliasing, output bytes, the argument record.
Two builders once drifted (a ``split`` was 0 bytes under dispatch and the
size of its input under export); one builder cannot.

Aliasing comes from the schema and, where an output's storage can be seen
(real and fake tensors alike), from the storage itself: composite ops such
as ``reshape``, ``contiguous`` and ``to`` declare an alias but copy when they
must, and only export sees them un-decomposed.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..graph import ModuleInfo, Node, TensorMeta
from .fake_ops import concrete


@dataclass(frozen=True, slots=True)
class InputRef:
    """A leaf of the model's example inputs, by its readable name (``x``, ``batch.ids``).

    Inputs are not nodes: DESIGN §2 ``nodes[].inputs`` holds node ids only, so
    an op reading an input records the name in ``Node.input_names``.
    """

    name: str


@dataclass(frozen=True, slots=True)
class ParamRef:
    """A parameter or buffer, by its first ``named_parameters()`` / ``named_buffers()`` name."""

    name: str


@dataclass(frozen=True, slots=True)
class Produced:
    """A tensor an earlier op made: that node's id and the id of the node owning its storage
    (the node itself for new storage; -1 for a view of a parameter or input)."""

    node: int
    owner: int


Ref = Produced | InputRef | ParamRef | None
"""What a capture method knows of one tensor argument; None: nothing (a constant made elsewhere)."""

# --- tensor records --------------------------------------------------------------------

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


# --- aliasing ----------------------------------------------------------------------------

# Ops whose schema declares no alias but whose output shares its input's
# storage: ``_unsafe_view`` is a view hidden from autograd (linear on 3-d
# inputs ends with one).
_UNDECLARED_VIEWS = {"aten::_unsafe_view"}


def alias_sources(func: Any) -> list[int | None]:
    """For each return of ``func``, the index of the schema argument it aliases (None: new storage)."""
    schema = getattr(func, "_schema", None)
    if schema is None:
        return []
    if schema.name in _UNDECLARED_VIEWS:
        return [0]
    if not schema.returns:  # returns nothing, writes in place (``_foreach_add_``): the written list aliases
        written: list[int | None] = [i for i, a in enumerate(schema.arguments)
                                     if a.alias_info is not None and a.alias_info.is_write]
        return written[:1]
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


def source_for(sources: Sequence[int | None], index: int) -> int | None:
    """The aliased argument of flat output ``index``: one schema return may be a list
    (split, unbind, chunk), and then all its tensors share that return's alias."""
    if index < len(sources):
        return sources[index]
    return sources[0] if len(sources) == 1 else None


def shares_storage(out: torch.Tensor, base: Any) -> bool:
    """Whether ``out`` lives in ``base``'s storage; True when storage cannot be seen (trust the schema)."""
    if not isinstance(base, torch.Tensor):
        return True
    try:
        return out.untyped_storage()._cdata == base.untyped_storage()._cdata
    except Exception:  # sparse, nested, some tensor subclasses: no storage to compare
        return True


# --- the builder -------------------------------------------------------------------------

BaseOf = Callable[[Any], tuple[Ref, Any]]
"""A method's resolver for an alias base argument: its Ref and its tensor value (real or fake)."""


class NodeBuilder:
    """Builds the nodes of one capture, in execution order."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self._sources: dict[Any, list[int | None]] = {}
        self._arg_names: dict[Any, list[str]] = {}
        self._op_names: dict[Any, str] = {}

    def sources(self, target: Any) -> list[int | None]:
        found = self._sources.get(target)
        if found is None:
            found = self._sources[target] = alias_sources(target)
            schema = getattr(target, "_schema", None)
            self._arg_names[target] = [a.name for a in schema.arguments] if schema is not None else []
        return found

    def flat_args(self, target: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[Any]:
        """The op's arguments by schema position (keyword arguments in their slots)."""
        sources = self.sources(target)
        names = self._arg_names[target]
        flat = list(args)
        if len(args) < len(names) and any(s is not None for s in sources):
            flat += [kwargs.get(name) for name in names[len(args):]]
        return flat

    def add(self, target: Any, *, refs: Iterable[Ref], outs: Sequence[torch.Tensor], args: Sequence[Any],
            kwargs: Mapping[str, Any], base_of: BaseOf, module: tuple[str, int],
            record: tuple[Sequence[Any], Mapping[str, Any]] | None = None) -> list[Produced]:
        """Append the node for one executed op; returns a :class:`Produced` per output.

        ``refs``: the Ref of each tensor argument, in argument order.
        ``args``/``kwargs``: the call in the method's own terms (what ``base_of`` resolves);
        ``record``: the same call with tensor values, for the node's argument record
        (default: ``args``/``kwargs`` themselves).
        """
        node_id = len(self.nodes)
        inputs: list[int] = []
        params: list[str] = []
        input_names: list[str] = []
        for r in refs:
            if type(r) is Produced:
                if r.node not in inputs:
                    inputs.append(r.node)
            elif type(r) is ParamRef:
                if r.name not in params:
                    params.append(r.name)
            elif type(r) is InputRef and r.name not in input_names:
                input_names.append(r.name)

        sources = self.sources(target)
        flat = self.flat_args(target, args, kwargs) if any(s is not None for s in sources) else ()
        alias_of: list[int] = []
        produced: list[Produced] = []
        new_bytes = 0
        for i, t in enumerate(outs):
            src = source_for(sources, i)
            base = flat[src] if src is not None and src < len(flat) else None
            if isinstance(base, (list, tuple)):  # one element per output when a written list is returned as outputs
                base = base[i] if len(base) == len(outs) else (base[0] if base else None)
            aliased = False
            if base is not None:
                ref, value = base_of(base)
                if shares_storage(t, value):
                    aliased = True
                    owner = ref.owner if type(ref) is Produced else -1
            if not aliased:
                owner = node_id
                new_bytes += storage_bytes(t)
            alias_of.append(owner if aliased else -1)
            produced.append(Produced(node_id, owner))

        rec_args, rec_kwargs = record if record is not None else (args, kwargs)
        module_path, call = module
        op = self._op_names.get(target)
        if op is None:
            op = self._op_names[target] = str(target)
        self.nodes.append(Node(
            id=node_id, op=op, module_path=module_path, module_call=call, inputs=tuple(inputs),
            outputs=tuple(tensor_meta(t) for t in outs), output_bytes=new_bytes, alias_of=tuple(alias_of),
            args=tuple(to_arg_value(a) for a in rec_args),
            kwargs=tuple((k, to_arg_value(v)) for k, v in rec_kwargs.items()) if rec_kwargs else (),
            param_inputs=tuple(params), input_names=tuple(input_names),
            arg_names=tuple(self._arg_names[target][:len(rec_args)]),
        ))
        return produced


def output_node_ids(refs: Iterable[Ref]) -> tuple[int, ...]:
    """The nodes that produced a model's outputs, each once, in output order."""
    ids: list[int] = []
    for r in refs:
        if type(r) is Produced and r.node not in ids:
            ids.append(r.node)
    return tuple(ids)


def module_infos(order: Iterable[str], class_names: Mapping[str, str], calls: Mapping[str, int],
                 param_counts: Mapping[str, int]) -> tuple[ModuleInfo, ...]:
    """The module records of a capture, in first-call order, whichever way paths were found."""
    return tuple(
        ModuleInfo(path=p, class_name=class_names.get(p, ""), calls=max(1, calls.get(p, 0)),
                   params=param_counts.get(p, 0), depth=0 if p == "" else p.count(".") + 1)
        for p in order
    )
