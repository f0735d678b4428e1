"""Fixture models whose calls differ: one-time work on the first call, or every call."""
from __future__ import annotations

import torch
from torch import nn


class LazyBuffer(nn.Module):
    """Builds a positional table on its first call, as detection heads build anchor caches.

    The first call runs ``arange`` + ``sin`` (+ the linear and the add); later calls only
    the linear and the add.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        if not hasattr(self, "table"):
            self.register_buffer("table", torch.arange(8.0).sin(), persistent=False)
        return self.fc(x) + self.table


class LazyCacheDict(nn.Module):
    """Fills a plain dict attribute on its first call and counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.cache: dict[int, torch.Tensor] = {}
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if x.shape[-1] not in self.cache:
            self.cache[x.shape[-1]] = torch.linspace(0, 1, x.shape[-1])
        return self.fc(x) * self.cache[x.shape[-1]]


class EveryCallDifferent(nn.Module):
    """The root runs one more ``mul`` on every call; ``fc1`` and ``fc2`` always run the same ops.

    Under dispatch the root's own ops are the muls (its children ``fc1``/``fc2`` run
    ``t`` + ``addmm`` each), so in every timed run the root's module call differs from
    the recorded one and the children's match.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 4)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        y = self.fc1(x)
        for _ in range(self.calls):
            y = y * 1.5
        return self.fc2(y)


class RandomDraws(nn.Module):
    """Draws random numbers in its forward (dropout in train mode, noise)."""

    def forward(self, x):
        return x + torch.rand_like(x)
