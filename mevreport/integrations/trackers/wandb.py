"""Weights & Biases: the report page as a ``wandb.Html``, the totals as the run's summary.

The page is self-contained (DESIGN §4), so it is logged whole and W&B shows
it in the run's media panel; the summary holds one number per total, which
the runs table can sort and compare.  Offline mode (``WANDB_MODE=offline``)
writes the same records into the run's local directory.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...report import Report
from . import PREFIX, metrics


class WandbTracker:
    """Log to ``run`` (a ``wandb`` run; ``wandb.run``, the current one, when None)."""

    def __init__(self, run: Any = None, *, prefix: str = PREFIX) -> None:
        if run is None:
            import wandb
            run = wandb.run
        if run is None:
            raise ValueError("WandbTracker: no W&B run; call wandb.init() first or pass run=")
        self.run = run
        self.prefix = prefix

    def log(self, report: Report, files: Sequence[Path]) -> None:
        import wandb
        html = [Path(p) for p in files if Path(p).suffix == ".html"]
        if html:
            self.run.log({f"{self.prefix}/report": wandb.Html(html[0].read_text(encoding="utf-8"), inject=False)})
        self.run.summary.update(metrics(report, self.prefix))


__all__ = ["WandbTracker"]
