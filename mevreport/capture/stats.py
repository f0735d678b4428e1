"""Tensor statistics, reduced on the tensor's own device (per parameter: weight_stats.py).

Two strategies, because the devices differ in what is cheap:

* CPU: a host read costs nothing, so the common case (finite float32) takes
  the cheapest passes there are, over chunks that stay in cache, writing only
  into two reused scratch buffers: ``aminmax``, ``sum``, ``dot``, a sign pass
  for the zeros, and a byte-coded histogram (0.8 ns an element on cached data
  on this machine, 1.2 inside a ResNet-50 capture, against 7.5 for
  ``std_mean`` + ``histc``; docs/benchmarks.md).  It is taken only where
  float32 rounding provably cannot misplace a value; tensors with a NaN or
  Inf, float64 tensors and extreme ranges take the exact float64 path below.
* Accelerators (and that exact path on CPU): nothing may synchronise per op,
  so every statistic is computed branch-free in float64 into one small vector
  per node (stats_device.py), and all vectors come back to the host in one
  transfer at the end (:meth:`StatsCollector.finish`).

Statistics of complex tensors are taken over magnitudes.  ``std`` is the
population standard deviation.  Histograms have ``bins`` equal bins over
[min, max] of the finite values.
"""
from __future__ import annotations

import math

import torch

from ..distributed.tensors import full_values
from ..errors import one_line
from ..graph import Histogram, TensorStats
from .stats_device import DEFAULT_BINS, HEAD, device_stats_vector

# Reductions run chunk by chunk: a chunk of this many elements (2 MB of
# float32) stays in cache across the passes made over it and its temporaries are
# reused by the allocator instead of being page-faulted in afresh: 10-40 % faster on
# this CPU than whole-tensor passes; it also keeps float32 sums of ones exact.
_CHUNK = 1 << 19
# Up to this many elements a plain bincount of the byte positions beats counting them in
# pairs (which pays for 256·(bins+1) counters and for splitting their joint counts).
_SINGLE_COUNT_MAX = 1 << 16
# Tensors of other dtypes up to this size are converted to float32 whole for the fast path.
_FAST_CONVERT_MAX = 4 * _CHUNK


def _empty_stats(numel: int) -> TensorStats:
    return TensorStats(None, None, None, None, None, 0.0, 0, 0, None, numel)


# A float32 sum of squares carries rounding of about 1e-6 of its own size.  When it
# is more than this many times the sum of squared deviations (|mean| well above
# std), "sum of squares minus n·mean²" would lose the spread: it is then taken
# again around the mean (an activation of 1000 ± 0.01 otherwise reads std 0.25).
_CANCEL_RATIO = 100.0
# The float32 fast path is taken only where its rounding is provably harmless:
# the bin position ``shift + x·scale`` is rounded four times (scale, shift,
# product, sum), by at most 2**-24·|x|·scale each, so |x|·scale < 2**20 keeps
# it within a quarter of a bin (truncation maps -0.25 to bin 0 and bins + 0.25
# to the folded last bin); and
# magnitudes in [2**-33, 2**50] keep every square and chunk sum of squares
# normal and finite in float32.  Anything else takes the exact float64 path.
_POSITION_LIMIT = 2.0 ** 20
_FAST_MAGNITUDES = (2.0 ** -33, 2.0 ** 50)
# Positions are cast to int8 (vectorised, see _byte_histogram): bins + 1 must fit.
_FAST_MAX_BINS = 126


def _fast_histogram_safe(lo: float, hi: float, bins: int) -> bool:
    """Whether the float32 fused histogram and sums are exact enough for [lo, hi] (see the limits above)."""
    mag = max(abs(lo), abs(hi))
    if bins > _FAST_MAX_BINS or not _FAST_MAGNITUDES[0] <= mag <= _FAST_MAGNITUDES[1]:
        return False
    return lo == hi or mag * bins < _POSITION_LIMIT * (hi - lo)


