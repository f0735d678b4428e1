"""``diff.compare`` on crafted reports: linear in the size of its inputs (issue 11).

    PYTHONPATH=. python benchmarks/diff_scaling.py

BASE is the demo report with N extra module rows, either N copies of one row
(one path repeated, the crafted case that took minutes) or N distinct paths;
HEAD is the plain demo report.  Prints seconds per ``compare`` (best of 3):
doubling N should about double the time.
"""
from __future__ import annotations

import dataclasses
import time

import torch

import mevreport
from mevreport import demo
from mevreport.diff import compare


def main() -> None:
    torch.manual_seed(0)
    model, inputs = demo.build()
    head = mevreport.analyze(model, inputs, runs=0, stats=False)
    row = head.modules[1]
    print(f"{'rows':>8} {'repeated (s)':>13} {'distinct (s)':>13}")
    for n in (15_000, 30_000, 60_000):
        times = []
        for rows in ((dataclasses.replace(row, path="evil.block"),) * n,
                     tuple(dataclasses.replace(row, path=f"evil.b{i}") for i in range(n))):
            base = dataclasses.replace(head, modules=head.modules + rows)
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                compare(base, head)
                best = min(best, time.perf_counter() - start)
            times.append(best)
        print(f"{n:>8} {times[0]:>13.3f} {times[1]:>13.3f}")


if __name__ == "__main__":
    main()
