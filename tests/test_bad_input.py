"""Bad input through the command line (issue 7, docs/bad-input.md).

Every row runs ``python -m mevreport`` the way a user would, in a directory
that already holds a previous report (``out.html`` and ``out.json``).  Each
must end with exit code 2 and exactly one ``mevreport: error:`` line that
names the problem and what to do, print no traceback, and leave the directory
exactly as it was: the old report byte-identical, no new or temporary file.

The rows run concurrently in one module-scoped fixture (each is a separate
interpreter that imports torch, about 2 s of CPU), and one test per row
checks its result.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli

OLD_HTML = b"<!DOCTYPE html><html><body>previous report</body></html>\n"
OLD_JSON = b'{"previous": true}\n'
PROGRESS = re.compile(r"^mevreport: .* \(\d+\.\d+s\)$")
MODEL = "tests.models_hostile:small_conv"
MODEL_WITH_INPUTS = "tests.models_hostile:small_conv_with_inputs"


class _RunShell:
    """Pickles into a call of os.system: unpickling it would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _good_pt2(path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    torch.export.save(torch.export.export(model, (torch.randn(2, 4),)), str(path))


def _poison_pt2(good: Path, bad: Path, marker: Path) -> None:
    """A real torch.export archive whose first weight is flagged ``use_pickle`` and holds a shell call.

    Plain ``torch.export.load`` (torch 2.13) runs it through
    ``torch.load(weights_only=False)``; mevreport must not.
    """
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("model_weights_config.json"):
                config = json.loads(data)
                next(iter(config["config"].values()))["use_pickle"] = True
                data = json.dumps(config).encode()
            elif info.filename.endswith("weights/weight_0"):
                data = pickle.dumps(_RunShell(marker))
            zout.writestr(info.filename, data)


@dataclass
class Row:
    """One bad input: the arguments, the files it needs, what the error line must say."""

    id: str
    args: list[str]
    expect: list[str]  # substrings of the one error line (the problem and what to do)
    setup: str = ""   # name of a file-making step below
    outputs: list[str] = field(default_factory=lambda: ["-o", "out.html", "--json", "out.json"])
    skip: str | None = None


ROWS = [
    Row("missing-path", ["report", "missing_model.py:build"], ["no such file", "missing_model.py", "check the path"]),
    Row("missing-pt2", ["report", "missing.pt2"], ["no such file", "missing.pt2", "check the path"]),
    Row("directory", ["report", "models_dir"], ["is a directory", "give path/to/file.py:callable"], setup="dir"),
    Row("empty-py", ["report", "empty.py:build"], ["empty.py", "is empty", "def build()"], setup="empty_py"),
    Row("empty-pt2", ["report", "empty.pt2"], ["empty.pt2", "is empty", "torch.export.save"], setup="empty_pt2"),
    Row("pt2-random-bytes", ["report", "random.pt2"], ["not a torch.export archive", "not a zip file", "torch.export.save"],
        setup="random_pt2"),
    Row("pt2-zip-not-export", ["report", "other.pt2"], ["not a readable torch.export archive", "torch.export.save"],
        setup="zip_pt2"),
    Row("pt2-with-pickle", ["report", "poisoned.pt2"], ["never unpickles", "name a callable"], setup="poison_pt2"),
    Row("pickle-pt", ["report", "weights.pt"], ["looks like a pickle", "never unpickles", "def build()",
                                                 "mevreport report file.py:build"], setup="pickle_pt"),
    Row("pickle-pth", ["report", "weights.pth"], ["looks like a pickle", "def build()"], setup="pickle_pth"),
    Row("missing-module", ["report", "no_such_pkg_for_mevreport_tests.models:build"],
        ["no module named 'no_such_pkg_for_mevreport_tests'", "check the name"]),
    Row("missing-attribute", ["report", "tests.models_hostile:no_such_builder"],
        ["has no attribute 'no_such_builder'", "name a function or nn.Module"]),
    Row("callable-raises", ["report", "tests.models_hostile:raises"],
        ["raised ValueError: checkpoint weights.bin not found", "--debug"]),
    Row("returns-non-module", ["report", "tests.models_hostile:returns_string"],
        ["returned str", "must return a torch.nn.Module or (module, example_inputs)"]),
    Row("not-callable", ["report", "tests.models_hostile:NOT_CALLABLE"],
        ["names an object of type int, not a callable", "name the function"]),
    Row("no-example-inputs", ["report", MODEL], ["gives no example inputs", "--input-shape"]),
    Row("shape-malformed", ["report", MODEL, "--input-shape", "1,a,8"],
        ["malformed --input-shape '1,a,8'", "like 1,3,224,224"]),
    Row("shape-wrong-rank", ["report", MODEL, "--input-shape", "3,8"],
        ["failed in F.conv2d", "module 'body.0' (Conv2d)", "got input of size: [3, 8]", "check --input-shape"]),
    Row("shape-rejected", ["report", MODEL, "--input-shape", "1,4,8,8"],
        ["failed in aten.convolution.default", "module 'body.0' (Conv2d)", "to have 3 channels", "check --input-shape"]),
    Row("meta-needs-data", ["report", "tests.models_hostile:keeps_rows", "--device", "meta"],
        ["cannot be analysed without data", "models_hostile.py", "keep.numel() > 5", "aten.nonzero.default",
         "--device cpu"]),
    Row("shape-too-large-for-memory", ["report", MODEL, "--input-shape", "1000000,1000000,1000"],
        ["cannot create a random input of shape [1000000, 1000000, 1000] (4,000,000.0 GB of float32): not enough memory",
         "--device meta"]),
    Row("shape-dimension-overflow", ["report", MODEL, "--input-shape", "99999999999999999999,2"],
        ["dimension too large", "check the numbers"]),
    Row("dtype-unknown", ["report", MODEL, "--input-shape", "1,3,8,8", "--input-dtype", "float33"],
        ["unknown --input-dtype 'float33'", "float32"]),
    Row("device-unknown", ["report", MODEL_WITH_INPUTS, "--device", "tpu9"], ["unknown device 'tpu9'", "use cpu, cuda"]),
    Row("device-cuda-without-cuda", ["report", MODEL_WITH_INPUTS, "--device", "cuda"],
        ["no CUDA device", "use --device cpu or meta"], skip="CUDA is available here" if torch.cuda.is_available() else None),
    Row("output-dir-under-a-file", ["report", MODEL_WITH_INPUTS], ["'out.html' is a file, not a directory"],
        outputs=["-o", "out.html/new_dir/r.html", "--json", "out.json"]),
    Row("output-parent-is-file", ["report", MODEL_WITH_INPUTS], ["is a file, not a directory", "choose another"],
        outputs=["-o", "out.html/r.html"]),
    Row("output-is-directory", ["report", MODEL_WITH_INPUTS], ["is a directory", "give a file name"],
        outputs=["-o", "models_dir", "--json", "out.json"], setup="dir"),
    Row("output-unwritable", ["report", MODEL_WITH_INPUTS],
        ["cannot write '/proc/mevreport-test.html'", "cannot create a file in '/proc'", "choose another"],
        outputs=["-o", "/proc/mevreport-test.html", "--json", "out.json"],
        skip=None if sys.platform.startswith("linux") else "needs Linux /proc"),
    Row("json-dir-uncreatable", ["report", MODEL_WITH_INPUTS],
        ["cannot write '/proc/no_such_dir/r.json'", "cannot create a directory in '/proc'"],
        outputs=["-o", "out.html", "--json", "/proc/no_such_dir/r.json"],
        skip=None if sys.platform.startswith("linux") else "needs Linux /proc"),
    Row("debug-shows-traceback", ["report", "tests.models_hostile:raises", "--debug"],
        ["raised ValueError: checkpoint weights.bin not found"]),
]


def _setup(kind: str, d: Path) -> None:
    if kind == "dir":
        (d / "models_dir").mkdir()
    elif kind == "empty_py":
        (d / "empty.py").write_bytes(b"")
    elif kind == "empty_pt2":
        (d / "empty.pt2").write_bytes(b"")
    elif kind == "random_pt2":
        (d / "random.pt2").write_bytes(bytes(range(256)) * 16)
    elif kind == "zip_pt2":
        with zipfile.ZipFile(d / "other.pt2", "w") as z:
            z.writestr("notes.txt", "not an exported program")
    elif kind == "poison_pt2":
        _good_pt2(d / "source.pt2")
        _poison_pt2(d / "source.pt2", d / "poisoned.pt2", d / "EXECUTED")
        (d / "source.pt2").unlink()
    elif kind in ("pickle_pt", "pickle_pth"):
        torch.save(_RunShell(d / "EXECUTED"), d / ("weights.pt" if kind == "pickle_pt" else "weights.pth"))
    elif kind:
        raise AssertionError(kind)


def _snapshot(d: Path) -> dict[str, bytes | None]:
    """Every file and directory under ``d`` with its bytes (directories: None); bytecode caches aside."""
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(d.rglob("*")) if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, dict, dict, Path]]:
    base = tmp_path_factory.mktemp("bad_input")
    jobs = {}
    for row in ROWS:
        if row.skip:
            continue
        d = base / row.id
        d.mkdir()
        (d / "out.html").write_bytes(OLD_HTML)
        (d / "out.json").write_bytes(OLD_JSON)
        _setup(row.setup, d)
        jobs[row.id] = (row, d, _snapshot(d))
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {rid: pool.submit(run_cli, *row.args, *row.outputs, cwd=d, timeout=120)
                   for rid, (row, d, _) in jobs.items()}
        return {rid: (futures[rid].result(), before, _snapshot(d), d) for rid, (row, d, before) in jobs.items()}


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row: Row, results) -> None:
    if row.skip:
        pytest.skip(row.skip)
    proc, before, after, d = results[row.id]
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("mevreport: error: ")]
    assert len(errors) == 1, proc.stderr
    assert lines[-1] == errors[0], "the error line comes last"
    for part in row.expect:
        assert part in errors[0], f"{part!r} not in {errors[0]!r}"
    if row.id == "debug-shows-traceback":
        assert "Traceback (most recent call last)" in proc.stderr
        assert "ValueError: checkpoint weights.bin not found" in proc.stderr
    else:
        assert "Traceback" not in proc.stderr
        assert all(line == errors[0] or PROGRESS.match(line) for line in lines), proc.stderr
    assert proc.stdout == ""
    # Nothing created, truncated or left behind: the previous report is byte-identical.
    assert after == before
    assert (d / "out.html").read_bytes() == OLD_HTML
    assert (d / "out.json").read_bytes() == OLD_JSON
    assert not (d / "EXECUTED").exists()


def test_rows_are_documented() -> None:
    """docs/bad-input.md lists every row of this file."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "bad-input.md").read_text(encoding="utf-8")
    for row in ROWS:
        assert f"`{row.id}`" in doc, row.id


def test_huge_shapes_cost_nothing_on_meta() -> None:
    """The error above suggests --device meta: there, random inputs are meta tensors, never allocated."""
    from mevreport.loader import random_inputs

    (x,) = random_inputs([(1_000_000, 1_000_000, 1000)], torch.float32, device="meta")
    assert x.device.type == "meta" and x.shape == (1_000_000, 1_000_000, 1000)