def _deviations(chunks: list[torch.Tensor], total: float, sumsq: float, finite: int) -> float:
    """Σ(x − mean)² of finite float32 chunks: from the plain sums when that is safe, else one more pass.

    The second pass subtracts a shift m (the mean, rounded to float32) and
    uses Σ(x−m)² − (Σ(x−m))²/n, exact up to the rounding of values close to
    their mean.
    """
    mean = total / finite
    m2 = sumsq - total * mean
    if sumsq <= _CANCEL_RATIO * m2:
        return m2
    s1 = s2 = 0.0
    for x in chunks:
        y = x - mean
        s1 += float(y.sum())
        s2 += float(torch.dot(y, y))
    return max(s2 - s1 * s1 / finite, 0.0)


def _finalize(numel: int, mean: float | None, std: float | None, lo: float, hi: float, zeros: int,
              nans: int, infs: int, counts: list[int]) -> TensorStats:
    """Statistics from the finite values' moments and extremes (lo > hi: no finite value)."""
    if lo > hi:
        return TensorStats(None, None, None, None, None, zeros / numel, nans, infs, None, numel)
    if lo == hi:  # all finite values equal: exact, whatever the rounding of the sums
        mean, std = lo, 0.0
    elif mean is not None:
        mean = min(max(mean, lo), hi)
    return TensorStats(
        mean=mean,
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


class Scratch:
    """Two reused buffers (float32 and int8) of up to one chunk each.

    Every elementwise pass of the statistics writes into these instead of a
    fresh tensor: a fresh multi-megabyte temporary is page-faulted in on each
    use, which cost more than the pass itself on this CPU.  One per collector
    (the buffers are not shared between threads).
    """

    def __init__(self) -> None:
        self._f32 = torch.empty(0)
        self._i8 = torch.empty(0, dtype=torch.int8)
        self.shift = torch.zeros(())  # the histogram's offset, refilled per tensor (cheaper than a new tensor)
        self._views: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def get(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` elements of both buffers.  The views are kept per length (a model
        repeats few sizes): slicing is an op of its own, a few µs each on every tensor."""
        views = self._views.get(n)
        if views is None:
            if self._f32.numel() < n:
                self._f32 = torch.empty(n)
                self._i8 = torch.empty(n, dtype=torch.int8)
                self._views.clear()
            if len(self._views) > 64:
                self._views.clear()
            views = self._views[n] = (self._f32[:n], self._i8[:n])
        return views


def _float32_stats(x: torch.Tensor, bins: int, scratch: Scratch) -> TensorStats | None:
    """Statistics of a flat float32 tensor in one visit per chunk; None where the fast path is not exact.

    Per chunk: ``aminmax`` (a NaN or infinity shows in min or max, so a finite
    pair proves the chunk finite), ``sum``, ``dot`` for the squares, and
    ``sign`` into the scratch buffer dotted with itself for the non-zeros
    (skipped when the chunk's range excludes 0).  Then, when
    :func:`_fast_histogram_safe` holds for the global [min, max], the
    histogram (:func:`_byte_histogram`).  None (the caller takes the exact
    float64 path) for any NaN or Inf, and for ranges where float32 positions
    or squares would round wrong.
    """
    n = x.numel()
    chunks = [x] if n <= _CHUNK else list(x.split(_CHUNK))
    lo, hi = math.inf, -math.inf
    total = sumsq = 0.0
    nonzero = 0
    for c in chunks:
        mn, mx = torch.aminmax(c)
        fmn, fmx = float(mn), float(mx)
        if not (math.isfinite(fmn) and math.isfinite(fmx)):
            return None
        lo, hi = min(lo, fmn), max(hi, fmx)
        total += float(c.sum())
        sumsq += float(torch.dot(c, c))
        if fmn > 0 or fmx < 0:
            nonzero += c.numel()
        else:  # sign(x)·sign(x) summed counts the non-zeros (exact: a chunk is far below 2**24 ones)
            sg = torch.sign(c, out=scratch.get(c.numel())[0])
            nonzero += int(torch.dot(sg, sg))
    if not _fast_histogram_safe(lo, hi, bins):
        return None
    counts = [n] + [0] * (bins - 1) if lo == hi else _byte_histogram(chunks, lo, hi, bins, scratch)
    m2 = _deviations(chunks, total, sumsq, n)
    return _finalize(n, total / n, math.sqrt(max(m2 / n, 0.0)), lo, hi, n - nonzero, 0, 0, counts)


def _byte_histogram(chunks: list[torch.Tensor], lo: float, hi: float, bins: int, scratch: Scratch) -> list[int]:
    """Counts of ``bins`` equal bins over [lo, hi] of finite float32 chunks, passes written into ``scratch``.

    ``torch.histc`` costs about 8 elementwise passes on this CPU, and a plain
    ``bincount`` into 33 counters stalls on repeated increments of the same
    counter.  Here: one fused scale-and-shift, a cast to a byte (truncation
    toward zero: positions down to -0.25 land in bin 0, see
    :data:`_POSITION_LIMIT`), then the bytes are read in pairs as ``int16``
    so one ``bincount`` over (bins+1)·256 counters counts two elements per
    increment; the two marginals of that joint count are the histogram.
    The position of ``hi`` itself is ``bins`` and folds into the last bin, as
    in ``histc``.  The joint pair counts are summed over all chunks and split into the
    histogram once, so a chunk costs three kernels (scale-and-shift, byte
    cast, ``bincount``) and no host read.  The cast goes to ``int8``, not
    ``uint8``: positions fit either, and torch's float-to-int8 cast is
    vectorised where float-to-uint8 is not (0.04 against 0.18 ns an element).
    """
    scale = bins / (hi - lo)
    shift = scratch.shift.fill_(-lo * scale)
    width = bins + 1
    if len(chunks) == 1 and chunks[0].numel() <= _SINGLE_COUNT_MAX:
        # Small tensors: one plain bincount costs less than pair counting plus splitting the joint counts.
        c = chunks[0]
        pos, idx = scratch.get(c.numel())
        torch.add(shift, c, alpha=scale, out=pos)
        out = torch.bincount(idx.copy_(pos), minlength=width).tolist()
        out[bins - 1] += out[bins]
        return out[:bins]
    joint: torch.Tensor | None = None
    odd: list[int] = []
    for c in chunks:
        k = c.numel()
        pos, idx = scratch.get(k)
        torch.add(shift, c, alpha=scale, out=pos)
        idx.copy_(pos)  # truncation is floor for these non-negative positions (0..bins)
        even = k - k % 2
        j = torch.bincount(idx[:even].view(torch.int16), minlength=256 * width)
        joint = j if joint is None else joint.add_(j)
        if k % 2:
            odd.append(int(idx[k - 1]))
    assert joint is not None  # the loop ran: chunks are never empty here
    pairs = joint[: 256 * width].view(width, 256)[:, :width]  # little-endian: high byte = odd element
    out = (pairs + pairs.T).sum(1).tolist()
    for i in odd:
        out[i] += 1
    out[bins - 1] += out[bins]  # the position of max itself folds into the last bin, as in histc
    return out[:bins]



def cpu_stats(t: torch.Tensor, bins: int = DEFAULT_BINS, scratch: Scratch | None = None) -> TensorStats:
    """Statistics with host reads allowed (CPU tensors).

    Finite float32 tensors (and half-precision and float8 ones of up to a few
    chunks, converted exactly to float32) take :func:`_float32_stats` when
    their range allows it.  Everything else — float64, NaN/Inf, huge tensors
    of other dtypes, ranges where float32 rounding would misplace a value —
    takes the exact float64 reduction of :mod:`.stats_device`, chunked, so
    no full-size copy is held.
    """
    numel = t.numel()
    if numel == 0:
        return _empty_stats(0)
    x = (t.detach() if t.requires_grad else t).reshape(-1)
    if x.is_complex() and x.numel() <= _FAST_CONVERT_MAX:
        x = x.abs().float()
    elif x.dtype != torch.float32 and x.dtype != torch.float64 and x.numel() <= _FAST_CONVERT_MAX:
        x = x.float()  # exact: every narrower float type is a subset of float32
    if x.dtype == torch.float32:
        fast = _float32_stats(x, bins, scratch or Scratch())
        if fast is not None:
            return fast
    return stats_from_vector(device_stats_vector(t, bins).tolist(), bins)


def stats_from_vector(v: list[float], bins: int = DEFAULT_BINS) -> TensorStats:
    """Statistics from a vector of :func:`~.stats_device.device_stats_vector` (layout ``HEAD``)."""
    numel = int(v[0])
    if numel == 0:
        return _empty_stats(0)
    mean_s, m2_s, lo, hi, zeros, nans, infs, k = v[1:len(HEAD)]
    finite = numel - int(nans) - int(infs)
    counts = [int(c) for c in v[len(HEAD) : len(HEAD) + bins]]
    if lo == hi:  # all finite values equal: one bin, as on the CPU path
        counts = [sum(counts)] + [0] * (bins - 1)
    mean = std = None
    if finite:
        mean = math.ldexp(mean_s, int(k))
        std = math.ldexp(math.sqrt(max(m2_s / finite, 0.0)), int(k))
    return _finalize(numel, mean, std, lo, hi, int(zeros), int(nans), int(infs), counts)


class StatsCollector:
    """Collects per-node statistics during the capture run."""

    def __init__(self, bins: int = DEFAULT_BINS, deferred: bool | None = None) -> None:
        self.bins = bins
        self.deferred = deferred  # None: decide per tensor (deferred off the CPU)
        self._ready: dict[int, TensorStats] = {}
        self._pending: list[tuple[int, torch.Tensor]] = []
        self._versions: dict[int, int] = {}  # node id -> version counter of the tensor when reduced
        self._shared: dict[int, int] = {}    # node id -> node id whose statistics it shares
        self._scratch = Scratch()
        # node id -> why its statistics could not be taken (the node gets ``stats: null`` and a warning)
        self.failures: dict[int, str] = {}

    def __call__(self, node_id: int, t: torch.Tensor) -> None:
        # a sharded output (tensor parallelism): the statistics of its global values, exactly as unsharded;
        # every rank runs the same ops, so every rank makes this gather at the same point
        t = full_values(t)
        deferred = self.deferred if self.deferred is not None else t.device.type != "cpu"
        try:
            if deferred:
                self._pending.append((node_id, device_stats_vector(t, self.bins)))
            else:
                self._ready[node_id] = cpu_stats(t, self.bins, self._scratch)
        except Exception as exc:  # statistics of one output never kill the report
            self.failures[node_id] = one_line(exc, limit=None)
            return
        version = _version(t)
        if version is not None:
            self._versions[node_id] = version

    def share(self, node_id: int, source_id: int, base: torch.Tensor) -> bool:
        """Reuse ``source_id``'s statistics for a view of its (unchanged) output."""
        version = self._versions.get(source_id)
        if version is None or version != _version(base):
            return False
        self._shared[node_id] = self._shared.get(source_id, source_id)
        self._versions[node_id] = version
        return True

    def finish(self) -> dict[int, TensorStats]:
        """Bring deferred vectors to the host in one transfer per device."""
        if self._pending:
            by_device: dict[torch.device, list[tuple[int, torch.Tensor]]] = {}
            for node_id, vec in self._pending:
                by_device.setdefault(vec.device, []).append((node_id, vec))
            for items in by_device.values():
                rows = torch.stack([v for _, v in items]).cpu().tolist()
                for (node_id, _), row in zip(items, rows):
                    try:
                        self._ready[node_id] = stats_from_vector(row, self.bins)
                    except Exception as exc:  # as in __call__
                        self.failures[node_id] = one_line(exc, limit=None)
            self._pending.clear()
        for node_id, source_id in self._shared.items():
            if source_id in self._ready:
                self._ready[node_id] = self._ready[source_id]
        return dict(sorted(self._ready.items()))


def _version(t: torch.Tensor) -> int | None:
    """The tensor's version counter (shared by views and bumped by writes); None for inference tensors."""
    try:
        return int(t._version)
    except (RuntimeError, AttributeError):
        return None
