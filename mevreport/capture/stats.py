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
# Reductions run chunk by chunk: a chunk of this many elements (2 MB of
# float32) stays in cache across the passes made over it and its temporaries are
# reused by the allocator instead of being page-faulted in afresh: 10-40 % faster on
# this CPU than whole-tensor passes; it also keeps float32 sums of ones exact.
_CHUNK = 1 << 19
# On accelerators, tensors above this many elements are reduced in chunks of it
# (bounded temporaries; see _device_stats_vector_chunked).
_DEVICE_CHUNK = 1 << 22


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


def _finalize(numel: int, total: float, sumsq: float, lo: float, hi: float, zeros: int,
              nans: int, infs: int, counts: list[int]) -> TensorStats:
    finite = numel - nans - infs
    if finite == 0:
        return TensorStats(None, None, None, None, None, zeros / numel, nans, infs, None, numel)
    if lo == hi:  # all finite values equal: exact, whatever the rounding of the sums
        mean, var = lo, 0.0
    else:
        mean = min(max(total / finite, lo), hi)
        var = max(sumsq / finite - mean * mean, 0.0)
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


def cpu_stats(t: torch.Tensor, bins: int = DEFAULT_BINS) -> TensorStats:
    """Statistics with host reads allowed (CPU tensors).

    One ``aminmax`` first: when min and max are finite there is no NaN or Inf
    anywhere, and the cheap reductions (``sum``, ``dot``, a sign pass for the
    zeros, the histogram above) run on the raw values.  Otherwise the rare
    path masks out non-finite values first.
    """
    numel = t.numel()
    if numel == 0:
        return _empty_stats(0)
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
        s = float(x.sum())
        if not math.isfinite(s):  # float32 sums of values near 3e38 overflow: redo in float64
            s = float(x.sum(dtype=torch.float64))
        total += s
        sq = float(torch.dot(x, x))
        if not math.isfinite(sq):  # float32 squares overflow beyond ~1.8e19: redo in float64
            xd = x.double()
            sq = float(torch.dot(xd, xd))
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
    return _finalize(numel, total, sumsq, lo, hi, zeros, nans, infs, counts)


def device_stats_vector(t: torch.Tensor, bins: int = DEFAULT_BINS) -> torch.Tensor:
    """All statistics as one float64 vector on ``t``'s device, with no host sync.

    Layout: numel, sum, sumsq, min, max, zeros, nans, infs, then ``bins`` counts.
    Everything is a device kernel (no ``bincount``/``histc``, which need host
    values, no Python scalars copied to the device), and the temporaries stay
    at about two float32 copies of the input: positions are binned in place
    and counted with ``index_add_`` of an expanded one (no per-element source).
    The square sum is taken on values scaled by the largest magnitude, so it
    cannot overflow in float32.
    """
    if t.numel() > _DEVICE_CHUNK:  # huge tensors: bounded temporaries, see _device_stats_vector_chunked
        return _device_stats_vector_chunked(t.detach().reshape(-1), bins)
    x = t.detach()
    if x.is_complex():
        x = x.abs()
    x = x.reshape(-1)
    if x.dtype != torch.float64:
        x = x.to(torch.float32)
    numel = x.numel()
    f64 = dict(dtype=torch.float64, device=x.device)
    if numel == 0:
        return torch.zeros(8 + bins, **f64)
    fin = torch.isfinite(x)
    n_fin = fin.sum()
    nans = torch.isnan(x).sum()
    infs = numel - n_fin - nans
    lo = x.nan_to_num(math.inf, math.inf, math.inf).amin()    # min over finite values
    hi = x.nan_to_num(-math.inf, -math.inf, -math.inf).amax()  # max over finite values
    xf = x.nan_to_num(0.0, 0.0, 0.0)
    total = xf.sum(dtype=torch.float64)
    mag = torch.maximum(lo.abs(), hi.abs()).nan_to_num(0.0, 0.0, 0.0).clamp_min(torch.finfo(x.dtype).tiny)
    sumsq = xf.div_(mag).square_().sum(dtype=torch.float64) * mag.double().square()
    del xf
    width = (hi - lo).clamp_min(torch.finfo(x.dtype).tiny)
    pos = (x - lo).mul_(bins / width).nan_to_num_(0.0, 0.0, 0.0).floor_().clamp_(0, bins - 1)
    idx = pos.to(torch.int32).masked_fill_(~fin, bins)
    del pos
    counts = torch.zeros(bins + 1, **f64)
    counts.index_add_(0, idx, torch.ones((), **f64).expand(numel))
    head = torch.stack([
        torch.full((), float(numel), **f64), total, sumsq, lo.double(), hi.double(),
        (x == 0).sum().double(), nans.double(), infs.double(),
    ])
    return torch.cat([head, counts[:bins]])



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
        self._versions: dict[int, int] = {}  # node id -> version counter of the tensor when reduced
        self._shared: dict[int, int] = {}    # node id -> node id whose statistics it shares

    def __call__(self, node_id: int, t: torch.Tensor) -> None:
        deferred = self.deferred if self.deferred is not None else t.device.type != "cpu"
        if deferred:
            self._pending.append((node_id, device_stats_vector(t, self.bins)))
        else:
            self._ready[node_id] = cpu_stats(t, self.bins)
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
    with torch.no_grad():
        for name, p in named:
            if p.device.type == "cpu":
                out[name] = _weight_from(name, cpu_stats(p, bins))
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
        norm = math.sqrt(max((s.std ** 2 + s.mean ** 2) * n_fin, 0.0))
    return WeightStats(name, norm, s.mean, s.std, s.min, s.max, s.histogram)


def model_weight_stats(model: "torch.nn.Module", bins: int = DEFAULT_BINS) -> tuple[WeightStats, ...]:
    """Weight statistics of every floating parameter, each tensor once."""
    return weight_stats_all([(n, p) for n, p in model.named_parameters() if p.is_floating_point()], bins)
