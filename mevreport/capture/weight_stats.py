"""Weight statistics: norm, mean, std, min, max and histogram of each parameter.

Proportional to the parameter count and done once per report, apart from
the instrumented pass; on accelerators every parameter's statistics vector
comes back in one host transfer per device.
"""
from __future__ import annotations

import math

import torch
from torch._subclasses.fake_tensor import FakeTensor

from ..distributed.tensors import full_values, local_tensor
from ..graph import TensorStats, WeightStats
from .stats import DEFAULT_BINS, Scratch, cpu_stats, device_stats_vector, stats_from_vector


def weight_stats(name: str, p: torch.Tensor, bins: int = DEFAULT_BINS) -> WeightStats:
    """Norm, mean, std, min, max and histogram of one parameter."""
    if p.device.type == "cpu":
        s = cpu_stats(p, bins)
    else:
        s = stats_from_vector(device_stats_vector(p, bins).cpu().tolist(), bins)
    return _weight_from(name, s)


def tensor_stats_all(named: list[tuple[str, torch.Tensor]], bins: int = DEFAULT_BINS) -> dict[str, TensorStats]:
    """Statistics of many tensors (parameters, their gradients): off the CPU, one host transfer
    per device in all; meta and fake tensors have none."""
    out: dict[str, TensorStats] = {}
    by_device: dict[torch.device, list[tuple[str, torch.Tensor]]] = {}
    scratch = Scratch()
    with torch.no_grad():
        for name, p in named:
            if isinstance(local_tensor(p), FakeTensor) or p.device.type == "meta":
                continue
            # a sharded parameter (FSDP2, tensor parallel): its global values, gathered one parameter at a
            # time (every rank calls this in the same order), so its statistics are exactly the unsharded ones
            p = full_values(p)
            if p.device.type == "cpu":
                out[name] = cpu_stats(p, bins, scratch)
            else:
                by_device.setdefault(p.device, []).append((name, device_stats_vector(p, bins)))
        for items in by_device.values():
            rows = torch.stack([v for _, v in items]).cpu().tolist()  # the one synchronisation
            for (name, _), row in zip(items, rows):
                out[name] = stats_from_vector(row, bins)
    return out


def weight_stats_all(named: list[tuple[str, torch.Tensor]], bins: int = DEFAULT_BINS) -> tuple[WeightStats, ...]:
    """Weight statistics of many parameters: off the CPU, one host transfer per device in all."""
    found = tensor_stats_all(named, bins)
    return tuple(_weight_from(name, found[name]) for name, _ in named if name in found)


def l2_norm(s: TensorStats) -> float | None:
    """The L2 norm of the finite values, from their mean and std: √(Σx²) without squaring values near the limits."""
    if s.mean is None or s.std is None:
        return None
    n_fin = s.numel - s.nan_count - s.inf_count
    return math.hypot(s.std, s.mean) * math.sqrt(n_fin)


def _weight_from(name: str, s: TensorStats) -> WeightStats:
    return WeightStats(name, l2_norm(s), s.mean, s.std, s.min, s.max, s.histogram)


def model_weight_stats(model: torch.nn.Module, bins: int = DEFAULT_BINS) -> tuple[WeightStats, ...]:
    """Weight statistics of every floating parameter, each tensor once."""
    return weight_stats_all([(n, p) for n, p in model.named_parameters() if p.is_floating_point()], bins)
