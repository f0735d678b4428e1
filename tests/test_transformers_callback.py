"""MevreportTrainerCallback writes the training-step report when ``transformers.Trainer.train`` ends.

The real Trainer on CPU, offline, a few steps, ``report_to="none"``.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")

import mevreport  # noqa: E402
from mevreport.integrations.transformers import MevreportTrainerCallback  # noqa: E402


class TinyClassifier(nn.Module):
    """Linear(4, 3) with a cross-entropy ``loss`` in its output, as Hugging Face models return one."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, labels=None):
        logits = self.fc(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


class Rows(torch.utils.data.Dataset):
    def __init__(self, n: int, make) -> None:
        g = torch.Generator().manual_seed(0)
        self.rows = [make(g, i) for i in range(n)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


class _Snapshot(transformers.TrainerCallback):
    """The model and optimizer as they are when training ends, before the report callback runs."""

    def on_train_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        self.params = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.grads = {k: None if p.grad is None else p.grad.clone() for k, p in model.named_parameters()}
        self.optimizer = repr(optimizer.state_dict())
        self.rng = torch.get_rng_state()
        self.training = model.training


def _args(tmp_path, **kw):
    options = dict(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, report_to="none",
                   use_cpu=True, save_strategy="no", logging_strategy="no", disable_tqdm=True,
                   dataloader_num_workers=0, seed=0)
    return transformers.TrainingArguments(**{**options, **kw})


def test_training_step_report_at_train_end(tmp_path):
    model = TinyClassifier()
    data = Rows(12, lambda g, i: {"x": torch.randn(4, generator=g), "labels": torch.tensor(i % 3)})
    snapshot, callback = _Snapshot(), MevreportTrainerCallback(runs=0, label="step-2")
    trainer = transformers.Trainer(model=model, args=_args(tmp_path), train_dataset=data,
                                   callbacks=[snapshot, callback])
    trainer.train()
    assert [p.name for p in callback.paths] == ["mevreport-train.html", "mevreport-train.json"]
    assert all(p.parent == tmp_path for p in callback.paths)
    report = mevreport.load(tmp_path / "mevreport-train.html")
    assert report == mevreport.load(tmp_path / "mevreport-train.json") == callback.report
    # The trainer's own batch (4 rows, collated) and optimizer (AdamW by default); the model's .loss.
    assert sorted((i.name, i.shape, i.dtype) for i in report.inputs) == [
        ("labels", (4,), "int64"), ("x", (4, 4), "float32")]
    assert (report.training.loss.source, report.training.optimizer.class_name) == ("output", "AdamW")
    assert report.label == "step-2" and [g.param for g in report.grads] == ["fc.weight", "fc.bias"]
    t = report.totals
    # forward 4*4*3 = 48 MACs; backward: the weight gradient 3*4*4 = 48 (x needs no gradient)
    assert (t.macs, t.backward_macs) == (48, 48)
    assert t.grad_bytes == (12 + 3) * 4
    # AdamW: exp_avg and exp_avg_sq as large as each parameter, and a float32 step per parameter
    assert t.optimizer_state_bytes == 2 * (12 + 3) * 4 + 2 * 4
    # Left as found.
    assert all(torch.equal(v, snapshot.params[k]) for k, v in model.state_dict().items())
    assert all((p.grad is None) == (snapshot.grads[k] is None) for k, p in model.named_parameters())
    assert repr(trainer.optimizer.state_dict()) == snapshot.optimizer
    assert torch.equal(torch.get_rng_state(), snapshot.rng) and model.training == snapshot.training


def test_hugging_face_model_with_labels(tmp_path):
    """A real (tiny, randomly initialised) Hugging Face model: its ``.loss`` from the batch's labels."""
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    data = Rows(8, lambda g, i: {"input_ids": torch.randint(0, 40, (8,), generator=g),
                                 "attention_mask": torch.ones(8, dtype=torch.long), "labels": torch.tensor(i % 2)})
    callback = MevreportTrainerCallback("bert.html", json_filename=None, runs=0, stats=False)
    transformers.Trainer(model=model, args=_args(tmp_path, max_steps=1), train_dataset=data,
                         callbacks=[callback]).train()
    assert [p.name for p in callback.paths] == ["bert.html"]
    report = callback.report
    assert (report.training.loss.source, report.model.class_name) == ("output", "BertForSequenceClassification")
    shapes = {i.name: i.shape for i in report.inputs}
    assert shapes["input_ids"] == (4, 8) and shapes["labels"] == (4,)
    trainable = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    assert len(report.grads) == len(trainable)
    assert report.totals.grad_bytes == sum(p.numel() * 4 for p in model.parameters() if p.requires_grad)
    assert report.totals.backward_macs and report.totals.backward_macs > report.totals.macs  # ~2x the forward
