"""Strange but legal models still get a report (issue 7).

Every case writes the HTML and the JSON, reads both back equal, and checks
exact figures derived by hand from the fixture's shapes (tests/models_strange.py).
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import mevreport
from tests import models_strange as S

REPO = Path(__file__).resolve().parent.parent


def _not_json(literal: str):
    raise AssertionError(f"{literal} is not JSON")


def report_of(model: torch.nn.Module, inputs, tmp_path: Path, runs: int = 1) -> mevreport.Report:
    """Analyze, write both documents, and check they read back equal."""
    report = mevreport.analyze(model, inputs, runs=runs)
    html, doc = tmp_path / "r.html", tmp_path / "r.json"
    report.save_html(html)
    report.save_json(doc)
    assert mevreport.load(html) == report
    assert mevreport.load(doc) == report
    json.loads(doc.read_text(encoding="utf-8"), parse_constant=_not_json)  # no NaN/Infinity literals
    return report


def ops(report: mevreport.Report) -> list[str]:
    return [n.op for n in report.nodes]


def test_no_parameters(tmp_path: Path) -> None:
    r = report_of(S.NoParams(), torch.randn(2, 3), tmp_path)
    assert ops(r) == ["aten.mul.Tensor", "aten.add.Tensor", "aten.relu.default"]
    assert (r.totals.params, r.totals.param_bytes, r.totals.macs) == (0, 0, 0)
    assert r.totals.flops == 3 * 6  # one per output element of three elementwise ops on [2, 3]
    assert [(m.path, m.params) for m in r.modules] == [("", 0)]
    assert r.weight_stats == ()


def test_integer_only(tmp_path: Path) -> None:
    r = report_of(S.IntegerOnly(), torch.randint(0, 100, (2, 5)), tmp_path)
    assert ops(r) == ["aten.mul.Tensor", "aten.add.Tensor", "aten.cumsum.default", "aten.floor_divide.default"]
    assert all(n.outputs[0].dtype == "int64" and n.stats is None for n in r.nodes)  # no floating output: no stats
    assert r.totals.activation_bytes == 4 * 10 * 8
    assert not [w for w in r.warnings if w.kind == "nan_origin"]


def test_zero_size_tensors(tmp_path: Path) -> None:
    r = report_of(S.ZeroSize(), torch.randn(0, 4), tmp_path)
    assert ops(r) == ["aten.t.default", "aten.addmm.default", "aten._softmax.default"]
    assert r.totals.params == 4 * 3 + 3
    assert r.totals.macs == 0 and r.totals.peak_activation_bytes == 0
    for n in r.nodes[1:]:
        assert n.outputs[0].shape == (0, 3) and n.output_bytes == 0
        assert n.stats is not None and n.stats.numel == 0 and n.stats.mean is None and n.stats.histogram is None


def test_complex_tensors(tmp_path: Path) -> None:
    x = torch.randn(2, 8)
    r = report_of(S.ComplexSpectrum(), x, tmp_path)
    assert [n.outputs[0].dtype for n in r.nodes] == ["complex64"] * 4 + ["float32"]
    spec = torch.fft.fft(x)
    # Statistics of complex outputs are over magnitudes.
    assert r.nodes[0].stats.mean == pytest.approx(spec.abs().mean().item(), rel=1e-5)
    assert r.nodes[3].stats.mean == pytest.approx((spec.abs() ** 2).mean().item(), rel=1e-5)
    assert r.nodes[4].stats.max == pytest.approx((spec.abs() ** 2).max().item(), rel=1e-5)
    assert {u.op for u in r.uncounted_ops} == {"aten._fft_r2c.default", "aten._conj.default"}


def test_complex_inputs(tmp_path: Path) -> None:
    x = torch.randn(2, 8, dtype=torch.complex64)
    r = report_of(S.ComplexSpectrum(), x, tmp_path)
    assert r.inputs[0].dtype == "complex64"
    assert r.nodes[0].op == "aten._fft_c2c.default"
    assert r.nodes[-1].stats.mean == pytest.approx((torch.fft.fft(x).abs() ** 2).mean().item(), rel=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_half_precision(dtype: torch.dtype, tmp_path: Path) -> None:
    model, x = S.HalfPrecision().to(dtype), torch.randn(3, 8).to(dtype)
    r = report_of(model, x, tmp_path)
    name = str(dtype).removeprefix("torch.")
    assert ops(r) == ["aten.t.default", "aten.addmm.default", "aten.gelu.default"]
    assert all(n.outputs[0].dtype == name for n in r.nodes)
    assert r.totals.params == 8 * 4 + 4 and r.totals.param_bytes == (8 * 4 + 4) * 2
    assert r.totals.macs == 3 * 8 * 4
    with torch.no_grad():
        expected = model(x).float()
    assert r.nodes[2].stats.mean == pytest.approx(expected.mean().item(), rel=1e-3, abs=1e-4)
    assert r.nodes[2].stats.max == pytest.approx(expected.max().item(), rel=1e-3)


def test_nan_from_the_start(tmp_path: Path) -> None:
    r = report_of(S.NanFromStart(), torch.randn(2, 4), tmp_path)
    assert ops(r)[:2] == ["aten.sub.Tensor", "aten.sqrt.default"]
    assert r.nodes[0].stats.nan_count == 0 and r.nodes[1].stats.nan_count == 8
    origin = [w for w in r.warnings if w.kind == "nan_origin"]
    assert len(origin) == 1 and origin[0].node == 1
    assert "node 1 (sqrt)" in origin[0].message and "module 'bad'" in origin[0].message and "8 NaN" in origin[0].message
    assert r.nodes[1].module_path == "bad"
    assert r.nodes[-1].stats.mean is None and r.nodes[-1].stats.histogram is None  # nothing finite to describe


def test_values_beyond_float32_sums(tmp_path: Path) -> None:
    """Finite values near float32's maximum: sums overflow float32, the statistics must not (and JSON stays valid)."""

    class Huge(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 3e38

    r = report_of(Huge(), torch.ones(64), tmp_path)
    s = r.nodes[0].stats
    assert s.nan_count == 0 and s.inf_count == 0
    assert s.mean == pytest.approx(3e38, rel=1e-6) and s.std == 0.0
    assert sum(s.histogram.counts) == 64


BIG = """
import resource, sys, torch, mevreport
from tests.models_strange import Reshape

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()

x = torch.empty(100_000_000, dtype=torch.{dtype}).normal_(generator=torch.Generator().manual_seed(0))
mevreport.analyze(Reshape(), torch.randn(10, 1000, dtype=torch.{dtype}), runs=0)  # imports and kernels, once
base = max(rss(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
r = mevreport.analyze(Reshape(), x, runs=0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
r.save_html(sys.argv[1])
s = r.nodes[0].stats

# The accelerator path (one stats vector per node, no host sync), run here on the CPU tensor's first 40M elements.
from mevreport.capture.stats import device_stats_vector, stats_from_vector
d = stats_from_vector(device_stats_vector(x[:40_000_000]).tolist())
device_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(peak - base, s.numel, sum(s.histogram.counts), s.mean, s.std, s.nan_count, device_peak - peak, sum(d.histogram.counts))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="measures RSS through /proc")
def test_hundred_million_elements_without_a_full_copy(tmp_path: Path) -> None:
    """Statistics of a 100M-element bfloat16 tensor (200 MB) convert to float32 a chunk at a time.

    A full float32 copy would add 400 MB to the peak; the model's own output is
    a view (no allocation), so the growth is the statistics' working memory.
    """
    script = textwrap.dedent(BIG.format(dtype="bfloat16"))
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "big.html")], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    growth, numel, in_histogram, mean, std, nans, device_growth, device_in_histogram = proc.stdout.split()
    assert int(numel) == 100_000_000 and int(in_histogram) == 100_000_000 and int(nans) == 0
    assert abs(float(mean)) < 1e-3 and float(std) == pytest.approx(1.0, rel=1e-2)
    assert int(growth) < 200 * 2**20, f"peak RSS grew by {int(growth) / 2**20:.0f} MiB (a float32 copy is 381 MiB)"
    assert (tmp_path / "big.html").stat().st_size > 0
    # ru_maxrss only rises above the first peak, so this bounds the accelerator path's own growth from above.
    # Its one-shot form held ~20 full-size temporaries (about 1.5 GiB for these 40M elements).
    assert int(device_in_histogram) == 40_000_000
    assert int(device_growth) + int(growth) < 300 * 2**20, f"{int(device_growth) / 2**20:.0f} MiB"


def test_chunked_statistics_match_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunked path (tiny chunks here) gives the same numbers as one chunk, NaN and infinities included."""
    from mevreport.capture import stats

    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.complex64):
        t = torch.randn(5000, generator=torch.Generator().manual_seed(1)).to(dtype)
        t[3], t[5], t[7] = float("nan"), float("inf"), -float("inf")
        whole = stats.cpu_stats(t)
        monkeypatch.setattr(stats, "_CHUNK", 64)
        chunked = stats.cpu_stats(t)
        monkeypatch.undo()
        ref = t.abs().double() if dtype.is_complex else t.double()
        finite = ref[torch.isfinite(ref)]
        assert (whole.nan_count, whole.inf_count) == (chunked.nan_count, chunked.inf_count) == (1, 2)
        assert whole.histogram.counts == chunked.histogram.counts and sum(whole.histogram.counts) == 4997
        for s in (whole, chunked):
            assert s.mean == pytest.approx(finite.mean().item(), rel=1e-6, abs=1e-9)
            assert s.std == pytest.approx(finite.std(unbiased=False).item(), rel=1e-6)
            assert (s.min, s.max) == (finite.min().item(), finite.max().item())


