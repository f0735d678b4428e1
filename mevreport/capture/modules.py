"""Which module is running: a stack kept by global forward hooks.

Global hooks (rather than hooks on each module) see every module call,
including modules reached through shared or tied references, and are removed
in one place.  Paths are the names ``named_modules()`` gives.  A module
reachable under several names (one Linear shared by two blocks) is named, on
each call, by the name under the module that is running, so ``b``'s call of
the shared layer rolls up into ``b`` and not into whichever parent
``named_modules()`` lists first; calls from elsewhere get the first name.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..distributed.tensors import class_name
from ..modpath import prefixes

MAX_NAMES = 200_000


def all_named_modules(root: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every (name, module) pair, shared modules under each of their names, in ``named_modules()`` order.

    Unlike ``named_modules(remove_duplicate=False)`` this neither recurses
    (depth is unbounded) nor loops on a module that contains its ancestor,
    and it stops adding names after ``MAX_NAMES``.
    """
    out: list[tuple[str, nn.Module]] = []
    stack: list[tuple[str, nn.Module, frozenset[int]]] = [("", root, frozenset({id(root)}))]
    while stack and len(out) < MAX_NAMES:
        name, module, ancestors = stack.pop()
        out.append((name, module))
        children = [(f"{name}.{n}" if name else n, c) for n, c in module._modules.items() if c is not None]
        for child_name, child in reversed(children):
            if id(child) not in ancestors:
                stack.append((child_name, child, ancestors | {id(child)}))
    return out


class ModuleTracker:
    """Keeps the stack of (path, call index) of the modules now running."""

    def __init__(self, root: nn.Module) -> None:
        self._aliases: dict[int, list[str]] = {}  # every name of each module, named_modules() order
        self.class_names: dict[str, str] = {}
        for name, module in all_named_modules(root):
            self._aliases.setdefault(id(module), []).append(name)
            self.class_names.setdefault(name, class_name(module))
        self.calls: Counter[str] = Counter()
        self.order: list[str] = []  # first-call order, for a stable module list
        self._stack: list[tuple[str, int]] = []
        self._ids: list[int] = []  # id of the module of each stack entry, for the post hook

    def _name_for(self, module: nn.Module) -> str | None:
        """The module's name under the running module when it has one there, else its first name."""
        aliases = self._aliases.get(id(module))
        if not aliases or len(aliases) == 1 or not self._stack:
            return aliases[0] if aliases else None
        parent = self._stack[-1][0]
        prefix = parent + "." if parent else ""
        under = [a for a in aliases if a.startswith(prefix)]
        return min(under, key=lambda a: a.count(".")) if under else aliases[0]

    @property
    def current(self) -> tuple[str, int]:
        """Innermost running module and which call of it this is."""
        return self._stack[-1] if self._stack else ("", 0)

    def _pre(self, module: nn.Module, args: object) -> None:
        name = self._name_for(module)
        if name is None:  # a module built inside forward: its ops belong to the caller
            return
        if name not in self.calls:
            self.order.append(name)
        call = self.calls[name]
        self.calls[name] += 1
        self._stack.append((name, call))
        self._ids.append(id(module))

    def _post(self, module: nn.Module, args: object, output: object) -> None:
        if self._ids and self._ids[-1] == id(module):
            self._stack.pop()
            self._ids.pop()

    def reset_stack(self) -> None:
        self._stack.clear()
        self._ids.clear()

    def reset(self) -> None:
        """Forget every call, for another run of the same model (the timed runs)."""
        self.calls.clear()
        self.order.clear()
        self.reset_stack()

    @contextmanager
    def active(self) -> Iterator[ModuleTracker]:
        """Install torch's global module hooks for the duration of the block (removed in ``finally``).

        Global, not hooks on the model's own modules, although those would be
        local: torch's fast paths refuse modules that carry hooks
        (``nn.TransformerEncoderLayer`` falls back to its unfused ops "because
        forward pre-/hooks are attached to the module"), so per-module hooks
        would change what the model executes, and the report must show what it
        really runs (issue 13; docs/robustness.md "Process-wide state").  The
        cost: a module running in another thread meanwhile would enter the
        stack; the capture runs the model in the calling thread only.  The
        post hook is not ``always_call``: when forward raises, the stack keeps
        the innermost failing module so the error can name it.
        """
        pre = nn.modules.module.register_module_forward_pre_hook(self._pre)
        post = nn.modules.module.register_module_forward_hook(self._post)
        try:
            yield self
        finally:
            pre.remove()
            post.remove()


def module_param_counts(root: nn.Module) -> dict[str, int]:
    """Parameters under each module path, each parameter counted once per module.

    One pass adding each module's own parameters to every module on its
    path, instead of ``module.parameters()`` per module (quadratic in depth ×
    modules on deep models); shared modules count under each of their names.
    """
    named = all_named_modules(root)
    counts: dict[str, int] = {name: 0 for name, _ in named}
    owned = [(name, p) for name, module in named for p in module._parameters.values() if p is not None]
    if len({id(p) for _, p in owned}) == len(owned):
        # No tensor under two names (the common case): add each module's own count to
        # its parent's, deepest names first, instead of to every prefix per parameter.
        for name, p in owned:
            counts[name] += p.numel()
        for name in sorted(counts, key=lambda n: -n.count(".")):
            if name:
                counts[name.rpartition(".")[0]] += counts[name]
        return counts
    seen: set[tuple[str, int]] = set()
    for name, module in named:
        for param in module._parameters.values():
            if param is None:
                continue
            for prefix in prefixes(name):
                if prefix in counts and (prefix, id(param)) not in seen:
                    seen.add((prefix, id(param)))
                    counts[prefix] += param.numel()
    return counts


@dataclass(frozen=True)
class ModelTensors:
    """Every parameter and buffer under each of its names, walked once per capture.

    Device checks, the names map, saving and restoring state and the
    parameter records all read these lists: each walk of a module tree costs
    about half a millisecond on a ResNet-50, and capture used to take six.
    """

    params: tuple[tuple[str, torch.Tensor], ...]   # named_parameters(remove_duplicate=False)
    buffers: tuple[tuple[str, torch.Tensor], ...]  # named_buffers(remove_duplicate=False)

    @classmethod
    def of(cls, root: nn.Module) -> ModelTensors:
        return cls(tuple(root.named_parameters(remove_duplicate=False)),
                   tuple(root.named_buffers(remove_duplicate=False)))

    def unique(self, which: str = "both") -> list[tuple[str, torch.Tensor]]:
        """Each tensor once under its first name, as ``named_parameters()`` / ``named_buffers()`` give them."""
        items = {"params": self.params, "buffers": self.buffers}.get(which, self.params + self.buffers)
        seen: set[int] = set()
        out = []
        for name, t in items:
            if id(t) not in seen:
                seen.add(id(t))
                out.append((name, t))
        return out

    @property
    def is_meta(self) -> bool:
        """True when any parameter or buffer lives on the meta device."""
        return any(t.device.type == "meta" for _, t in self.params + self.buffers)

    @property
    def device(self) -> torch.device:
        """The device of the first parameter (or buffer); CPU for a model with neither."""
        for _, t in self.params + self.buffers:
            return t.device
        return torch.device("cpu")

