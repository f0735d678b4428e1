"""Measure the report on large models: generation time, HTML size, first draw in Chromium.

    PYTHONPATH=$PWD python benchmarks/report_size.py [--layers 48] [--runs 1] [--out /tmp/mevreport-bench]

Prints one line per measurement and writes the reports to --out.  Not a
test: timings depend on the machine (and on whatever else shares its CPU).
Time to first draw is taken in the page itself: ``performance.now()`` at
the graph's first canvas frame, ``mevreport.firstDraw`` (milliseconds since navigation
start), in headless Chromium.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mevreport
from mevreport.render.html import render_html
from tests import models_report as M

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


def first_draw_ms(path: Path, repeats: int = 3) -> list[float]:
    from playwright.sync_api import sync_playwright
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(path.as_uri())
            page.wait_for_function("window.mevreport && mevreport.firstDraw !== null", timeout=60000)
            out.append(page.evaluate("mevreport.firstDraw"))
            page.close()
        browser.close()
    return out


def measure(name: str, model: torch.nn.Module, inputs, out: Path, **options) -> None:
    t0 = time.perf_counter()
    report = mevreport.analyze(model, inputs, **options)
    t1 = time.perf_counter()
    html = render_html(report)
    t2 = time.perf_counter()
    path = out / f"{name}.html"
    path.write_text(html, encoding="utf-8")
    draws = first_draw_ms(path)
    print(f"{name}: {len(report.nodes)} ops, {len(report.modules)} modules; options {options}")
    print(f"  analyze (capture + timing + stats) {t1 - t0:.1f} s, render {t2 - t1:.1f} s, total {t2 - t0:.1f} s")
    print(f"  HTML {path.stat().st_size / 1e6:.2f} MB ({path})")
    print(f"  first graph draw in Chromium: {', '.join(f'{d:.0f}' for d in draws)} ms after navigation start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=48)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", default="/tmp/mevreport-bench")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, ids = M.gpt_own(args.layers)
    measure(f"gpt{args.layers}", model, ids, out, runs=args.runs)
    measure(f"gpt{args.layers}-nostats-notiming", model, ids, out, runs=0, stats=False)
    measure("resnet50-meta", M.ResNet50().eval(), torch.randn(1, 3, 224, 224), out, device="meta")


if __name__ == "__main__":
    main()
