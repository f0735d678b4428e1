"""What the end-of-training callbacks share: a real train batch, the real optimizer, the report files.

Both callbacks (Lightning, Hugging Face) hand :func:`mevreport.analyze` a
batch of the train dataloader and the trainer's own optimizer with
``train=True`` (DESIGN §6); the analysis leaves the model, its gradients, the
optimizer and the RNG as it found them.  Drawing the batch must not disturb
the RNG either: a shuffling sampler draws its seed from torch's global
generator, so the batch is drawn inside :func:`torch.random.fork_rng`.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn


def first_batch(loader: Any) -> Any:
    """The first batch of ``loader`` (None when it has none), the global RNG untouched."""
    if loader is None:
        return None
    with torch.random.fork_rng(devices=[]):  # samplers draw from the CPU generator only
        return next(iter(loader), None)


def unwrap_optimizer(optimizer: Any) -> Any:
    """The torch optimizer inside a wrapper (accelerate's ``AcceleratedOptimizer`` keeps it as ``.optimizer``)."""
    seen = 0
    while seen < 8 and isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
        optimizer, seen = optimizer.optimizer, seen + 1
    return optimizer


@contextmanager
def train_mode(model: nn.Module) -> Iterator[None]:
    """The step runs as training runs it (dropout on, batch-norm statistics in use); the modes come back after."""
    modes = [(m, m.training) for m in model.modules()]
    model.train()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def write(report: Any, folder: str | Path, html_name: str, json_name: str | None) -> tuple[Path, ...]:
    """The report's HTML (and JSON unless ``json_name`` is None) under ``folder`` unless the names are absolute
    (missing directories are created by the writes)."""
    folder = Path(folder)
    paths = [report.save_html(folder / html_name)]
    if json_name:
        paths.append(report.save_json(folder / json_name))
    return tuple(paths)
