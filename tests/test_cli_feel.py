"""Issue 17: a CLI that starts without torch, finds modules where `python -m` does, creates directories, names well."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import mevreport
from tests.conftest import REPO, run_cli

HEAVY = ("torch", "matplotlib", "onnx", "jinja2", "onnxruntime")


def _imported_after(code: str) -> dict[str, bool]:
    probe = (f"import sys\n{code}\n"
             f"import json; print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["report"], ["report", "--help"], ["diff", "a"],
                                  ["diff", "a.json", "b.json", "--fail-if", "macs>"],
                                  ["frobnicate"]])
def test_help_version_and_usage_errors_import_nothing_heavy(argv: list[str]) -> None:
    """What takes about 3 s is importing torch; these answers need none of it (timed in benchmarks/startup.py)."""
    code = ("from mevreport.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass")
    assert _imported_after(code) == dict.fromkeys(HEAVY, False)


def test_the_public_api_still_resolves_lazily() -> None:
    assert _imported_after("import mevreport") == dict.fromkeys(HEAVY, False)
    assert _imported_after("from mevreport import Report, analyze, generate, load")["torch"] is True
    assert mevreport.Report is mevreport.report.Report
    assert {"analyze", "generate", "load", "Report"} <= set(dir(mevreport))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mevreport.nope  # noqa: B018


CONSOLE_SCRIPT = Path(sys.executable).with_name("mevreport")


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="the console script is not installed in this environment")
def test_console_script_finds_modules_in_the_current_directory(tmp_path: Path) -> None:
    """`mevreport report mymodels:build` finds ./mymodels.py, as `python -m mevreport` does."""
    (tmp_path / "mymodels.py").write_text(
        "import torch\nfrom torch import nn\n\n"
        "class TinyNet(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(4, 3)\n\n"
        "    def forward(self, x):\n        return self.fc(x)\n\n"
        "def build():\n    return TinyNet(), torch.randn(2, 4)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([str(CONSOLE_SCRIPT), "report", "mymodels:build", "--runs", "0", "--no-stats"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # The default name is the model's class, not the callable's: every `build` would write build.html.
    assert (tmp_path / "TinyNet.html").exists() and not (tmp_path / "build.html").exists()
    assert "wrote TinyNet.html" in proc.stderr


def test_missing_directories_are_created_for_every_output(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "exp1"
    proc = run_cli("report", "tests.models_hostile:small_conv_with_inputs", "--runs", "1", "-q",
                   "-o", str(out / "r.html"), "--json", str(out / "json" / "r.json"),
                   "--trace", str(out / "trace" / "t.json"), "--csv", str(out / "tables"))
    assert proc.returncode == 0, proc.stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "json/r.json", "r.html", "tables/modules.csv", "tables/ops.csv", "trace/t.json"]


def test_a_failed_run_creates_no_directory(tmp_path: Path) -> None:
    proc = run_cli("report", "tests.models_hostile:raises", "-o", str(tmp_path / "new" / "r.html"))
    assert proc.returncode == 2
    assert list(tmp_path.iterdir()) == []


def test_generate_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "exp1" / "report.html"
    report = mevreport.generate(nn.Linear(3, 2), torch.randn(1, 3), path, runs=0, stats=False)
    assert path.is_file() and report.totals.params == 3 * 2 + 2


def test_report_help_explains_capture_and_dtypes() -> None:
    proc = run_cli("report", "--help")
    text = " ".join(proc.stdout.split())
    assert "how the executed graph is recorded" in text
    assert "bfloat16" in text and "int64" in text
    assert "--trace PATH" in text and "--csv DIR" in text
