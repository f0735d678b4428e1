"""Experiment trackers: a report's totals as a run's metrics and its files as the run's artifacts.

Each tracker is one small module holding one class with the same interface,
:class:`Tracker`: ``log(report, files)``.  The module imports its library
itself, so a tracker that is not installed costs nothing until it is used
(``pip install 'mevreport[trackers]'`` installs all three):

- :class:`~mevreport.integrations.trackers.tensorboard.TensorBoardTracker`:
  the totals as scalars of a ``SummaryWriter``, the report files copied into
  its log directory;
- :class:`~mevreport.integrations.trackers.mlflow.MLflowTracker`: the totals
  as metrics of an MLflow run, the HTML and JSON as its artifacts;
- :class:`~mevreport.integrations.trackers.wandb.WandbTracker`: the page as a
  ``wandb.Html`` and the totals as the run's summary.

The Lightning and Hugging Face callbacks pick them from the trainer's own
loggers (``trainer.loggers``, ``TrainingArguments.report_to``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Protocol

from ...report import Report

PREFIX = "mevreport"


class Tracker(Protocol):
    """Where a report goes besides its files: one call when the report is written."""

    def log(self, report: Report, files: Sequence[Path]) -> None:
        """Record ``report``'s totals and the files it was written to (HTML first, then JSON if written)."""
        ...


def metrics(report: Report, prefix: str = PREFIX) -> dict[str, float]:
    """Every total the report has a number for, as ``"<prefix>/<field>"`` (unmeasured ones, None, are left out).

    The names are the JSON's own field names, so a metric reads back to the
    field it came from; the values are the report's, unrounded.
    """
    totals = report.totals
    out: dict[str, float] = {}
    for f in fields(totals):
        value = getattr(totals, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}/{f.name}"] = float(value)
    return out


__all__ = ["PREFIX", "Tracker", "metrics"]
