"""A report leaves the process as it found it, when it works and when it fails (issue 13).

Each process-wide setting that mevreport still touches while it works (see
docs/robustness.md, "Process-wide state") is read before and after a report
and must be equal: torch's global module hooks, ``logging.disable``,
``sys.stdout``/``sys.stderr`` and file descriptors 1 and 2, the warning
filters, the SIGINT/SIGTERM handlers, the ``torch.export`` logger, grad mode
and the dispatch-mode stack, the RNG, and the tag attributes on the model's
tensors.  The cases: a report that works (dispatch capture, statistics,
timing, an in-place buffer write), ``torch.export`` refusing (its logging is
muted and stderr swapped, then the fallback), a model that raises, a ``.pt2``
that loads and one that is refused, an ONNX export (file descriptors
redirected) and the atomic writes (signals deferred).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.modules.module as torch_module
from torch import nn

import mevreport
from mevreport.errors import MevreportError
from mevreport.fileio import atomic_write_texts
from mevreport.loader import load_pt2

from . import models as M

_GLOBAL_HOOKS = ("_global_forward_pre_hooks", "_global_forward_hooks", "_global_forward_hooks_always_called",
                 "_global_backward_pre_hooks", "_global_backward_hooks", "_global_buffer_registration_hooks",
                 "_global_module_registration_hooks", "_global_parameter_registration_hooks")


def process_state(model: nn.Module | None = None) -> dict[str, Any]:
    """Everything process-wide that a report might change, as comparable values."""
    export_logger = logging.getLogger("torch.export")
    state: dict[str, Any] = {
        "torch global module hooks": {n: list(getattr(torch_module, n, {})) for n in _GLOBAL_HOOKS},
        "logging.disable": logging.root.manager.disable,
        "sys.stdout, sys.stderr": (id(sys.stdout), id(sys.stderr)),
        "fd 1, fd 2": tuple((os.fstat(fd).st_dev, os.fstat(fd).st_ino) for fd in (1, 2)),
        "warnings.filters": list(warnings.filters),
        "SIGINT, SIGTERM handlers": (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)),
        "torch.export logger": (list(export_logger.handlers), export_logger.propagate),
        "grad mode": (torch.is_grad_enabled(), torch.is_inference_mode_enabled()),
        "dispatch mode stack": torch._C._len_torch_dispatch_stack(),
        "default dtype": torch.get_default_dtype(),
        "rng": torch.get_rng_state().tolist(),
    }
    if model is not None:
        state["hooks on the model's modules"] = [
            (len(m._forward_pre_hooks), len(m._forward_hooks)) for m in model.modules()]
        state["attributes on the model's tensors"] = sorted(
            k for t in (*model.parameters(), *model.buffers()) for k in t.__dict__)
    return state


def _assert_unchanged(run: Callable[[], Any], model: nn.Module | None = None, raises: type | None = None) -> None:
    """``run`` twice: the first call pays the one-time imports (sympy, onnxscript add warning filters
    when first imported, which is theirs, not a report's); the second must change nothing."""
    def once() -> None:
        if raises is None:
            run()
        else:
            with pytest.raises(raises):
                run()

    once()
    before = process_state(model)
    once()
    after = process_state(model)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, f"process state changed: {changed}"


def test_state_reads_what_it_claims() -> None:
    """The snapshot sees each kind of change (a comparison of values that never change could not fail)."""
    before = process_state()
    handle = torch_module.register_module_forward_hook(lambda *a: None)
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        after = process_state()
    finally:
        handle.remove()
        logging.disable(previous)
    assert before["torch global module hooks"] != after["torch global module hooks"]
    assert before["logging.disable"] != after["logging.disable"]
    assert process_state() == before


def test_a_working_report(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = M.FrozenWithBuffers().train()  # BatchNorm writes its running statistics in place
    seen: list[int] = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(len(torch_module._global_forward_pre_hooks) + len(torch_module._global_forward_hooks))
            return x

    model.probe = Probe()
    model.forward = lambda x: model.probe(M.FrozenWithBuffers.forward(model, x))  # type: ignore[method-assign]
    x = torch.randn(8, 4)
    _assert_unchanged(lambda: mevreport.analyze(model, x, runs=2, grad=True), model)
    # While the model runs the tracker's two global hooks are there (module hooks would turn off torch's
    # fast paths: tests/test_costs_fused.py::test_transformer_encoder_fast_path); after it, none (above).
    assert seen and max(seen) == 2


def test_export_refusing_then_dispatch() -> None:
    model, x = M.build_data_dependent()
    report = None

    def run() -> None:
        nonlocal report
        report = mevreport.analyze(model, x, runs=1, capture="export")

    _assert_unchanged(run, model)
    assert report is not None and "fell back to dispatch" in " ".join(report.capture.notes)


def test_a_model_that_raises() -> None:
    model = M.RaisesInSubmodule()
    x = torch.randn(2, 8)
    _assert_unchanged(lambda: mevreport.analyze(model, x, runs=1), model, raises=MevreportError)


def test_pt2_loaded_and_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    good = tmp_path / "m.pt2"
    torch.export.save(torch.export.export(M.TwoLinear(), (torch.randn(2, 4),)), good)
    _assert_unchanged(lambda: load_pt2(good))
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    _assert_unchanged(lambda: load_pt2(bad), raises=MevreportError)


@pytest.mark.slow
def test_onnx_export_and_atomic_writes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = M.TwoLinear()
    x = torch.randn(2, 4)
    report = None

    def run() -> None:
        nonlocal report
        report = mevreport.analyze(model, x, runs=0, onnx_path=tmp_path / "m.onnx")
        report.save_html(tmp_path / "r.html")
        atomic_write_texts([(tmp_path / "a.json", report.to_json()), (tmp_path / "b.txt", "x")])

    _assert_unchanged(run, model)
    assert report is not None and report.onnx_export is not None and (tmp_path / "a.json").is_file()


def test_the_users_logging_keeps_working_during_export(caplog: pytest.LogCaptureFixture) -> None:
    """torch's loggers are muted during ``torch.export``, not the process (``logging.disable`` was)."""

    class Logs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logging.getLogger("user.model").warning("forward ran")
            return self.fc(x)

    with caplog.at_level(logging.WARNING, logger="user.model"):
        report = mevreport.analyze(Logs(), torch.randn(2, 4), runs=0, capture="export")
    assert report.capture.method == "export"
    assert any(r.name == "user.model" and r.getMessage() == "forward ran" for r in caplog.records)
