"""Activation and weight statistics against torch reference values, and the warnings built on them.

Both reduction strategies are checked: ``cpu_stats`` (host reads allowed) and
``device_stats_vector`` (branch-free, what runs on accelerators), here run on
CPU tensors, which must agree with each other and with torch.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import mevreport
from mevreport.capture.stats import (
    DEFAULT_BINS,
    StatsCollector,
    cpu_stats,
    device_stats_vector,
    stats_from_vector,
)
from mevreport.capture.weight_stats import weight_stats_all

from .models_costs import DeadAndLarge, NanMaker


def both(t: torch.Tensor):
    return cpu_stats(t), stats_from_vector(device_stats_vector(t).tolist())


def reference(t: torch.Tensor) -> dict:
    x = t.detach().double().reshape(-1)
    fin = x[torch.isfinite(x)]
    lo, hi = float(fin.min()), float(fin.max())
    return dict(
        mean=float(fin.mean()), std=float(fin.std(unbiased=False)), min=lo, max=hi,
        abs_max=float(fin.abs().max()), zero_fraction=float((x == 0).sum()) / x.numel(),
        nan_count=int(torch.isnan(x).sum()), inf_count=int(torch.isinf(x).sum()),
        counts=[int(c) for c in torch.histc(fin, DEFAULT_BINS, lo, hi)] if lo < hi else None,
    )


def assert_matches(s, ref: dict, rel: float = 1e-5) -> None:
    assert s.mean == pytest.approx(ref["mean"], rel=rel, abs=1e-6)
    assert s.std == pytest.approx(ref["std"], rel=rel, abs=1e-6)
    assert (s.min, s.max, s.abs_max) == pytest.approx((ref["min"], ref["max"], ref["abs_max"]))
    assert s.zero_fraction == pytest.approx(ref["zero_fraction"])
    assert (s.nan_count, s.inf_count) == (ref["nan_count"], ref["inf_count"])
    assert (s.histogram.min, s.histogram.max) == pytest.approx((ref["min"], ref["max"]))
    if ref["counts"] is not None:
        assert list(s.histogram.counts) == ref["counts"]


@pytest.mark.parametrize("n", [1001, 4096, 65537])
def test_random_normal_with_zeros(n):
    x = torch.randn(n)
    x[::7] = 0.0
    for s in both(x):
        assert_matches(s, reference(x))
        assert s.numel == n


def test_float32_fast_path_over_several_chunks_and_special_ranges():
    """The chunked float32 path (three chunks, an odd tail), a strictly positive tensor (its zero count is
    known without a pass) and integer-valued data sitting exactly on bin edges all match the reference."""
    from mevreport.capture import stats

    g = torch.Generator().manual_seed(5)
    multi = torch.randn(2 * stats._CHUNK + 3, generator=g)
    multi[::5] = 0.0
    positive = torch.rand(70_001, generator=g) + 0.5
    edges = torch.randint(0, 33, (90_001,), generator=g).float()  # 0..32 over [0, 32]: every value on an edge
    for x in (positive, edges):
        s = cpu_stats(x)
        assert_matches(s, reference(x))
        assert s.numel == x.numel()
    # A million normal values put a few within float32 rounding of a bin edge: positions are computed in
    # float32, the reference bins in float64, so such an element may land one bin over; nothing is lost.
    s, ref = cpu_stats(multi), reference(multi)
    assert_matches(s, {**ref, "counts": None})
    assert sum(s.histogram.counts) == multi.numel()
    assert max(abs(a - b) for a, b in zip(s.histogram.counts, ref["counts"])) <= 2
    assert cpu_stats(positive).zero_fraction == 0.0
    assert cpu_stats(multi).zero_fraction == pytest.approx(((multi.numel() + 4) // 5) / multi.numel())


@pytest.mark.parametrize("offset", [10.0, 1000.0, 1e5])
def test_std_is_right_when_the_mean_dwarfs_the_spread(offset, monkeypatch):
    """1000 ± 0.01 has std 0.01: sum of squares minus n·mean² in float32 read 0.25 (and 0.0 at 1e5).
    All three paths (CPU, device one-shot, device chunked) now keep the spread."""
    from mevreport.capture import stats_device

    x = offset + 0.01 * torch.randn(100_000, generator=torch.Generator().manual_seed(3))
    ref = x.double()
    monkeypatch.setattr(stats_device, "_DEVICE_CHUNK", 4096)
    chunked = stats_from_vector(device_stats_vector(x).tolist())
    monkeypatch.undo()
    for s in (*both(x), chunked):
        assert s.std == pytest.approx(ref.std(unbiased=False).item(), rel=1e-4)
        assert s.mean == pytest.approx(ref.mean().item(), rel=1e-7)
    w = weight_stats_all([("w", x)])[0]
    assert w.norm == pytest.approx(ref.norm().item(), rel=1e-6)


def test_relu_output_all_bins_and_hi_in_last_bin():
    x = torch.randn(3, 50, 7).relu()
    for s in both(x):
        assert_matches(s, reference(x))
        assert sum(s.histogram.counts) == x.numel()


def test_nan_and_inf_are_counted_and_excluded():
    x = torch.randn(500)
    x[3] = float("nan")
    x[10] = float("nan")
    x[20] = float("inf")
    x[21] = float("-inf")
    x[22] = 0.0
    for s in both(x):
        assert_matches(s, reference(x))
        assert (s.nan_count, s.inf_count) == (2, 2)
        assert sum(s.histogram.counts) == 496


def test_all_non_finite():
    x = torch.tensor([float("nan"), float("inf"), float("nan")])
    for s in both(x):
        assert (s.nan_count, s.inf_count, s.numel) == (2, 1, 3)
        assert s.mean is None and s.std is None and s.histogram is None


def test_all_equal_values():
    x = torch.full((1000,), 1234.5678)
    for s in both(x):
        assert s.mean == pytest.approx(1234.5678) and s.std == 0.0
        assert s.min == s.max == pytest.approx(1234.5678)
        assert s.histogram.counts[0] == 1000 and sum(s.histogram.counts) == 1000
    zeros = torch.zeros(10, 10)
    for s in both(zeros):
        assert s.zero_fraction == 1.0 and s.mean == 0.0 and s.std == 0.0


def test_empty_tensor():
    for s in both(torch.empty(0, 4)):
        assert s.numel == 0 and s.mean is None and s.histogram is None and s.nan_count == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_low_and_double_precision(dtype):
    x = (torch.randn(2000) * 3).to(dtype)
    x[5] = 0
    for s in both(x):
        assert_matches(s, reference(x), rel=1e-4)


def test_complex_uses_magnitudes():
    z = torch.randn(300, dtype=torch.complex64)
    for s in both(z):
        assert_matches(s, reference(z.abs()))


def test_large_values_do_not_overflow_the_square_sum():
    x = torch.tensor([3e19, -3e19, 1.0, 0.0], dtype=torch.float32)
    s = cpu_stats(x)
    assert s.std == pytest.approx(float(torch.tensor(x.tolist(), dtype=torch.float64).std(unbiased=False)), rel=1e-6)


def test_collector_shares_stats_of_reshaping_views_only():
    class M(nn.Module):
        def forward(self, x):
            y = x * 2
            v = y.view(-1).t() if y.dim() == 1 else y.view(-1)  # same values, other shape
            s = y[:3]                                            # a subset: own statistics
            return v, s

    report = mevreport.analyze(M(), torch.randn(10), runs=0)
    by_op = {n.op.split(".")[1]: n for n in report.nodes}
    assert by_op["view"].stats == by_op["mul"].stats
    assert by_op["slice"].stats.numel == 3 and by_op["slice"].stats != by_op["mul"].stats


def test_view_of_a_written_tensor_is_reduced_again():
    class M(nn.Module):
        def forward(self, x):
            y = x * 2
            y.view(-1)[0] = 100.0   # write through a view: y changed after its stats were taken
            return y.view(-1)

    report = mevreport.analyze(M(), torch.ones(4, 4), runs=0)
    last = report.nodes[-1]
    assert last.op.startswith("aten.view") and last.stats.max == 100.0


def test_views_of_parameters_get_no_activation_stats():
    report = mevreport.analyze(nn.Linear(4, 3), torch.randn(2, 4), runs=0)
    t_nodes = [n for n in report.nodes if n.op.startswith("aten.t.")]
    assert t_nodes and all(n.stats is None for n in t_nodes)
    assert [n.stats is not None for n in report.nodes if n.op.startswith("aten.addmm")] == [True]


def test_deferred_collector_matches_immediate():
    xs = [torch.randn(100), torch.randn(7, 9).relu(), torch.tensor([1.0, float("nan"), 3.0])]
    now, later = StatsCollector(deferred=False), StatsCollector(deferred=True)
    for i, x in enumerate(xs):
        now(i, x)
        later(i, x)
    a, b = now.finish(), later.finish()
    for i in range(len(xs)):
        assert a[i].histogram == b[i].histogram
        assert (a[i].nan_count, a[i].zero_fraction) == (b[i].nan_count, b[i].zero_fraction)
        assert a[i].mean == pytest.approx(b[i].mean, rel=1e-6)


def test_weight_stats_per_parameter():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    report = mevreport.analyze(model, torch.randn(3, 5), runs=0)
    got = {w.name: w for w in report.weight_stats}
    assert list(got) == [n for n, _ in model.named_parameters()]
    for name, p in model.named_parameters():
        w = got[name]
        assert w.norm == pytest.approx(float(p.detach().double().norm()), rel=1e-5)
        assert w.mean == pytest.approx(float(p.detach().double().mean()), rel=1e-5, abs=1e-7)
        assert w.std == pytest.approx(float(p.detach().double().std(unbiased=False)), rel=1e-5)
        assert (w.min, w.max) == pytest.approx((float(p.detach().min()), float(p.detach().max())))
        assert sum(w.histogram.counts) == p.numel()
    assert mevreport.analyze(model, torch.randn(3, 5), runs=0, stats=False).weight_stats == ()


def test_weight_stats_all_one_transfer(monkeypatch):
    """Off the CPU every parameter's vector is stacked and brought back once."""
    calls = []
    real = torch.Tensor.cpu

    def counting_cpu(self, *a, **k):
        calls.append(self.shape)
        return real(self, *a, **k)

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA to observe device transfers")
    monkeypatch.setattr(torch.Tensor, "cpu", counting_cpu)
    params = [(f"p{i}", torch.randn(10, device="cuda")) for i in range(5)]
    out = weight_stats_all(params)
    assert len(out) == 5 and len(calls) == 1


