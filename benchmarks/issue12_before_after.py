"""Before/after evidence for issue 12: every case the issue names, run on two source trees.

    python benchmarks/issue12_before_after.py --before /path/to/old/tree [--after .]

Each tree runs in its own subprocesses (``PYTHONPATH=<tree>``, this interpreter), one
per group of cases, and each case prints what the report says next to what it should
say (hand-derived MACs, bytes, warning counts).  The Mixtral-8x7B-shaped meta analysis
runs alone so its wall time and peak RSS are its own.  Fixture models come from this
tree's ``tests/models_*.py`` (plain torch modules, no mevreport in them), so both trees
see the same models.  Transformers models are built from small configs: random
weights, nothing downloaded.  Timings here are for the closing note, never asserted.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
CASES: dict[str, list[tuple[str, Callable[[], str]]]] = {}


def case(group: str, name: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    def add(fn: Callable[[], str]) -> Callable[[], str]:
        CASES.setdefault(group, []).append((name, fn))
        return fn
    return add


def fixtures(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"fx_{name}", HERE / "tests" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def short_error(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"error {type(e).__name__}: {text[:110]}"


def kinds(report: Any, kind: str) -> int:
    return sum(1 for w in report.warnings if w.kind == kind)


# --- statistics ------------------------------------------------------------------------------

def _torch():
    import torch
    return torch


class _Minus:
    @staticmethod
    def model(offset: float):
        torch = _torch()

        class Sub(torch.nn.Module):
            def forward(self, x):
                return x - offset
        return Sub()


@case("stats", "offset: analyze(x - 1e6), |x| < 0.5, float32, 40 seeds: seeds failing")
def stats_offset() -> str:
    import mevreport
    torch = _torch()
    out = []
    for n in (10, 20, 100, 1000, 100_000):
        fails = 0
        for seed in range(40):
            x = torch.rand(n, generator=torch.Generator().manual_seed(seed)) - 0.5
            try:
                mevreport.analyze(_Minus.model(1e6), x, runs=0)
            except Exception:
                fails += 1
        out.append(f"n={n}: {fails}/40")
    return ", ".join(out)


@case("stats", "subnormal: analyze(x * 1), x = linspace(0, 1.4e-42, 1000)")
def stats_subnormal() -> str:
    import mevreport
    torch = _torch()

    class Mul(torch.nn.Module):
        def forward(self, x):
            return x * 1.0
    try:
        r = mevreport.analyze(Mul(), torch.linspace(0, 1.4e-42, 1000), runs=0)
    except Exception as e:
        return short_error(e)
    s = r.nodes[0].stats
    return f"ok: max {s.max:.3g}, std {s.std:.3g}, {sum(1 for c in s.histogram.counts if c)}/32 bins used"


@case("stats", "T5 (tiny config) train mode, grad=True")
def stats_t5() -> str:
    import transformers

    import mevreport
    torch = _torch()
    cfg = transformers.T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_decoder_layers=1,
                                num_heads=2, decoder_start_token_id=0, pad_token_id=0)
    torch.manual_seed(0)
    model = transformers.T5ForConditionalGeneration(cfg).train()
    ids = torch.randint(1, 64, (2, 7))
    try:
        r = mevreport.analyze(model, {"input_ids": ids, "labels": ids}, grad=True, runs=0)
    except Exception as e:
        return short_error(e)
    return (f"ok: {sum(1 for n in r.nodes if n.stats is not None)} nodes with statistics, "
            f"{kinds(r, 'stats_failed')} stats_failed")


@case("stats", "hypothesis property (tests/test_stats_numerics.py strategy, 300 derandomized draws): failing draws")
def stats_property() -> str:
    from hypothesis import HealthCheck, given, settings
    prop = fixtures("test_stats_numerics")
    from mevreport.capture.stats import cpu_stats, device_stats_vector, stats_from_vector
    failed = {"cpu": 0, "device": 0}
    crashed = {"cpu": 0, "device": 0}
    seen = [0]
    dtypes: dict[str, int] = {}

    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(prop.tensors())
    def draw(x):
        seen[0] += 1
        for path, fn in (("cpu", lambda: cpu_stats(x)),
                         ("device", lambda: stats_from_vector(device_stats_vector(x).tolist()))):
            try:
                s = fn()
            except Exception:
                crashed[path] += 1
                failed[path] += 1
                dtypes[str(x.dtype)] = dtypes.get(str(x.dtype), 0) + 1
                continue
            try:
                prop.check(s, x)
            except Exception:
                failed[path] += 1
                dtypes[str(x.dtype)] = dtypes.get(str(x.dtype), 0) + 1
    draw()
    by = ", ".join(f"{k.replace('torch.', '')} {v}" for k, v in sorted(dtypes.items()))
    return (f"cpu {failed['cpu']}/{seen[0]} ({crashed['cpu']} raised), device {failed['device']}/{seen[0]} "
            f"({crashed['device']} raised)" + (f"; by dtype: {by}" if by else ""))


@case("stats", "injected failure in the tanh output's statistics (dispatch)")
def stats_injected() -> str:
    import mevreport
    from mevreport.capture import stats
    torch = _torch()
    real = stats.cpu_stats

    def flaky(t, *a, **k):
        if t.dtype == torch.float32 and t.shape == (3, 4) and bool((t.abs() <= 1).all()) and bool((t < 0).any()):
            raise FloatingPointError("injected")
        return real(t, *a, **k)

    class Three(torch.nn.Module):
        def forward(self, x):
            return torch.tanh(x * 2) + 1
    stats.cpu_stats = flaky
    try:
        r = mevreport.analyze(Three(), torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), runs=0)
    except Exception as e:
        return "report killed: " + short_error(e)
    finally:
        stats.cpu_stats = real
    tanh = next(n for n in r.nodes if n.op.startswith("aten.tanh"))
    w = [x.message for x in r.warnings if x.kind == "stats_failed"]
    return f"report written; tanh stats {tanh.stats}; {len(w)} warning: {w[0][:70] if w else ''}"


# --- fused kernels ---------------------------------------------------------------------------

def _mixtral(layers, h, inter, experts, top_k, heads, kv_heads, vocab, meta=False):
    import transformers
    torch = _torch()
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
    attention = seq * (2 * h * h + 2 * h * kv) + heads * seq * seq * 2 * d
    routed = seq * top_k
    return layers * (attention + seq * h * experts + routed * 3 * h * inter) + seq * h * vocab


TINY_MOE = dict(layers=1, h=32, inter=48, experts=4, top_k=2, heads=4, kv_heads=2, vocab=64)
SMALL_MOE = dict(layers=2, h=128, inter=512, experts=8, top_k=2, heads=4, kv_heads=2, vocab=256)


@case("fused", "Mixtral (transformers 5, _grouped_mm experts): MACs reported / analytic")
def fused_mixtral() -> str:
    import mevreport
    torch = _torch()
    out = []
    for sizes, seq in ((TINY_MOE, 8), (SMALL_MOE, 16)):
        model = _mixtral(**sizes)
        r = mevreport.analyze(model, {"input_ids": torch.randint(0, sizes["vocab"], (1, seq))}, runs=0, stats=False)
        out.append(f"h={sizes['h']}: {r.totals.macs:,} / {_mixtral_macs(**sizes, seq=seq):,}"
                   f" ({len(r.uncounted_ops)} uncounted kinds)")
    return "; ".join(out)


@case("fused", "_grouped_mm layouts (2-d/3-d, offsets on M/N/K): layouts exact of 4")
def fused_grouped_layouts() -> str:
    import mevreport
    torch = _torch()
    layouts = [((16, 8), (4, 8, 12), [3, 7, 12, 16], 16 * 8 * 12), ((4, 5, 8), (4, 8, 12), None, 4 * 5 * 8 * 12),
               ((4, 5, 8), (8, 12), [2, 4, 8, 12], 5 * 8 * 12), ((5, 16), (16, 12), [2, 4, 8, 16], 5 * 16 * 12)]
    got = []
    for a, b, offs, macs in layouts:
        w, o = torch.randn(b), torch.tensor(offs, dtype=torch.int32) if offs else None

        class G(torch.nn.Module):
            def forward(self, x, w=w, o=o):
                return torch._grouped_mm(x, w, o)
        r = mevreport.analyze(G(), torch.randn(a), runs=0, stats=False)
        got.append(f"{r.totals.macs}/{macs}")
    return f"{sum(g.split('/')[0] == g.split('/')[1] for g in got)}/4 ({', '.join(got)})"


@case("fused", "_scaled_mm / _scaled_grouped_mm rule (64x32x48 float8)")
def fused_scaled() -> str:
    from mevreport.costs import cost_of, lookup
    from mevreport.graph import Node, TensorMeta
    if lookup("aten._scaled_mm.default") is None:
        return f"no rule (_scaled_mm: none, _scaled_grouped_mm: {lookup('aten._scaled_grouped_mm.default')})"
    a, b, s = TensorMeta((64, 32), "float8_e4m3fn"), TensorMeta((32, 48), "float8_e4m3fn"), TensorMeta((), "float32")
    node = Node(id=0, op="aten._scaled_mm.default", module_path="", module_call=0, inputs=(),
                outputs=(TensorMeta((64, 48), "bfloat16"),), output_bytes=0, alias_of=(), args=(a, b, s, s))
    g = Node(id=0, op="aten._scaled_grouped_mm.default", module_path="", module_call=0, inputs=(),
             outputs=(TensorMeta((64, 48), "bfloat16"),), output_bytes=0, alias_of=(),
             args=(a, TensorMeta((4, 32, 48), "float8_e4m3fn"), s, s, TensorMeta((4,), "int32")))
    return f"_scaled_mm {cost_of(node).macs:,}, _scaled_grouped_mm {cost_of(g).macs:,} (hand: {64 * 32 * 48:,})"


@case("fused", "nn.TransformerEncoder eval (fast path), 2 layers: MACs / analytic")
def fused_encoder() -> str:
    import mevreport
    torch = _torch()
    nn = torch.nn
    b, l, e, heads, f, layers = 2, 5, 16, 4, 24, 2
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(e, heads, f, batch_first=True), layers,
                                  enable_nested_tensor=False).eval()
    r = mevreport.analyze(model, torch.randn(b, l, e), runs=0, stats=False)
    t = b * l
    per_layer = t * (3 * e * e + e * e + e * f + f * e) + 2 * b * l * l * e
    return f"{r.totals.macs:,} / {layers * per_layer:,} ({len(r.uncounted_ops)} uncounted kinds)"


@case("fused", "nn.TransformerDecoder eval (MHA fast path in self-attention), 2 layers: MACs / analytic")
def fused_decoder() -> str:
    import mevreport
    torch = _torch()
    nn = torch.nn
    b, l, s, e, heads, f, layers = 2, 5, 6, 16, 4, 24, 2
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(e, heads, f, batch_first=True), layers).eval()

    class W(nn.Module):
        def __init__(self):
            super().__init__()
            self.dec = dec

        def forward(self, tgt, memory):
            return self.dec(tgt, memory)
    with torch.no_grad():
        r = mevreport.analyze(W().eval(), (torch.randn(b, l, e), torch.randn(b, s, e)), runs=0, stats=False)
    t = b * l
    self_attn = t * 4 * e * e + 2 * b * l * l * e
    cross = t * 2 * e * e + 2 * b * s * e * e + 2 * b * l * s * e
    ffn = 2 * t * e * f
    return f"{r.totals.macs:,} / {layers * (self_attn + cross + ffn):,} ({len(r.uncounted_ops)} uncounted kinds)"


@case("fused", "_slow_conv2d_forward 3->4, k3 s2 p1 on 9x9: MACs / analytic")
def fused_slow_conv() -> str:
    import mevreport
    torch = _torch()
    conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)

    class S(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, x):
            return torch.ops.aten._slow_conv2d_forward(x, self.conv.weight, [3, 3], self.conv.bias, [2, 2], [1, 1])
    with torch.no_grad():
        r = mevreport.analyze(S(), torch.randn(1, 3, 9, 9), runs=0, stats=False)
    return f"{r.totals.macs:,} / {100 * 27:,} ({len(r.uncounted_ops)} uncounted kinds)"


@case("fused", "torch.histc(x (10x10), bins=20): FLOPs / analytic, uncounted kinds")
def fused_histc() -> str:
    import mevreport
    torch = _torch()

    class H(torch.nn.Module):
        def forward(self, x):
            return torch.histc(x, bins=20)
    r = mevreport.analyze(H(), torch.randn(10, 10), runs=0, stats=False)
    return f"{r.totals.flops} / 100 ({[u.op for u in r.uncounted_ops]} uncounted)"


@case("fused", "aten ops torch.utils.flop_counter counts without a rule here")
def fused_flop_counter() -> str:
    torch = _torch()
    from torch.utils.flop_counter import flop_registry

    from mevreport.costs import lookup
    missing = []
    for op in flop_registry:
        if isinstance(op, torch._ops.HigherOrderOperator):
            continue
        name = op._qualified_op_name.replace("::", ".")
        missing += [f"{name}.{o}" for o in op.overloads() if lookup(f"{name}.{o}") is None]
    return f"{len(missing)}" + (f" (e.g. {', '.join(sorted(missing)[:4])})" if missing else "")


@case("fused", "registered aten rules that are not ops of this torch")
def fused_not_ops() -> str:
    torch = _torch()
    from mevreport.costs import rule_table
    bad = []
    for name, _ in rule_table():
        domain, *rest = name.split(".")
        if domain != "aten":
            continue
        packet = getattr(torch.ops.aten, rest[0], None)
        if packet is None or (len(rest) > 1 and rest[1] not in packet.overloads()):
            bad.append(name)
    return f"{len(bad)}" + (f" ({', '.join(bad)})" if bad else "")


@case("fused", "einsum('bij,bjk,bkl->bil') 2,3,4,5,6: export / dispatch / analytic MACs")
def fused_einsum() -> str:
    import mevreport
    torch = _torch()

    class E(torch.nn.Module):
        def forward(self, a, b, c):
            return torch.einsum("bij,bjk,bkl->bil", a, b, c)
    args = (torch.randn(2, 3, 4), torch.randn(2, 4, 5), torch.randn(2, 5, 6))
    d = mevreport.analyze(E(), args, runs=0, stats=False, capture="dispatch")
    e = mevreport.analyze(E(), args, runs=0, stats=False, capture="export")
    return f"{e.totals.macs:,} / {d.totals.macs:,} / 300 (export method: {e.capture.method})"


@case("fused", "nn.LSTM(6, 5, 2 layers) T=7 B=3: export / dispatch / analytic MACs")
def fused_lstm() -> str:
    import mevreport
    torch = _torch()
    lstm = torch.nn.LSTM(6, 5, num_layers=2)
    x = torch.randn(7, 3, 6)
    d = mevreport.analyze(lstm, x, runs=0, stats=False, capture="dispatch")
    e = mevreport.analyze(lstm, x, runs=0, stats=False, capture="export")
    expected = 7 * 3 * 4 * 5 * ((6 + 5) + (5 + 5))
    return f"{e.totals.macs:,} / {d.totals.macs:,} / {expected:,} (export uncounted: {[u.op for u in e.uncounted_ops]})"


# --- lower bound -----------------------------------------------------------------------------

def _with_fft():
    torch = _torch()

    class F(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(16, 16)

        def forward(self, x):
            return torch.fft.rfft(self.fc(x)).abs()
    return F()


@case("lower", "Compute card of Linear + rfft (rfft has no rule)")
def lower_card() -> str:
    import mevreport
    from mevreport.render.html import summary_cards
    torch = _torch()
    r = mevreport.analyze(_with_fft(), torch.randn(4, 16), runs=0, stats=False)
    c = next(c for c in summary_cards(r) if c["label"].startswith("Compute"))
    return f"{c['label']!r}: {c['value']!r}, {c['detail']!r}"


@case("lower", "diff --fail-if macs>+50% with BASE partly uncounted: warning lines on stderr")
def lower_gate() -> str:
    import tempfile

    import mevreport
    from mevreport.cli import main
    torch = _torch()
    with tempfile.TemporaryDirectory() as tmp:
        base, head = Path(tmp, "b.json"), Path(tmp, "h.json")
        mevreport.analyze(_with_fft(), torch.randn(4, 16), runs=0, stats=False).save_json(str(base))
        mevreport.analyze(torch.nn.Linear(16, 16), torch.randn(4, 16), runs=0, stats=False).save_json(str(head))
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["diff", str(base), str(head), "--markdown", str(Path(tmp, "d.md")), "--fail-if", "macs>+50%"])
    lines = [ln for ln in err.getvalue().splitlines() if "lower bound" in ln]
    return f"exit {code}, {len(lines)} line(s)" + (f": {lines[0][:90]}" if lines else "")


# --- one node builder ------------------------------------------------------------------------

@case("nodes", "(x*2).split(4, dim=1) on (3,10): split node bytes dispatch / export; activation bytes")
def nodes_split() -> str:
    import mevreport
    torch = _torch()
    V = fixtures("models_views")
    out = []
    for m in ("dispatch", "export"):
        r = mevreport.analyze(V.SplitViews(), torch.randn(3, 10), runs=0, stats=False, capture=m)
        split = next(n for n in r.nodes if n.op.startswith("aten.split"))
        out.append(f"{m} {split.output_bytes}/{r.totals.activation_bytes}")
    return ", ".join(out)


@case("nodes", "view models (tests/models_views.py): activation bytes and peak equal, export vs dispatch")
def nodes_parity() -> str:
    import mevreport
    torch = _torch()
    V = fixtures("models_views")
    names = ["SplitViews", "ChunkViews", "ViewReshape", "TransposeContiguous", "InPlaceChain", "Slicing",
             "WeightView", "CopyingComposites"]
    diff = []
    for name in names:
        x = torch.randn(3, 10)
        d = mevreport.analyze(getattr(V, name)(), x, runs=0, stats=False, capture="dispatch")
        e = mevreport.analyze(getattr(V, name)(), x, runs=0, stats=False, capture="export")
        if (d.totals.activation_bytes, d.totals.peak_activation_bytes) != \
                (e.totals.activation_bytes, e.totals.peak_activation_bytes):
            diff.append(f"{name} {e.totals.activation_bytes} vs {d.totals.activation_bytes}")
    return f"{len(names) - len(diff)}/{len(names)} equal" + (f" (differ: {'; '.join(diff)})" if diff else "")


# --- latency ---------------------------------------------------------------------------------

@case("latency", "LazyBuffer (builds a buffer on its first call), runs=3: ops with per-op latency")
def latency_lazy() -> str:
    import mevreport
    torch = _torch()
    L = fixtures("models_latency")
    r = mevreport.analyze(L.LazyBuffer(), torch.randn(2, 8), runs=3)
    timed = sum(1 for n in r.nodes if n.latency_ms is not None)
    diverged = any("different op sequence" in n for n in r.capture.notes)
    return f"{timed}/{len(r.nodes)} timed; 'different op sequence' note: {diverged}"


@case("latency", "EveryCallDifferent, runs=3: ops timed; module rows with latency (fc1, fc2, root)")
def latency_diverge() -> str:
    import mevreport
    from mevreport.render.html import summary_cards
    torch = _torch()
    L = fixtures("models_latency")
    r = mevreport.analyze(L.EveryCallDifferent(), torch.randn(2, 8), runs=3)
    timed = sum(1 for n in r.nodes if n.latency_ms is not None)
    rows = {m.path: m.latency_ms for m in r.modules}
    fmt = ", ".join(f"{p or 'root'}={'none' if v is None else 'set'}" for p, v in rows.items())
    card = next((c for c in summary_cards(r) if c["label"] == "Forward latency"), {"detail": "?"})
    return f"{timed}/{len(r.nodes)} ops timed; {fmt}; card: {card['detail']!r}"


# --- false alarms ----------------------------------------------------------------------------

@case("alarms", "T5 position buckets (log(0) cast to long): nan_origin / nan_discarded")
def alarms_t5_buckets() -> str:
    import mevreport
    torch = _torch()
    A = fixtures("models_alarms")
    torch.manual_seed(0)
    r = mevreport.analyze(A.T5Buckets(), torch.randn(4, 64), runs=0)
    return f"{kinds(r, 'nan_origin')} / {kinds(r, 'nan_discarded')}"


@case("alarms", "HF T5 (tiny config), eval: nan_origin / nan_discarded")
def alarms_t5() -> str:
    import transformers

    import mevreport
    torch = _torch()
    cfg = transformers.T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_decoder_layers=1,
                                num_heads=2, decoder_start_token_id=0, pad_token_id=0)
    torch.manual_seed(0)
    model = transformers.T5ForConditionalGeneration(cfg).eval()
    ids = torch.randint(1, 64, (2, 7))
    r = mevreport.analyze(model, {"input_ids": ids, "decoder_input_ids": ids}, runs=0)
    return f"{kinds(r, 'nan_origin')} / {kinds(r, 'nan_discarded')}"


def _hf_swin_detr():
    import transformers
    torch = _torch()
    torch.manual_seed(0)
    swin = transformers.SwinModel(transformers.SwinConfig(
        image_size=64, patch_size=4, embed_dim=24, depths=[2, 2], num_heads=[2, 4], window_size=4)).eval()
    detr = transformers.DetrForObjectDetection(transformers.DetrConfig(
        use_timm_backbone=False, use_pretrained_backbone=False, num_queries=10, d_model=32,
        backbone_config=transformers.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128],
                                                  depths=[1, 1, 1, 1], out_features=["stage4"]),
        encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64)).eval()
    return (("Swin", swin, 64), ("DETR", detr, 128))


@case("alarms", "tiny HF Swin / DETR: dead_activation, large_values, nan_origin warnings")
def alarms_swin_detr() -> str:
    import mevreport
    torch = _torch()
    out = []
    for name, model, size in _hf_swin_detr():
        r = mevreport.analyze(model, torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)),
                              runs=0)
        out.append(f"{name} {kinds(r, 'dead_activation')}/{kinds(r, 'large_values')}/{kinds(r, 'nan_origin')}")
    return ", ".join(out)


@case("alarms", "constants, masks, index, bias slices, 63 500-px anchors (none input-dependent): dead / large")
def alarms_constants() -> str:
    import mevreport
    torch = _torch()
    A = fixtures("models_alarms")
    torch.manual_seed(0)
    r = mevreport.analyze(A.ConstantsAndMasks(), torch.randn(4, 64), runs=0)
    return f"{kinds(r, 'dead_activation')} / {kinds(r, 'large_values')}"


@case("alarms", "true problems kept: DeadReLU dead / LargeActivation large / NaNToOutput nan_origin")
def alarms_true() -> str:
    import mevreport
    torch = _torch()
    A = fixtures("models_alarms")
    got = []
    for cls, kind in (("DeadReLU", "dead_activation"), ("LargeActivation", "large_values"),
                      ("NaNToOutput", "nan_origin")):
        torch.manual_seed(0)
        got.append(str(kinds(mevreport.analyze(getattr(A, cls)(), torch.randn(4, 64), runs=0), kind)))
    return " / ".join(got)


@case("alarms", "ManyWarnings (--capture export falls back): header link count vs Warnings card")
def alarms_count() -> str:
    import re

    import mevreport
    from mevreport.render.html import render_html, summary_cards
    torch = _torch()
    A = fixtures("models_alarms")
    from mevreport.render import html as page_module
    torch.manual_seed(0)
    r = mevreport.analyze(A.ManyWarnings(), torch.randn(4, 64), runs=0, capture="export")
    card = next(c for c in summary_cards(r) if c["label"] == "Warnings")["value"]
    try:
        header = re.findall(r'<a href="#warnings">Warnings \((\d+)\)</a>', render_html(r))[0]
    except Exception:  # the old tree cannot render without pyvis: its header link showed len(warning_rows)
        header = f"{len(page_module.warning_rows(r))} (len(warning_rows), what its template printed)"
    return f"header {header} vs card {card}"


# --- meta ------------------------------------------------------------------------------------

def _detector(needs_values: bool):
    torch = _torch()
    nn = torch.nn

    class D(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone, self.head = nn.Linear(4, 8), nn.Linear(8, 3)

        def forward(self, x):
            y = self.backbone(x)
            keep = torch.nonzero(y[:, 0] > 0).squeeze(1)
            if needs_values and keep.numel() <= 5:
                return y
            return self.head(y[keep])
    return D()


@case("meta", "detection-style nonzero (10 rows) on --device meta: MACs (upper bound 560)")
def meta_nonzero() -> str:
    import mevreport
    torch = _torch()
    try:
        r = mevreport.analyze(_detector(False), torch.randn(10, 4), device="meta", runs=0)
    except Exception as e:
        return short_error(e)
    return f"{r.totals.macs:,} MACs, {sum(1 for w in r.warnings if 'upper bound' in w.message)} upper-bound note"


@case("meta", "branch on the nonzero count on meta: the message")
def meta_needs_data() -> str:
    import mevreport
    torch = _torch()
    try:
        r = mevreport.analyze(_detector(True), torch.randn(10, 4), device="meta", runs=0)
    except Exception as e:
        return short_error(e)
    return f"no error: {r.totals.macs} MACs"


@case("meta", "float32 tiny Mixtral on --device meta: MACs / analytic")
def meta_moe() -> str:
    import mevreport
    torch = _torch()
    model = _mixtral(**TINY_MOE)
    try:
        r = mevreport.analyze(model, {"input_ids": torch.randint(0, 64, (1, 8))}, device="meta", runs=0)
    except Exception as e:
        return short_error(e)
    return f"{r.totals.macs:,} / {_mixtral_macs(**TINY_MOE, seq=8):,}"


BIG = dict(layers=32, h=4096, inter=14336, experts=8, top_k=2, heads=32, kv_heads=8, vocab=32000)


@case("mixtral", "Mixtral-8x7B-shaped config (built on meta), 16 tokens, --device meta: MACs / analytic; time; RSS")
def meta_mixtral_8x7b() -> str:
    import mevreport
    torch = _torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _mixtral(**BIG, meta=True)
    t0 = time.perf_counter()
    try:
        r = mevreport.analyze(model, {"input_ids": torch.zeros(1, 16, dtype=torch.long)}, device="meta", runs=0)
        what = f"{r.totals.macs:,} / {_mixtral_macs(**BIG, seq=16):,} MACs, params {r.totals.params:,}"
    except Exception as e:
        what = short_error(e)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"{what}; analyze {dt:.1f} s, peak RSS {rss:.0f} MiB"


# --- driver ----------------------------------------------------------------------------------

def _stub_missing_pyvis() -> None:
    """The old tree imports pyvis (the page's graph) at import time; this venv no longer has it.
    The cards need none of it, so a stand-in module lets ``summary_cards`` import."""
    try:
        import pyvis  # noqa: F401
    except ImportError:
        import types
        stub, network = types.ModuleType("pyvis"), types.ModuleType("pyvis.network")
        stub.__file__ = "/nonexistent/pyvis/__init__.py"
        network.Network = object  # type: ignore[attr-defined]
        sys.modules.update({"pyvis": stub, "pyvis.network": network})


def worker(group: str) -> None:
    warnings.simplefilter("ignore")
    _stub_missing_pyvis()
    results = {}
    for name, fn in CASES[group]:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                results[name] = fn()
        except Exception as e:  # a case that cannot even be set up on this tree
            results[name] = short_error(e)
    print(json.dumps(results))


def run_tree(tree: Path, group: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONWARNINGS="ignore")
    p = subprocess.run([sys.executable, __file__, "--worker", group], env=env, capture_output=True, text=True,
                       timeout=1800)
    if p.returncode != 0:
        err = (p.stderr.strip().splitlines() or ["?"])[-1]
        return {name: f"worker failed: {err[:100]}" for name, _ in CASES[group]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path)
    ap.add_argument("--after", type=Path, default=HERE)
    ap.add_argument("--groups", default=",".join(CASES))
    ap.add_argument("--worker")
    a = ap.parse_args()
    if a.worker:
        worker(a.worker)
        return
    if a.before is None:
        ap.error("--before is required")
    print("| case | before | after |\n|---|---|---|")
    for group in a.groups.split(","):
        before, after = run_tree(a.before, group), run_tree(a.after, group)
        for name, _ in CASES[group]:
            cell = [v.replace("|", "\\|") for v in (name, before[name], after[name])]
            print(f"| {cell[0]} | {cell[1]} | {cell[2]} |", flush=True)


if __name__ == "__main__":
    main()
