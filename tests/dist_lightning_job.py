"""Lightning under ``torchrun --nproc-per-node 2`` with the DDP strategy (gloo, CPU) and MevreportCallback:
tests/test_distributed.py checks that the job ends (no rank left waiting) with one report.  Usage: OUT"""
from __future__ import annotations

import json
import os
import sys

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mevreport.integrations.lightning import MevreportCallback


class Tiny(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def main(out: str) -> None:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(40, 4, generator=g), torch.randn(40, 1, generator=g))
    callback = MevreportCallback(runs=1)
    trainer = Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, accelerator="cpu", devices=2,
                      strategy="ddp", callbacks=[callback], default_root_dir=out, logger=False,
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(Tiny(), DataLoader(data, batch_size=5), DataLoader(data, batch_size=5))
    rank = trainer.global_rank
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"paths": [str(p) for p in callback.paths], "world": trainer.world_size}, f)


if __name__ == "__main__":
    main(sys.argv[1])
    # End without the interpreter's teardown.  At exit a gloo worker thread that drops a finished
    # collective's tensors needs the GIL while the main thread tears the group down holding it: torch's race,
    # not the callback's.  Left to finalization it aborted a rank once in CI ("terminate called without an
    # active exception"); destroy_process_group() first made it a deadlock instead (2 runs in 11 here: the
    # DDP reducer's group joined its worker thread).  The results are written by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