# --- warnings -----------------------------------------------------------------

def test_first_nan_origin_names_node_and_module():
    report = mevreport.analyze(NanMaker(), torch.randn(2, 4), runs=0)
    origin = [w for w in report.warnings if w.kind == "nan_origin"]
    assert len(origin) == 1
    node = report.nodes[origin[0].node]
    assert node.op.startswith("aten.log") and node.module_path == "inner.0"
    assert "inner.0" in origin[0].message and "8 NaN" in origin[0].message
    later = [n for n in report.nodes if n.id > node.id and n.stats and n.stats.nan_count]
    assert later  # the NaN propagates, and only the first producer is named


def test_dead_activation_and_large_values():
    report = mevreport.analyze(DeadAndLarge(), torch.randn(4, 16), runs=0)
    dead = [w for w in report.warnings if w.kind == "dead_activation"]
    assert [report.nodes[w.node].module_path for w in dead] == ["dead"]
    assert report.nodes[dead[0].node].op.startswith("aten.relu")
    large = [w for w in report.warnings if w.kind == "large_values"]
    assert large and report.nodes[large[0].node].module_path == "big"
    assert not [w for w in report.warnings if w.kind == "nan_origin"]


def test_no_warnings_on_a_healthy_model():
    report = mevreport.analyze(nn.Sequential(nn.Linear(8, 8), nn.Tanh()), torch.randn(4, 8), runs=0)
    assert {w.kind for w in report.warnings} <= {"capture_note"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_stats_agree_with_cpu():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).eval()
    x = torch.randn(8, 16)
    cpu = mevreport.analyze(model, x, runs=0)
    gpu = mevreport.analyze(model, x, device="cuda", runs=0)
    assert [n.op for n in cpu.nodes] == [n.op for n in gpu.nodes]
    for a, b in zip(cpu.nodes, gpu.nodes):
        if a.stats is None:
            assert b.stats is None
            continue
        assert b.stats.mean == pytest.approx(a.stats.mean, rel=1e-3, abs=1e-4)
        assert b.stats.zero_fraction == a.stats.zero_fraction
        assert sum(b.stats.histogram.counts) == sum(a.stats.histogram.counts)
    assert math.isclose(sum(w.norm for w in gpu.weight_stats), sum(w.norm for w in cpu.weight_stats), rel_tol=1e-4)
    assert next(model.parameters()).device.type == "cpu"  # left where it was


