"""Activation and weight statistics, reduced on the tensor's own device.

Two strategies, because the devices differ in what is cheap:

* CPU: a host read costs nothing, so the common case takes the cheapest
  reductions there are (``aminmax``, ``sum``, ``dot``, ``count_nonzero``,
  ``histc`` with known bounds: about 3 ns an element on this machine, against
  ``std_mean`` + a default ``histc`` at several times that) and only tensors
  whose sum is not finite pay for NaN/Inf counting and masking.
* Accelerators: nothing may synchronise per op, so every statistic is
  computed branch-free into one small vector per node, and all vectors come
  back to the host in one transfer at the end (:meth:`StatsCollector.finish`).

Statistics of complex tensors are taken over magnitudes.  ``std`` is the
population standard deviation.  Histograms have ``bins`` equal bins over
[min, max] of the finite values.
"""
from __future__ import annotations

import math

import torch

from ..graph import Histogram, TensorStats, WeightStats

DEFAULT_BINS = 32
# Above this many elements, conversions to float32 go chunk by chunk so that a
# huge half-precision tensor never gets a second full-size copy.
_CHUNK = 1 << 24


class _LazyFloatChunks:
    """Float32/64 chunks of a flat tensor, converted one at a time on each pass.

    A list of converted chunks would hold a full-size float copy of a huge
    half-precision (or complex) tensor at once; this holds one chunk.
    """

    def __init__(self, flat: torch.Tensor) -> None:
        self.flat = flat

    def __iter__(self):
        for i in range(0, self.flat.numel(), _CHUNK):
            yield _to_float(self.flat[i : i + _CHUNK])


def _to_float(x: torch.Tensor) -> torch.Tensor:
    if x.is_complex():
        x = x.abs()
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _as_float_chunks(t: torch.Tensor):
    """The tensor as float chunks: one converted chunk when small, a lazy iterable when huge."""
    x = t.detach().reshape(-1)
    return _LazyFloatChunks(x) if x.numel() > _CHUNK else [_to_float(x)]


def _empty_stats(numel: int) -> TensorStats:
    return TensorStats(None, None, None, None, None, 0.0, 0, 0, None, numel)


def _finalize(numel: int, total: float, sumsq: float, lo: float, hi: float, zeros: int,
              nans: int, infs: int, counts: list[int]) -> TensorStats:
    finite = numel - nans - infs
    if finite == 0:
        return TensorStats(None, None, None, None, None, zeros / numel, nans, infs, None, numel)
    mean = total / finite
    var = max(sumsq / finite - mean * mean, 0.0)
    std = math.sqrt(var) if math.isfinite(var) else None  # sums of squares beyond float64: not measurable
    return TensorStats(
        mean=mean if math.isfinite(mean) else None,
        std=std,
        min=lo,
        max=hi,
        abs_max=max(abs(lo), abs(hi)),
        zero_fraction=zeros / numel,
        nan_count=nans,
        inf_count=infs,
        histogram=Histogram(lo, hi, tuple(int(c) for c in counts)),
        numel=numel,
    )


def cpu_stats(t: torch.Tensor, bins: int = DEFAULT_BINS) -> TensorStats:
    """Statistics with host reads allowed (CPU tensors)."""
    numel = t.numel()
    if numel == 0:
        return _empty_stats(0)
    chunks = _as_float_chunks(t)
    total = sumsq = 0.0
    lo, hi = math.inf, -math.inf
    zeros = 0
    for x in chunks:
        mn, mx = torch.aminmax(x)
        total += float(x.sum())
        sumsq += float(torch.dot(x, x))
        lo, hi = min(lo, float(mn)), max(hi, float(mx))
        zeros += x.numel() - int(torch.count_nonzero(x))
        del x
    nans = infs = 0
    if not all(math.isfinite(v) for v in (total, sumsq, lo, hi)):
        # Rare path: reduce again over the finite values only, accumulating in
        # float64 (float32 sums of values near 3e38 overflow), a million
        # elements at a time so the masks and copies stay small.
        total = sumsq = 0.0
        lo, hi = math.inf, -math.inf
        for x in chunks:
            for piece in x.split(1 << 20):
                fin = torch.isfinite(piece)
                n_fin, n_nan = int(fin.sum()), int(torch.isnan(piece).sum())
                nans += n_nan
                infs += piece.numel() - n_fin - n_nan
                if n_fin:
                    xd = (piece[fin] if n_fin < piece.numel() else piece).double()
                    mn, mx = torch.aminmax(xd)
                    lo, hi = min(lo, float(mn)), max(hi, float(mx))
                    total += float(xd.sum())
                    sumsq += float(torch.dot(xd, xd))
            del x  # before the next chunk is made: one chunk alive at a time
    counts = [0] * bins
    if lo <= hi:
        if lo == hi:
            counts[0] = numel - nans - infs
        else:
            for x in chunks:  # histc ignores NaN and values outside [lo, hi], so infinities need no mask
                h = torch.histc(x, bins=bins, min=lo, max=hi)
                counts = [c + int(v) for c, v in zip(counts, h.tolist())]
                del x
    return _finalize(numel, total, sumsq, lo, hi, zeros, nans, infs, counts)


