"""Statistics hold on every value distribution of every floating dtype (issue 12).

A hypothesis property over value distributions — offsets up to 1e30, spans
down to one ulp, subnormals, constants, two distinct values, ±inf/NaN mixes,
values near the dtype's limits — checks both reduction strategies (the CPU
fast/exact paths of ``cpu_stats`` and the branch-free ``device_stats_vector``,
run here on CPU tensors, whole and in tiny chunks) against a float64/exact
reference, with the tolerances stated in docs/report.md ("Statistics"):

* min, max, abs_max, nan/inf counts and zero_fraction: exact;
* mean: within 1e-6 · max|x| of the float64 mean;
* std: within 1e-4 · std + 1e-6 · max|x| of the float64 population std;
* histogram: the counts sum to the number of finite values, and every finite
  value lies in its exact bin or a neighbour (edges ±1).
"""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mevreport.capture import stats, stats_device
from mevreport.capture.stats import DEFAULT_BINS, cpu_stats, device_stats_vector, stats_from_vector

MEAN_TOL = 1e-6   # × max|x|, absolute
STD_REL, STD_ABS = 1e-4, 1e-6   # relative, and × max|x| absolute

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16] + [
    getattr(torch, name) for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")
    if hasattr(torch, name)
]
_INT_VIEW = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.int8}


def _exact_bins(values: list[float], lo: float, hi: float, bins: int) -> list[int]:
    counts = [0] * bins
    if lo == hi:
        counts[0] = len(values)
        return counts
    width = Fraction(hi) - Fraction(lo)
    for v in values:
        b = math.floor((Fraction(v) - Fraction(lo)) * bins / width)
        counts[min(b, bins - 1)] += 1
    return counts


def _within_one_bin(got: list[int], exact: list[int]) -> bool:
    """Each value moved at most one bin (binning is monotone, so prefix sums bracket each other)."""
    cg = ce = 0
    ce_prefix = [0]
    for c in exact:
        ce += c
        ce_prefix.append(ce)
    n = len(exact)
    for i, c in enumerate(got):
        cg += c
        below, above = ce_prefix[max(i, 0)], ce_prefix[min(i + 2, n)]
        if not below <= cg <= above:
            return False
    return cg == ce


def check(s, x: torch.Tensor, bins: int = DEFAULT_BINS) -> None:
    v = x.double().reshape(-1)
    fin = v[torch.isfinite(v)]
    assert s.numel == v.numel()
    assert (s.nan_count, s.inf_count) == (int(torch.isnan(v).sum()), int(torch.isinf(v).sum()))
    assert s.zero_fraction == float((v == 0).sum()) / v.numel()
    if fin.numel() == 0:
        assert s.mean is None and s.std is None and s.histogram is None
        return
    lo, hi = float(fin.min()), float(fin.max())
    assert (s.min, s.max, s.abs_max) == (lo, hi, max(abs(lo), abs(hi)))
    mag = max(abs(lo), abs(hi))
    values = fin.tolist()
    exact_mean = sum(Fraction(a) for a in values) / len(values)
    ref_std = math.sqrt(float(sum((Fraction(a) - exact_mean) ** 2 for a in values) / len(values))) \
        if mag < 1e150 and mag > 1e-150 else None
    assert abs(Fraction(s.mean) - exact_mean) <= Fraction(MEAN_TOL) * Fraction(mag)
    if ref_std is not None:
        assert abs(s.std - ref_std) <= STD_REL * ref_std + STD_ABS * mag
    assert (s.histogram.min, s.histogram.max) == (lo, hi)
    got = list(s.histogram.counts)
    assert sum(got) == fin.numel()
    assert _within_one_bin(got, _exact_bins(values, lo, hi, bins)), (got, _exact_bins(values, lo, hi, bins))


@st.composite
def tensors(draw) -> torch.Tensor:
    dtype = draw(st.sampled_from(DTYPES))
    info = torch.finfo(dtype)
    n = draw(st.integers(1, 1500))
    kind = draw(st.sampled_from(["offset", "ulps", "subnormal", "constant", "two", "limits", "normal"]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    limit = min(info.max / 4, 1e30)
    if kind == "offset":  # values clustered tightly around a large offset: x + offset, |x| < span
        offset = draw(st.floats(-limit, limit, allow_nan=False))
        span = abs(offset) * 10.0 ** -draw(st.integers(0, 12)) or 1.0
        x = (torch.rand(n, generator=g, dtype=torch.float64) - 0.5) * span + offset
    elif kind == "ulps":  # a span of a few ulps: consecutive bit patterns above a base value
        base = torch.tensor([draw(st.floats(-limit, limit, allow_nan=False))], dtype=torch.float64).to(dtype)
        ints = base.view(_INT_VIEW[base.element_size()]).to(torch.int64)
        steps = torch.randint(0, draw(st.integers(1, 4)) + 1, (n,), generator=g)
        x = (ints + steps).to(_INT_VIEW[base.element_size()]).view(dtype)
        return x
    elif kind == "subnormal":  # subnormal spans, e.g. [0, 1.4e-42] in float32
        tiny = info.smallest_normal
        x = torch.rand(n, generator=g, dtype=torch.float64) * tiny * draw(st.sampled_from([1.0, 0.1, 1e-3]))
    elif kind == "constant":
        x = torch.full((n,), draw(st.floats(-limit, limit, allow_nan=False)), dtype=torch.float64)
    elif kind == "two":
        a, b = draw(st.floats(-limit, limit, allow_nan=False)), draw(st.floats(-limit, limit, allow_nan=False))
        x = torch.where(torch.rand(n, generator=g) < draw(st.floats(0.001, 0.999)), a, b).double()
    elif kind == "limits":  # huge magnitudes near the dtype's max, and tiny ones
        x = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * info.max
        x[::3] *= info.tiny
    else:
        x = torch.randn(n, generator=g, dtype=torch.float64) * 10.0 ** draw(st.integers(-30, 30))
        x[::5] = 0.0
    x = x.to(dtype)
    if draw(st.booleans()):  # ±inf / NaN mixes
        specials = [float("nan"), float("inf"), -float("inf")]
        for _ in range(draw(st.integers(1, 5))):
            x[draw(st.integers(0, n - 1))] = draw(st.sampled_from(specials))
    return x


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tensors())
def test_statistics_hold_on_every_distribution_and_dtype(x):
    check(cpu_stats(x), x)
    check(stats_from_vector(device_stats_vector(x).tolist()), x)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tensors())
