"""Measure the graph view in Chromium: expand all, frame times, and expanding one block.

    PYTHONPATH=$PWD python benchmarks/graph_view.py [--html PAGE.html] [--layers 48]

Without --html it builds the 48-layer GPT of the tests (10,148 ops, about 20 s) and writes its
page to /tmp.  Prints one line per measurement; not a test: the numbers depend on the machine
and on whatever shares its CPU (run it twice and read the medians).  Times are taken in the
page with ``performance.now()``: a draw is timed to the second animation frame after the call,
a frame is ``mevreport.frames`` (the canvas's own time to paint one frame).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
TWO_FRAMES = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def page_for(layers: int) -> Path:
    import mevreport
    from tests import models_report as M
    model, ids = M.gpt_own(layers)
    report = mevreport.analyze(model, ids, runs=0, stats=False)
    return report.save_html(Path("/tmp") / f"mevreport-graph-{layers}.html")


def measure(path: Path) -> None:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(path.as_uri())
        page.wait_for_function("window.mevreport && mevreport.firstDraw !== null", timeout=60000)
        print(f"first draw: {page.evaluate('mevreport.firstDraw'):.0f} ms after navigation")
        first = page.evaluate(f"""async () => {{ const out = [], d = mevreport.graph.firstDepth;
          for (let i = 1; i <= 9; i++) {{ mevreport.expandToDepth(d); const t0 = performance.now();
            mevreport.graph.expand('h.' + i); await {TWO_FRAMES}; out.push(performance.now() - t0); }}
          return out; }}""")
        drawn = page.evaluate(f"""async () => {{ const t0 = performance.now(); const n = mevreport.expandAll();
          await {TWO_FRAMES}; return [n, performance.now() - t0, mevreport.graph.layoutMs()]; }}""")
        frames = page.evaluate(f"""async () => {{ const out = [];
          for (const f of [0.7, 0.7, 0.7, 0.7, 0.7, 1.4, 1.4, 1.4, 1.4, 1.4]) {{
            const at = mevreport.frames.length; mevreport.graph.zoomAt(f, 500, 300); await {TWO_FRAMES};
            out.push(mevreport.frames[at]); }}
          for (let i = 0; i < 6; i++) {{ const at = mevreport.frames.length; mevreport.graph.camera.y -= 200;
            mevreport.graph.redraw(); await {TWO_FRAMES}; out.push(mevreport.frames[at]); }}
          return out; }}""")
        inside = page.evaluate(f"""async () => {{ const out = [];
          for (let i = 1; i <= 9; i++) {{ mevreport.graph.collapse('h.' + i); const t0 = performance.now();
            mevreport.graph.expand('h.' + i); await {TWO_FRAMES}; out.push(performance.now() - t0); }}
          return out; }}""")
        browser.close()
    print(f"expand all: {drawn[0]} boxes drawn in {drawn[1]:.0f} ms (layout {drawn[2]:.0f} ms)")
    print(f"frames (zoom, pan) of the expanded graph: median {statistics.median(frames):.1f} ms, "
          f"max {max(frames):.1f} ms")
    print(f"expand one block, to drawn: first view median {statistics.median(first):.0f} ms; "
          f"inside the expanded graph median {statistics.median(inside):.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", type=Path, default=None, help="a report page of a GPT (modules h.0, h.1, ...)")
    ap.add_argument("--layers", type=int, default=48)
    args = ap.parse_args()
    measure(args.html.resolve() if args.html is not None else page_for(args.layers))


if __name__ == "__main__":
    main()
