"""MevreportCallback writes a report from a validation batch when ``fit`` ends."""
from __future__ import annotations

import logging

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

lightning = pytest.importorskip("lightning", reason="Lightning not installed (pip install 'mevreport[lightning]')")

import mevreport  # noqa: E402
from mevreport.integrations.lightning import MevreportCallback  # noqa: E402


class TinyRegressor(lightning.LightningModule):
    """Linear(4, 8) -> ReLU -> Dropout -> Linear(8, 1): params 4*8+8 + 8+1 = 49."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader(n: int, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)), batch_size=5)


def _trainer(tmp_path, callback):
    return lightning.Trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=1, accelerator="cpu",
                             devices=1, callbacks=[callback], default_root_dir=str(tmp_path),
                             enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                             logger=lightning.pytorch.loggers.CSVLogger(str(tmp_path)))


def test_report_written_at_fit_end(tmp_path, caplog):
    model = TinyRegressor()
    callback = MevreportCallback(runs=0, label="epoch-1")
    trainer = _trainer(tmp_path, callback)
    with caplog.at_level(logging.INFO):
        trainer.fit(model, _loader(15, 0), _loader(10, 1))
    log_dir = tmp_path / "lightning_logs" / "version_0"
    # the log line names both files the callback wrote
    assert f"mevreport: wrote {log_dir / 'mevreport.html'} and {log_dir / 'mevreport.json'}" in caplog.text
    assert trainer.log_dir == str(log_dir)
    assert [p.name for p in callback.paths] == ["mevreport.html", "mevreport.json"]
    assert all(p.parent == log_dir and p.is_file() for p in callback.paths)
    report = mevreport.load(log_dir / "mevreport.html")
    assert report == mevreport.load(log_dir / "mevreport.json")
    # One validation batch of 5 samples: inputs [5, 4]; MACs 5*4*8 + 5*8*1 = 200.
    assert [(i.shape, i.dtype) for i in report.inputs] == [((5, 4), "float32")]
    assert (report.totals.params, report.totals.macs, report.label) == (49, 200, "epoch-1")
    # Reported in eval mode (dropout is not executed), and the module is back in training mode after.
    assert report.capture.training is False
    assert not any("dropout" in n.op for n in report.nodes)
    assert model.training is True


def test_explicit_inputs_and_no_validation_data(tmp_path):
    model = TinyRegressor()
    callback = MevreportCallback("custom.html", json_filename=None, inputs=torch.randn(2, 4), runs=0, stats=False)
    trainer = _trainer(tmp_path, callback)
    trainer.fit(model, _loader(10, 0))  # no validation loader at all
    assert [p.name for p in callback.paths] == ["custom.html"]
    assert callback.report.inputs[0].shape == (2, 4) and callback.report.totals.macs == 2 * 4 * 8 + 2 * 8


def test_example_input_array_fallback_and_dict_batches(tmp_path):
    model = TinyRegressor()
    model.example_input_array = torch.zeros(3, 4)
    callback = MevreportCallback(runs=0, stats=False)
    trainer = _trainer(tmp_path, callback)
    trainer.fit(model, _loader(10, 0))  # no validation data: example_input_array is used
    assert callback.report.inputs[0].shape == (3, 4) and callback.report.totals.macs == 3 * 4 * 8 + 3 * 8
    from mevreport.integrations.lightning import default_inputs_from_batch
    x = torch.ones(2)
    assert default_inputs_from_batch((x, 1)) is x and default_inputs_from_batch([x]) is x
    assert default_inputs_from_batch({"input_ids": x}) == {"input_ids": x}


class _Snapshot(lightning.pytorch.Callback):
    """Parameters and optimizer state as they are when fit ends, before the report callback runs."""

    def on_fit_end(self, trainer, pl_module):
        self.params = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        self.grads = {k: None if p.grad is None else p.grad.clone() for k, p in pl_module.named_parameters()}
        self.optimizer = repr(trainer.optimizers[0].state_dict())
        self.rng = torch.get_rng_state()


def test_training_step_report_at_fit_end(tmp_path):
    model = TinyRegressor()
    snapshot = _Snapshot()
    callback = MevreportCallback(runs=0, train_step=True)
    trainer = _trainer(tmp_path, callback)
    trainer.callbacks.insert(trainer.callbacks.index(callback), snapshot)
    trainer.fit(model, _loader(15, 0), _loader(10, 1))
    log_dir = tmp_path / "lightning_logs" / "version_0"
    assert [p.name for p in callback.train_paths] == ["mevreport-train.html", "mevreport-train.json"]
    report = mevreport.load(log_dir / "mevreport-train.html")
    assert report == mevreport.load(log_dir / "mevreport-train.json") == callback.train_report
    # The first train batch, (x, y) of 5 samples, through training_step: mse_loss(self(x), y).
    assert [(i.shape, i.dtype) for i in report.inputs] == [((5, 4), "float32"), ((5, 1), "float32")]
    assert (report.training.loss.source, report.training.loss.name) == ("callable", "TinyRegressor.training_step")
    assert report.training.optimizer.class_name == "SGD"
    # Module paths and parameter names are the LightningModule's own.
    assert [g.param for g in report.grads] == ["net.0.weight", "net.0.bias", "net.3.weight", "net.3.bias"]
    assert report.modules[0].class_name == "TinyRegressor" and {m.path for m in report.modules} >= {"net.0", "net.3"}
    t = report.totals
    # forward 5*4*8 + 5*8*1 = 200 MACs; backward: net.0's weight grad 5*4*8 = 160 (x needs no grad),
    # net.3's weight grad 5*8*1 = 40 and input grad 5*1*8 = 40
    assert (t.macs, t.backward_macs) == (200, 240)
    assert t.grad_bytes == 49 * 4 and t.optimizer_state_bytes == 0  # SGD without momentum keeps no state
    # in training mode, as fit runs the step: dropout draws its mask
    assert report.capture.training is True and any(n.op == "aten.bernoulli_.float" for n in report.nodes)
    # Left as found: parameters, gradients, optimizer state, RNG, mode, and no logging patch left behind.
    assert all(torch.equal(v, snapshot.params[k]) for k, v in model.state_dict().items())
    assert all((p.grad is None) == (snapshot.grads[k] is None) for k, p in model.named_parameters())
    assert repr(trainer.optimizers[0].state_dict()) == snapshot.optimizer
    assert torch.equal(torch.get_rng_state(), snapshot.rng)
    assert model.training is True and "log" not in vars(model) and "log_dict" not in vars(model)
