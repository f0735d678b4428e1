"""A PyTorch Lightning callback that writes a report when ``fit`` ends.

    from mevreport.integrations.lightning import MevreportCallback
    trainer = lightning.Trainer(callbacks=[MevreportCallback()])

At the end of ``trainer.fit`` the callback takes one batch of the validation
data (or ``example_input_array``, or the ``inputs`` you give it), runs
:func:`mevreport.analyze` on the trained module in eval mode, and writes
``mevreport.html`` and ``mevreport.json`` into ``trainer.log_dir``, so every
run's logs hold the report of the model it produced.  Only global rank zero
writes; under a multi-process strategy (DDP, FSDP) every rank takes part in
the analysis, whose numbers are then global (docs/distributed.md).  When the
trainer logs to TensorBoard, MLflow or W&B, the report's totals and files go
to that run too (:mod:`mevreport.integrations.trackers`).  Requires
``lightning`` (``pip install mevreport[lightning]``); ``pytorch_lightning`` is
used when only that is installed.

With ``train_step=True`` it also writes the report of one *training* step
(DESIGN §6; ``mevreport-train.html`` / ``.json``): a real batch of the train
dataloader goes through the module's own ``training_step`` (its loss is the
report's loss), backward, and the trainer's own optimizer; the module, its
gradients, the optimizer and the RNG are left as they were.  ``self.log``
calls inside ``training_step`` are ignored while it is captured (Lightning
forbids logging from ``on_fit_end``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..report import Report
from ._train_step import first_batch, train_mode, unwrap_optimizer, write
from .trackers import PREFIX, Tracker

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


def trackers_of(trainer: Trainer, prefix: str) -> list[Tracker]:
    """A tracker for each of the trainer's loggers that is TensorBoard, MLflow or W&B, logging at the last step.

    The logger's own handle is used (its ``SummaryWriter``, its MLflow client
    and run id, its W&B run), so the report lands in the run the curves are in.
    Loggers are told apart by class name along their MRO, so ``lightning``'s
    and ``pytorch_lightning``'s loggers and their subclasses all match without
    importing a tracker library that is not in use.
    """
    out: list[Tracker] = []
    step = trainer.global_step
    for logger in trainer.loggers:
        handle: Any = logger  # the concrete logger's attributes (experiment, run_id) are not on the base class
        kinds = {cls.__name__ for cls in type(logger).__mro__}
        if "TensorBoardLogger" in kinds:
            from .trackers.tensorboard import TensorBoardTracker
            out.append(TensorBoardTracker(handle.experiment, step=step, prefix=prefix))
        elif "MLFlowLogger" in kinds:
            from .trackers.mlflow import MLflowTracker
            out.append(MLflowTracker(handle.run_id, handle.experiment, step=step, prefix=prefix))
        elif "WandbLogger" in kinds:
            from .trackers.wandb import WandbTracker
            out.append(WandbTracker(handle.experiment, prefix=prefix))
    return out


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
    return first_batch(loaders)


class _TrainingStep(nn.Module):
    """A LightningModule's ``training_step`` as a module whose output is the step's loss.

    It holds the LightningModule's own submodule, parameter and buffer
    dictionaries (the same objects, not copies), so the report's module paths
    and parameter names are the LightningModule's (``net.0.weight``, not
    ``module.net.0.weight``) and the optimizer's parameters are its parameters.
    """

    step_of: LightningModule

    def __init__(self, module: LightningModule) -> None:
        super().__init__()
        object.__setattr__(self, "step_of", module)  # not a submodule: its paths stay those of its children
        self._modules = module._modules
        self._parameters = module._parameters
        self._buffers = module._buffers

    def forward(self, batch: Any) -> torch.Tensor:
        out = self.step_of.training_step(batch, 0)
        loss = out.get("loss") if isinstance(out, Mapping) else out
        if not isinstance(loss, torch.Tensor):
            raise TypeError(f"training_step returned {type(out).__name__}, not a loss tensor (or a dict with 'loss')")
        return loss


def _step_module(module: LightningModule) -> _TrainingStep:
    """The wrapper under the LightningModule's class name, so the report's root row names the user's class."""
    cls = type(type(module).__name__, (_TrainingStep,), {"__module__": type(module).__module__})
    return cls(module)


def training_step_loss(module: LightningModule) -> Callable[[torch.Tensor, Any], torch.Tensor]:
    """The loss is what ``training_step`` returned (the wrapped module's output itself), named after it."""
    def loss(outputs: torch.Tensor, inputs: Any) -> torch.Tensor:
        return outputs
    loss.__qualname__ = loss.__name__ = f"{type(module).__name__}.training_step"
    return loss


@contextmanager
def _no_logging(module: LightningModule) -> Iterator[None]:
    """``self.log`` / ``self.log_dict`` do nothing while the step is captured (instance attributes, removed after)."""
    for name in ("log", "log_dict"):
        setattr(module, name, lambda *args, **kwargs: None)
    try:
        yield
    finally:
        for name in ("log", "log_dict"):
            delattr(module, name)