def test_chunked_paths_hold_too(x):
    """Tiny chunks: the accelerator path's accumulators, the CPU fast path's chunk loop."""
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(stats_device, "_DEVICE_CHUNK", 64)
        mp.setattr(stats, "_CHUNK", 64)
        check(cpu_stats(x), x)
        check(stats_from_vector(device_stats_vector(x).tolist()), x)
    finally:
        mp.undo()


@pytest.mark.parametrize("n", [100, 1000, 100_000])
def test_values_around_a_large_offset(n):
    """The issue's case: ``x - 1e6`` with |x| < 0.5 in float32 made bin positions below 0 (bincount raised;
    5 of these 40 seeds at n=100 before the fix)."""
    for seed in range(40):
        x = (torch.rand(n, generator=torch.Generator().manual_seed(seed)) - 0.5) - 1e6
        check(cpu_stats(x), x)
        check(stats_from_vector(device_stats_vector(x).tolist()), x)


def test_subnormal_span():
    """``[0, 1.4e-42]``: bins / (hi - lo) overflowed float32."""
    x = torch.linspace(0, 1.4e-42, 1000)
    assert x.max().item() > 0 and x.max().item() < torch.finfo(torch.float32).tiny
    for s in (cpu_stats(x), stats_from_vector(device_stats_vector(x).tolist())):
        check(s, x)
        assert s.std > 0 and sum(1 for c in s.histogram.counts if c) >= 30  # spread over the bins, not lumped


def test_t5_training_step_statistics():
    """A T5 from a tiny config, grad=True in train mode: its statistics crashed the report (subnormal spans)."""
    transformers = pytest.importorskip("transformers")
    import mevreport

    cfg = transformers.T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_decoder_layers=1,
                                num_heads=2, decoder_start_token_id=0, pad_token_id=0)
    torch.manual_seed(0)
    model = transformers.T5ForConditionalGeneration(cfg).train()
    ids = torch.randint(1, 64, (2, 7))
    report = mevreport.analyze(model, {"input_ids": ids, "labels": ids}, grad=True, runs=0)
    measured = [n for n in report.nodes if n.stats is not None]
    assert measured and not [w for w in report.warnings if w.kind == "stats_failed"]
    for n in measured:
        if n.stats.histogram is not None:
            assert sum(n.stats.histogram.counts) == n.stats.numel - n.stats.nan_count - n.stats.inf_count


class _ThreeOps(torch.nn.Module):
    def forward(self, x):
        return torch.tanh(x * 2) + 1


@pytest.mark.parametrize("capture", ["dispatch", "export"])
def test_a_failing_statistic_nulls_one_node_and_warns(monkeypatch, capture):
    """An injected failure in the statistics of the tanh output: that node gets stats None and a warning
    naming its op; every other node keeps its statistics and the report is written."""
    import mevreport

    real = stats.cpu_stats

    def flaky(t, *a, **k):
        if t.dtype == torch.float32 and t.shape == (3, 4) and bool((t.abs() <= 1).all()) and bool((t < 0).any()):
            raise FloatingPointError("injected")
        return real(t, *a, **k)

    monkeypatch.setattr(stats, "cpu_stats", flaky)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    report = mevreport.analyze(_ThreeOps(), x, capture=capture, runs=0)
    tanh = next(n for n in report.nodes if n.op.startswith("aten.tanh"))
    assert tanh.stats is None
    failed = [w for w in report.warnings if w.kind == "stats_failed"]
    assert [w.node for w in failed] == [tanh.id]
    assert "aten.tanh.default" in failed[0].message and "FloatingPointError: injected" in failed[0].message
    others = [n for n in report.nodes if n.id != tanh.id and n.outputs and n.outputs[0].dtype == "float32"]
    assert others and all(n.stats is not None for n in others)
    assert report.to_dict()["nodes"][tanh.id]["stats"] is None


def test_a_failing_deferred_statistic_is_isolated(monkeypatch):
    """The accelerator path fails at the end (reading the vectors back): only that node is lost."""
    real = stats.stats_from_vector
    calls = []

    def flaky(v, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("injected")
        return real(v, *a, **k)

    monkeypatch.setattr(stats, "stats_from_vector", flaky)
    c = stats.StatsCollector(deferred=True)
    for i in range(3):
        c(i, torch.randn(10))
    out = c.finish()
    assert sorted(out) == [0, 2] and list(c.failures) == [1] and "ValueError: injected" in c.failures[1]
