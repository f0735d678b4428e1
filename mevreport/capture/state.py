"""Leaving the model as found (DESIGN §1): mode, device, parameters, buffers, attributes, RNG.

Capture runs the model several times (a warm-up, the recorded run, timed
runs); whatever those calls change must be put back.  Besides mode, device
and ``requires_grad``, that is: buffer values written in place (batch-norm
running statistics in train mode), attributes a forward sets on first call
(a lazily built buffer or cache, a call counter), and the random number
generators, so that the recorded run draws what the user's own next call
would have drawn and the user's next call draws it again.
"""
from __future__ import annotations

import contextlib
import copy
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from .modules import ModelTensors, all_named_modules
from .param_guard import ParamGuard

_CONTAINERS = (dict, list, set)  # and their subclasses (OrderedDict, defaultdict)
# Exact types whose snapshot is a plain copy of the items: a module has about ten such dicts
# (parameters, buffers, children, hooks), and ``copy.copy`` of an OrderedDict goes through
# ``__reduce_ex__``, 2.7 of 11 s of a 10,000-op capture.  Only the items are compared and put back.
_SNAPSHOTS: dict[type, Callable[[Any], Any]] = {dict: dict, OrderedDict: dict, list: list, set: set}


def moves(device: torch.device, current: torch.device) -> bool:
    """Whether the run moves the model (never to or from meta: fake tensors stand in there)."""
    return device.type != "meta" and device != current and current.type != "meta"


def _same_contents(obj: Any, was: Any) -> bool:
    """Identity, not equality: containers hold tensors, whose ``==`` is elementwise."""
    if len(obj) != len(was):
        return False
    if isinstance(obj, dict):
        return all(k in obj and obj[k] is v for k, v in was.items())
    if isinstance(obj, set):
        return all(v in obj for v in was)
    return all(a is b for a, b in zip(obj, was))


def _put_back(obj: Any, was: Any) -> None:
    if isinstance(obj, dict):
        obj.clear()
        obj.update(was)
    elif isinstance(obj, set):
        obj.clear()
        obj |= was
    else:
        obj[:] = was


@contextlib.contextmanager
def attributes_kept(root: nn.Module) -> Iterator[None]:
    """Every module's attributes as they were: bindings, and the contents of dict, list
    and set attributes one level deep (``_buffers``, ``_parameters``, a cache dict).

    A forward that registers a buffer on its first call, fills a cache or
    counts its calls changes its module; the capture's calls would otherwise
    leave those changes behind.  Tensor values written in place are not
    attributes: :func:`model_on` restores buffer values.  A module whose
    class changed (a lazy module materialised by its first call) is left as
    it became, initialised, as every call would leave it.
    """
    saved = []
    seen: set[int] = set()
    for _, module in all_named_modules(root):
        if id(module) in seen:
            continue
        seen.add(id(module))
        bindings = dict(module.__dict__)
        contents = []
        for v in bindings.values():
            snapshot = _SNAPSHOTS.get(type(v))
            if snapshot is not None:
                # most of a module's dicts (its hooks) are empty: None stands for "was empty",
                # without a copy (a 100,000-op model has 42,000 modules, 14 containers each)
                contents.append((v, snapshot(v) if v else None))
            elif isinstance(v, _CONTAINERS):
                try:
                    contents.append((v, copy.copy(v)))
                except Exception:  # a container subclass that cannot be copied: its binding still is kept
                    pass
        saved.append((module, type(module), bindings, contents))
    try:
        yield
    finally:
        for module, cls, bindings, contents in saved:
            if type(module) is not cls:
                # a lazy module (``nn.LazyLinear``) became its real class on the first call and
                # dropped its initialisation hooks: putting them back would break it
                continue
            d = module.__dict__
            for k in [k for k in d if k not in bindings]:
                del d[k]
            for k, v in bindings.items():
                if d.get(k) is not v:
                    d[k] = v
            for obj, was in contents:
                if was is None:
                    if obj:
                        obj.clear()
                elif not _same_contents(obj, was):
                    _put_back(obj, was)


@contextlib.contextmanager
def rng_kept(device: torch.device) -> Iterator[None]:
    """The CPU generator (and the device's, on CUDA) as they were before the block."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, enabled=device.type != "meta"):
        yield


@contextlib.contextmanager
def model_on(model: nn.Module, device: torch.device, current: torch.device, tensors: ModelTensors):
    """Move the model for the run and back afterwards, leaving it as found: params keep their
    identity, buffers their objects and values, modules their attributes, generators their state."""
    training = model.training
    params = [p for _, p in tensors.unique("params")]
    grads = [p.requires_grad for p in params]
    # Buffers the forward writes in place (BatchNorm running statistics in train
    # mode, caches) would otherwise carry the capture and timed runs' updates.
    # (The version counter is no guide: kernels such as batch norm update running
    # statistics without bumping it.)
    saved = [(n, b, b.detach().clone()) for n, b in tensors.unique("buffers") if b.device.type != "meta"]
    moved = moves(device, current)
    try:
        with rng_kept(device), attributes_kept(model):
            if moved:
                model.to(device)
            guard = ParamGuard(params)  # after the move: it keys on the storages the run will write
            try:
                yield guard
            finally:
                guard.restore()
                if moved:
                    model.to(current)
    finally:
        # the attributes are back (buffers the original objects again), now their values and flags
        if model.training != training:  # exported modules (torch.export .module()) refuse train()
            model.train(training)
        for p, g in zip(params, grads):
            if p.requires_grad != g:
                p.requires_grad_(g)
        with torch.no_grad():
            for _, buf, value in saved:
                buf.copy_(value)