def device_stats_vector(t: torch.Tensor, bins: int = DEFAULT_BINS) -> torch.Tensor:
    """All statistics as one float64 vector on ``t``'s device, with no host sync.

    Layout: numel, sum, sumsq, min, max, zeros, nans, infs, then ``bins`` counts.
    """
    if t.numel() > _CHUNK:  # huge tensors: bounded temporaries, see _device_stats_vector_chunked
        return _device_stats_vector_chunked(t.detach().reshape(-1), bins)
    x = t.detach()
    if x.is_complex():
        x = x.abs()
    x = x.reshape(-1).to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    fin = torch.isfinite(x)
    n_fin = fin.sum()
    nans = torch.isnan(x).sum()
    infs = x.numel() - n_fin - nans
    xf = torch.where(fin, x, torch.zeros((), dtype=x.dtype, device=x.device))
    lo = torch.where(fin, x, torch.full((), math.inf, dtype=x.dtype, device=x.device)).amin() if x.numel() else xf.sum()
    hi = torch.where(fin, x, torch.full((), -math.inf, dtype=x.dtype, device=x.device)).amax() if x.numel() else xf.sum()
    width = (hi - lo).clamp_min(torch.finfo(x.dtype).tiny)
    idx = ((x - lo) * (bins / width)).nan_to_num(0.0, 0.0, 0.0).floor().clamp(0, bins - 1).long()
    idx = torch.where(fin, idx, torch.full_like(idx, bins))
    counts = torch.zeros(bins + 1, dtype=torch.float64, device=x.device)
    counts.index_add_(0, idx, torch.ones_like(idx, dtype=torch.float64))
    head = torch.stack([
        torch.tensor(float(x.numel()), dtype=torch.float64, device=x.device),
        xf.sum(dtype=torch.float64), (xf.double() * xf.double()).sum() if x.numel() else xf.sum(dtype=torch.float64),
        lo.double(), hi.double(), (x == 0).sum().double(), nans.double(), infs.double(),
    ])
    return torch.cat([head, counts[:bins]])


_DEVICE_CHUNK = 1 << 22


