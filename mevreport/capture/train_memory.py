"""Memory of the training step, counted exactly from the tensors themselves (DESIGN §6).

Three observers, each counting storages (not tensors: views and in-place
results share one), so nothing is counted twice:

* :class:`StorageLedger`: every storage an op of the step makes, alive from
  the op that made it until its last reference goes (a weak reference's
  callback), so "live bytes after each op" is the liveness the step really
  had, in execution order, for real and fake tensors alike.  This is how
  torch's own ``MemTracker`` follows storages.
* :class:`SavedTensors`: what autograd saves for backward, through
  ``torch.autograd.graph.saved_tensors_hooks``, each storage once, by the
  innermost module running when it was saved; parameters, buffers and inputs
  are excluded (they live anyway).
* :func:`optimizer_state_bytes`: the optimizer's own state tensors after its
  step, so the figure is what the optimizer allocated, never a rule of thumb.
"""
from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils._python_dispatch import _disable_current_modes

from .fake_ops import concrete
from .modules import ModuleTracker


def _storage(t: Any) -> torch.UntypedStorage | None:
    if not isinstance(t, torch.Tensor):
        return None
    try:
        return t.untyped_storage()
    except Exception:  # sparse, nested and some subclasses have no single storage
        return None


def storage_key(t: torch.Tensor) -> int | None:
    st = _storage(t)
    return None if st is None else st._cdata


def storage_nbytes(st: torch.UntypedStorage) -> int:
    return concrete(st.nbytes())


class StorageLedger:
    """Live bytes of the storages made during the step (see the module docstring).

    ``exclude`` holds the storages that exist before the step (parameters,
    buffers, inputs): written in place or viewed, they are not new memory.
    """

    def __init__(self, exclude: Iterable[int] = ()) -> None:
        self.live = 0
        self.peak = 0
        self.timeline: list[int] = []
        self._exclude = set(exclude)
        self._alive: dict[int, weakref.ref] = {}

    def _freed(self, key: int, nbytes: int, ref: weakref.ref) -> None:
        if self._alive.get(key) is ref:
            del self._alive[key]
            self.live -= nbytes

    def add(self, outs: Iterable[torch.Tensor]) -> None:
        """Count the outputs of one op, then note the live bytes after it."""
        for t in outs:
            st = _storage(t)
            if st is None:
                continue
            key = st._cdata
            if key in self._exclude:
                continue
            ref = self._alive.get(key)
            if ref is not None and ref() is not None:
                continue
            nbytes = storage_nbytes(st)
            self._alive[key] = weakref.ref(st, functools.partial(self._freed, key, nbytes))
            self.live += nbytes
        self.peak = max(self.peak, self.live)
        self.timeline.append(self.live)


class SavedTensors:
    """Bytes autograd saves for backward, each storage once, by module (see the module docstring)."""

    def __init__(self, tracker: ModuleTracker, exclude: Iterable[int]) -> None:
        self.tracker = tracker
        self.by_module: dict[str, int] = {}
        self._exclude = set(exclude)
        self._seen: dict[int, weakref.ref] = {}

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        st = _storage(t)
        if st is not None and st._cdata not in self._exclude:
            ref = self._seen.get(st._cdata)
            if ref is None or ref() is None:  # a new storage (an address may be reused once freed)
                self._seen[st._cdata] = weakref.ref(st)
                path = self.tracker.current[0]
                self.by_module[path] = self.by_module.get(path, 0) + storage_nbytes(st)
        # Returning ``t`` itself would tie a saved output to its own grad_fn in a cycle that
        # no collector sees (it runs through C++): the step's memory would never be freed.
        # A detached alias holds the same storage; outside the recorder, so it is no node.
        with _disable_current_modes():
            return t.detach()

    @staticmethod
    def _unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    @contextmanager
    def active(self) -> Iterator[SavedTensors]:
        with torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack):
            yield self

    @property
    def total(self) -> int:
        return sum(self.by_module.values())


def optimizer_state_bytes(optimizer: torch.optim.Optimizer,
                          names: dict[int, str]) -> tuple[int, dict[str, int], int]:
    """Bytes of the optimizer's state tensors (each storage once): in all, per parameter name, and the
    part this rank holds (the local shards of sharded state, FSDP2 and tensor parallelism; all of it
    otherwise)."""
    from ..distributed.tensors import local_nbytes
    seen: set[int] = set()
    per: dict[str, int] = {}
    local = 0
    for p, state in optimizer.state.items():
        values = state.values() if isinstance(state, dict) else ()
        for v in values:
            st = _storage(v)
            if st is None or st._cdata in seen:
                continue
            seen.add(st._cdata)
            name = names.get(id(p), "")
            per[name] = per.get(name, 0) + storage_nbytes(st)
            local += concrete(local_nbytes(v))
    return sum(per.values()), per, local


def storage_keys(tensors: Iterable[Any]) -> set[int]:
    """Storage keys of tensors that exist before the step (parameters, buffers, inputs)."""
    out = set()
    for t in tensors:
        key = storage_key(t) if isinstance(t, torch.Tensor) else None
        if key is not None:
            out.add(key)
    return out


__all__ = ["SavedTensors", "StorageLedger", "optimizer_state_bytes", "storage_key", "storage_keys"]
