"""Fixture callables for the bad-input and interruption tests (issue 7).

Each is named on the command line as ``tests.models_hostile:<name>``, the way
a user names their own builder.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn


class SmallConv(nn.Module):
    """Conv2d(3 -> 4) then ReLU: takes [N, 3, H, W] only."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def small_conv() -> nn.Module:
    """No example inputs: the CLI needs --input-shape."""
    return SmallConv().eval()


def small_conv_with_inputs() -> tuple[nn.Module, torch.Tensor]:
    return SmallConv().eval(), torch.randn(1, 3, 8, 8)


def raises() -> nn.Module:
    raise ValueError("checkpoint weights.bin not found")


def returns_string() -> str:
    return "not a model"


NOT_CALLABLE = 42


class Sleeper(nn.Module):
    """Writes ``$MEVREPORT_TEST_MARKER`` when forward starts, then sleeps in small steps.

    The marker tells the interrupting test that the run is inside forward;
    the steps keep the process responsive to SIGINT.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        marker = os.environ.get("MEVREPORT_TEST_MARKER")
        if marker:
            Path(marker).write_text("in forward")
        deadline = time.monotonic() + float(os.environ.get("MEVREPORT_TEST_SLEEP", "60"))
        while time.monotonic() < deadline:
            time.sleep(0.05)
        return self.lin(x)


def sleeper() -> tuple[nn.Module, torch.Tensor]:
    return Sleeper().eval(), torch.randn(2, 4)


class KeepsRows(nn.Module):
    """Branches on how many rows ``nonzero`` kept: fake tensors cannot follow it (--device meta)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        keep = torch.nonzero(y[:, 0] > 0).squeeze(1)
        return self.b(y[keep]) if keep.numel() > 5 else y


def keeps_rows() -> tuple[nn.Module, torch.Tensor]:
    return KeepsRows().eval(), torch.randn(10, 4)
