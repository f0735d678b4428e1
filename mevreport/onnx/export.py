"""PyTorch model to an ONNX file, next to its report (``--onnx PATH``).

The torch.export-based exporter (``dynamo=True``) first; when it fails (data-
dependent control flow, unsupported ops) the TorchScript exporter.  The file
is written to a temporary directory beside the target and moved into place
only after ``onnx.checker`` accepted it, so a failure leaves no file.

The graph is kept as the model computes it: BatchNorm stays a
``BatchNormalization`` node instead of being folded into the preceding Conv,
so the ONNX file's own report (``mevreport report model.onnx``) has the same
parameters and MACs as the PyTorch report.  onnxruntime fuses Conv+BN itself
when it loads the model, so inference speed is the same.  Other cleanups of
onnxscript's optimizer (constant folding, no-op removal) still run.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from ..capture.inputs import normalize_inputs
from ..errors import one_line
from ..fileio import check_writable
from ..report import OnnxExport

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(exc: BaseException) -> str:
    """One readable line: the error, and its cause when the error only says which step failed."""
    out = _ANSI.sub("", one_line(exc, None))
    cause = exc.__cause__
    if cause is not None:
        out += f" (caused by {_ANSI.sub('', one_line(cause, None))})"
    return out[:500]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress lines and warnings (Python and C++), so the CLI's stderr stays ours."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _optimize_keeping_batchnorm(program: Any) -> str | None:
    """onnxscript's default rewrites minus the BatchNorm folds; returns a note when skipped."""
    try:
        import onnxscript.optimizer as optimizer
        import onnxscript.rewriter as rewriter
        rules = [r for r in rewriter._DEFAULT_REWRITE_RULES if "BatchNorm" not in (getattr(r, "name", None) or "")]
        optimizer.fold_constants_ir(program.model)
        rewriter.rewrite(program.model, pattern_rewrite_rules=rules)
        optimizer.remove_unused_nodes(program.model)
        return None
    except Exception as exc:  # the unoptimized graph is still a correct export
        return f"onnxscript optimization skipped ({_first_line(exc)})"


def _dynamo(model: nn.Module, args: tuple, kwargs: dict, dest: Path) -> str | None:
    program = torch.onnx.export(model, args, kwargs=kwargs or None, dynamo=True, optimize=False, verbose=False)
    if program is None:  # torch returns None only when asked to write the file itself
        raise RuntimeError("torch.onnx.export returned no program")
    note = _optimize_keeping_batchnorm(program)
    program.save(str(dest))
    return note


def _torchscript(model: nn.Module, args: tuple, kwargs: dict, dest: Path) -> None:
    call_args = args + ((kwargs,) if kwargs else ())
    torch.onnx.export(model, call_args, str(dest), dynamo=False, do_constant_folding=True,
                      training=torch.onnx.TrainingMode.PRESERVE)


def _model_state(model: nn.Module) -> tuple[bool, dict[int, bool]]:
    return model.training, {id(p): p.requires_grad for p in model.parameters()}


def _restore(model: nn.Module, state: tuple[bool, dict[int, bool]]) -> None:
    model.train(state[0])
    for p in model.parameters():
        p.requires_grad_(state[1].get(id(p), p.requires_grad))


def export_onnx(model: nn.Module, inputs: Any, path: str | Path) -> OnnxExport:
    """Export, check and move into place; never raises for an export failure.

    The result says which exporter wrote the file and its opset, or why
    neither could (``error``); the model is left in the mode it was in.
    """
    target = check_writable(path)
    args, kwargs = normalize_inputs(inputs)
    state = _model_state(model)
    errors: list[str] = []
    notes: list[str] = []
    parent = target.parent if str(target.parent) else Path(".")
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    try:
        exporter = None
        dest = tmpdir / target.name
        for name, fn in (("dynamo", _dynamo), ("torchscript", _torchscript)):
            for f in tmpdir.iterdir():
                f.unlink()
            try:
                with _quiet():
                    note = fn(model, args, kwargs, dest)
                if note:
                    notes.append(note)
                onnx.checker.check_model(str(dest))
                exporter = name
                break
            except Exception as exc:  # every exporter failure is reported, not raised
                errors.append(f"{name} exporter failed: {_first_line(exc)}")
            finally:
                _restore(model, state)
        if exporter is None:
            return OnnxExport(path=str(target), exporter=None, opset=None, error="; ".join(errors),
                              notes=tuple(notes))
        proto = onnx.load(str(dest), load_external_data=False)
        opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
        # external data files first, the model file last: a reader never sees a model without its data
        for f in sorted(tmpdir.iterdir(), key=lambda f: f.name == target.name):
            os.replace(f, parent / f.name)
        if errors:
            notes.append(errors[0])
        return OnnxExport(path=str(target), exporter=exporter,  # type: ignore[arg-type]  # "dynamo" or "torchscript", chosen above
                          opset=opset, error=None, notes=tuple(notes))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def export_note(export: OnnxExport) -> str:
    """The line the report's capture notes carry about the export."""
    if export.error:
        return f"ONNX export to {export.path} failed: {export.error}"
    extra = f" ({'; '.join(export.notes)})" if export.notes else ""
    return f"ONNX written to {export.path} by the {export.exporter} exporter, opset {export.opset}, checked by onnx.checker{extra}"