def _device_stats_vector_chunked(flat: torch.Tensor, bins: int) -> torch.Tensor:
    """:func:`device_stats_vector` for huge tensors: two passes over chunks, accumulators on the device.

    The one-shot version holds many full-size temporaries at once (a float
    copy, masks, int64 bin indices, float64 squares): 3.9 GB for a 200 MB
    bfloat16 tensor, enough to run a GPU out of memory on a large logits
    tensor.  Here each step holds one chunk's worth, and min/max stay on the
    device between the passes, so there is still no host sync.
    """
    dev = flat.device
    acc = torch.float64 if flat.dtype == torch.float64 else torch.float32
    total, sumsq, zeros, nans, n_fin = (torch.zeros((), dtype=torch.float64, device=dev) for _ in range(5))
    lo = torch.full((), math.inf, dtype=acc, device=dev)
    hi = torch.full((), -math.inf, dtype=acc, device=dev)

    def chunks():
        for i in range(0, flat.numel(), _DEVICE_CHUNK):
            c = flat[i : i + _DEVICE_CHUNK]
            yield (c.abs() if c.is_complex() else c).to(acc)

    for c in chunks():
        fin = torch.isfinite(c)
        xf = torch.where(fin, c, 0.0).double()
        total += xf.sum()
        sumsq += torch.dot(xf, xf)
        lo = torch.minimum(lo, torch.where(fin, c, math.inf).amin())
        hi = torch.maximum(hi, torch.where(fin, c, -math.inf).amax())
        zeros += (c == 0).sum()
        nans += torch.isnan(c).sum()
        n_fin += fin.sum()
        del c, fin, xf
    width = (hi - lo).clamp_min(torch.finfo(acc).tiny)
    counts = torch.zeros(bins + 1, dtype=torch.float64, device=dev)
    one = torch.ones((), dtype=torch.float64, device=dev)
    for c in chunks():
        idx = ((c - lo) * (bins / width)).nan_to_num(0.0, 0.0, 0.0).floor().clamp(0, bins - 1).long()
        counts.index_add_(0, torch.where(torch.isfinite(c), idx, bins), one.expand(idx.numel()))
        del c, idx
    numel = torch.tensor(float(flat.numel()), dtype=torch.float64, device=dev)
    head = torch.stack([numel, total, sumsq, lo.double(), hi.double(), zeros, nans, numel - n_fin - nans])
    return torch.cat([head, counts[:bins]])


def stats_from_vector(v: list[float], bins: int = DEFAULT_BINS) -> TensorStats:
    numel = int(v[0])
    if numel == 0:
        return _empty_stats(0)
    lo, hi = v[3], v[4]
    counts = [int(c) for c in v[8 : 8 + bins]]
    if lo == hi:  # all finite values equal: one bin, as on the CPU path
        counts = [sum(counts)] + [0] * (bins - 1)
    return _finalize(numel, v[1], v[2], lo, hi, int(v[5]), int(v[6]), int(v[7]), counts)


class StatsCollector:
    """Collects per-node statistics during the capture run."""

    def __init__(self, bins: int = DEFAULT_BINS, deferred: bool | None = None) -> None:
        self.bins = bins
        self.deferred = deferred  # None: decide per tensor (deferred off the CPU)
        self._ready: dict[int, TensorStats] = {}
        self._pending: list[tuple[int, torch.Tensor]] = []

    def __call__(self, node_id: int, t: torch.Tensor) -> None:
        deferred = self.deferred if self.deferred is not None else t.device.type != "cpu"
        if deferred:
            self._pending.append((node_id, device_stats_vector(t, self.bins)))
        else:
            self._ready[node_id] = cpu_stats(t, self.bins)

    def finish(self) -> dict[int, TensorStats]:
        """Bring deferred vectors to the host in one transfer per device."""
        if self._pending:
            by_device: dict[torch.device, list[tuple[int, torch.Tensor]]] = {}
            for node_id, vec in self._pending:
                by_device.setdefault(vec.device, []).append((node_id, vec))
            for items in by_device.values():
                rows = torch.stack([v for _, v in items]).cpu().tolist()
                for (node_id, _), row in zip(items, rows):
                    self._ready[node_id] = stats_from_vector(row, self.bins)
            self._pending.clear()
        return dict(sorted(self._ready.items()))


def weight_stats(name: str, p: torch.Tensor, bins: int = DEFAULT_BINS) -> WeightStats:
    """Norm, mean, std, min, max and histogram of one parameter."""
    if p.device.type == "cpu":
        s = cpu_stats(p, bins)
    else:
        s = stats_from_vector(device_stats_vector(p, bins).cpu().tolist(), bins)
    norm = None
    if s.mean is not None and s.std is not None:
        n_fin = s.numel - s.nan_count - s.inf_count
        norm = math.sqrt(max((s.std ** 2 + s.mean ** 2) * n_fin, 0.0))
    return WeightStats(name, norm, s.mean, s.std, s.min, s.max, s.histogram)


def model_weight_stats(model: "torch.nn.Module", bins: int = DEFAULT_BINS) -> tuple[WeightStats, ...]:
    """Weight statistics of every floating parameter, each tensor once."""
    return tuple(weight_stats(n, p, bins) for n, p in model.named_parameters() if p.is_floating_point())
