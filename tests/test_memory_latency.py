"""Parameters, memory by liveness, latency, and analysis without data (fake tensors)."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import mevreport
import mevreport.capture.run as capture_run
import mevreport.capture.stats as stats_mod
from mevreport.analyze import op_short

from .models_costs import Chain, SDPABlock, Tied

warnings.filterwarnings("ignore", message=".*bos_token_id.*|.*eos_token_id.*")


# --- parameters --------------------------------------------------------------------

def test_params_tied_frozen_dtypes_and_buffers():
    model = Tied()
    report = mevreport.analyze(model, torch.tensor([[1, 2, 3]]), runs=0)
    emb, frozen, half = 10 * 4, 4 * 4 + 4, 4 * 4
    t = report.totals
    assert t.params == emb + frozen + half            # head.weight is emb.weight: once
    assert t.trainable_params == emb + half and t.frozen_params == frozen
    assert t.param_bytes == (emb + frozen) * 4 + half * 2
    assert (t.buffers, t.buffer_bytes) == (3, 3 * 8)
    rows = {p.name: p for p in report.params}
    assert rows["emb.weight"].tied_names == ("head.weight",) and "head.weight" not in rows
    assert rows["f16.weight"].dtype == "float16" and rows["scale"].is_buffer
    assert not rows["frozen.weight"].trainable
    # training estimate: weights + grads of trainable weights + two fp32 Adam states + all activations
    assert t.training_memory_estimate_bytes == (
        t.param_bytes + (emb * 4 + half * 2) + 2 * 4 * (emb + half) + t.activation_bytes)
    # the module table counts each parameter once under each module that holds it
    mods = {m.path: m for m in report.modules}
    assert mods[""].params == t.params and mods["head"].params == emb and mods["emb"].params == emb


# --- memory by liveness ----------------------------------------------------------

def test_output_bytes_and_peak_by_hand():
    n = 1000
    report = mevreport.analyze(Chain(), torch.randn(10, 100), runs=0, stats=False)
    assert [op_short(x.op) for x in report.nodes] == ["relu", "mul", "view", "add", "sum"]
    f = 4 * n
    assert [x.output_bytes for x in report.nodes] == [f, f, 0, f, 4]
    # relu: a alive (f); mul: a and b (2f), a dies; view: b (f); add: b and d (2f), b dies; sum: d and s
    assert list(report.memory_timeline) == [f, 2 * f, f, 2 * f, f + 4]
    assert report.totals.peak_activation_bytes == 2 * f
    assert report.totals.activation_bytes == 3 * f + 4


def test_in_place_ops_allocate_nothing():
    class M(nn.Module):
        def forward(self, x):
            y = x * 3
            y.relu_()
            y.add_(1)
            return y

    report = mevreport.analyze(M(), torch.randn(64), runs=0, stats=False)
    assert [x.output_bytes for x in report.nodes] == [256, 0, 0]
    assert report.totals.peak_activation_bytes == 256


# --- latency ---------------------------------------------------------------------

def test_latency_fields_and_module_sums():
    model = SDPABlock().eval()
    report = mevreport.analyze(model, torch.randn(2, 8, 32), runs=2, stats=False)
    t = report.totals
    assert t.latency_ms is not None and t.latency_ms > 0 and t.latency_runs == 2
    assert t.latency_spread_ms is not None and t.latency_spread_ms >= 0
    assert all(x.latency_ms is not None and x.latency_ms >= 0 for x in report.nodes)
    for row in report.modules:
        inside = [x for x in report.nodes
                  if row.path == "" or x.module_path == row.path or x.module_path.startswith(row.path + ".")]
        assert row.latency_ms == pytest.approx(sum(x.latency_ms for x in inside))
    assert t.measured_peak_bytes is None  # measured only on CUDA


def test_runs_zero_means_not_measured():
    report = mevreport.analyze(SDPABlock().eval(), torch.randn(2, 8, 32), runs=0)
    assert report.totals.latency_ms is None and report.totals.latency_runs == 0
    assert all(x.latency_ms is None for x in report.nodes)
    assert all(m.latency_ms is None for m in report.modules)


def test_timed_runs_do_no_statistics_work(monkeypatch):
    timing = {"on": False}
    reduced_while_timing = []
    real_stats = stats_mod.cpu_stats

    def spy_stats(*a, **k):
        if timing["on"]:
            reduced_while_timing.append(1)
        return real_stats(*a, **k)

    def timed(fn):
        def wrapper(*a, **k):
            timing["on"] = True
            try:
                return fn(*a, **k)
            finally:
                timing["on"] = False
        return wrapper

    monkeypatch.setattr(stats_mod, "cpu_stats", spy_stats)
    monkeypatch.setattr(capture_run, "per_op_latency", timed(capture_run.per_op_latency))
    monkeypatch.setattr(capture_run, "forward_latency", timed(capture_run.forward_latency))
    report = mevreport.analyze(SDPABlock().eval(), torch.randn(2, 8, 32), runs=2, stats=True)
    assert report.totals.latency_ms is not None
    assert any(x.stats is not None for x in report.nodes)
    assert reduced_while_timing == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_latency_and_measured_peak():
    model = SDPABlock().eval()
    report = mevreport.analyze(model, torch.randn(2, 8, 32), device="cuda", runs=3)
    t = report.totals
    assert t.latency_ms > 0 and all(x.latency_ms is not None for x in report.nodes)
    assert t.measured_peak_bytes is not None and t.measured_peak_bytes > 0
    assert report.environment.device.startswith("cuda")
    assert next(model.parameters()).device.type == "cpu"


# --- fake tensors: analysis without data ---------------------------------------------

def test_meta_matches_cpu_except_measurements():
    model = SDPABlock().eval()
    x = torch.randn(2, 8, 32)
    real = mevreport.analyze(model, x, runs=1)
    fake = mevreport.analyze(model, x, device="meta")
    assert fake.capture.fake and not real.capture.fake
    assert [n.op for n in fake.nodes] == [n.op for n in real.nodes]
    assert [(n.macs, n.flops, n.output_bytes, n.outputs) for n in fake.nodes] == \
           [(n.macs, n.flops, n.output_bytes, n.outputs) for n in real.nodes]
    for field in ("params", "macs", "flops", "activation_bytes", "peak_activation_bytes", "param_bytes"):
        assert getattr(fake.totals, field) == getattr(real.totals, field), field
    assert fake.totals.latency_ms is None and all(n.stats is None and n.latency_ms is None for n in fake.nodes)
    assert fake.weight_stats == ()
    assert any("not measured" in note for note in fake.capture.notes)


def test_model_already_on_meta_is_analysed_with_fake_tensors():
    with torch.device("meta"):
        model = SDPABlock()
    report = mevreport.analyze(model, torch.randn(2, 8, 32))
    assert report.capture.fake and report.totals.macs > 0
    assert next(model.parameters()).device.type == "meta"


def _llama_config(transformers):
    return transformers.LlamaConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                                    num_key_value_heads=2, intermediate_size=128, vocab_size=100,
                                    max_position_embeddings=64)


def test_hf_llama_on_meta_exact_params_and_macs():
    transformers = pytest.importorskip("transformers")
    cfg = _llama_config(transformers)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(cfg)
    t, e, layers, heads, kv, inter, vocab = 16, 64, 2, 4, 2, 128, 100
    hd = e // heads
    report = mevreport.analyze(model, {"input_ids": torch.zeros(1, t, dtype=torch.long)}, device="meta")
    per_layer_params = 2 * e * e + 2 * e * kv * hd + 3 * e * inter + 2 * e  # q,o; k,v; gate,up,down; 2 norms
    assert report.totals.params == vocab * e + layers * per_layer_params + e + vocab * e  # untied head
    per_layer_macs = (2 * t * e * e + 2 * t * e * kv * hd + 3 * t * e * inter
                      + heads * t * t * 2 * hd)  # GQA: every query head scores all keys
    assert report.totals.macs == layers * per_layer_macs + t * e * vocab
    assert report.capture.fake and report.uncounted_ops == ()


def test_hf_llama_meta_equals_cpu_run():
    transformers = pytest.importorskip("transformers")
    model = transformers.LlamaForCausalLM(_llama_config(transformers)).eval()
    ids = {"input_ids": torch.randint(0, 100, (1, 16))}
    real = mevreport.analyze(model, ids, runs=0, stats=False)
    fake = mevreport.analyze(model, ids, device="meta")
    assert (fake.totals.macs, fake.totals.flops, fake.totals.peak_activation_bytes, fake.totals.nodes) == \
           (real.totals.macs, real.totals.flops, real.totals.peak_activation_bytes, real.totals.nodes)
    assert next(model.parameters()).device.type == "cpu"


def test_cli_device_meta_builds_the_model_on_meta(tmp_path):
    import json

    from .conftest import run_cli
    (tmp_path / "big.py").write_text(
        "import torch\nfrom torch import nn\n"
        "def build():\n"
        "    m = nn.Sequential(nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 10))\n"
        "    assert next(m.parameters()).device.type == 'meta', 'not built on meta'\n"
        "    return m, torch.randn(2, 4096)\n")
    out = run_cli("report", "big.py:build", "--device", "meta", "-o", "big.html", "--json", "big.json", "-q",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "big.json").read_text())
    assert doc["totals"]["macs"] == 2 * 4096 * 4096 + 2 * 4096 * 10
    assert doc["totals"]["params"] == 4096 * 4096 + 4096 + 4096 * 10 + 10
    assert doc["capture"]["fake"] and doc["totals"]["latency_ms"] is None


def test_capture_restores_buffers_written_in_place_and_leaves_no_attributes():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    x = torch.randn(2, 3, 8, 8)
    before = model[1].running_mean.clone()
    report = mevreport.analyze(model, x, runs=0, grad=True)
    assert any(op_short(n.op).startswith(("native_batch_norm", "_native_batch_norm")) for n in report.nodes)
    assert torch.equal(before, model[1].running_mean)  # updated by the runs, then restored
    for t in list(model.parameters()) + list(model.buffers()) + [x]:
        assert not [k for k in t.__dict__ if k.startswith("_mevreport")]
    assert model.training


def test_split_outputs_are_views_allocating_nothing():
    class Split(nn.Module):
        def forward(self, x):
            y = x * 2
            a, b, c, d = y.split(4, dim=1)       # one schema return, a list of four views
            return torch.cat([d, c, b, a], 1)

    report = mevreport.analyze(Split(), torch.randn(2, 16), runs=0, stats=False)
    assert [(op_short(n.op), n.output_bytes) for n in report.nodes] == [("mul", 128), ("split", 0), ("cat", 128)]
    # y lives until cat reads its views; the cat output is the model output
    assert report.totals.peak_activation_bytes == 256
