"""One command, one table: what mevreport costs next to a forward pass and its peers.

    PYTHONPATH=. python benchmarks/run.py [--reps 5] [--threads N] [--clock wall|cpu] [--skip-70b]

For a ResNet-50-shaped CNN (1×3×224×224) and a BERT-base-shaped encoder
(1×128 tokens), both built in ``tests/models_costs.py`` (no torchvision, no
transformers), it times in one process, interleaved, best of ``--reps``:

* ``forward``: the model under ``torch.no_grad()``, nothing else, timed three
  times in a row on each repetition (the denominator of every ratio, so its
  best is taken warm);
* ``capture +stats`` / ``capture -stats``: mevreport's capture stage, i.e. one
  instrumented forward pass that records every aten op (and, with stats,
  reduces every floating output), plus the bookkeeping around it
  (``capture(..., runs=0, weights=False)``);
* ``weight stats``: the per-parameter statistics (norm, mean, std, min, max,
  histogram) of every parameter, a cost proportional to the parameter count
  that ``analyze()`` adds once when stats are on;
* ``analyze(runs=0) +stats`` / ``-stats``: the whole ``mevreport.analyze`` with
  no latency measurement: the capture pass, weight statistics (with stats) and
  the pure analysis, i.e. everything but the timed runs;
* ``analyze() +stats`` / ``-stats``: the whole ``mevreport.analyze`` end to end,
  which adds ``runs=3`` per-op timed runs, 3 plain timed forward passes,
  weight statistics and the (pure) analysis;
* the peers in the same process: ``torch.utils.flop_counter.FlopCounterMode``,
  ``torchinfo.summary`` and ``fvcore``'s ``FlopCountAnalysis``, each with the
  MACs it reports (FlopCounterMode reports FLOPs = 2·MACs; fvcore's "flops"
  are MACs).

Then, in a child process so its peak RSS is its own, a 70B-parameter
Llama-shaped model from ``transformers`` built on the meta device and analysed
with ``device="meta"`` (fake tensors), sequence 128: wall time and peak RSS
(``resource.getrusage``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import mevreport  # noqa: E402
from mevreport.capture.run import capture  # noqa: E402
from mevreport.capture.weight_stats import weight_stats_all  # noqa: E402
from tests.models_costs import BertBase, ResNet50  # noqa: E402

warnings.filterwarnings("ignore")


def _peers(model: torch.nn.Module, x: torch.Tensor) -> dict[str, tuple[Callable[[], Any], Callable[[Any], int | None]]]:
    """name -> (run, MACs from its result) for each peer that imports."""
    from torch.utils.flop_counter import FlopCounterMode

    def flop_counter() -> int:
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model(x)
        return fc.get_total_flops()

    peers: dict[str, tuple[Callable[[], Any], Callable[[Any], int | None]]] = {
        "FlopCounterMode": (flop_counter, lambda flops: flops // 2),
    }
    try:
        import torchinfo

        def info() -> Any:
            return torchinfo.summary(model, input_data=x, verbose=0)

        peers["torchinfo.summary"] = (info, lambda s: int(s.total_mult_adds))
    except ImportError:
        pass
    try:
        from fvcore.nn import FlopCountAnalysis

        def fv() -> int:
            a = FlopCountAnalysis(model, x)
            a.unsupported_ops_warnings(False)
            a.uncalled_modules_warnings(False)
            with torch.no_grad():
                return int(a.total())

        peers["fvcore FlopCountAnalysis"] = (fv, lambda macs: macs)
    except ImportError:
        pass
    return peers


def bench_model(name: str, model: torch.nn.Module, x: torch.Tensor, reps: int,
                clock: Callable[[], float] = time.perf_counter) -> list[tuple[str, float, int | None]]:
    model.eval()

    def forward() -> None:
        with torch.no_grad():
            model(x)

    report: dict[str, Any] = {}

    def analyze_stats() -> None:
        report["r"] = mevreport.analyze(model, x, stats=True)

    variants: dict[str, Callable[[], Any]] = {
        "forward": forward,
        "capture +stats": lambda: capture(model, x, runs=0, stats=True, weights=False),
        "capture -stats": lambda: capture(model, x, runs=0, stats=False),
        "weight stats (all params)": lambda: weight_stats_all(list(model.named_parameters())),
        "analyze(runs=0) +stats": lambda: mevreport.analyze(model, x, stats=True, runs=0),
        "analyze(runs=0) -stats": lambda: mevreport.analyze(model, x, stats=False, runs=0),
        "analyze() +stats": analyze_stats,
        "analyze() -stats": lambda: mevreport.analyze(model, x, stats=False),
    }
    peers = _peers(model, x)
    results: dict[str, Any] = {}
    for label, (run, _) in peers.items():
        variants[label] = run
    best: dict[str, float] = {k: float("inf") for k in variants}
    for label, run in variants.items():  # warm-up: first calls pay one-time costs
        results[label] = run()
    for _ in range(reps):
        for label, run in variants.items():
            # The plain forward pass is the denominator of every ratio: it is timed three times in a
            # row (the best is warm), so a slow first run after another variant cannot flatter them.
            for _ in range(3 if label == "forward" else 1):
                t0 = clock()
                run()
                best[label] = min(best[label], clock() - t0)
    ours = report["r"].totals.macs
    rows: list[tuple[str, float, int | None]] = []
    for label in variants:
        macs = ours if label.startswith(("capture", "analyze")) and "stats" in label else None
        if label in peers:
            macs = peers[label][1](results[label])
        rows.append((label, best[label] * 1e3, macs))
    return rows


def _llama70b_child() -> None:
    """Runs in a child process: build a 70B Llama on meta, analyse it, print time and RSS."""
    import transformers

    config = transformers.LlamaConfig(
        num_hidden_layers=80, hidden_size=8192, num_attention_heads=64, num_key_value_heads=8,
        intermediate_size=28672, vocab_size=32000, max_position_embeddings=4096,
    )
    t0 = time.perf_counter()
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    ids = torch.zeros(1, 128, dtype=torch.long)
    report = mevreport.analyze(model, {"input_ids": ids}, device="meta")
    elapsed = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{elapsed:.2f} {rss_mb:.0f} {report.totals.params} {report.totals.macs} {report.totals.nodes}")


def llama70b() -> tuple[float, float, int, int, int, float]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--llama70b-child"], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    secs, rss, params, macs, nodes = out.stdout.split()[-5:]
    return float(secs), float(rss), int(params), int(macs), int(nodes), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--skip-70b", action="store_true")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: perf_counter; cpu: process CPU time, steadier on a shared machine with --threads 1")
    ap.add_argument("--llama70b-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.llama70b_child:
        _llama70b_child()
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"# mevreport {mevreport.__version__} benchmark, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, best of {args.reps}, {args.clock} clock")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    models = [
        ("ResNet-50 1x3x224x224", ResNet50(), torch.randn(1, 3, 224, 224)),
        ("BERT-base 1x128", BertBase(), torch.randint(0, 30522, (1, 128))),
    ]
    print()
    print("| model | what | ms | x forward | MACs (G) |")
    print("|---|---|---:|---:|---:|")
    for name, model, x in models:
        rows = bench_model(name, model, x, args.reps, clock)
        fwd = rows[0][1]
        for label, ms, macs in rows:
            m = f"{macs / 1e9:.3f}" if macs is not None else ""
            print(f"| {name} | {label} | {ms:.1f} | {ms / fwd:.2f} | {m} |", flush=True)
    if not args.skip_70b:
        secs, rss, params, macs, nodes, process = llama70b()
        print(f"| Llama 70B-shaped, meta, seq 128 | build on meta + analyze(device='meta') | {secs * 1e3:.0f} | "
              f"peak RSS {rss:.0f} MB | {macs / 1e9:.1f} |")
        print(f"# 70B: {params:,} params, {nodes} nodes; whole child process incl. imports {process:.1f} s")


if __name__ == "__main__":
    main()
