"""Nothing runs that the user did not name (issue 7).

* ``.pt2`` archives load through ``torch.export.load`` only after
  ``mevreport.pt2_check`` has refused every pickle path: torch 2.13 itself
  unpickles some payloads with ``torch.load(weights_only=False)`` and
  ``pickle.loads``, so a crafted archive would run code; ``load_pt2`` must
  refuse each of them and still load a plain archive (the sympify, exec and
  zip-layout routes: tests/test_pt2_check.py).
* Pickles are refused by name, without being opened.
* The package has no evaluation path: no ``eval``/``exec``/``compile``, no
  ``pickle``/``marshal``/``torch.load``/``yaml.load``, no shell.
"""
from __future__ import annotations

import ast
import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

import mevreport
from mevreport.errors import ModelLoadError
from mevreport.loader import PICKLE_SUFFIXES, load_model, load_pt2

PACKAGE = Path(mevreport.__file__).resolve().parent


class _RunShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def good_pt2(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pt2") / "linear.pt2"
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    torch.export.save(torch.export.export(model, (torch.randn(2, 4),)), str(path))
    return path


def _rewrite(good: Path, bad: Path, edit) -> None:
    """Copy the archive, letting ``edit(name, data)`` change entries (None drops one) and add entries."""
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as zout:
        root = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)
        for name, data in getattr(edit, "extra", lambda root: {})(root).items():
            zout.writestr(name, data)


def _pickled_weight(marker: Path):
    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("model_weights_config.json"):
            config = json.loads(data)
            next(iter(config["config"].values()))["use_pickle"] = True  # -> torch.load(weights_only=False)
            return json.dumps(config).encode()
        if name.endswith("weights/weight_0"):
            return pickle.dumps(_RunShell(marker))
        return data
    return edit


def _pickled_inputs(marker: Path):
    def edit(name: str, data: bytes) -> bytes:
        # torch.load(weights_only=True) fails on it, then torch retries with weights_only=False
        return pickle.dumps(_RunShell(marker)) if name.endswith("sample_inputs/model.pt") else data
    return edit


def _opaque_constant(marker: Path):
    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("model_constants_config.json"):  # -> pickle.loads
            return json.dumps({"config": {"c": {"path_name": "opaque_obj_0", "is_param": False,
                                                "use_pickle": True, "tensor_meta": None}}}).encode()
        return data
    edit.extra = lambda root: {f"{root}/data/constants/opaque_obj_0": pickle.dumps(_RunShell(marker))}
    return edit


@pytest.mark.parametrize("poison", [_pickled_weight, _pickled_inputs, _opaque_constant],
                         ids=["weight-use_pickle", "sample-inputs", "opaque-constant"])
def test_poisoned_pt2_is_refused_and_never_runs(poison, good_pt2: Path, tmp_path: Path) -> None:
    from torch.export.pt2_archive import _package

    marker, bad = tmp_path / "EXECUTED", tmp_path / "poisoned.pt2"
    _rewrite(good_pt2, bad, poison(marker))
    torchscript_unpickler = torch._C._pickle_load_obj
    with pytest.raises(ModelLoadError, match="never unpickles"):
        load_pt2(bad)
    assert not marker.exists()
    # Refused by checking the archive, not by patching torch: its state is untouched.
    assert "TORCH_FORCE_WEIGHTS_ONLY_LOAD" not in os.environ
    assert _package.pickle is pickle
    assert torch._C._pickle_load_obj is torchscript_unpickler


def test_plain_pt2_loads_and_reports(good_pt2: Path) -> None:
    loaded = load_model(str(good_pt2))
    assert loaded.name == "linear"
    assert isinstance(loaded.inputs, tuple) and loaded.inputs[0].shape == (2, 4)
    report = mevreport.analyze(loaded.module, loaded.inputs, runs=0)
    assert report.totals.macs == 2 * 4 * 3
    assert report.totals.params == 4 * 3 + 3


@pytest.mark.parametrize("suffix", PICKLE_SUFFIXES)
def test_pickles_refused_without_being_opened(suffix: str, tmp_path: Path) -> None:
    missing = tmp_path / f"never-created{suffix}"  # refused by name: the file need not even exist
    with pytest.raises(ModelLoadError, match="looks like a pickle; mevreport never unpickles"):
        load_model(str(missing))


FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_ATTRIBUTES = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("marshal", "loads"),
                        ("marshal", "load"), ("torch", "load"), ("yaml", "load"), ("dill", "loads"),
                        ("cloudpickle", "loads"), ("os", "system"), ("os", "popen"), ("shelve", "open")}


def test_no_evaluation_path_in_the_package() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"{where} {func.id}()")
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and (func.value.id, func.attr) in FORBIDDEN_ATTRIBUTES:
                found.append(f"{where} {func.value.id}.{func.attr}()")
            if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                   for k in node.keywords):
                found.append(f"{where} shell=")
    assert found == []
