"""Analysis without data: parameters and inputs as fake tensors (DESIGN §1).

Fake tensors carry shapes, dtypes and a device but no storage, so a 70B
model costs no memory.  Plain ``device="meta"`` breaks on the data-dependent
checks real models make (Hugging Face mask code calls ``.item()``); under
``FakeTensorMode`` those checks pass.  Fake parameters are given a real device
type ("cpu" when the model lives on meta) so device comparisons in model code
agree, and they are swapped in through ``functional_call`` so the user's
module is never modified.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from .fake_ops import data_dependent_sizes
from .inputs import map_tensors


def fake_runner(model: nn.Module, args: tuple, kwargs: dict, device: torch.device, data_dependent: bool = False
                ) -> tuple[Callable[[], Any], FakeTensorMode, dict[str, torch.Tensor], tuple, dict]:
    """A zero-argument run function, the mode to run it under, the fake state and fake inputs.

    ``data_dependent``: give ops whose output size depends on the data (``nonzero``) unbacked sizes
    bounded by their input's size (a ShapeEnv), instead of failing on them; only asked for after a run
    without it failed so, since the ShapeEnv changes how other data-dependent calls behave.
    """
    own = model_fake_mode(model)
    if own is not None:
        return _own_fake_runner(model, args, kwargs, own)
    fake_device = torch.device("cpu") if device.type == "meta" else device
    mode = FakeTensorMode(allow_non_fake_inputs=True, shape_env=data_dependent_sizes() if data_dependent else None)

    def fake_like(t: torch.Tensor) -> torch.Tensor:
        dev = fake_device if t.device.type == "meta" or device.type == "meta" else t.device
        out = torch.empty_strided(tuple(t.shape), tuple(t.stride()), dtype=t.dtype, device=dev)
        if isinstance(t, nn.Parameter):
            out.requires_grad_(t.requires_grad)
        return out

    with mode:
        state = {n: fake_like(t) for n, t in list(model.named_parameters(remove_duplicate=False))
                 + list(model.named_buffers(remove_duplicate=False))}
        # Tied parameters must stay one tensor.
        by_id: dict[int, torch.Tensor] = {}
        for n, t in list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers(remove_duplicate=False)):
            state[n] = by_id.setdefault(id(t), state[n])
        fargs = map_tensors(args, fake_like)
        fkwargs = map_tensors(kwargs, fake_like)

    def run() -> Any:
        return torch.func.functional_call(model, state, fargs, fkwargs, tie_weights=True, strict=False)

    return run, mode, state, fargs, fkwargs


def model_fake_mode(model: nn.Module) -> FakeTensorMode | None:
    """The mode of a model whose parameters are fake already (a simulated sharded model: FSDP2 and DTensor
    keep their own parameter objects, so they cannot be swapped for fakes as above); None otherwise."""
    from torch._guards import detect_fake_mode
    from torch._subclasses.fake_tensor import FakeTensor

    from ..distributed.tensors import local_tensor
    tensors = [local_tensor(t) for t in list(model.parameters()) + list(model.buffers())]
    if not tensors or not any(isinstance(t, FakeTensor) for t in tensors):
        return None
    return detect_fake_mode(tensors)


def _own_fake_runner(model: nn.Module, args: tuple, kwargs: dict, mode: FakeTensorMode
                     ) -> tuple[Callable[[], Any], FakeTensorMode, dict[str, torch.Tensor], tuple, dict]:
    """The model runs as it is, under its own fake mode, on inputs made fake in that mode."""
    def fake_like(t: torch.Tensor) -> torch.Tensor:
        return mode.from_tensor(t) if t.device.type != "meta" else torch.empty_strided(
            tuple(t.shape), tuple(t.stride()), dtype=t.dtype, device="cpu")

    with mode:
        fargs = map_tensors(args, fake_like)
        fkwargs = map_tensors(kwargs, fake_like)
    state = dict(list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers(remove_duplicate=False)))
    return (lambda: model(*fargs, **fkwargs)), mode, state, fargs, fkwargs
