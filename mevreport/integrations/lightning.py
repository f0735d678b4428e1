"""A PyTorch Lightning callback that writes a report when ``fit`` ends.

    from mevreport.integrations.lightning import MevreportCallback
    trainer = lightning.Trainer(callbacks=[MevreportCallback()])

At the end of ``trainer.fit`` the callback takes one batch of the validation
data (or ``example_input_array``, or the ``inputs`` you give it), runs
:func:`mevreport.analyze` on the trained module in eval mode, and writes
``mevreport.html`` and ``mevreport.json`` into ``trainer.log_dir``, so every
run's logs hold the report of the model it produced.  Only global rank zero
writes.  Requires ``lightning`` (``pip install mevreport[lightning]``);
``pytorch_lightning`` is used when only that is installed.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..report import Report

try:
    from lightning.pytorch import Callback, LightningModule, Trainer
    from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        from pytorch_lightning import Callback, LightningModule, Trainer  # type: ignore[assignment]  # same API
        from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
    except ImportError as exc:
        raise ImportError(
            "mevreport.integrations.lightning needs Lightning: pip install 'mevreport[lightning]'"
        ) from exc


def default_inputs_from_batch(batch: Any) -> Any:
    """``(x, y)`` and ``[x, y]`` batches give ``x``; a dict is passed as keyword arguments; a tensor as is."""
    if isinstance(batch, (tuple, list)) and batch:
        return batch[0]
    return batch


def _first_batch(loaders: Any) -> Any:
    """The first batch of the first loader in whatever Lightning holds (a loader, list or dict of loaders)."""
    if loaders is None:
        return None
    if isinstance(loaders, dict):
        loaders = next(iter(loaders.values()), None)
    elif isinstance(loaders, (list, tuple)):
        loaders = loaders[0] if loaders else None
    if loaders is None:
        return None
    return next(iter(loaders), None)


class MevreportCallback(Callback):
    """Write a mevreport HTML report (and JSON document) when ``fit`` ends.

    ``inputs``: example inputs to use instead of validation data.
    ``inputs_from_batch``: turns a validation batch into model inputs
    (default: first element of a tuple/list batch).  ``filename`` and
    ``json_filename`` are relative to ``trainer.log_dir`` unless absolute;
    ``json_filename=None`` skips the JSON.  ``analyze_options`` go to
    :func:`mevreport.analyze` (``runs``, ``stats``, ``label``, ...).
    """

    def __init__(self, filename: str = "mevreport.html", json_filename: str | None = "mevreport.json", *,
                 inputs: Any = None, inputs_from_batch: Callable[[Any], Any] = default_inputs_from_batch,
                 eval_mode: bool = True, **analyze_options: Any) -> None:
        super().__init__()
        self.filename = filename
        self.json_filename = json_filename
        self.inputs = inputs
        self.inputs_from_batch = inputs_from_batch
        self.eval_mode = eval_mode
        self.analyze_options = analyze_options
        self.report: Report | None = None  # the last Report written, for tests and follow-up code
        self.paths: tuple[Path, ...] = ()

    def _inputs(self, trainer: Trainer, pl_module: LightningModule) -> Any:
        if self.inputs is not None:
            return self.inputs
        batch = _first_batch(trainer.val_dataloaders)
        if batch is None and getattr(trainer, "datamodule", None) is not None:
            batch = _first_batch(trainer.datamodule.val_dataloader())  # type: ignore[attr-defined]
        if batch is not None:
            return self.inputs_from_batch(batch)
        return pl_module.example_input_array

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log_dir = Path(trainer.log_dir or trainer.default_root_dir)  # log_dir must be read on every rank
        if not trainer.is_global_zero:
            return
        inputs = self._inputs(trainer, pl_module)
        if inputs is None:
            rank_zero_warn("MevreportCallback: no validation data and no example_input_array; "
                           "pass MevreportCallback(inputs=...) to get a report")
            return
        from ..api import analyze
        options = {"name": type(pl_module).__name__, **self.analyze_options}
        was_training = pl_module.training
        if self.eval_mode:
            pl_module.eval()
        try:
            report = analyze(pl_module, inputs, **options)
        finally:
            pl_module.train(was_training)
        log_dir.mkdir(parents=True, exist_ok=True)
        paths = [report.save_html(log_dir / self.filename)]
        if self.json_filename:
            paths.append(report.save_json(log_dir / self.json_filename))
        self.report, self.paths = report, tuple(paths)
        rank_zero_info(f"mevreport: wrote {paths[0]}")


__all__ = ["MevreportCallback", "default_inputs_from_batch"]
