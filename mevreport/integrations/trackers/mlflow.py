"""MLflow: the report's totals as a run's metrics, the HTML and JSON as its artifacts.

Goes through ``mlflow.MlflowClient`` and an explicit run id rather than the
active run: Lightning's ``MLFlowLogger`` holds a client and a run id, and the
Hugging Face ``MLflowCallback`` ends its run before later callbacks see
``on_train_end``, so the run is named, not looked up.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...report import Report
from . import PREFIX, metrics


class MLflowTracker:
    """Log to run ``run_id`` through ``client`` (``mlflow.MlflowClient()`` when None, i.e. the tracking URI set)."""

    def __init__(self, run_id: str, client: Any = None, *, step: int = 0, prefix: str = PREFIX,
                 artifact_path: str = PREFIX) -> None:
        if client is None:
            from mlflow import MlflowClient
            client = MlflowClient()
        self.client = client
        self.run_id = run_id
        self.step = step
        self.prefix = prefix
        self.artifact_path = artifact_path

    def log(self, report: Report, files: Sequence[Path]) -> None:
        for name, value in metrics(report, self.prefix).items():
            self.client.log_metric(self.run_id, name, value, step=self.step)
        for path in files:
            self.client.log_artifact(self.run_id, str(path), artifact_path=self.artifact_path)


__all__ = ["MLflowTracker"]
