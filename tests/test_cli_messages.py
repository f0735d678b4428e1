"""The CLI's messages where torch's own would mislead: each is one line, and a refusal exits 2 with nothing written."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from tests.conftest import run_cli

MODELS = '''
import torch
from torch import nn


class Refuses(nn.Module):
    """Runs eagerly; under torch.export it raises an error whose first line is long and ends in a URL."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        if torch.compiler.is_exporting():
            raise RuntimeError("export cannot trace this model " + "because " * 30
                               + "see https://example.org/" + "a" * 60 + "/end")
        return self.fc(x)


def refuses():
    return Refuses(), torch.randn(2, 4)


def linear():
    return nn.Linear(4, 3)


def on_cuda():
    return nn.Linear(4, 3).to("cuda")


class MovesToCuda(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x.cuda())


def moves():
    return MovesToCuda(), torch.randn(2, 4)
'''


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "mine.py").write_text(MODELS)
    return tmp_path


def _refused(r, folder: Path, keep: set[str]) -> str:
    """The one stderr line of a refusal (exit 2), with no output file left behind."""
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert {p.name for p in folder.iterdir()} == keep
    return lines[0]


def test_export_fallback_warning_is_whole_and_in_order(folder: Path) -> None:
    r = run_cli("report", "mine:refuses", "--capture", "export", "--runs", "1", "--no-stats", cwd=folder)
    assert r.returncode == 0, r.stderr
    lines = [ln.rsplit(" (", 1)[0] for ln in r.stderr.strip().splitlines()]  # the elapsed time dropped
    url = "https://example.org/" + "a" * 60 + "/end"
    warning = ("mevreport: warning: torch.export failed, fell back to dispatch capture: RuntimeError: export cannot "
               "trace this model " + "because " * 30 + "see " + url)
    # said after the model ran (a model that fails gets only its error line), before it is timed
    assert lines[:5] == ["mevreport: loaded Refuses", "mevreport: exporting with torch.export",
                         "mevreport: capturing", warning, "mevreport: timing 1 runs"]


def test_too_many_input_shapes_name_the_forward(folder: Path) -> None:
    r = run_cli("report", "mine:linear", "--input-shape", "2,4", "--input-shape", "2,4", cwd=folder)
    assert _refused(r, folder, {"mine.py"}) == (
        "mevreport: error: Linear.forward takes 1 input (input), but 2 --input-shape values were given: "
        "pass one --input-shape per input")


def test_static_pt2_with_another_shape_says_the_shapes_are_fixed(folder: Path) -> None:
    torch.export.save(torch.export.export(nn.Linear(4, 3), (torch.randn(2, 4),)), str(folder / "lin.pt2"))
    r = run_cli("report", "lin.pt2", "--input-shape", "3,4", cwd=folder)
    assert _refused(r, folder, {"mine.py", "lin.pt2"}) == (
        "mevreport: error: 'lin.pt2' was exported with fixed shapes (input 0: 2,4), so --input-shape 3,4 cannot "
        "run it: drop --input-shape, or export with dynamic_shapes for the sizes that vary")
    r = run_cli("report", "lin.pt2", "--input-shape", "2,4", "--input-shape", "2,4", cwd=folder)
    assert "'lin.pt2' takes 1 input (input), but 2 --input-shape values" in _refused(r, folder, {"mine.py", "lin.pt2"})


def test_dynamic_pt2_takes_another_size_where_it_is_dynamic(folder: Path) -> None:
    batch = torch.export.Dim("batch", min=2)
    program = torch.export.export(nn.Linear(4, 3), (torch.randn(2, 4),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(folder / "dyn.pt2"))
    r = run_cli("report", "dyn.pt2", "--input-shape", "5,4", "--runs", "0", "--json", "d.json", cwd=folder)
    assert r.returncode == 0, r.stderr
    r = run_cli("report", "dyn.pt2", "--input-shape", "5,6", cwd=folder)
    assert "exported with fixed shapes (input 0: *,4), so --input-shape 5,6" in _refused(
        r, folder, {"mine.py", "dyn.pt2", "d.json", "dyn.html"})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_model_built_on_cuda_without_cuda_says_build_on_cpu(folder: Path) -> None:
    r = run_cli("report", "mine:on_cuda", "--input-shape", "2,4", cwd=folder)
    line = _refused(r, folder, {"mine.py"})
    assert line.startswith("mevreport: error: calling 'mine:on_cuda' puts the model on CUDA (")
    assert line.endswith("this machine has no CUDA: build the model on the CPU (no .cuda() or .to('cuda') where "
                         "it is made) and pass --device cuda where there is a GPU")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_model_moving_to_cuda_in_forward_without_cuda_says_build_on_cpu(folder: Path) -> None:
    r = run_cli("report", "mine:moves", "-q", cwd=folder)
    line = _refused(r, folder, {"mine.py"})
    assert line.startswith("mevreport: error: the model failed in ")
    assert "at module '<root>' (MovesToCuda): AssertionError: Torch not compiled with CUDA enabled; " in line
    # the hint is the CUDA one alone: the example inputs are not what is wrong
    assert line.endswith("; this machine has no CUDA: build the model on the CPU (no .cuda() or .to('cuda') where "
                         "it is made) and pass --device cuda where there is a GPU")
