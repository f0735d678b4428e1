"""The tracker modules against the real libraries, offline: each run's files read back with the library's reader.

Linear(4, 3) on a [2, 4] input: params 4*3 + 3 = 15, MACs 2*4*3 = 24, FLOPs
2*24 + 2*3 (the bias adds) = 54, nodes 2 (addmm and the weight's transpose);
``runs=0`` leaves latency unmeasured, so it is not a metric.
"""
from __future__ import annotations

import pytest
import torch

import mevreport
from mevreport.integrations.trackers import metrics

from .trackers_readback import tensorboard_scalars, wandb_offline_run

EXPECTED = {"mevreport/params": 15.0, "mevreport/macs": 24.0, "mevreport/flops": 54.0, "mevreport/nodes": 2.0,
            "mevreport/param_bytes": 60.0}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    report = mevreport.analyze(torch.nn.Linear(4, 3), torch.randn(2, 4), runs=0, stats=False)
    return report, (report.save_html(folder / "linear.html"), report.save_json(folder / "linear.json"))


def test_metrics_are_the_numeric_totals(written):
    report, _ = written
    m = metrics(report)
    assert {k: m[k] for k in EXPECTED} == EXPECTED
    assert "mevreport/latency_ms" not in m  # None: not measured
    assert metrics(report, "model")["model/macs"] == 24.0


def test_tensorboard_scalars_and_files(written, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (pip install 'mevreport[trackers]')")
    from mevreport.integrations.trackers.tensorboard import TensorBoardTracker
    report, files = written
    TensorBoardTracker(tmp_path / "tb", step=3).log(report, files)
    scalars = tensorboard_scalars(tmp_path / "tb")
    assert {k: scalars[k] for k in EXPECTED} == {k: [(3, v)] for k, v in EXPECTED.items()}
    assert mevreport.load(tmp_path / "tb" / "linear.html") == report
    assert (tmp_path / "tb" / "linear.json").read_bytes() == files[1].read_bytes()


def test_mlflow_metrics_and_artifacts(written, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the local file store behind this switch
    mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (pip install 'mevreport[trackers]')")
    from mevreport.integrations.trackers.mlflow import MLflowTracker
    report, files = written
    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    run_id = client.create_run(client.create_experiment("mevreport-test")).info.run_id
    MLflowTracker(run_id, client).log(report, files)
    client.set_terminated(run_id)
    run = client.get_run(run_id)
    assert {k: run.data.metrics[k] for k in EXPECTED} == EXPECTED
    assert sorted(a.path for a in client.list_artifacts(run_id, "mevreport")) == [
        "mevreport/linear.html", "mevreport/linear.json"]
    local = client.download_artifacts(run_id, "mevreport/linear.json", str(tmp_path / "back"))
    assert mevreport.load(local) == report


def test_wandb_html_and_summary_offline(written, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb", reason="wandb not installed (pip install 'mevreport[trackers]')")
    from mevreport.integrations.trackers.wandb import WandbTracker
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    report, files = written
    run = wandb.init(project="mevreport-test", dir=str(tmp_path))
    try:
        WandbTracker().log(report, files)
    finally:
        run.finish()
    run_dir, back = wandb_offline_run(tmp_path / "wandb")
    assert (back["state"], back["project"]) == ("finished", "mevreport-test")
    summary = back["summary"]
    assert {k: summary[k] for k in EXPECTED} == EXPECTED
    assert summary["mevreport/report"]["_type"] == "html-file"
    page = run_dir / "files" / summary["mevreport/report"]["path"]
    assert page.read_text(encoding="utf-8") == files[0].read_text(encoding="utf-8")


def test_wandb_without_a_run_says_so():
    pytest.importorskip("wandb", reason="wandb not installed (pip install 'mevreport[trackers]')")
    from mevreport.integrations.trackers.wandb import WandbTracker
    with pytest.raises(ValueError, match=r"no W&B run; call wandb.init\(\) first"):
        WandbTracker()
