"""The Lightning and Hugging Face callbacks log their report to the trainer's own TensorBoard, MLflow and W&B runs.

All offline: TensorBoard event files, MLflow's local file store, W&B's offline
mode; each run read back with its library's reader.  The models are those of
tests/test_lightning.py (params 49, forward MACs on 5 rows 5*4*8 + 5*8*1 = 200)
and tests/test_transformers_callback.py (forward MACs on 4 rows 4*4*3 = 48,
backward 48).
"""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

import mevreport

from .trackers_readback import tensorboard_scalars, wandb_offline_run

for name in ("tensorboard", "mlflow", "wandb"):
    pytest.importorskip(name, reason=f"{name} not installed (pip install 'mevreport[trackers]')")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the local file store behind this switch
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    import mlflow
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())  # a URI set by an earlier test (or logger) would win
    import wandb
    wandb.teardown()  # W&B keeps its settings (WANDB_DIR among them) in a process-wide singleton
    yield tmp_path
    wandb.teardown()


def test_lightning_callback_logs_to_each_logger(offline, caplog):
    lightning = pytest.importorskip("lightning")
    import mlflow

    from mevreport.integrations.lightning import MevreportCallback

    from .test_lightning import TinyRegressor, _loader
    loggers = lightning.pytorch.loggers
    tb = loggers.TensorBoardLogger(str(offline), name="tb")
    ml = loggers.MLFlowLogger(experiment_name="fit", tracking_uri=(offline / "mlruns").as_uri())
    wb = loggers.WandbLogger(project="fit", save_dir=str(offline), offline=True)
    callback = MevreportCallback(runs=0)
    trainer = lightning.Trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=1, accelerator="cpu",
                                devices=1, callbacks=[callback], default_root_dir=str(offline),
                                enable_progress_bar=False, enable_model_summary=False,
                                enable_checkpointing=False, logger=[tb, ml, wb])
    with caplog.at_level(logging.INFO):
        trainer.fit(TinyRegressor(), _loader(15, 0), _loader(10, 1))
    wb.experiment.finish()
    html, js = callback.paths
    # The message names both files the callback wrote.
    assert f"mevreport: wrote {html} and {js}" in caplog.text
    # 15 rows in batches of 5, 3 batches: the last step is 3.
    expected = {"mevreport/params": [(3, 49.0)], "mevreport/macs": [(3, 200.0)]}
    scalars = tensorboard_scalars(tb.log_dir)
    assert {k: scalars[k] for k in expected} == expected
    assert html.parent == Path(tb.log_dir)  # the report beside the event files
    run = mlflow.MlflowClient().get_run(ml.run_id)
    assert (run.data.metrics["mevreport/params"], run.data.metrics["mevreport/macs"]) == (49.0, 200.0)
    assert sorted(a.path for a in mlflow.MlflowClient().list_artifacts(ml.run_id, "mevreport")) == [
        "mevreport/mevreport.html", "mevreport/mevreport.json"]
    _, back = wandb_offline_run(offline / "wandb")
    assert (back["summary"]["mevreport/params"], back["summary"]["mevreport/macs"]) == (49, 200)
    assert back["summary"]["mevreport/report"]["_type"] == "html-file"


def test_transformers_callback_logs_to_report_to(offline):
    transformers = pytest.importorskip("transformers")
    import mlflow

    from mevreport.integrations.transformers import MevreportTrainerCallback

    from .test_transformers_callback import Rows, TinyClassifier, _args
    data = Rows(12, lambda g, i: {"x": torch.randn(4, generator=g), "labels": torch.tensor(i % 3)})
    callback = MevreportTrainerCallback(runs=0)
    args = _args(offline / "out", report_to=["tensorboard", "mlflow", "wandb"], logging_strategy="steps",
                 logging_steps=1)
    trainer = transformers.Trainer(model=TinyClassifier(), args=args, train_dataset=data, callbacks=[callback])
    trainer.train()
    import wandb
    wandb.finish()
    expected = {"mevreport/macs": [(2, 48.0)], "mevreport/backward_macs": [(2, 48.0)]}
    scalars = tensorboard_scalars(offline / "out" / "runs" / "mevreport")
    assert {k: scalars[k] for k in expected} == expected
    assert mevreport.load(offline / "out" / "runs" / "mevreport" / "mevreport-train.json") == callback.report
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert (run.data.metrics["mevreport/macs"], run.data.metrics["mevreport/backward_macs"]) == (48.0, 48.0)
    assert sorted(a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "mevreport")) == [
        "mevreport/mevreport-train.html", "mevreport/mevreport-train.json"]
    _, back = wandb_offline_run(offline / "wandb")
    assert (back["summary"]["mevreport/macs"], back["summary"]["mevreport/backward_macs"]) == (48, 48)
