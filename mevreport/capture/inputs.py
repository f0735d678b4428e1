"""Example inputs: normalising what users pass, naming it, moving it.

``inputs`` may be a tensor, a tuple/list of positional arguments or a dict of
keyword arguments (DESIGN §2); everything downstream sees ``(args, kwargs)``.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils import _pytree as pytree

from ..errors import UsageError

Args = tuple[Any, ...]
Kwargs = dict[str, Any]


@dataclass(frozen=True)
class CallArgs:
    """Positional and keyword arguments together, for calls that need both
    (e.g. the example inputs saved in a ``torch.export`` archive)."""

    args: Args = ()
    kwargs: Kwargs = field(default_factory=dict)


def normalize_inputs(inputs: Any) -> tuple[Args, Kwargs]:
    if inputs is None:
        return (), {}
    if isinstance(inputs, CallArgs):
        return tuple(inputs.args), dict(inputs.kwargs)
    if isinstance(inputs, torch.Tensor):
        return (inputs,), {}
    if isinstance(inputs, dict):
        bad = [k for k in inputs if not isinstance(k, str)]
        if bad:
            raise UsageError(f"keyword inputs must have string keys, got {bad[0]!r}")
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    raise UsageError(
        f"inputs must be a tensor, a tuple/list of positional arguments or a dict of keyword arguments, "
        f"not {type(inputs).__name__}"
    )


def _key_name(key: object) -> str:
    """One step of a pytree key path as the report names it: ``[0]`` for a sequence, ``.key`` otherwise."""
    if isinstance(key, pytree.SequenceKey):
        return f"[{key.idx}]"
    if isinstance(key, pytree.MappingKey):
        return f".{key.key}"
    if isinstance(key, pytree.GetAttrKey):  # a named tuple's field
        return f".{key.name}"
    return str(key)


def _container(obj: Any) -> bool:
    # Only the plain containers (and their pytree-registered kin) are descended into; any other
    # registered type may lack key paths, and a model's inputs are named through these three.
    return isinstance(obj, (dict, list, tuple))


def named_leaves(obj: Any, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    """Tensors inside nested tuples/lists/dicts with readable names (``x[0]``, ``batch.ids``)."""
    for path, leaf in pytree.tree_leaves_with_path(obj, is_leaf=lambda o: not _container(o)):
        if isinstance(leaf, torch.Tensor):
            yield prefix + "".join(_key_name(k) for k in path), leaf


def argument_names(model: nn.Module, args: Args, kwargs: Kwargs) -> list[tuple[str, Any]]:
    """Pair each argument with its parameter name in ``forward``, when it binds."""
    try:
        bound = inspect.signature(model.forward).bind_partial(*args, **kwargs)
        pairs: list[tuple[str, Any]] = []
        for name, value in bound.arguments.items():
            param = bound.signature.parameters[name]
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                pairs.extend((f"{name}[{i}]", v) for i, v in enumerate(value))
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                pairs.extend(value.items())
            else:
                pairs.append((name, value))
        return pairs
    except (TypeError, ValueError):
        return [(f"arg{i}", a) for i, a in enumerate(args)] + list(kwargs.items())


def map_tensors(obj: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``fn`` to every tensor in nested tuples/lists/dicts (any pytree), keeping the structure."""
    return pytree.tree_map_only(torch.Tensor, fn, obj)


def iter_output_tensors(obj: Any, depth: int = 0, seen: set[int] | None = None) -> Iterator[torch.Tensor]:
    """Every tensor reachable from a model's output, cache objects included.

    Hugging Face outputs are dicts; their cache objects are plain objects
    holding lists of tensors, so attributes are walked too (bounded depth).
    """
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 8:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from iter_output_tensors(v, depth + 1, seen)
    elif isinstance(obj, (list, tuple, set)):
        for v in obj:
            yield from iter_output_tensors(v, depth + 1, seen)
    elif hasattr(obj, "__dict__") and not isinstance(obj, (nn.Module, type)) and not callable(obj):
        for v in vars(obj).values():
            yield from iter_output_tensors(v, depth + 1, seen)
