"""MACs and FLOPs against closed-form counts derived by hand in each test.

Conventions under test (DESIGN §3): MACs are the multiply-accumulates of
matmul-like work, bias adds are not MACs, FLOPs = 2·MACs + the rest by the
registry's table.  Every expected value below is written from the layer
sizes, never read back from mevreport.
"""
from __future__ import annotations

import warnings
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import mevreport
from mevreport.analyze import op_short
from mevreport.costs import cost_of, lookup, rule_table
from mevreport.graph import Node, TensorMeta

from .models_costs import BertBase, ConvZoo, MatmulOps, ResNet50, SDPABlock

warnings.filterwarnings("ignore", message=".*bos_token_id.*|.*eos_token_id.*")


def ops(report) -> Counter:
    return Counter(op_short(n.op) for n in report.nodes)


def macs_of(report, short: str) -> list[int]:
    return [n.macs for n in report.nodes if op_short(n.op) == short]


def check_invariants(report) -> None:
    """Totals = Σ nodes; every module = Σ of its nodes; root = totals."""
    assert report.totals.macs == sum(n.macs or 0 for n in report.nodes)
    assert report.totals.flops == sum(n.flops or 0 for n in report.nodes)
    for row in report.modules:
        inside = [n for n in report.nodes
                  if row.path == "" or n.module_path == row.path or n.module_path.startswith(row.path + ".")]
        assert row.macs == sum(n.macs or 0 for n in inside), row.path
        assert row.flops == sum(n.flops or 0 for n in inside), row.path
        assert row.activation_bytes == sum(n.output_bytes for n in inside), row.path
    root = next(r for r in report.modules if r.path == "")
    assert (root.macs, root.flops) == (report.totals.macs, report.totals.flops)


# --- attention -----------------------------------------------------------------

