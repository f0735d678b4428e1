"""The Python API of DESIGN §2: ``analyze``, ``generate``, ``load``."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import report as _report_module
from .assemble import _head_from_files, environment, git_commit, report_of
from .capture import capture as run_capture
from .errors import ReportReadError, UsageError
from .report import SCHEMA_VERSION, Report


def _render_html(report: Report) -> str:
    """``Report.save_html``'s page: the render stage, imported when a page is first drawn
    (``import mevreport`` does not pay for Jinja, pyvis and matplotlib)."""
    from .render import html
    return html.render_html(report)


def _render_notebook(report: Report) -> str:
    from .render import html, notebook
    return notebook.notebook_html(report, html.render_html(report))


def _render_trace(report: Report) -> str:
    from .render import trace
    return trace.trace_json(report)


def _render_csv(report: Report) -> dict[str, str]:
    from .render import tables
    return tables.csv_files(report)


for _kind, _render in (("html", _render_html), ("notebook", _render_notebook), ("trace", _render_trace),
                       ("csv", _render_csv)):
    _report_module.set_renderer(_kind, _render)


def analyze(model: nn.Module | str | Path, inputs: Any = None, device: str | torch.device | None = None,
            capture: str = "auto", stats: bool = True, title: str | None = None, *,
            runs: int = 3, grad: bool = False, label: str | None = None, name: str | None = None,
            progress: Callable[[str], None] | None = None, onnx_path: str | Path | None = None,
            train: bool = False, loss: Callable[[Any, Any], torch.Tensor] | str | None = None,
            optimizer: Any = None, writer_rank: int = 0, world_size: int | None = None,
            shard: str | None = None, tp_size: int | None = None,
            tp_plan: dict[str, str] | None = None) -> Report:
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

    Inside a process group (``torchrun``; DDP, FSDP2, tensor parallelism) call
    it on every rank with the same arguments: the ranks make the same
    collectives in the same order, numbers are global, and ``report.distributed``
    holds every rank's row; ``writer_rank`` is the rank whose ``generate``
    writes the file (docs/distributed.md).  ``world_size`` with ``shard``
    ("fsdp", "tp", "fsdp+tp"; ``tp_size`` ranks per tensor-parallel group,
    ``tp_plan`` {module pattern: "colwise" | "rowwise"} where the model brings
    none) simulates that many ranks on fake tensors, without processes.
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
    from .distributed.ranks import check_writer_rank, process_group_active
    from .distributed.tensors import class_name, unwrap_ddp
    check_writer_rank(writer_rank)
    model, ddp_note = unwrap_ddp(model)
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
    notes = (ddp_note,) if ddp_note else ()

    def run(m: nn.Module, dev: Any, mesh: Any = None) -> Report:
        graph = run_capture(m, inputs, device=dev, method=capture, stats=stats, grad=grad, runs=runs,
                            name=name or class_name(model), progress=progress, train=spec)
        report = report_of(graph, title=title, label=label)
        if process_group_active():
            from .distributed.ranks import with_ranks
            report = with_ranks(report, graph, m, writer_rank, notes=notes, mesh=mesh)
        return report

    if world_size is not None or shard is not None:
        from .distributed import simulate
        kind, tp = simulate.check(world_size if world_size is not None else 1, shard, tp_size)
        if device is not None and str(device) != "meta":
            raise UsageError(f"a simulated world_size runs on fake tensors: use device 'meta', not {str(device)!r}")
        with simulate.fake_world(world_size or 1):
            twin, mesh = simulate.sharded_copy(model, kind, world_size or 1, tp, tp_plan)
            return run(twin, "meta", mesh)
    report = run(model, device)
    if onnx_path is not None:
        from .onnx import export_onnx, with_export
        if progress:
            progress(f"exporting ONNX to {onnx_path}")
        export = export_onnx(model, inputs, onnx_path) if not report.capture.fake else _no_export(onnx_path)
        report = with_export(report, export)
    return report


def _no_export(path: str | Path):
    from .report import OnnxExport
    return OnnxExport(path=str(path), exporter=None, opset=None,
                      error="the model was analysed with fake tensors (no weights to export)")


def generate(model: nn.Module, inputs: Any, path: str | Path, **analyze_options: Any) -> Report:
    """``analyze`` then ``save_html``; returns the :class:`Report`.

    A one-line call for the end of a training loop:
    ``mevreport.generate(model, batch, "report.html")``; under ``torchrun``
    every rank calls it and only ``writer_rank`` (default 0) writes.
    """
    from .distributed.ranks import is_writer
    from .fileio import check_writable
    writer = is_writer(analyze_options.get("writer_rank", 0))
    if writer:
        check_writable(path)
    report = analyze(model, inputs, **analyze_options)
    if writer:  # one report from a torchrun job: the other ranks took part in the collectives only
        report.save_html(path)
    return report


def load(path: str | Path) -> Report:
    """A :class:`Report` from a saved JSON document or HTML report.

    The HTML report embeds the JSON document in a ``<script
    type="application/json">`` element; it is read as data, never evaluated.
    """
    from .reportfile import malformed_report, parse_document, read_report_text
    p = Path(path)
    text = read_report_text(p)
    if p.suffix.lower() in (".html", ".htm") or text.lstrip().startswith("<"):
        from .render.embed import extract_embedded_json
        text = extract_embedded_json(text, str(p))
    data = parse_document(text, str(p))
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ReportReadError(f"{str(p)!r} is not a mevreport report (schema_version {SCHEMA_VERSION} expected)")
    from pydantic import ValidationError
    try:
        return Report.from_json(text)
    except ValidationError as exc:
        raise ReportReadError(malformed_report(str(p), exc.errors(include_url=False))) from None


__all__ = ["Report", "_head_from_files", "analyze", "environment", "generate", "git_commit", "load"]
