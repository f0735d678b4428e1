"""CLI (DESIGN §2): ``mevreport report`` and ``mevreport demo`` as a user runs them."""
from __future__ import annotations

import json

import pytest

from .conftest import REPO, run_cli

MODELS = REPO / "tests" / "models.py"


def _json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_report_file_callable_with_inputs(tmp_path):
    html, js = tmp_path / "out.html", tmp_path / "out.json"
    r = run_cli("report", f"{MODELS}:build_two_linear", "-o", str(html), "--json", str(js), "--runs", "1",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert html.exists() and js.exists()
    d = _json(js)
    assert d["model"] == {"name": "TwoLinear", "class_name": "TwoLinear"}  # named after the class (issue 17)
    assert [n["op"] for n in d["nodes"]] == ["aten.t.default", "aten.addmm.default", "aten.relu.default",
                                             "aten.t.default", "aten.addmm.default"]
    assert [m["path"] for m in d["modules"]] == ["", "fc1", "act", "fc2"]
    assert d["totals"]["params"] == 67 and d["totals"]["macs"] == 2 * 4 * 8 + 2 * 8 * 3
    assert d["capture"]["method"] == "dispatch"
    import mevreport
    assert mevreport.load(html).to_dict() == d  # the HTML embeds the same document


def test_report_pkg_module_callable_with_input_shape(tmp_path):
    js = tmp_path / "n.json"
    r = run_cli("report", "tests.models:build_nested", "--input-shape", "3,4", "-o", str(tmp_path / "n.html"),
                "--json", str(js), "--runs", "0", "-q", cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # -q: no progress lines
    d = _json(js)
    assert d["inputs"] == [{"name": "x", "shape": [3, 4], "dtype": "float32"}]
    assert [m["path"] for m in d["modules"]] == ["", "body", "body.0", "body.0.fc", "body.0.act", "body.1",
                                                 "body.1.fc", "body.1.act", "head"]
    assert d["totals"]["macs"] == 2 * (3 * 4 * 4) + 3 * 4 * 2


def test_input_shape_repeatable_with_int_dtype(tmp_path):
    js = tmp_path / "p.json"
    r = run_cli("report", f"{MODELS}:build_pair_embed", "--input-shape", "1,3", "--input-shape", "2,3",
                "--input-dtype", "int64", "--json", str(js), "--runs", "0", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["PairEmbed.html", "p.json"]  # default -o: the model class
    d = _json(js)
    assert d["inputs"] == [{"name": "ids", "shape": [1, 3], "dtype": "int64"},
                           {"name": "other", "shape": [2, 3], "dtype": "int64"}]
    assert [n["op"] for n in d["nodes"]] == ["aten.embedding.default", "aten.embedding.default", "aten.add.Tensor"]
    assert d["nodes"][2]["outputs"] == [{"shape": [2, 3, 4], "dtype": "float32"}]


def test_demo_without_arguments_writes_default_file(tmp_path):
    r = run_cli("demo", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "mevreport-demo.html"
    assert out.exists() and out.stat().st_size > 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["mevreport-demo.html"]  # no temporary left behind
    text = out.read_text(encoding="utf-8")
    assert "DemoResNet" in text and "application/json" in text


def test_capture_export_fallback_is_one_line(tmp_path):
    js = tmp_path / "d.json"
    r = run_cli("report", f"{MODELS}:build_data_dependent", "--capture", "export", "-q", "--runs", "0",
                "-o", str(tmp_path / "d.html"), "--json", str(js), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "torch.export failed, fell back to dispatch capture" in lines[0]
    d = _json(js)
    assert d["capture"]["method"] == "dispatch"
    assert any(n.startswith("torch.export failed") for n in d["capture"]["notes"])


def test_model_that_raises_exits_2_with_one_line_and_no_file(tmp_path):
    html, js = tmp_path / "bad.html", tmp_path / "bad.json"
    r = run_cli("report", f"{MODELS}:build_shape_mismatch", "--input-shape", "2,5", "-q", "-o", str(html),
                "--json", str(js), cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("mevreport: error: the model failed in aten.addmm.default at module 'stage.0.fc'")
    assert "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_pt2_archive_from_cli(tmp_path):
    import torch

    from . import models as M
    path = tmp_path / "nested.pt2"
    torch.export.save(torch.export.export(M.Nested().eval(), (torch.randn(2, 4),)), str(path))
    js = tmp_path / "a.json"
    r = run_cli("report", str(path), "--runs", "0", "-o", str(tmp_path / "a.html"), "--json", str(js), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = _json(js)
    assert d["capture"]["method"] == "export"
    assert [n["module_path"] for n in d["nodes"]] == ["body.0.fc", "body.0.act", "body.0", "body.1.fc",
                                                     "body.1.act", "body.1", "head"]
    assert d["totals"]["params"] == 50


def test_model_that_raises_under_export_is_still_one_line(tmp_path):
    r = run_cli("report", f"{MODELS}:build_shape_mismatch", "--input-shape", "2,5", "--capture", "export", "-q",
                "-o", str(tmp_path / "bad.html"), cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "aten.addmm.default at module 'stage.0.fc'" in lines[0], r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("second", ["same.html", "./sub/../same.html", "link.html"])
def test_same_file_for_two_outputs_is_refused(tmp_path, second):
    """Issue 11: -o same.html --json same.html (in any spelling) would overwrite the HTML with JSON."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "same.html").write_bytes(b"old")
    (tmp_path / "link.html").symlink_to("same.html")
    r = run_cli("report", f"{MODELS}:build_two_linear", "-o", "same.html", "--json", second, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "are the same file" in lines[0] and "its own path" in lines[0], r.stderr
    assert (tmp_path / "same.html").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.html", "same.html", "sub"]


def test_diff_output_over_its_input_is_refused(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    r = run_cli("diff", "a.json", "a.json", "-o", "./a.json", cwd=tmp_path)
    assert r.returncode == 2 and "is the input" in r.stderr, r.stderr
    assert (tmp_path / "a.json").read_text() == "{}"


def test_control_characters_in_error_text_are_escaped(tmp_path):
    """Issue 11: an ESC sequence in a model's exception must not reach the terminal raw (or fake a line)."""
    (tmp_path / "evil.py").write_text(
        "import torch\n"
        "class M(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        raise ValueError('bad \\x1b[31mred\\x1b[0m\\x07\\x9b value\\rmevreport: wrote out.html')\n"
        "def build():\n"
        "    return M(), (torch.randn(2),)\n")
    r = run_cli("report", "evil.py:build", "-q", "-o", "o.html", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mevreport: error: "), r.stderr
    assert not any(c in r.stderr for c in "\x1b\r\x07\x9b")
    assert "ValueError: bad \\x1b[31mred\\x1b[0m\\x07\\x9b value" in lines[0]


def test_control_characters_in_module_names_are_escaped(tmp_path):
    """Issue 11: a module name is other people's text too; it reaches the error line escaped."""
    (tmp_path / "evil.py").write_text(
        "import torch\n"
        "class M(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.add_module('\\x1b[2J\\x1b]0;title\\x07fc', torch.nn.Linear(3, 2))\n"
        "    def forward(self, x):\n"
        "        return getattr(self, '\\x1b[2J\\x1b]0;title\\x07fc')(x)\n"
        "def build():\n"
        "    return M(), (torch.randn(2, 5),)\n")
    r = run_cli("report", "evil.py:build", "-q", "-o", "o.html", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mevreport: error: the model failed in "), r.stderr
    assert not any(c in r.stderr for c in "\x1b\x07")
    assert "at module '\\x1b[2J\\x1b]0;title\\x07fc' (Linear)" in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.py"]
