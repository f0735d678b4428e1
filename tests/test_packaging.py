"""The built wheel ships the templates and renders reports from a fresh venv.

The new venv has no torch of its own (installing torch would take minutes);
a ``.pth`` line puts the test interpreter's site-packages *after* the venv's
own, so torch and the other dependencies come from there while ``mevreport``
itself must come from the installed wheel (asserted).  ``venv
--system-site-packages`` would not do: the test interpreter is itself a
venv, and that flag links the base Python, which has no torch.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, env=env, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    return r


def test_wheel_installs_and_renders_from_another_directory(tmp_path):
    dist = tmp_path / "dist"
    build = [sys.executable, "-m", "build", "--wheel", "--outdir", dist, REPO]
    if importlib.util.find_spec("hatchling") is not None:
        build.insert(4, "--no-isolation")  # the backend is here already: no download
    _run(build)
    wheels = list(dist.glob("mevreport-*.whl"))
    assert len(wheels) == 1
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    assert "mevreport/templates/report.html.j2" in names
    assert {"mevreport/__init__.py", "mevreport/cli.py", "mevreport/capture/export.py"} <= names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    purelib = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (purelib / "_outer_site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", wheels[0]])

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([py, "-c", "import mevreport; print(mevreport.__file__)"], cwd=elsewhere).stdout.strip()
    assert Path(where).resolve().is_relative_to(venv.resolve()), where

    _run([venv / "bin" / "mevreport", "demo", "-o", "out.html", "--json", "out.json"], cwd=elsewhere)
    html = (elsewhere / "out.html").read_text(encoding="utf-8")
    assert '<script type="application/json"' in html and "DemoResNet" in html
    check = ("import mevreport, json; r = mevreport.load('out.html'); "
             "assert r.to_dict() == json.load(open('out.json')); print(r.totals.params)")
    params = _run([py, "-c", check], cwd=elsewhere).stdout.strip()
    assert int(params) > 0
