"""Analysis without data (``--device meta``) of models fake tensors used to refuse (issue 12).

Before: a float32 MoE model failed in ``aten._grouped_mm`` (its fake kernel takes only bfloat16), and a
detection-style model failed with ``DynamicOutputShapeException`` from ``nonzero``.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import mevreport
from mevreport.errors import ModelRunError

from .conftest import run_cli

transformers = pytest.importorskip("transformers")


def _mixtral(layers: int, h: int, inter: int, experts: int, top_k: int, heads: int, kv_heads: int, vocab: int,
             meta: bool):
    cfg = transformers.MixtralConfig(vocab_size=vocab, hidden_size=h, intermediate_size=inter,
                                     num_hidden_layers=layers, num_attention_heads=heads,
                                     num_key_value_heads=kv_heads, num_local_experts=experts,
                                     num_experts_per_tok=top_k, max_position_embeddings=4096)
    torch.manual_seed(0)
    with torch.device("meta" if meta else "cpu"):
        return transformers.MixtralForCausalLM(cfg).eval()


def _mixtral_macs(layers, h, inter, experts, top_k, heads, kv_heads, vocab, seq) -> int:
    d = h // heads
    kv = kv_heads * d
    attention = seq * (2 * h * h + 2 * h * kv) + heads * seq * seq * 2 * d  # q, o; k, v; Q·Kᵀ and A·V
    router = seq * h * experts
    routed = seq * top_k                                                     # rows the experts see
    experts_ = routed * h * 2 * inter + routed * inter * h                   # gate+up, then down
    return layers * (attention + router + experts_) + seq * h * vocab        # + lm_head


def test_float32_moe_on_meta_equals_cpu():
    sizes = dict(layers=1, h=32, inter=48, experts=4, top_k=2, heads=4, kv_heads=2, vocab=64)
    ids = torch.randint(0, 64, (1, 8))
    model = _mixtral(**sizes, meta=False)
    meta = mevreport.analyze(model, {"input_ids": ids}, device="meta", runs=0)
    cpu = mevreport.analyze(model, {"input_ids": ids}, runs=0, stats=False)
    assert meta.totals.macs == cpu.totals.macs == _mixtral_macs(**sizes, seq=8) == 119_808
    grouped = [n for n in meta.nodes if n.op == "aten._grouped_mm.default"]
    assert grouped and all(o.dtype == "float32" for n in grouped for o in n.outputs)  # the model's own dtype


def test_mixtral_8x7b_shaped_config_on_meta():
    """The real sizes (hidden 4096, intermediate 14336, 32 layers, 8 experts, top-2, 32 heads, 8 kv heads,
    vocab 32000), a 16-token sequence, all 32 layers (about 2 s on fake tensors)."""
    sizes = dict(layers=32, h=4096, inter=14336, experts=8, top_k=2, heads=32, kv_heads=8, vocab=32000)
    model = _mixtral(**sizes, meta=True)
    report = mevreport.analyze(model, {"input_ids": torch.zeros(1, 16, dtype=torch.long)}, device="meta", runs=0)
    assert report.uncounted_ops == ()
    assert report.totals.macs == _mixtral_macs(**sizes, seq=16) == 204_044_500_992
    h, inter, kv = 4096, 14336, 1024
    per_layer = 2 * h * h + 2 * h * kv + h * 8 + 8 * 3 * h * inter + 2 * h
    assert report.totals.params == 2 * 32000 * h + 32 * per_layer + h == 46_702_792_704


class _Detector(nn.Module):
    """Keeps the rows whose score is positive, then runs a head on them (as RoI selection does)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone, self.head = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        y = self.backbone(x)
        keep = torch.nonzero(y[:, 0] > 0).squeeze(1)
        return self.head(y[keep])


class _NeedsValues(_Detector):
    def forward(self, x):
        y = self.backbone(x)
        keep = torch.nonzero(y[:, 0] > 0).squeeze(1)
        if keep.numel() > 5:   # a branch on how many were kept: needs the data
            return self.head(y[keep])
        return y


def test_nonzero_on_meta_is_an_upper_bound_with_a_note():
    n = 10
    report = mevreport.analyze(_Detector(), torch.randn(n, 4), device="meta", runs=0)
    assert report.totals.macs == n * 4 * 8 + n * 8 * 3   # the head at its upper bound: every row kept
    head = [x for x in report.nodes if x.module_path == "head" and x.macs]
    assert head and head[0].outputs[0].shape == (n, 3)
    note = [w.message for w in report.warnings if w.kind == "capture_note" and "upper bound" in w.message]
    assert len(note) == 1 and "aten.nonzero.default" in note[0]
    real = mevreport.analyze(_Detector(), torch.randn(n, 4), runs=0, stats=False)
    assert real.totals.macs <= report.totals.macs


def test_a_model_that_needs_its_data_gets_one_line(tmp_path):
    with pytest.raises(ModelRunError) as err:
        mevreport.analyze(_NeedsValues(), torch.randn(10, 4), device="meta", runs=0)
    msg = str(err.value)
    assert "cannot be analysed without data" in msg and "--device cpu" in msg and "aten.nonzero.default" in msg
    model_file = tmp_path / "m.py"
    model_file.write_text(
        "import torch\nfrom torch import nn\n"
        "class M(nn.Module):\n"
        "    def __init__(self):\n        super().__init__(); self.a = nn.Linear(4, 8); self.b = nn.Linear(8, 3)\n"
        "    def forward(self, x):\n"
        "        y = self.a(x)\n        keep = torch.nonzero(y[:, 0] > 0).squeeze(1)\n"
        "        return self.b(y[keep]) if keep.numel() > 5 else y\n"
        "def build():\n    return M()\n", encoding="utf-8")
    out = tmp_path / "r.html"
    r = run_cli("report", f"{model_file}:build", "--input-shape", "10,4", "--device", "meta", "-o", str(out))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and not out.exists()
    assert len([ln for ln in lines if ln.startswith("mevreport: error")]) == 1
    err_line = next(ln for ln in lines if ln.startswith("mevreport: error"))
    assert "cannot be analysed without data" in err_line and "--device cpu" in err_line