class MevreportCallback(Callback):
    """Write a mevreport HTML report (and JSON document) when ``fit`` ends.

    ``inputs``: example inputs to use instead of validation data.
    ``inputs_from_batch``: turns a validation batch into model inputs
    (default: first element of a tuple/list batch).  ``filename`` and
    ``json_filename`` are relative to ``trainer.log_dir`` unless absolute;
    ``json_filename=None`` skips the JSON.  ``analyze_options`` go to
    :func:`mevreport.analyze` (``runs``, ``stats``, ``label``, ...).

    ``train_step=True`` also writes the training-step report to
    ``train_filename`` / ``train_json_filename`` (see the module docstring);
    ``self.train_report`` holds it.
    """

    def __init__(self, filename: str = "mevreport.html", json_filename: str | None = "mevreport.json", *,
                 inputs: Any = None, inputs_from_batch: Callable[[Any], Any] = default_inputs_from_batch,
                 eval_mode: bool = True, train_step: bool = False, train_filename: str = "mevreport-train.html",
                 train_json_filename: str | None = "mevreport-train.json", **analyze_options: Any) -> None:
        super().__init__()
        self.train_step = train_step
        self.train_filename = train_filename
        self.train_json_filename = train_json_filename
        self.train_report: Report | None = None
        self.train_paths: tuple[Path, ...] = ()
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
        datamodule = getattr(trainer, "datamodule", None)  # set by fit; not in Trainer's type
        if batch is None and datamodule is not None:
            batch = _first_batch(datamodule.val_dataloader())
        if batch is not None:
            return self.inputs_from_batch(batch)
        return pl_module.example_input_array

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log_dir = Path(trainer.log_dir or trainer.default_root_dir)  # log_dir must be read on every rank
        from ..distributed.ranks import process_group_active
        # Under a multi-process strategy (DDP, FSDP) every rank analyses, since the analysis makes collectives
        # (gathering sharded weights, the per-rank rows): rank zero alone would wait for the others forever.
        # Each rank decides alike whether there are inputs, so all of them take the same path.
        every_rank = process_group_active() and trainer.world_size > 1
        if not trainer.is_global_zero and not every_rank:
            return
        inputs = self._inputs(trainer, pl_module)
        if inputs is None:
            rank_zero_warn("MevreportCallback: no validation data and no example_input_array; "
                           "pass MevreportCallback(inputs=...) to get a report")
            return
        from ..api import analyze
        options = {"name": type(pl_module).__name__, **self.analyze_options}
        if every_rank:
            options["writer_rank"] = 0
        was_training = pl_module.training
        if self.eval_mode:
            pl_module.eval()
        try:
            report = analyze(pl_module, inputs, **options)
        finally:
            pl_module.train(was_training)
        if trainer.is_global_zero:  # one report from the job: rank zero writes it
            self.report, self.paths = report, write(report, log_dir, self.filename, self.json_filename)
            rank_zero_info(f"mevreport: wrote {' and '.join(map(str, self.paths))}")
            for tracker in trackers_of(trainer, PREFIX):
                tracker.log(report, self.paths)
        if self.train_step:
            self._write_training_step(trainer, pl_module, log_dir, options)

    def _train_batch(self, trainer: Trainer) -> Any:
        batch = _first_batch(trainer.train_dataloader)
        datamodule = getattr(trainer, "datamodule", None)
        if batch is None and datamodule is not None:
            batch = _first_batch(datamodule.train_dataloader())
        return batch

    def _write_training_step(self, trainer: Trainer, pl_module: LightningModule, log_dir: Path,
                             options: dict[str, Any]) -> None:
        """One training step of a real train batch, the trainer's optimizer and ``training_step``'s loss
        (on every rank under a multi-process strategy, like the forward report; rank zero writes)."""
        if not pl_module.automatic_optimization:
            rank_zero_warn("MevreportCallback: manual optimization steps the optimizer inside training_step; "
                           "no training-step report")
            return
        if not trainer.optimizers:
            rank_zero_warn("MevreportCallback: the trainer has no optimizer; no training-step report")
            return
        batch = self._train_batch(trainer)
        if batch is None:
            rank_zero_warn("MevreportCallback: no train batch; no training-step report")
            return
        batch = trainer.strategy.batch_to_device(batch)
        from ..api import analyze
        with train_mode(pl_module), _no_logging(pl_module):
            report = analyze(_step_module(pl_module), (batch,), train=True, loss=training_step_loss(pl_module),
                             optimizer=unwrap_optimizer(trainer.optimizers[0]), **options)
        if trainer.is_global_zero:
            self.train_report = report
            self.train_paths = write(report, log_dir, self.train_filename, self.train_json_filename)
            rank_zero_info(f"mevreport: wrote {' and '.join(map(str, self.train_paths))}")
            for tracker in trackers_of(trainer, f"{PREFIX}/train"):
                tracker.log(report, self.train_paths)


__all__ = ["MevreportCallback", "default_inputs_from_batch", "trackers_of", "training_step_loss"]
