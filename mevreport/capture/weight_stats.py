"""Weight statistics: norm, mean, std, min, max and histogram of each parameter.

Proportional to the parameter count and done once per report, apart from
the instrumented pass; on accelerators every parameter's statistics vector
comes back in one host transfer per device.
"""
from __future__ import annotations

import math

import torch

from ..graph import TensorStats, WeightStats
from .stats import DEFAULT_BINS, Scratch, cpu_stats, device_stats_vector, stats_from_vector


def weight_stats(name: str, p: torch.Tensor, bins: int = DEFAULT_BINS) -> WeightStats:
    """Norm, mean, std, min, max and histogram of one parameter."""
    if p.device.type == "cpu":
        s = cpu_stats(p, bins)
    else:
        s = stats_from_vector(device_stats_vector(p, bins).cpu().tolist(), bins)
    return _weight_from(name, s)


def weight_stats_all(named: list[tuple[str, torch.Tensor]], bins: int = DEFAULT_BINS) -> tuple[WeightStats, ...]:
    """Weight statistics of many parameters: off the CPU, one host transfer per device in all."""
    out: dict[str, WeightStats] = {}
    by_device: dict[torch.device, list[tuple[str, torch.Tensor]]] = {}
    scratch = Scratch()
    with torch.no_grad():
        for name, p in named:
            if p.device.type == "cpu":
                out[name] = _weight_from(name, cpu_stats(p, bins, scratch))
            elif p.device.type != "meta":
                by_device.setdefault(p.device, []).append((name, device_stats_vector(p, bins)))
        for items in by_device.values():
            rows = torch.stack([v for _, v in items]).cpu().tolist()  # the one synchronisation
            for (name, _), row in zip(items, rows):
                out[name] = _weight_from(name, stats_from_vector(row, bins))
    return tuple(out[name] for name, _ in named if name in out)


def _weight_from(name: str, s: TensorStats) -> WeightStats:
    norm = None
    if s.mean is not None and s.std is not None:
        n_fin = s.numel - s.nan_count - s.inf_count
        norm = math.hypot(s.std, s.mean) * math.sqrt(n_fin)  # √(Σx²) without squaring values near the limits
    return WeightStats(name, norm, s.mean, s.std, s.min, s.max, s.histogram)


def model_weight_stats(model: torch.nn.Module, bins: int = DEFAULT_BINS) -> tuple[WeightStats, ...]:
    """Weight statistics of every floating parameter, each tensor once."""
    return weight_stats_all([(n, p) for n, p in model.named_parameters() if p.is_floating_point()], bins)
