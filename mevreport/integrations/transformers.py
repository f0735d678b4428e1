"""A Hugging Face ``transformers.TrainerCallback`` that writes a training-step report when training ends.

    from mevreport.integrations.transformers import MevreportTrainerCallback
    trainer = transformers.Trainer(model, args, train_dataset=ds, callbacks=[MevreportTrainerCallback()])

At ``on_train_end`` the callback takes the first batch of the trainer's own
train dataloader (collated and on the device, as the trainer feeds it) and
runs :func:`mevreport.analyze` with ``train=True`` (DESIGN §6): the model's
forward on that batch, the backward of the model's own ``.loss`` output (the
batch carries ``labels``, as Hugging Face models expect; pass ``loss=`` for a
model without one), and a step of the trainer's own optimizer.  The model,
its gradients, the optimizer and the RNG are left as they were.  The report
is written as ``mevreport-train.html`` and ``mevreport-train.json`` into
``args.output_dir``; only the main process writes (under ``torchrun`` every
rank takes part in the analysis, docs/distributed.md).  Requires ``transformers``
and ``accelerate`` (``pip install 'mevreport[transformers]'``).

When ``report_to`` names TensorBoard, MLflow or W&B, the report's totals and
files go there too (:mod:`mevreport.integrations.trackers`): to the MLflow run
the trainer opened (its id is read at ``on_train_begin``, because the
``MLflowCallback`` ends the run before later callbacks see ``on_train_end``),
to the current W&B run, and to a TensorBoard run ``mevreport`` beside the
trainer's (``TENSORBOARD_LOGGING_DIR`` or ``<output_dir>/runs``, the trainer's
own default, whose run directory the callback cannot see).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError("mevreport.integrations.transformers needs transformers: pip install 'mevreport[transformers]'") from exc

from ..report import Report
from ._train_step import first_batch, train_mode, unwrap_optimizer, write
from .trackers import Tracker


class MevreportTrainerCallback(TrainerCallback):
    """Write the training-step report of a real train batch when ``Trainer.train`` ends.

    ``filename`` and ``json_filename`` are relative to ``args.output_dir``
    (or ``output_dir``) unless absolute; ``json_filename=None`` skips the
    JSON.  ``inputs`` replaces the train batch; ``loss(outputs, inputs)``
    replaces the model's ``.loss``.  ``analyze_options`` go to
    :func:`mevreport.analyze` (``runs``, ``stats``, ``label``, ...).  The
    last report is kept as ``self.report`` and its files as ``self.paths``.
    """

    def __init__(self, filename: str = "mevreport-train.html", json_filename: str | None = "mevreport-train.json",
                 *, output_dir: str | Path | None = None, inputs: Any = None,
                 loss: Callable[[Any, Any], Any] | None = None, **analyze_options: Any) -> None:
        self.filename = filename
        self.json_filename = json_filename
        self.output_dir = output_dir
        self.inputs = inputs
        self.loss = loss
        self.analyze_options = analyze_options
        self.report: Report | None = None
        self.paths: tuple[Path, ...] = ()
        self._mlflow_run_id: str | None = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        """The MLflow run the trainer's ``MLflowCallback`` has just started (it runs first), kept by id."""
        if "mlflow" in _report_to(args):
            import mlflow
            run = mlflow.active_run()
            self._mlflow_run_id = run.info.run_id if run is not None else None

    def _trackers(self, args: TrainingArguments, state: TrainerState, output_dir: Path) -> list[Tracker]:
        targets = _report_to(args)
        out: list[Tracker] = []
        if "tensorboard" in targets:
            from .trackers.tensorboard import TensorBoardTracker
            runs = os.environ.get("TENSORBOARD_LOGGING_DIR") or output_dir / "runs"
            out.append(TensorBoardTracker(Path(runs) / "mevreport", step=state.global_step))
        if "mlflow" in targets and self._mlflow_run_id is not None:
            from .trackers.mlflow import MLflowTracker
            out.append(MLflowTracker(self._mlflow_run_id, step=state.global_step))
        if "wandb" in targets:
            import wandb
            if wandb.run is not None:
                from .trackers.wandb import WandbTracker
                out.append(WandbTracker(wandb.run))
        return out

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     model: Any = None, optimizer: Any = None, train_dataloader: Any = None,
                     **kwargs: Any) -> None:
        from ..distributed.ranks import process_group_active
        # Under torchrun (DDP) every rank analyses: the analysis makes collectives (the per-rank rows), so
        # the main process alone would wait for the others forever; each rank decides alike (each has its
        # own batch), and only the main process writes.
        every_rank = process_group_active() and args.world_size > 1
        if not state.is_world_process_zero and not every_rank:
            return
        inputs = self.inputs if self.inputs is not None else first_batch(train_dataloader)
        if model is None or optimizer is None or inputs is None:
            missing = [n for n, v in (("model", model), ("optimizer", optimizer), ("train batch", inputs)) if v is None]
            from transformers.utils import logging
            logging.get_logger(__name__).warning(
                "MevreportTrainerCallback: no %s at the end of training; no training-step report", ", ".join(missing))
            return
        from ..api import analyze
        options = {"name": type(model).__name__, **self.analyze_options}
        with train_mode(model):
            report = analyze(model, inputs, train=True, loss=self.loss, optimizer=unwrap_optimizer(optimizer),
                             **options)
        if not state.is_world_process_zero:
            return
        self.report = report
        output_dir = Path(self.output_dir or args.output_dir or ".")
        self.paths = write(report, output_dir, self.filename, self.json_filename)
        from transformers.utils import logging
        logging.get_logger(__name__).info("mevreport: wrote %s", " and ".join(map(str, self.paths)))
        for tracker in self._trackers(args, state, output_dir):
            tracker.log(report, self.paths)


def _report_to(args: TrainingArguments) -> list[str]:
    """``report_to`` as the list ``TrainingArguments`` makes of it ("all" and "none" already resolved)."""
    value = args.report_to
    return [value] if isinstance(value, str) else list(value or [])


__all__ = ["MevreportTrainerCallback"]
