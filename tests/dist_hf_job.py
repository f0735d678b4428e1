"""The Hugging Face Trainer under ``torchrun --nproc-per-node 2`` (DDP, gloo, CPU) with MevreportTrainerCallback:
tests/test_distributed.py checks that the job ends (no rank left waiting) with one report.  Usage: OUT"""
from __future__ import annotations

import json
import os
import sys

import torch
import transformers
from torch import nn

from mevreport.integrations.transformers import MevreportTrainerCallback


class Tiny(nn.Module):
    """Linear(4, 3) returning its cross-entropy ``loss``, as Hugging Face models do."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, labels=None):
        logits = self.fc(x)
        return {"logits": logits, "loss": nn.functional.cross_entropy(logits, labels)}


class Rows(torch.utils.data.Dataset):
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.rows = [{"x": torch.randn(4, generator=g), "labels": torch.tensor(i % 3)} for i in range(16)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def main(out: str) -> None:
    args = transformers.TrainingArguments(
        output_dir=out, max_steps=2, per_device_train_batch_size=4, report_to="none", use_cpu=True,
        save_strategy="no", logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0, seed=0,
        ddp_backend="gloo")
    callback = MevreportTrainerCallback(runs=1)
    trainer = transformers.Trainer(Tiny(), args, train_dataset=Rows(), callbacks=[callback])
    trainer.train()
    rank = trainer.args.process_index
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"paths": [str(p) for p in callback.paths], "world": trainer.args.world_size}, f)


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
