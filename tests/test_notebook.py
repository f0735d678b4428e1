"""Issue 17: a cell ending in a Report shows the report, framed; executed in a real kernel with nbclient."""
from __future__ import annotations

import html
import os

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from tests.conftest import REPO  # noqa: E402


def test_report_renders_in_an_executed_notebook() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import torch\nfrom torch import nn\nimport mevreport\n"
                                  "report = mevreport.analyze(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), "
                                  "torch.randn(2, 3), runs=0, title='in a notebook')"),
        nbformat.v4.new_code_cell("report"),
    ]
    env_before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(REPO) + (os.pathsep + env_before if env_before else "")
    try:
        nbclient.NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
                                ).execute()
    finally:
        if env_before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = env_before
    (out,) = nb.cells[1].outputs
    assert out.output_type == "execute_result"
    frame = out.data["text/html"]
    assert frame.startswith("<iframe ") and 'sandbox="allow-scripts' in frame and "allow-same-origin" not in frame
    page = html.unescape(frame.split('srcdoc="', 1)[1].split('" sandbox=', 1)[0])
    assert page.lstrip().lower().startswith("<!doctype html>") and 'id="mevreport-data"' in page
    assert "in a notebook" in page
    text = out.data["text/plain"]
    assert len(text) < 200 and "Sequential" in text and "16 params" in text  # 3*4 + 4
