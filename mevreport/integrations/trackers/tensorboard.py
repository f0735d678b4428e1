"""TensorBoard: the report's totals as scalars, its files beside the event files.

``torch.utils.tensorboard.SummaryWriter`` writes the events (it needs the
``tensorboard`` package); the HTML and JSON are copied into the writer's log
directory, so the run's folder holds the report next to the curves.
"""
from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...report import Report
from . import PREFIX, metrics


class TensorBoardTracker:
    """Log to ``writer`` (a ``SummaryWriter``) or, given a directory, to a writer of its own on it.

    A writer of its own is closed after each :meth:`log`, so its event file is
    complete when ``log`` returns; a writer handed in stays open for its owner.
    """

    def __init__(self, writer_or_dir: Any, *, step: int = 0, prefix: str = PREFIX) -> None:
        self.owns_writer = isinstance(writer_or_dir, (str, Path))
        if isinstance(writer_or_dir, (str, Path)):
            from torch.utils.tensorboard import SummaryWriter
            writer_or_dir = SummaryWriter(log_dir=str(writer_or_dir))
        self.writer = writer_or_dir
        self.step = step
        self.prefix = prefix

    def log(self, report: Report, files: Sequence[Path]) -> None:
        for name, value in metrics(report, self.prefix).items():
            self.writer.add_scalar(name, value, self.step)
        if self.owns_writer:
            self.writer.close()
        else:
            self.writer.flush()
        log_dir = Path(self.writer.log_dir)
        for path in files:
            target = log_dir / Path(path).name
            if Path(path).resolve() != target.resolve():
                log_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)


__all__ = ["TensorBoardTracker"]
