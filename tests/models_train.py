"""Fixture models for the training-step tests (tests/test_train*.py): small, deterministic."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp() -> nn.Module:
    """Linear(4, 8) -> ReLU -> Linear(8, 2): 58 parameters."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


class ConvNet(nn.Module):
    """Conv2d(3, 4, 3, padding 1, no bias) -> ReLU -> flatten -> Linear(256, 5)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.relu(self.conv(x)), 1))


class Block(nn.Module):
    """A pre-norm transformer block, one head of width ``d``: attention by SDPA, then an MLP d -> 2d -> d."""

    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.up, self.down = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        q, k, v = (p(h).unsqueeze(1) for p in (self.q, self.k, self.v))  # (B, 1, L, d)
        a = F.scaled_dot_product_attention(q, k, v).squeeze(1)
        x = x + self.o(a)
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class WithLoss(nn.Module):
    """Returns a dict with ``loss`` when given labels, as Hugging Face models do."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        logits = self.fc(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits, labels)
        return out


class Troubled(nn.Module):
    """``sqrt`` of a ReLU: where the ReLU is zero, backward's 1/(2·sqrt(0)) is Inf and Inf·0 NaN, though the
    forward is finite; ``unused`` gets no gradient; ``dead`` (all-zero weight after a zero input) a zero one."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.head = nn.Linear(8, 2)
        self.unused = nn.Linear(2, 2)
        self.dead = nn.Linear(4, 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(torch.sqrt(F.relu(self.fc(x))))
        return y + self.dead(torch.zeros_like(x)).sum()


class BNNet(nn.Module):
    """Conv -> BatchNorm (running statistics written in train mode) -> dropout (draws random numbers)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.bn(self.conv(x)))
