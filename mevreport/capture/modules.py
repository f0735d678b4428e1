"""Which module is running: a stack kept by global forward hooks.

Global hooks (rather than hooks on each module) see every module call,
including modules reached through shared or tied references, and are removed
in one place.  Paths are the names ``named_modules()`` gives, so a module
shared under two names reports the first one, exactly as torch does.
"""
from __future__ import annotations

import itertools
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class ModuleTracker:
    """Keeps the stack of (path, call index) of the modules now running."""

    def __init__(self, root: nn.Module) -> None:
        self._names: dict[int, str] = {}
        self.class_names: dict[str, str] = {}
        for name, module in root.named_modules():
            self._names.setdefault(id(module), name)
            self.class_names.setdefault(name, type(module).__name__)
        self.calls: Counter[str] = Counter()
        self.order: list[str] = []  # first-call order, for a stable module list
        self._stack: list[tuple[str, int]] = []

    @property
    def current(self) -> tuple[str, int]:
        """Innermost running module and which call of it this is."""
        return self._stack[-1] if self._stack else ("", 0)

    def _pre(self, module: nn.Module, args: object) -> None:
        name = self._names.get(id(module))
        if name is None:  # a module built inside forward: its ops belong to the caller
            return
        if name not in self.calls:
            self.order.append(name)
        call = self.calls[name]
        self.calls[name] += 1
        self._stack.append((name, call))

    def _post(self, module: nn.Module, args: object, output: object) -> None:
        name = self._names.get(id(module))
        if name is not None and self._stack and self._stack[-1][0] == name:
            self._stack.pop()

    def reset_stack(self) -> None:
        self._stack.clear()

    @contextmanager
    def active(self) -> Iterator["ModuleTracker"]:
        """Install the global hooks for the duration of the block.

        The post hook is not ``always_call``: when forward raises, the stack
        keeps the innermost failing module so the error can name it.
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

    One walk over ``named_parameters(remove_duplicate=False)`` adding each
    parameter to every module on its path, instead of ``module.parameters()``
    per module (quadratic in depth × modules on deep models).
    """
    counts: dict[str, int] = {name: 0 for name, _ in root.named_modules()}
    seen: set[tuple[str, int]] = set()
    for name, p in root.named_parameters(remove_duplicate=False):
        parts = name.split(".")[:-1]
        for depth in range(len(parts) + 1):
            prefix = ".".join(parts[:depth])
            if prefix in counts and (prefix, id(p)) not in seen:
                seen.add((prefix, id(p)))
                counts[prefix] += p.numel()
    return counts


def is_meta_model(root: nn.Module) -> bool:
    """True when any parameter or buffer lives on the meta device."""
    return any(t.device.type == "meta" for t in itertools.chain(root.parameters(), root.buffers()))


def model_device(root: nn.Module) -> torch.device:
    """The device of the first parameter (or buffer); CPU for a model with neither."""
    for t in itertools.chain(root.parameters(), root.buffers()):
        return t.device
    return torch.device("cpu")
