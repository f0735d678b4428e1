"""From a captured :class:`~mevreport.graph.Graph` to a :class:`~mevreport.report.Report`:
the analysis plus the record of where it ran.

One place for the tail that every capture front end (PyTorch in ``api``,
ONNX in ``onnx``) shares, so neither needs to import the other.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import subprocess
from pathlib import Path

import torch

from ._version import __version__
from .analyze import analyze_graph
from .gcpause import gc_paused
from .graph import Graph
from .report import Environment, Report

_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def _head_from_files(cwd: Path) -> str | None:
    """HEAD's commit read from the repository's files (plain, worktree, packed refs).

    "" when no directory up from ``cwd`` has a ``.git``; None when unsure.

    Starting ``git`` costs about 4 ms, as much as the rest of the analysis of a
    ResNet-50; reading two small files costs microseconds.
    """
    for d in (cwd, *cwd.parents):
        dot = d / ".git"
        if dot.is_dir():
            git = dot
            break
        if dot.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = dot.read_text(encoding="utf-8").strip()
            if not text.startswith("gitdir:"):
                return None
            git = (d / text[len("gitdir:"):].strip()).resolve()
            break
    else:
        return ""
    common = git
    if (git / "commondir").is_file():
        common = (git / (git / "commondir").read_text(encoding="utf-8").strip()).resolve()
    head = (git / "HEAD").read_text(encoding="utf-8").strip()
    if not head.startswith("ref:"):
        return head if _SHA.fullmatch(head) else None
    ref = head[len("ref:"):].strip()
    for base in (git, common):
        if (base / ref).is_file():
            sha = (base / ref).read_text(encoding="utf-8").strip()
            return sha if _SHA.fullmatch(sha) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and _SHA.fullmatch(sha):
                return sha
    return None


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The working directory's commit, when it is a git checkout.

    Read from the repository's files; when they hold something unusual,
    asked of ``git rev-parse HEAD`` instead.
    """
    found = None
    if not any(k in os.environ for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_CEILING_DIRECTORIES")):
        try:
            found = _head_from_files(Path(cwd or ".").resolve())
        except (OSError, UnicodeDecodeError):
            found = None
    if found is not None:
        return found or None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: str) -> Environment:
    if device.startswith("cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(torch.device(device))
    elif device == "meta":
        name = "fake tensors (no data)"
    else:
        name = platform.processor() or platform.machine()
    return Environment(torch=torch.__version__, python=platform.python_version(), platform=platform.platform(),
                       device=device, device_name=name, git_commit=git_commit())


def report_of(graph: Graph, *, title: str | None = None, label: str | None = None) -> Report:
    """The report of ``graph``, stamped now with this environment and tool version."""
    with gc_paused():
        return analyze_graph(
            graph, created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            environment=environment(graph.capture.device), tool_version=__version__, title=title, label=label,
        )


__all__ = ["environment", "git_commit", "report_of"]