def test_chunked_device_vector_matches_one_shot(monkeypatch: pytest.MonkeyPatch) -> None:
    """The accelerator path's chunked form (tiny chunks here) gives the one-shot vector."""
    from mevreport.capture import stats, stats_device

    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64):
        t = torch.randn(5000, generator=torch.Generator().manual_seed(2)).to(dtype)
        t[3], t[5], t[7] = float("nan"), float("inf"), -float("inf")
        one_shot = stats.device_stats_vector(t)
        monkeypatch.setattr(stats_device, "_DEVICE_CHUNK", 64)
        chunked = stats.device_stats_vector(t)
        monkeypatch.undo()
        head = len(stats_device.HEAD)
        exact = [0, 3, 4, 5, 6, 7, 8] + list(range(head, head + stats.DEFAULT_BINS))  # counts, min, max, histogram
        assert torch.equal(one_shot[exact], chunked[exact])
        assert torch.allclose(one_shot[1:3], chunked[1:3], rtol=1e-9)  # moments: float64 sums in another order
    empty = stats.stats_from_vector(stats.device_stats_vector(torch.empty(0)).tolist())
    assert empty.numel == 0 and empty.histogram is None


def test_fifty_levels_of_nesting(tmp_path: Path) -> None:
    r = report_of(S.Nest(50), torch.randn(2, 4), tmp_path)
    deepest = ".".join(["inner"] * 50)
    assert [m.path for m in r.modules] == [""] + [".".join(["inner"] * k) for k in range(1, 51)]
    assert r.modules[-1].path == deepest and r.modules[-1].depth == 50 and r.modules[-1].class_name == "Linear"
    assert {m.macs for m in r.modules} == {2 * 4 * 4}  # the one Linear rolls up through every level
    assert all(n.module_path == deepest for n in r.nodes)
    assert "inner.inner.inner" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_module_called_from_several_parents(tmp_path: Path) -> None:
    """One Linear shared by ``a`` and ``b``: each call is named under the parent that made it."""
    r = report_of(S.SharedChild(), torch.randn(2, 4), tmp_path)
    assert r.totals.params == 4 * 4 + 4  # the shared parameters once
    assert [n.module_path for n in r.nodes] == ["a.shared", "a.shared", "a", "b.shared", "b.shared", "b"]
    rows = {m.path: m for m in r.modules}
    assert set(rows) == {"", "a", "a.shared", "b", "b.shared"}
    assert rows["a.shared"].calls == rows["b.shared"].calls == 1
    assert rows["a"].macs == rows["b"].macs == rows["a.shared"].macs == rows["b.shared"].macs == 2 * 4 * 4
    assert rows[""].macs == r.totals.macs == 2 * (2 * 4 * 4)
    assert rows["a"].nodes == rows["b"].nodes == 3


