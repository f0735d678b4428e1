"""The Python API of DESIGN §2: ``analyze``, ``generate``, ``load``."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._version import __version__
from .analyze import analyze_graph
from .capture import capture as run_capture
from .errors import ReportReadError, UsageError
from .report import SCHEMA_VERSION, Environment, Report

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


def analyze(model: nn.Module | str | Path, inputs: Any = None, device: str | torch.device | None = None,
            capture: str = "auto", stats: bool = True, title: str | None = None, *,
            runs: int = 3, grad: bool = False, label: str | None = None, name: str | None = None,
            progress: Callable[[str], None] | None = None, onnx_path: str | Path | None = None,
            train: bool = False, loss: Callable[[Any, Any], torch.Tensor] | str | None = None,
            optimizer: Any = None) -> Report:
    """Run ``model`` on ``inputs`` and return its :class:`Report`.

    ``inputs`` is a tensor, a tuple/list of positional arguments or a dict of
    keyword arguments.  ``device=None`` runs where the model is; ``"meta"``
    analyses without data.  ``runs`` timed runs give the median latency
    (0 skips timing).  The model is left as it was found.

    ``onnx_path`` also writes the model as ONNX there (see docs/onnx.md); a
    failed export is recorded in ``report.onnx_export`` and the notes, never
    raised.  ``model`` may instead be the path of a ``.onnx`` file; then
    ``inputs`` is ``None``, a list of shapes, or a dict of shapes by input name.

    ``train=True`` captures one training step instead (DESIGN §6, docs/training.md):
    forward, ``loss(outputs, inputs)`` (default: the output's ``.loss``, else a
    synthetic loss), backward and the step of ``optimizer`` (an optimizer of the
    model's parameters, which is copied, never stepped; "sgd", "adam", "adamw"
    (the default) or a factory ``f(params)``).  The model, its ``.grad``, the
    optimizer and the RNG are left as found.
    """
    if isinstance(model, (str, Path)):
        from .onnx import analyze_onnx, is_onnx_path
        if not is_onnx_path(str(model)):
            raise UsageError(f"model must be a torch.nn.Module or the path of a .onnx file, not {str(model)!r}")
        named = {k: tuple(v) for k, v in inputs.items()} if isinstance(inputs, dict) else None
        positional = [tuple(s) for s in inputs] if isinstance(inputs, (list, tuple)) else None
        if train:
            raise UsageError("train=True needs a torch.nn.Module: an ONNX file has no backward to capture")
        return analyze_onnx(model, input_shapes=positional, named_shapes=named,
                            device=None if device is None else str(device), stats=stats, runs=runs, title=title,
                            label=label, name=name, progress=progress)
    if onnx_path is not None:
        from .fileio import check_writable
        check_writable(onnx_path)
    spec = None
    if train:
        from .capture.train import OPTIMIZERS, TrainSpec
        from .loader import resolve_named
        if isinstance(optimizer, str) and ":" not in optimizer and optimizer.lower() not in OPTIMIZERS:
            raise UsageError(f"unknown optimizer {optimizer!r}: use {', '.join(OPTIMIZERS)} or pkg.module:factory")
        spec = TrainSpec(loss=resolve_named("--loss", loss) if isinstance(loss, str) else loss,
                         optimizer=resolve_named("--optimizer", optimizer)
                         if isinstance(optimizer, str) and ":" in optimizer else optimizer)
        if spec.loss is not None and not callable(spec.loss):
            raise UsageError(f"loss must be a callable loss(outputs, inputs) or 'pkg.module:fn', "
                             f"not {type(loss).__name__}")
    elif loss is not None or optimizer is not None:
        raise UsageError("loss and optimizer are for a training step: pass train=True as well")
    graph = run_capture(model, inputs, device=device, method=capture, stats=stats, grad=grad, runs=runs,
                        name=name, progress=progress, train=spec)
    report = analyze_graph(
        graph, created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        environment=environment(graph.capture.device), tool_version=__version__, title=title, label=label,
    )
    if onnx_path is not None:
        from .onnx import export_onnx, with_export
        if progress:
            progress(f"exporting ONNX to {onnx_path}")
        export = export_onnx(model, inputs, onnx_path) if not graph.capture.fake else _no_export(onnx_path)
        report = with_export(report, export)
    return report


def _no_export(path: str | Path):
    from .report import OnnxExport
    return OnnxExport(path=str(path), exporter=None, opset=None,
                      error="the model was analysed with fake tensors (no weights to export)")


def generate(model: nn.Module, inputs: Any, path: str | Path, **analyze_options: Any) -> Report:
    """``analyze`` then ``save_html``; returns the :class:`Report`.

    A one-line call for the end of a training loop:
    ``mevreport.generate(model, batch, "report.html")``.
    """
    from .fileio import check_writable
    check_writable(path)
    report = analyze(model, inputs, **analyze_options)
    report.save_html(path)
    return report


def load(path: str | Path) -> Report:
    """A :class:`Report` from a saved JSON document or HTML report.

    The HTML report embeds the JSON document in a ``<script
    type="application/json">`` element; it is read as data, never evaluated.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportReadError(f"no such file: {str(p)!r}") from None
    except IsADirectoryError:
        raise ReportReadError(f"{str(p)!r} is a directory, not a report") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportReadError(f"cannot read {str(p)!r}: {exc}") from None
    if p.suffix.lower() in (".html", ".htm") or text.lstrip().startswith("<"):
        from .render.embed import extract_embedded_json
        text = extract_embedded_json(text, str(p))
    from .reportfile import parse_document
    data = parse_document(text, str(p))
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ReportReadError(f"{str(p)!r} is not a mevreport report (schema_version {SCHEMA_VERSION} expected)")
    try:
        return Report.from_dict(data)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise ReportReadError(f"{str(p)!r} is a malformed mevreport report: {exc}") from None


__all__ = ["Report", "analyze", "generate", "load"]
