"""Tensor statistics, reduced on the tensor's own device (per parameter: weight_stats.py).

Two strategies, because the devices differ in what is cheap:

* CPU: a host read costs nothing, so the common case (finite float32) takes
  the cheapest passes there are, over chunks that stay in cache, writing only
  into two reused scratch buffers: ``aminmax``, ``sum``, ``dot``, a sign pass
  for the zeros, and a byte-coded histogram (0.8 ns an element on cached data
  on this machine, 1.2 inside a ResNet-50 capture, against 7.5 for
  ``std_mean`` + ``histc``; docs/benchmarks.md).  Only tensors with a NaN or
  Inf pay for counting and masking them.
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

from ..graph import Histogram, TensorStats
from .stats_device import DEFAULT_BINS, device_stats_vector

# Reductions run chunk by chunk: a chunk of this many elements (2 MB of
# float32) stays in cache across the passes made over it and its temporaries are
# reused by the allocator instead of being page-faulted in afresh: 10-40 % faster on
# this CPU than whole-tensor passes; it also keeps float32 sums of ones exact.
_CHUNK = 1 << 19
# Up to this many elements a plain bincount of the byte positions beats counting them in
# pairs (which pays for 256·(bins+1) counters and for splitting their joint counts).
_SINGLE_COUNT_MAX = 1 << 16


class _LazyFloatChunks:
    """Float32 chunks of a flat non-float32 tensor, converted one at a time on each pass.

    A list of converted chunks would hold a full-size float copy of a huge
    half-precision (or complex) tensor at once; this holds one chunk.
    """

    def __init__(self, flat: torch.Tensor) -> None:
        self.flat = flat

    def __iter__(self):
        for i in range(0, self.flat.numel(), _CHUNK):
            c = self.flat[i : i + _CHUNK]
            yield (c.abs() if c.is_complex() else c).float()


class _FiniteChunks:
    """The finite values of each chunk, masked afresh on each pass (no full-size copy)."""

    def __init__(self, chunks) -> None:  # noqa: ANN001
        self.chunks = chunks

    def __iter__(self):
        for x in self.chunks:
            fin = torch.isfinite(x)
            yield x if bool(fin.all()) else x[fin]


def _as_float_chunks(t: torch.Tensor):
    """Flat float32/float64 chunks of ``t``: views when it already is float32/64, else converted lazily."""
    x = t.detach().reshape(-1)
    if x.dtype in (torch.float32, torch.float64):
        return [x] if x.numel() <= _CHUNK else [x[i : i + _CHUNK] for i in range(0, x.numel(), _CHUNK)]
    if x.numel() <= _CHUNK:
        return [(x.abs() if x.is_complex() else x).float()]
    return _LazyFloatChunks(x)


def _empty_stats(numel: int) -> TensorStats:
    return TensorStats(None, None, None, None, None, 0.0, 0, 0, None, numel)


# A float32 sum of squares carries rounding of about 1e-6 of its own size.  When it
# is more than this many times the sum of squared deviations (|mean| well above
# std), "sum of squares minus n·mean²" would lose the spread: it is then taken
# again around the mean (an activation of 1000 ± 0.01 otherwise reads std 0.25).
_CANCEL_RATIO = 100.0


def _deviations(chunks, total: float, sumsq: float, finite: int) -> float:  # noqa: ANN001
    """Σ(x − mean)² of the finite values: from the plain sums when that is safe, else one more pass.

    The second pass subtracts a shift m (the mean, rounded to the data's
    dtype) and uses Σ(x−m)² − (Σ(x−m))²/n, exact up to the rounding of
    values close to their mean.
    """
    if finite == 0 or not (math.isfinite(total) and math.isfinite(sumsq)):
        return math.nan  # beyond float64: the spread is not measurable (std None)
    mean = total / finite
    m2 = sumsq - total * mean
    if sumsq <= _CANCEL_RATIO * m2:
        return m2
    s1 = s2 = 0.0
    for x in chunks:
        if x.numel():
            y = x - mean
            s1 += float(y.sum())
            s2 += float(torch.dot(y, y))
    return max(s2 - s1 * s1 / finite, 0.0)


def _finalize(numel: int, total: float, m2: float, lo: float, hi: float, zeros: int,
              nans: int, infs: int, counts: list[int]) -> TensorStats:
    """``m2`` is Σ(x − mean)² over the finite values."""
    finite = numel - nans - infs
    if finite == 0:
        return TensorStats(None, None, None, None, None, zeros / numel, nans, infs, None, numel)
    if lo == hi:  # all finite values equal: exact, whatever the rounding of the sums
        mean, var = lo, 0.0
    else:
        mean = min(max(total / finite, lo), hi)
        var = max(m2 / finite, 0.0)
    return TensorStats(
        mean=mean if math.isfinite(total) else None,  # sums beyond float64: not measurable
        std=math.sqrt(var) if math.isfinite(var) and math.isfinite(total) else None,
        min=lo,
        max=hi,
        abs_max=max(abs(lo), abs(hi)),
        zero_fraction=zeros / numel,
        nan_count=nans,
        inf_count=infs,
        histogram=Histogram(lo, hi, tuple(int(c) for c in counts)),
        numel=numel,
    )


def _histogram_counts(x: torch.Tensor, lo: float, hi: float, bins: int) -> list[int]:
    """Counts of ``bins`` equal bins over [lo, hi] for finite ``x`` within that range.

    ``torch.histc`` costs about 8 elementwise passes on this CPU, and a plain
    ``bincount`` into 33 counters stalls on repeated increments of the same
    counter.  Here: one fused scale-and-shift, a cast to ``uint8`` (truncation
    is ``floor`` for these non-negative positions), then the bytes are read
    in pairs as ``int16`` so one ``bincount`` over (bins+1)·256 counters
    counts two elements per increment; the two marginals of that joint count
    are the histogram.  About 2.5 elementwise passes in all.  The position of
    ``hi`` itself is ``bins`` and folds into the last bin, as in ``histc``.
    """
    scale = bins / (hi - lo)
    pos = torch.add(torch.tensor(-lo * scale, dtype=x.dtype), x, alpha=scale)
    if bins > 254:  # positions do not fit in a byte
        counts = torch.bincount(pos.clamp_(0, bins).to(torch.int64), minlength=bins + 1)
    else:
        # No clamp: x ≥ lo makes positions ≥ -rounding (truncated to 0) and ≤ bins.
        idx = pos.to(torch.uint8)
        n = idx.numel()
        even = n - n % 2
        width = bins + 1
        joint = torch.bincount(idx[:even].view(torch.int16), minlength=256 * width)[: 256 * width]
        joint = joint.reshape(width, 256)[:, :width]  # little-endian: high byte = odd element
        counts = joint.sum(0) + joint.sum(1)
        if n % 2:
            counts[int(idx[-1])] += 1
    out = counts.tolist()
    out[bins - 1] += out[bins]
    return out[:bins]


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


def _sums(x: torch.Tensor) -> tuple[float, float]:
    """Σx and Σx² of a flat finite chunk, redone in float64 when float32 overflows
    (sums of values near 3e38, squares beyond about 1.8e19)."""
    s = float(x.sum())
    if not math.isfinite(s):
        s = float(x.sum(dtype=torch.float64))
    sq = float(torch.dot(x, x))
    if not math.isfinite(sq):
        xd = x.double()
        sq = float(torch.dot(xd, xd))
    return s, sq


def _float32_stats(x: torch.Tensor, bins: int, scratch: Scratch) -> TensorStats | None:
    """Statistics of a flat float32 tensor in one visit per chunk; None if it holds NaN or Inf.

    Per chunk: ``aminmax`` (a NaN or infinity shows in min or max, so a finite
    pair proves the chunk finite), ``sum``, ``dot`` for the squares, and
    ``sign`` into the scratch buffer dotted with itself for the non-zeros
    (skipped when the chunk's range excludes 0).  Then the histogram over the
    global [min, max], see :func:`_byte_histogram`.
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
        s, sq = _sums(c)
        total += s
        sumsq += sq
        if fmn > 0 or fmx < 0:
            nonzero += c.numel()
        else:  # sign(x)·sign(x) summed counts the non-zeros (exact: a chunk is far below 2**24 ones)
            sg = torch.sign(c, out=scratch.get(c.numel())[0])
            nonzero += int(torch.dot(sg, sg))
    if lo == hi:
        counts = [n] + [0] * (bins - 1)
    elif bins > 254:
        counts = [0] * bins
        for c in chunks:
            counts = [a + b for a, b in zip(counts, _histogram_counts(c, lo, hi, bins))]
    else:
        counts = _byte_histogram(chunks, lo, hi, bins, scratch)
    return _finalize(n, total, _deviations(chunks, total, sumsq, n), lo, hi, n - nonzero, 0, 0, counts)


def _byte_histogram(chunks: list[torch.Tensor], lo: float, hi: float, bins: int, scratch: Scratch) -> list[int]:
    """:func:`_histogram_counts` over finite float32 chunks, with its passes written into ``scratch``.

    The joint pair counts are summed over all chunks and split into the
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
    pairs = joint[: 256 * width].view(width, 256)[:, :width]  # little-endian: high byte = odd element
    out = (pairs + pairs.T).sum(1).tolist()
    for i in odd:
        out[i] += 1
    out[bins - 1] += out[bins]  # the position of max itself folds into the last bin, as in histc
    return out[:bins]



def cpu_stats(t: torch.Tensor, bins: int = DEFAULT_BINS, scratch: Scratch | None = None) -> TensorStats:
    """Statistics with host reads allowed (CPU tensors).

    Finite float32 tensors take :func:`_float32_stats`.  Other dtypes are
    converted chunk by chunk; one ``aminmax`` per chunk tells whether there
    is any NaN or Inf, and only then are non-finite values counted and masked
    out before the same reductions.
    """
    numel = t.numel()
    if numel == 0:
        return _empty_stats(0)
    if t.dtype == torch.float32:
        fast = _float32_stats((t.detach() if t.requires_grad else t).reshape(-1), bins, scratch or Scratch())
        if fast is not None:
            return fast
    chunks = _as_float_chunks(t)
    lo, hi = math.inf, -math.inf
    all_finite = True
    for x in chunks:
        mn, mx = torch.aminmax(x)
        fmn, fmx = float(mn), float(mx)
        # min()/max() skip NaN silently, so non-finite chunks are noted on their own
        all_finite = all_finite and math.isfinite(fmn) and math.isfinite(fmx)
        lo, hi = min(lo, fmn), max(hi, fmx)
    nans = infs = 0
    if not all_finite:
        lo, hi = math.inf, -math.inf
        for x in chunks:
            fin = torch.isfinite(x)
            n_fin = int(fin.sum())
            n_nan = int(torch.isnan(x).sum())
            nans += n_nan
            infs += x.numel() - n_fin - n_nan
            if n_fin:
                mn, mx = torch.aminmax(x[fin] if n_fin < x.numel() else x)
                lo, hi = min(lo, float(mn)), max(hi, float(mx))
            del x, fin
        chunks = _FiniteChunks(chunks)
    total = sumsq = 0.0
    zeros = 0
    for x in chunks:
        if not x.numel():
            continue
        s, sq = _sums(x)
        total += s
        sumsq += sq
        # sign(x)·sign(x) summed counts the non-zeros (exact: a chunk is far below 2**24 ones).
        sg = x.sign()
        zeros += x.numel() - int(torch.dot(sg, sg))
    counts = [0] * bins
    if lo <= hi:
        if lo == hi:
            counts[0] = numel - nans - infs
        else:
            for x in chunks:
                if x.numel():
                    counts = [c + v for c, v in zip(counts, _histogram_counts(x, lo, hi, bins))]
    return _finalize(numel, total, _deviations(chunks, total, sumsq, numel - nans - infs), lo, hi, zeros, nans, infs,
                     counts)


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
        self._versions: dict[int, int] = {}  # node id -> version counter of the tensor when reduced
        self._shared: dict[int, int] = {}    # node id -> node id whose statistics it shares
        self._scratch = Scratch()

    def __call__(self, node_id: int, t: torch.Tensor) -> None:
        deferred = self.deferred if self.deferred is not None else t.device.type != "cpu"
        if deferred:
            self._pending.append((node_id, device_stats_vector(t, self.bins)))
        else:
            self._ready[node_id] = cpu_stats(t, self.bins, self._scratch)
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
                    self._ready[node_id] = stats_from_vector(row, self.bins)
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