B, T, D, H, FFN = 2, 8, 32, 4, 64
BLOCK_MACS = (4 * B * T * D * D          # q, k, v, out projections on 3-d input
              + 2 * B * T * D * FFN      # fc1, fc2
              + B * H * T * T * (D // H) * 2)  # Q·Kᵀ and A·V over the full T×T square


def test_sdpa_block_no_grad_exact_macs_and_flops():
    model = SDPABlock(D, H, FFN).eval()
    report = mevreport.analyze(model, torch.randn(B, T, D), runs=0, stats=False)
    seen = ops(report)
    assert seen["_scaled_dot_product_flash_attention_for_cpu"] == 1
    assert seen["addmm"] == 6  # linear on a 3-d input with bias runs as view + addmm + view
    assert report.totals.macs == BLOCK_MACS
    n_tok = B * T
    sdpa = next(n for n in report.nodes if "scaled_dot_product" in n.op)
    assert sdpa.macs == B * H * T * T * 2 * (D // H)
    assert sdpa.flops == 2 * sdpa.macs + 5 * B * H * T * T
    expected_flops = (
        2 * BLOCK_MACS
        + n_tok * (4 * D + FFN + D)     # bias adds of the six linears
        + 2 * 7 * n_tok * D             # two affine layer norms: 5 + 2 per element
        + n_tok * FFN                   # gelu
        + 2 * n_tok * D                 # two residual adds
        + 5 * B * H * T * T             # softmax inside the attention kernel
    )
    assert report.totals.flops == expected_flops
    assert report.uncounted_ops == ()
    check_invariants(report)


def test_sdpa_block_under_grad_same_macs():
    model = SDPABlock(D, H, FFN).train()
    report = mevreport.analyze(model, torch.randn(B, T, D), runs=0, stats=False, grad=True)
    assert report.capture.grad_enabled
    assert any("scaled_dot_product" in n.op or op_short(n.op) == "bmm" for n in report.nodes)
    assert report.totals.macs == BLOCK_MACS
    assert report.uncounted_ops == ()
    check_invariants(report)


def _mha_macs(b: int, l: int, s: int, e: int) -> int:
    return b * (l + 2 * s) * e * e + b * l * e * e + 2 * b * l * s * e


@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_fast_path_eval_no_grad(need_weights):
    e, heads, b, l = 16, 4, 2, 5
    mha = nn.MultiheadAttention(e, heads, batch_first=True).eval()

    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=need_weights)[0]

    report = mevreport.analyze(Wrap().eval(), torch.randn(b, l, e), runs=0, stats=False)
    assert [op_short(n.op) for n in report.nodes] == ["_native_multi_head_attention"]
    node = report.nodes[0]
    assert node.macs == _mha_macs(b, l, l, e)
    assert node.flops == 2 * node.macs + b * 3 * l * e + b * l * e + 5 * b * heads * l * l
    assert node.module_path == "mha"
    check_invariants(report)


def test_multihead_attention_slow_path_has_the_same_macs():
    e, heads, b, l = 16, 4, 2, 5
    mha = nn.MultiheadAttention(e, heads, batch_first=True).train()
    report = mevreport.analyze(mha, (torch.randn(b, l, e),) * 3, runs=0, stats=False, grad=True)
    assert "_native_multi_head_attention" not in ops(report)
    assert report.totals.macs == _mha_macs(b, l, l, e)


def test_flop_counter_misses_cpu_sdpa_we_do_not():
    """The gap DESIGN §3 names: FlopCounterMode has no rule for the CPU flash kernel."""
    model = SDPABlock(D, H, FFN).eval()
    x = torch.randn(B, T, D)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    theirs = fc.get_total_flops() // 2
    assert theirs == BLOCK_MACS - B * H * T * T * 2 * (D // H)
    assert mevreport.analyze(model, x, runs=0, stats=False).totals.macs == BLOCK_MACS


# --- convolutions ----------------------------------------------------------------

def test_grouped_and_transposed_convolutions():
    model = ConvZoo().eval()
    img, seq, vol = torch.randn(1, 8, 6, 6), torch.randn(1, 4, 5), torch.randn(1, 2, 3, 3, 3)
    report = mevreport.analyze(model, (img, seq, vol), runs=0, stats=False)
    conv = {n.module_path: n for n in report.nodes if op_short(n.op) == "convolution"}
    # grouped: each of 12·6·6 outputs sums (8/4)·3·3 products
    assert conv["grouped"].macs == 12 * 6 * 6 * (8 // 4) * 9
    assert conv["grouped"].flops == 2 * conv["grouped"].macs
    # transposed 1-d: each of 4·5 inputs scatters into 6·3 outputs; output length (5-1)·2+3 = 11
    assert conv["t1"].outputs[0].shape == (1, 6, 11)
    assert conv["t1"].macs == 4 * 5 * 6 * 3
    assert conv["t1"].flops == 2 * 4 * 5 * 6 * 3 + 6 * 11  # bias add per output element
    # transposed 2-d, groups 2: each of 4·6·6 inputs scatters into (6/2)·3·2 outputs
    assert conv["t2"].macs == 4 * 6 * 6 * (6 // 2) * 3 * 2
    # transposed 3-d: 2·27 inputs × 4·2·2·2
    assert conv["t3"].macs == 2 * 27 * 4 * 8
    assert conv["t3"].flops == 2 * conv["t3"].macs + 4 * 4 * 4 * 4
    # and the convolutions agree with torch's own counter, which handles these correctly
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(img, seq, vol)
    assert fc.get_total_flops() // 2 == sum(n.macs for n in conv.values())
    check_invariants(report)


# --- linear and matmul-like --------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
def test_linear_on_3d_and_4d_inputs(bias):
    lin = nn.Linear(16, 24, bias=bias).eval()
    for shape in [(2, 5, 16), (2, 3, 5, 16)]:
        x = torch.randn(*shape)
        report = mevreport.analyze(lin, x, runs=0, stats=False)
        rows = x.numel() // 16
        assert report.totals.macs == rows * 16 * 24
        matmuls = [n for n in report.nodes if n.macs]
        assert len(matmuls) == 1 and op_short(matmuls[0].op) == ("addmm" if bias else "mm")
        assert report.totals.flops == 2 * rows * 16 * 24 + (rows * 24 if bias else 0)


def test_bmm_baddbmm_einsum():
    b, m, k, n = 3, 4, 5, 6
    a, bb, c = torch.randn(b, m, k), torch.randn(b, k, n), torch.randn(b, m, n)
    report = mevreport.analyze(MatmulOps(), (a, bb, c), runs=0, stats=False)
    per = b * m * k * n
    assert macs_of(report, "baddbmm") == [per]
    assert [n_.flops for n_ in report.nodes if op_short(n_.op) == "baddbmm"] == [2 * per + b * m * n]
    # bmm directly, and the einsum decomposes into a bmm at dispatch level
    assert macs_of(report, "bmm") == [per, per]
    assert report.totals.macs == 3 * per
    assert report.uncounted_ops == ()


def _node(op: str, *args: object, outputs: tuple[TensorMeta, ...] = ()) -> Node:
    return Node(id=0, op=op, module_path="", module_call=0, inputs=(), outputs=outputs, output_bytes=0,
                alias_of=(), args=args)


def test_rules_for_ops_seen_only_in_export_graphs():
    f32 = "float32"
    x, w = TensorMeta((2, 7, 16), f32), TensorMeta((24, 16), f32)
    linear = cost_of(_node("aten.linear.default", x, w, TensorMeta((24,), f32), outputs=(TensorMeta((2, 7, 24), f32),)))
    assert (linear.macs, linear.flops) == (14 * 16 * 24, 2 * 14 * 16 * 24 + 14 * 24)
    mm = cost_of(_node("aten.matmul.default", TensorMeta((3, 1, 4, 5), f32), TensorMeta((2, 5, 6), f32),
                       outputs=(TensorMeta((3, 2, 4, 6), f32),)))
    assert mm.macs == 3 * 2 * 4 * 6 * 5
    dot = cost_of(_node("aten.matmul.default", TensorMeta((5,), f32), TensorMeta((5,), f32),
                        outputs=(TensorMeta((), f32),)))
    assert dot.macs == 5
    ein = cost_of(_node("aten.einsum.default", "bhqd,bhkd->bhqk", (TensorMeta((2, 3, 4, 8), f32),
                                                                    TensorMeta((2, 3, 5, 8), f32)),
                        outputs=(TensorMeta((2, 3, 4, 5), f32),)))
    assert ein.macs == 2 * 3 * 4 * 5 * 8
    # flash kernel layout (B, L, H, E) and grouped-query attention (H from q)
    q, k = TensorMeta((2, 10, 8, 16), f32), TensorMeta((2, 12, 2, 16), f32)
    flash = cost_of(_node("aten._flash_attention_forward.default", q, k, k, outputs=(q,)))
    assert flash.macs == 2 * 8 * 10 * 12 * 32
    qs, ks = TensorMeta((2, 8, 10, 16), f32), TensorMeta((2, 2, 12, 16), f32)
    for kernel in ("_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
                   "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_for_cpu"):
        assert cost_of(_node(f"aten.{kernel}.default", qs, ks, ks, outputs=(qs,))).macs == 2 * 8 * 10 * 12 * 32


def test_lstm_cpu_kernel():
    t, b, i, h = 7, 3, 10, 12
    lstm = nn.LSTM(i, h, batch_first=True).eval()
    report = mevreport.analyze(lstm, torch.randn(b, t, i), runs=0, stats=False)
    assert report.uncounted_ops == ()
    assert report.totals.macs == t * b * 4 * h * (i + h)


def test_cudnn_rnn_counts_every_layer_and_direction_like_the_cpu_kernel():
    """CUDA runs nn.LSTM as one ``_cudnn_rnn`` op over all layers and directions (no GPU needed to count it):
    it must equal the per-layer CPU kernels and the closed form."""
    t, b, i, h = 7, 3, 10, 12
    lstm = nn.LSTM(i, h, num_layers=2, bidirectional=True, batch_first=True).eval()
    cpu = mevreport.analyze(lstm, torch.randn(b, t, i), runs=0, stats=False)
    layer0, layer1 = 4 * h * (i + h), 4 * h * (2 * h + h)  # per step and direction; layer 1 reads both directions
    assert cpu.totals.macs == t * b * 2 * (layer0 + layer1)
    f32 = "float32"
    weights = tuple(TensorMeta(tuple(w.shape), f32) for w in lstm._flat_weights)
    node = _node("aten._cudnn_rnn.default", TensorMeta((b, t, i), f32), weights, 4, None,
                 TensorMeta((4, b, h), f32), TensorMeta((4, b, h), f32), 2, h, 0, 2, True, 0.0, False, True, (), None,
                 outputs=(TensorMeta((b, t, 2 * h), f32),))
    cudnn = cost_of(node)
    assert (cudnn.macs, cudnn.flops) == (cpu.totals.macs, cpu.totals.flops)


# --- uncounted ops are listed, never zero -------------------------------------------

def test_op_without_rule_is_listed_and_flagged():
    class FFT(nn.Module):
        def forward(self, x):
            return torch.fft.rfft(x).abs()

    report = mevreport.analyze(FFT(), torch.randn(4, 16), runs=0, stats=False)
    bad = [n for n in report.nodes if n.uncounted]
    assert bad and all(n.macs is None and n.flops is None for n in bad)
    assert {u.op for u in report.uncounted_ops} == {n.op for n in bad}
    assert any(w.kind == "uncounted_op" for w in report.warnings)
    assert report.totals.uncounted_nodes == len(bad)


def test_registry_is_one_table():
    table = dict(rule_table())
    assert "aten._native_multi_head_attention" in table
    assert lookup("aten.addmm.default") is lookup("aten.addmm")
    assert lookup("aten.relu_.default") is not None and lookup("aten.transpose_.default") is not None
    assert lookup("aten.no_such_op.default") is None


# --- whole models against formulas ---------------------------------------------------

def test_demo_cnn_counts_everything_and_rolls_up():
    from mevreport.demo import build
    model, x = build()
    report = mevreport.analyze(model, x, runs=0, stats=False)
    assert report.uncounted_ops == ()
    # stem 3→16 at 32², layer1 4 convs 16→16 at 32², layer2 32 at 16², layer3 64 at 8², fc 64→10
    convs = (16 * 32 * 32 * 3 * 9 + 4 * 16 * 32 * 32 * 16 * 9
             + 32 * 16 * 16 * 16 * 9 + 3 * 32 * 16 * 16 * 32 * 9 + 32 * 16 * 16 * 16
             + 64 * 8 * 8 * 32 * 9 + 3 * 64 * 8 * 8 * 64 * 9 + 64 * 8 * 8 * 32)
    assert report.totals.macs == convs + 64 * 10
    check_invariants(report)


def test_hf_gpt2_small_config():
    transformers = pytest.importorskip("transformers")
    n_layer, e, heads, vocab, t = 2, 64, 4, 100, 16
    cfg = transformers.GPT2Config(n_layer=n_layer, n_embd=e, n_head=heads, vocab_size=vocab, n_positions=32,
                                  bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    report = mevreport.analyze(model, {"input_ids": torch.randint(0, vocab, (1, t))}, runs=0, stats=False)
    assert ops(report)["addmm"] == 4 * n_layer  # Conv1D is addmm
    # per layer: c_attn 3E², c_proj E², mlp 4E² + 4E² per token; attention 2·T²·E; tied lm_head T·E·V
    expected = n_layer * (12 * t * e * e + 2 * t * t * e) + t * e * vocab
    assert report.totals.macs == expected
    assert report.uncounted_ops == ()
    # tied embedding: wte and lm_head are one parameter, counted once
    params = sum(p.numel() for p in model.parameters())
    assert report.totals.params == params
    check_invariants(report)


def test_reference_shaped_models_on_meta():
    """DESIGN §3 reference points, through fake tensors so it runs in seconds."""
    resnet = mevreport.analyze(ResNet50(), torch.randn(1, 3, 224, 224), device="meta")

    def conv(cin, cout, k, hw):
        return cin * cout * k * k * hw * hw

    expected, cin, hw = conv(3, 64, 7, 112), 64, 56
    for width, blocks, first_stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            out_hw = hw // first_stride if i == 0 else hw
            expected += conv(cin, width, 1, hw) + conv(width, width, 3, out_hw) + conv(width, 4 * width, 1, out_hw)
            if i == 0:
                expected += conv(cin, 4 * width, 1, out_hw)
            cin, hw = 4 * width, out_hw
    expected += 2048 * 1000
    assert resnet.totals.macs == expected
    assert round(expected / 1e6) == 4089
    assert resnet.totals.params == 25_557_032  # torchvision's resnet50
    bert = mevreport.analyze(BertBase(), torch.zeros(1, 128, dtype=torch.long), device="meta")
    d, t, ffn = 768, 128, 3072
    assert bert.totals.macs == 12 * (4 * t * d * d + 2 * t * d * ffn + 2 * t * t * d) + d * d
    assert round(bert.totals.macs / 1e7) == 1117
    assert bert.totals.params == 109_482_240  # bert-base-uncased


def test_functional_matmul_and_softmax_table():
    class Attn(nn.Module):
        def forward(self, q, k):
            return F.softmax(q @ k.transpose(-1, -2), dim=-1)

    q, k = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 6, 8)
    report = mevreport.analyze(Attn(), (q, k), runs=0, stats=False)
    assert report.totals.macs == 2 * 3 * 4 * 6 * 8
    assert report.totals.flops == 2 * 2 * 3 * 4 * 6 * 8 + 5 * 2 * 3 * 4 * 6


def test_docs_flop_table_is_generated_from_the_registry():
    from pathlib import Path

    from mevreport.costs import flops_markdown
    doc = Path(__file__).resolve().parent.parent / "docs" / "flops.md"
    assert doc.read_text(encoding="utf-8") == flops_markdown(), "regenerate: python -m mevreport.costs > docs/flops.md"
