"""Statistics computed branch-free on the tensor's device: the accelerator path, and the exact path on CPU.

Nothing here may synchronise per op: each node's statistics become one small
float64 vector on its device, and :class:`~mevreport.capture.stats.StatsCollector`
brings all vectors to the host in one transfer at the end.  The vector layout
is read back by :func:`~mevreport.capture.stats.stats_from_vector`.

Numerics hold for every floating dtype and every value distribution (offsets
far above the spread, subnormal spans, values near the dtype's limits):

* all arithmetic is in float64 on values first scaled by a power of two
  ``2**-k`` so the largest finite magnitude lies in [0.5, 1).  The scaling is
  exact (barring values 2**-1074 below the largest), sums cannot overflow,
  and the squared deviations of subnormal data do not underflow;
* bin positions are ``(x − lo) / (hi − lo) · bins`` — a division, so a
  subnormal span never makes an infinite scale, and ``x − lo ≥ 0`` whatever
  the rounding, so no position falls below bin 0 however large the offset;
* the spread is summed around the midpoint of [min, max] and corrected by the
  first moment (Σy² − (Σy)²/n), so no "sum of squares minus n·mean²"
  cancellation loses it.
"""
from __future__ import annotations

from typing import Any

import torch

DEFAULT_BINS = 32
# Tensors above this many elements are reduced in chunks of it: the float64
# temporaries stay bounded (a handful of 32 MB buffers) whatever the tensor's size.
_DEVICE_CHUNK = 1 << 22
# Layout of the head of the vector; ``bins`` counts follow.
HEAD = ("numel", "mean_scaled", "m2_scaled", "min", "max", "zeros", "nans", "infs", "exponent")


def device_stats_vector(t: torch.Tensor, bins: int = DEFAULT_BINS) -> torch.Tensor:
    """All statistics as one float64 vector on ``t``'s device, with no host sync.

    Layout (:data:`HEAD`): numel, mean/2**k, Σ(x − mean)²/2**2k over the
    finite values, min, max, zeros, nans, infs, k, then ``bins`` counts.
    Two passes over chunks of :data:`_DEVICE_CHUNK` elements: the first finds
    min, max and the counts, the second the moments and the histogram; the
    accumulators stay on the device between them.  Complex tensors are
    reduced over their magnitudes.
    """
    flat = t.detach().reshape(-1)
    dev = flat.device
    f64: dict[str, Any] = {"dtype": torch.float64, "device": dev}
    if flat.numel() == 0:
        return torch.zeros(len(HEAD) + bins, **f64)

    def chunks():
        for i in range(0, flat.numel(), _DEVICE_CHUNK):
            c = flat[i : i + _DEVICE_CHUNK]
            yield (c.abs() if c.is_complex() else c).to(torch.float64, copy=True)  # scaled in place below

    zeros, nans, n_fin = (torch.zeros((), **f64) for _ in range(3))
    lo = torch.full((), float("inf"), **f64)
    hi = torch.full((), -float("inf"), **f64)
    for c in chunks():
        fin = torch.isfinite(c)
        lo = torch.minimum(lo, torch.where(fin, c, float("inf")).amin())
        hi = torch.maximum(hi, torch.where(fin, c, -float("inf")).amax())
        zeros += (c == 0).sum()
        nans += torch.isnan(c).sum()
        n_fin += fin.sum()
        del c, fin
    any_fin = n_fin > 0
    lo_f = torch.where(any_fin, lo, 0.0)
    hi_f = torch.where(any_fin, hi, 0.0)
    # 2**-k in two factors, each finite for every float64 exponent (2**1074 alone is not).
    k = torch.frexp(torch.maximum(lo_f.abs(), hi_f.abs())).exponent.to(torch.float64)
    half = torch.floor(k / 2)
    a, b = torch.exp2(-half), torch.exp2(half - k)
    lo_s, hi_s = lo_f * a * b, hi_f * a * b
    mid = lo_s * 0.5 + hi_s * 0.5
    width = hi_s - lo_s  # ≤ 2: no overflow
    s1, s2 = torch.zeros((), **f64), torch.zeros((), **f64)
    counts = torch.zeros(bins + 1, **f64)
    one = torch.ones((), **f64)
    for c in chunks():
        fin = torch.isfinite(c)
        y = c.mul_(a).mul_(b)
        pos = (y - lo_s).div_(width).mul_(bins).nan_to_num_(0.0, 0.0, 0.0).floor_().clamp_(0, bins - 1)
        idx = pos.to(torch.int64).masked_fill_(~fin, bins)
        del pos
        counts.index_add_(0, idx, one.expand(idx.numel()))
        del idx
        y = y.sub_(mid).masked_fill_(~fin, 0.0)
        s1 += y.sum()
        s2 += torch.dot(y, y)
        del c, y, fin
    n = n_fin.clamp_min(1)
    mean_s = mid + s1 / n
    m2_s = (s2 - s1 * s1 / n).clamp_min(0.0)
    numel = torch.full((), float(flat.numel()), **f64)
    head = torch.stack([numel, mean_s, m2_s, lo, hi, zeros, nans, numel - n_fin - nans, k])
    return torch.cat([head, counts[:bins]])
