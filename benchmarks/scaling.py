"""How the whole pipeline scales with the op count: capture, analysis, HTML, JSON, page open.

    PYTHONPATH=$PWD python benchmarks/scaling.py [--sizes 1000,10000,100000] [--runs 3] [--repeat 1]
                                                  [--out /tmp/mevreport-scaling] [--no-browser]

A model of N tiny executed ops: a deep stack of small blocks (a 4-wide
``Linear``, a ReLU, a residual add, a scale) nested three levels deep, so
the module tree and the graph have the shape of a real deep network while
each op costs next to nothing and the tool's own cost is what is measured.
Each size runs in a fresh child process (so the peak RSS is that size's
alone, read with ``resource.getrusage``), bounded by --timeout, along the
path that ``mevreport report`` takes: capture with statistics and the
default 3 timed runs, the analysis, the HTML page and the JSON document
written to disk.  The page-open time is taken in headless Chromium (launch
arguments as in the browser tests): ``mevreport.firstDraw``, milliseconds
from navigation start to the graph's first drawn frame, best of 3.  "process CPU s" is the
child's user + system time from start to exit (imports and model building
included): on a shared machine it moves less than the wall-clock columns.

Not a test: timings depend on the machine and on whatever shares its CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
OPS_PER_BLOCK = 5  # t and addmm (the Linear), relu, add, mul


def build(n_ops: int):
    """A three-level stack (stages > groups > blocks) with about ``n_ops`` executed ops."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            y = torch.relu(self.lin(x))
            return (x + y) * 0.5

    class Group(nn.Sequential):
        pass

    class Stage(nn.Sequential):
        pass

    blocks = max(1, n_ops // OPS_PER_BLOCK)
    per_group = 10
    groups = max(1, blocks // per_group)
    per_stage = max(1, int(groups ** 0.5))
    stages, made = [], 0
    while made < groups:
        k = min(per_stage, groups - made)
        stages.append(Stage(*[Group(*[Block() for _ in range(per_group)]) for _ in range(k)]))
        made += k
    torch.manual_seed(0)
    return nn.Sequential(*stages).eval(), torch.randn(1, 4)


def child(n_ops: int, runs: int, out: Path) -> dict:
    """One size, measured in this process: the stage times, peak RSS and file sizes."""
    import resource

    sys.path.insert(0, str(REPO))
    from mevreport.api import _render_html  # noqa: F401  (registers the renderers, as ``import mevreport`` does)
    from mevreport.assemble import report_of
    from mevreport.capture import capture
    from mevreport.fileio import atomic_write_text
    from mevreport.jsontext import document_text
    from mevreport.render.html import render_html
    model, x = build(n_ops)
    t0 = time.perf_counter()
    graph = capture(model, x, stats=True, runs=runs)
    t1 = time.perf_counter()
    report = report_of(graph)
    t2 = time.perf_counter()
    # as ``mevreport report`` writes them (cli._write): one plain document for the page and the JSON file
    html = out / f"scaling-{n_ops}.html"
    document = report.to_dict()
    atomic_write_text(html, render_html(report, document))
    t3 = time.perf_counter()
    js = out / f"scaling-{n_ops}.json"
    atomic_write_text(js, document_text(document) + "\n")
    t4 = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss = usage.ru_maxrss * 1024
    return {"cpu": usage.ru_utime + usage.ru_stime, "ops": len(report.nodes), "capture": t1 - t0, "analysis": t2 - t1, "html": t3 - t2, "json": t4 - t3,
            "total": t4 - t0, "rss": rss, "html_mb": html.stat().st_size / 1e6, "json_mb": js.stat().st_size / 1e6,
            "html_path": str(html)}


def page_open_ms(path: str, repeats: int = 3, timeout_ms: int = 120000) -> list[float]:
    from playwright.sync_api import sync_playwright
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(Path(path).as_uri(), timeout=timeout_ms)
            page.wait_for_function("window.mevreport && mevreport.firstDraw !== null", timeout=timeout_ms)
            out.append(page.evaluate("mevreport.firstDraw"))
            page.close()
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="executed ops, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (the CLI's default: 3)")
    parser.add_argument("--repeat", type=int, default=1, help="measure each size this many times (best and median)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per size")
    parser.add_argument("--out", default="/tmp/mevreport-scaling")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.child is not None:
        print(json.dumps(child(args.child, args.runs, out)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"# mevreport scaling, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}, runs={args.runs}")
    print("| ops | capture s | analysis s | render s (HTML + JSON) | total s | process CPU s | peak RSS GB | HTML MB "
          "| JSON MB | s per 1k ops | page open ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for n in sizes:
        for _ in range(args.repeat):
            try:
                done = subprocess.run([sys.executable, __file__, "--child", str(n), "--runs", str(args.runs),
                                       "--out", str(out)], capture_output=True, text=True, env=env,
                                      timeout=args.timeout, check=True)
            except subprocess.TimeoutExpired:
                print(f"| {n:,} | timed out after {args.timeout:.0f} s |")
                continue
            except subprocess.CalledProcessError as exc:
                print(f"| {n:,} | failed: {exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else exc} |")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            opened = "" if args.no_browser or n < 10000 else \
                "best of 3: " + f"{min(page_open_ms(r['html_path'])):.0f}"
            print(f"| {r['ops']:,} | {r['capture']:.1f} | {r['analysis']:.1f} | {r['html']:.1f} + {r['json']:.1f} "
                  f"| {r['total']:.1f} | {r['cpu']:.1f} | {r['rss'] / 1e9:.2f} | {r['html_mb']:.1f} | {r['json_mb']:.1f} "
                  f"| {1000 * r['total'] / r['ops']:.2f} | {opened} |", flush=True)


if __name__ == "__main__":
    main()