def test_shared_module_called_from_outside_its_parents(tmp_path: Path) -> None:
    """Called by the root, the shared Linear has no name under the running module: it gets its first name."""

    class Root(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = S.SharedChild()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner.b.shared(self.inner(x))

    r = report_of(Root(), torch.randn(2, 4), tmp_path)
    assert [n.module_path for n in r.nodes][-2:] == ["inner.a.shared", "inner.a.shared"]
    assert {m.path: m.calls for m in r.modules}["inner.a.shared"] == 2


def test_forward_returning_none(tmp_path: Path) -> None:
    model = S.ReturnsNone()
    r = report_of(model, torch.randn(2, 4), tmp_path)
    assert ops(r) == ["aten.t.default", "aten.addmm.default"]
    assert r.totals.macs == 2 * 4 * 2
    assert r.totals.peak_activation_bytes == 2 * 2 * 4  # the addmm output, freed after its last use
    assert model.last is None  # left as found: what forward stored on the module is put back (docs/capture.md)


def test_torch_compiled_model_and_compiled_helper_are_captured_eagerly() -> None:
    """A ``torch.compile``d model, and a model calling a ``@torch.compile`` function, give the eager aten ops
    with exact MACs; dynamo must not trace mevreport's own recording code (it did, for seconds, when the
    recorder's ``__torch_dispatch__`` was not shielded from it)."""
    import warnings

    @torch.compile
    def helper(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x) * 2 + 1

    class Calls(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return helper(self.lin(x))

    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that global module hooks fire for the OptimizedModule too
        seq = mevreport.analyze(torch.compile(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))),
                                torch.randn(2, 8), runs=2)
        calls = mevreport.analyze(Calls(), torch.randn(2, 8), runs=2)
    assert [n.op for n in seq.nodes] == ["aten.t.default", "aten.addmm.default", "aten.relu.default",
                                         "aten.t.default", "aten.addmm.default"]
    assert seq.totals.macs == 2 * 8 * 16 + 2 * 16 * 4
    assert [n.op.split(".")[1] for n in calls.nodes] == ["t", "addmm", "sin", "mul", "add"]
    assert calls.totals.macs == 2 * 8 * 8
    assert all(n.stats is not None for n in calls.nodes if n.op != "aten.t.default")
    assert not counters["frames"]  # no frame was compiled: the model ran eagerly under the recorder
