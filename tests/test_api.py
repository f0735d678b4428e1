"""Python API (DESIGN §2): analyze / generate / load and the JSON document."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import mevreport
from mevreport.errors import UsageError

from . import models as M

TWO_LINEAR_MACS = 2 * 4 * 8 + 2 * 8 * 3  # batch 2: fc1 4->8, fc2 8->3


@pytest.fixture(scope="module")
def report():
    torch.manual_seed(0)
    return mevreport.analyze(M.Nested(), torch.randn(2, 4), runs=2, title="nested <test>")


@pytest.mark.parametrize("wrap", ["tensor", "tuple", "list", "dict"])
def test_inputs_as_tensor_tuple_list_or_dict(wrap):
    x = torch.randn(2, 4)
    inputs = {"tensor": x, "tuple": (x,), "list": [x], "dict": {"x": x}}[wrap]
    r = mevreport.analyze(M.TwoLinear(), inputs, runs=0)
    assert r.totals.macs == TWO_LINEAR_MACS
    assert [(i.name, i.shape, i.dtype) for i in r.inputs] == [("x", (2, 4), "float32")]
    assert len(r.nodes) == 5


def test_two_positional_integer_inputs():
    r = mevreport.analyze(M.PairEmbed(), (torch.zeros(1, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.long)),
                          runs=0)
    assert [(i.name, i.shape, i.dtype) for i in r.inputs] == [("ids", (1, 3), "int64"), ("other", (2, 3), "int64")]
    assert [n.op for n in r.nodes] == ["aten.embedding.default", "aten.embedding.default", "aten.add.Tensor"]
    assert r.nodes[2].outputs[0].shape == (2, 3, 4)
    assert r.modules[1].path == "embed" and r.modules[1].calls == 2


def test_bad_inputs_type_is_usage_error():
    with pytest.raises(UsageError):
        mevreport.analyze(M.TwoLinear(), 3.0, runs=0)


def test_to_dict_keys_follow_design(report):
    d = report.to_dict()
    top = ["schema_version", "tool", "created_at", "model", "environment", "capture", "inputs", "totals",
           "modules", "nodes", "uncounted_ops", "warnings"]
    assert list(d)[: len(top)] == top
    assert d["schema_version"] == 1
    assert set(d["tool"]) == {"name", "version"} and d["tool"]["name"] == "mevreport"
    assert {"name", "class_name"} <= set(d["model"]) and d["model"]["class_name"] == "Nested"
    assert {"torch", "python", "platform", "device"} <= set(d["environment"])
    assert {"method", "notes"} <= set(d["capture"]) and d["capture"]["method"] == "dispatch"
    assert d["inputs"] == [{"name": "x", "shape": [2, 4], "dtype": "float32"}]
    assert {"params", "trainable_params", "param_bytes", "buffer_bytes", "macs", "flops", "activation_bytes",
            "peak_activation_bytes", "latency_ms"} <= set(d["totals"])
    assert d["totals"]["params"] == 50 and d["totals"]["macs"] == 2 * (2 * 4 * 4) + 2 * 4 * 2
    assert d["totals"]["latency_ms"] > 0
    for row in d["modules"]:
        assert {"path", "class_name", "params", "macs", "flops", "latency_ms", "activation_bytes"} <= set(row)
    assert d["modules"][0]["path"] == "" and d["modules"][0]["macs"] == d["totals"]["macs"]
    for node in d["nodes"]:
        assert {"id", "op", "module_path", "inputs", "outputs", "macs", "flops", "output_bytes", "latency_ms",
                "stats"} <= set(node)
        assert all(set(o) == {"shape", "dtype"} for o in node["outputs"])
    stats = d["nodes"][1]["stats"]  # addmm of body.0.fc
    assert {"mean", "std", "min", "max", "abs_max", "zero_fraction", "nan_count", "inf_count", "histogram"} <= set(stats)
    assert set(stats["histogram"]) >= {"min", "max", "counts"} and sum(stats["histogram"]["counts"]) == 8
    assert sum(n["macs"] for n in d["nodes"]) == d["totals"]["macs"]
    json.dumps(d, allow_nan=False)  # plain JSON


def test_json_round_trip_equal(report, tmp_path):
    path = report.save_json(tmp_path / "r.json")
    again = mevreport.load(path)
    assert again == report
    assert again.to_dict() == report.to_dict()


def test_html_round_trip_equal(report, tmp_path):
    path = report.save_html(tmp_path / "r.html")
    text = path.read_text(encoding="utf-8")
    assert "nested &lt;test&gt;" in text and "<test>" not in text  # the title is escaped
    assert mevreport.load(path) == report


def test_generate_writes_html_and_returns_report(tmp_path):
    out = tmp_path / "gen.html"
    r = mevreport.generate(M.TwoLinear(), torch.randn(2, 4), out, runs=0, capture="export")
    assert out.exists() and isinstance(r, mevreport.Report)
    assert r.capture.method == "export" and r.totals.macs == TWO_LINEAR_MACS
    assert mevreport.load(out).totals == r.totals


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_read_from_files_matches_git(tmp_path, monkeypatch):
    """The commit in the report is read from .git without starting git: plain checkout, packed refs,
    detached HEAD, a linked worktree and a subdirectory all agree with ``git rev-parse HEAD``."""
    from mevreport.api import _head_from_files, git_commit

    for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_CEILING_DIRECTORIES"):
        monkeypatch.delenv(k, raising=False)

    def git(*args: str, cwd: Path = tmp_path / "repo") -> str:
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                   GIT_COMMITTER_EMAIL="t@t")
        return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()

    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "a.txt").write_text("1")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    first = git("rev-parse", "HEAD")
    (repo / "a.txt").write_text("2")
    git("commit", "-q", "-am", "two")
    second = git("rev-parse", "HEAD")
    assert first != second
    assert _head_from_files(repo) == second and _head_from_files(repo / "sub") == second
    git("pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert _head_from_files(repo) == second  # from packed-refs
    git("checkout", "-q", first)
    assert _head_from_files(repo) == first  # detached HEAD
    git("checkout", "-q", "main")
    git("worktree", "add", "-q", "-b", "side", str(tmp_path / "wt"), first)
    assert _head_from_files(tmp_path / "wt") == first == git("rev-parse", "HEAD", cwd=tmp_path / "wt")
    assert git_commit(repo) == second
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("git started for a directory without .git"))
    assert _head_from_files(outside) == ""  # no .git up from a pytest tmp directory
    assert git_commit(outside) is None
