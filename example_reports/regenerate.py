"""Regenerate every report in example_reports/ with the installed mevreport.

    python example_reports/regenerate.py            # all of them (a few minutes on 2 CPU cores)
    python example_reports/regenerate.py demo cnn   # only some

Each report is made through the command line, exactly as a user would, so
the examples double as a smoke test of the CLI.  The models are in
example_reports/models.py (and example_reports/release_models.py for the release
archive); all are built from code with seeded random weights.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = HERE / "models.py"
RELEASES = HERE / "release_models.py"


def mevreport(*args: str) -> None:
    cmd = [sys.executable, "-m", "mevreport", *args]
    print("$ mevreport", " ".join(str(a).replace(str(ROOT) + "/", "") for a in args), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    print(f"  {time.perf_counter() - start:.1f}s", flush=True)


def demo() -> None:
    mevreport("demo", "-q", "-o", HERE / "demo.html", "--json", HERE / "demo.json")


def cnn() -> None:
    mevreport("report", f"{MODELS}:resnet18", "-q", "--title", "ResNet-18 (224x224, batch 1)",
              "-o", HERE / "resnet18.html", "--json", HERE / "resnet18.json")


def transformer() -> None:
    mevreport("report", f"{MODELS}:gpt2_small", "-q", "--title", "GPT-2, 4 layers (Hugging Face, 64 tokens)",
              "-o", HERE / "gpt2_small.html", "--json", HERE / "gpt2_small.json")


def training() -> None:
    mevreport("report", f"{MODELS}:gpt2_small", "-q", "--train", "--optimizer", "adamw",
              "--title", "GPT-2, 4 layers: one training step (AdamW, synthetic loss)",
              "-o", HERE / "gpt2_small_train.html", "--json", HERE / "gpt2_small_train.json")


def branchy() -> None:
    mevreport("report", f"{MODELS}:branchy", "-q", "--capture", "export",
              "--title", "Data-dependent branch (torch.export fails; captured by running)",
              "-o", HERE / "branchy.html", "--json", HERE / "branchy.json")


def large() -> None:
    mevreport("report", f"{MODELS}:gpt_large", "-q", "--runs", "1",
              "--title", "48-layer GPT-style decoder (about 10,000 ops)", "-o", HERE / "gpt_48_layers.html")


def releases() -> None:
    # paths relative to the root the commands run in: the diff page and the index print the paths given
    out = (HERE / "releases").relative_to(ROOT)
    shutil.rmtree(ROOT / out, ignore_errors=True)
    (ROOT / out).mkdir()
    for version in ("1.8", "1.9", "1.10"):
        mevreport("report", f"{RELEASES}:v{version.replace('.', '_')}", "-q", "--label", f"v{version}.0",
                  "--runs", "5", "-o", out / f"v{version}.0.html", "--json", out / f"v{version}.0.json")
    mevreport("diff", out / "v1.9.0.json", out / "v1.10.0.html", "-q", "-o", HERE / "diff.html",
              "--markdown", HERE / "diff.md", "--fail-if", "macs>+50%", "--fail-if", "params>+50%")
    mevreport("index", out, "-q", "-o", HERE / "index.html")


JOBS = {"demo": demo, "cnn": cnn, "transformer": transformer, "training": training, "branchy": branchy, "large": large,
        "releases": releases}


def main(names: list[str]) -> None:
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        sys.exit(f"unknown example(s) {unknown}; choose from {sorted(JOBS)}")
    for name in names or list(JOBS):
        JOBS[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