def test_attention_mask_sentinel_is_not_a_large_value():
    class Masked(nn.Module):
        def forward(self, scores, keep):
            masked = scores + (1.0 - keep) * torch.finfo(scores.dtype).min   # HF-style additive mask
            return torch.softmax(masked, -1)

    keep = torch.ones(2, 8, 8)
    keep[:, :, 6:] = 0
    report = mevreport.analyze(Masked(), (torch.randn(2, 8, 8), keep), runs=0)
    assert not [w for w in report.warnings if w.kind == "large_values"]
    assert report.nodes[-1].stats.max <= 1.0  # the softmax saw the mask and is fine


def test_hf_gpt2_with_padding_mask_runs_and_counts_the_same():
    """A padding mask makes HF call data-dependent checks that return a bool from an aten op."""
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=4, vocab_size=50, n_positions=16,
                                  bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    ids = torch.randint(0, 50, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 5:] = 0
    padded = mevreport.analyze(model, {"input_ids": ids, "attention_mask": mask}, runs=0)
    plain = mevreport.analyze(model, {"input_ids": ids}, runs=0, stats=False)
    assert padded.totals.macs == plain.totals.macs == 1 * (12 * 2 * 8 * 32 * 32 + 2 * 2 * 8 * 8 * 32) + 2 * 8 * 32 * 50
    assert not [w for w in padded.warnings if w.kind == "large_values"]


