"""Wall time of the ONNX path against the PyTorch path for one ResNet-50-shaped model.

Builds ResNet-50 (bottleneck blocks 3-4-6-3, no torchvision), exports it once
to ONNX with mevreport's exporter, then times what a user waits for: fresh
``mevreport report`` processes, alternating between

* torch: ``mevreport report benchmarks/onnx_resnet50.py:build`` (dispatch
  capture, stats, per-op and forward timing, HTML + JSON);
* onnx:  ``mevreport report resnet50.onnx`` (shape inference, onnxruntime
  values / profiler / latency, HTML + JSON);

with the same ``--runs``, and prints medians; then the analysis alone in one
warm process.  Run from the repository root:

    PYTHONPATH=$PWD python benchmarks/onnx_resnet50.py [--runs 3] [--repeat 3] [--no-stats]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import mevreport

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.models_costs import ResNet50  # shared with the cost tests and benchmarks/run.py


def build():
    """For ``mevreport report benchmarks/onnx_resnet50.py:build``."""
    torch.manual_seed(0)
    return ResNet50().eval(), torch.randn(1, 3, 224, 224)


def _cli(args: list[str], cwd: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mevreport", "report", *args, "-q"], cwd=cwd, env=env, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="mevreport --runs (timed runs for latency)")
    ap.add_argument("--repeat", type=int, default=3, help="fresh CLI processes per path (alternating)")
    ap.add_argument("--no-stats", action="store_true")
    opts = ap.parse_args()
    model, x = build()
    extra = ["--runs", str(opts.runs)] + (["--no-stats"] if opts.no_stats else [])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "resnet50.onnx"
        t0 = time.perf_counter()
        export = mevreport.onnx.export_onnx(model, x, path)
        print(f"export: {time.perf_counter() - t0:.2f} s ({export.exporter}, opset {export.opset}, "
              f"{path.stat().st_size / 1e6:.1f} MB)")
        # 1. what a user waits for: one fresh `mevreport report` process per report (HTML + JSON written)
        times: dict[str, list[float]] = {"torch": [], "onnx": []}
        for _ in range(opts.repeat):
            times["torch"].append(_cli([f"{Path(__file__).resolve()}:build", "-o", "t.html", "--json", "t.json",
                                        *extra], tmp))
            times["onnx"].append(_cli([str(path), "-o", "o.html", "--json", "o.json", *extra], tmp))
        for k, v in times.items():
            print(f"CLI {k:5s} path: median {statistics.median(v):.2f} s  (runs: {', '.join(f'{t:.2f}' for t in v)})")
        tj = json.loads((Path(tmp) / "t.json").read_text())["totals"]
        oj = json.loads((Path(tmp) / "o.json").read_text())["totals"]
        print(f"MACs torch {tj['macs']} onnx {oj['macs']}; params torch {tj['params']} onnx {oj['params']}; "
              f"forward latency torch {tj['latency_ms']} ms, onnxruntime {oj['latency_ms']} ms")
        assert tj["macs"] == oj["macs"] and tj["params"] == oj["params"]
        # 2. in one warm process (second call of each), analysis only, no files
        for label, fn in (("torch", lambda: mevreport.analyze(model, x, runs=opts.runs, stats=not opts.no_stats)),
                          ("onnx", lambda: mevreport.analyze(str(path), runs=opts.runs, stats=not opts.no_stats))):
            fn()
            t0 = time.perf_counter()
            fn()
            print(f"in-process (warm) {label:5s} analyze: {time.perf_counter() - t0:.2f} s")


REPO = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    import mevreport.onnx
    main()
