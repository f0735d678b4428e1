"""Start-up time of the command line: `--help`, `--version`, a usage error, and `report` up to its first line.

    python benchmarks/startup.py [--repeat 5]

Prints a table of the median wall time of each command in a fresh
interpreter, and of `python -c "import torch"` beside it (the cost the
lazy imports avoid).  Measured here, never asserted in tests.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CASES = {
    "mevreport --help": ["-m", "mevreport", "--help"],
    "mevreport --version": ["-m", "mevreport", "--version"],
    "mevreport report (usage error)": ["-m", "mevreport", "report"],
    "mevreport diff --fail-if bad (usage error)": ["-m", "mevreport", "diff", "a.json", "b.json", "--fail-if", "x>"],
    "python -c 'import torch' (for scale)": ["-c", "import torch"],
    "python -c 'import mevreport'": ["-c", "import mevreport"],
}


def _time(args: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], capture_output=True, env=env, cwd=REPO, timeout=120)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    print(f"{'command':48} {'median s':>9} {'min s':>7}")
    for name, args in CASES.items():
        _time(args)  # warm the file cache
        runs = [_time(args) for _ in range(repeat)]
        print(f"{name:48} {statistics.median(runs):9.3f} {min(runs):7.3f}")


if __name__ == "__main__":
    main()
