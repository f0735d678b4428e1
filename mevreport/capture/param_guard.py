"""Copy-on-write of parameters the forward writes in place, so capture leaves them as found.

A model may change its own weights in ``forward`` (``self.w.data.add_(1)``,
an in-place op on a parameter, an ``out=`` into it).  ``.data`` makes a new
tensor with its own version counter, so neither identity nor ``_version``
sees the write; the storage does.  Before the first op that writes a storage
holding a parameter, that parameter is cloned once; afterwards its values
are copied back.  Parameters nothing writes cost nothing (unlike cloning every
weight up front, which would double the memory of a large model).

The guard is hooked into the first instrumented call (the untimed warm-up, or
the recorded call when there is none), so the clones hold the values the
model came with, and restoring after the timed runs undoes their writes too.
"""
from __future__ import annotations

from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor

from ..distributed.tensors import local_tensor


class ParamGuard:
    """Per-capture: storage pointer -> parameters on it; the saved originals."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        self._by_storage: dict[int, list[torch.Tensor]] = {}
        for p in params:
            loc = local_tensor(p)  # a DTensor's storage is its local shard's
            if loc.device.type != "meta" and loc.numel() and not isinstance(loc, FakeTensor):
                self._by_storage.setdefault(loc.untyped_storage().data_ptr(), []).append(p)
        self._saved: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._writes: dict[Any, tuple[tuple[int, str], ...]] = {}

    def _written_args(self, func: Any) -> tuple[tuple[int, str], ...]:
        found = self._writes.get(func)
        if found is None:
            schema = getattr(func, "_schema", None)
            found = tuple((i, a.name) for i, a in enumerate(schema.arguments if schema else ())
                          if a.alias_info is not None and a.alias_info.is_write)
            self._writes[func] = found
        return found

    def before(self, func: Any, args: tuple, kwargs: dict) -> None:
        """Called before each op runs: save any parameter the op is about to write."""
        if not self._by_storage:
            return
        for index, name in self._written_args(func):
            value = args[index] if index < len(args) else kwargs.get(name)
            for t in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(t, torch.Tensor) and t.device.type != "meta":
                    ptr = local_tensor(t).untyped_storage().data_ptr()
                    if ptr in self._by_storage and ptr not in self._saved:
                        with torch.no_grad():
                            self._saved[ptr] = [(p, p.detach().clone()) for p in self._by_storage[ptr]]

    def restore(self) -> None:
        """Copy the saved values back (across a device move too: parameters keep their identity)."""
        with torch.no_grad():
            for pairs in self._saved.values():
                for p, value in pairs:
                    p.data.copy_(value)
        self._saved.clear()

    @property
    def written(self) -> int:
        return sum(len(v) for v in self._saved.values())


__all__ = ["ParamGuard"]