class _MaskedAttention(nn.Module):
    """Causal attention written out with a -inf mask, as hand-written GPT code does."""

    def __init__(self, overflow: bool) -> None:
        super().__init__()
        self.overflow = overflow

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = x @ x.transpose(-1, -2)
        causal = torch.ones(x.shape[-2], x.shape[-2], dtype=torch.bool).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        out = scores.softmax(-1) @ x
        return out * 1e38 * 1e10 if self.overflow else out  # overflow: a real Inf, from mul


def test_deliberate_inf_mask_is_not_a_nan_origin_but_overflow_is():
    x = torch.randn(1, 8, 4)
    masked = mevreport.analyze(_MaskedAttention(False), x, runs=0)
    fill = next(n for n in masked.nodes if n.op.startswith("aten.masked_fill"))
    assert fill.stats.inf_count == 8 * 7 // 2  # the strictly upper triangle
    assert not [w for w in masked.warnings if w.kind == "nan_origin"]
    overflow = mevreport.analyze(_MaskedAttention(True), x, runs=0)
    origin = [w for w in overflow.warnings if w.kind == "nan_origin"]
    first_mul = next(n for n in overflow.nodes if n.op.startswith("aten.mul") and n.stats.inf_count)
    assert len(origin) == 1 and origin[0].node == first_mul.id
