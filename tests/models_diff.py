"""Fixture models for diff, gates, index and determinism tests: two versions of a tiny MLP,
a block-structured net whose blocks move under a new container, a net edited four ways at
once, and a small conv net."""
from __future__ import annotations

import torch
from torch import nn


class TinyMLP(nn.Module):
    """Version 1: fc1 8->16, ReLU, fc2 16->16, Tanh (act2), out 16->4.
    Version 2: fc1 8->32, ReLU, fc2 32->16, LayerNorm (norm) instead of Tanh, out unchanged."""

    def __init__(self, version: int = 1) -> None:
        super().__init__()
        width = 16 if version == 1 else 32
        self.fc1 = nn.Linear(8, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, 16)
        if version == 1:
            self.act2 = nn.Tanh()
        else:
            self.norm = nn.LayerNorm(16)
        self.out = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc2(self.act(self.fc1(x)))
        x = self.act2(x) if hasattr(self, "act2") else self.norm(x)
        return self.out(x)


class Block(nn.Module):
    def __init__(self, dim: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


class Blocks(nn.Module):
    """The version-2 container: the same blocks one level down, under ``blocks``."""

    def __init__(self, dim: int, n: int, last_act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[Block(dim, last_act if i == n - 1 else nn.GELU) for i in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class Encoder(nn.Module):
    """Version 1: ``encoder.0``, ``encoder.1`` (Sequential); version 2: ``encoder.blocks.0``, ``encoder.blocks.1``
    (the same blocks moved); version 3: moved, and the last block's GELU becomes Tanh (a real change)."""

    def __init__(self, version: int = 1, n: int = 2, dim: int = 8) -> None:
        super().__init__()
        self.stem = nn.Linear(4, dim)
        if version == 1:
            self.encoder: nn.Module = nn.Sequential(*[Block(dim) for _ in range(n)])
        else:
            self.encoder = Blocks(dim, n, nn.Tanh if version == 3 else nn.GELU)
        self.head = nn.Linear(dim, 2)

    @staticmethod
    def example_input() -> torch.Tensor:
        return torch.randn(3, 4, generator=torch.Generator().manual_seed(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.stem(x)))


class Edited(nn.Module):
    """Version 1: embed 8->16, ffn (16->32, ReLU, 32->16), gate 16->16, drop (Tanh), out 16->4.
    Version 2: a LayerNorm ``extra`` added after embed, the ffn widened to 64, ``gate`` renamed
    ``proj`` (same layer), ``drop`` removed; embed and out unchanged."""

    def __init__(self, version: int = 1) -> None:
        super().__init__()
        hidden = 32 if version == 1 else 64
        self.embed = nn.Linear(8, 16)
        if version == 2:
            self.extra = nn.LayerNorm(16)
        self.ffn = nn.Sequential(nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, 16))
        self.add_module("gate" if version == 1 else "proj", nn.Linear(16, 16))
        if version == 1:
            self.drop = nn.Tanh()
        self.out = nn.Linear(16, 4)

    @staticmethod
    def example_input() -> torch.Tensor:
        return torch.randn(2, 8, generator=torch.Generator().manual_seed(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        if hasattr(self, "extra"):
            x = self.extra(x)
        x = getattr(self, "gate" if hasattr(self, "gate") else "proj")(self.ffn(x))
        if hasattr(self, "drop"):
            x = self.drop(x)
        return self.out(x)


class SmallConvNet(nn.Module):
    """Conv, batch norm, in-place ReLU, attention-free pooling and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                                      nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def mlp_v1():
    torch.manual_seed(0)
    return TinyMLP(1).eval(), torch.randn(2, 8, generator=torch.Generator().manual_seed(1))


def mlp_v2():
    torch.manual_seed(0)
    return TinyMLP(2).eval(), torch.randn(2, 8, generator=torch.Generator().manual_seed(1))


def convnet():
    torch.manual_seed(0)
    return SmallConvNet().eval(), torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))


HOSTILE = "</script><img src=x onerror=pwned=1>|`x`*_[y](z)@all#1"


class HostileMLP(TinyMLP):
    """TinyMLP v1 plus a module whose name and class name try to break HTML, JSON-in-script and Markdown."""

    def __init__(self) -> None:
        super().__init__(1)
        bad_class = type("Bad<b>|`Cls`", (nn.Linear,), {})
        self.add_module(HOSTILE, bad_class(4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, HOSTILE)(super().forward(x))


class Mixed(nn.Module):
    """Attention (the fused MHA path in eval), a module called twice, dict inputs and dict outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(6, 16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.shared = nn.Linear(16, 16)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 3)

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.embed(tokens)
        a, _ = self.attn(x, x, x, need_weights=False)
        x = self.norm(x + self.shared(a))
        x = self.shared(torch.relu(x))
        return {"logits": self.head(x.mean(1)), "features": x}


def mixed():
    torch.manual_seed(0)
    return Mixed().eval(), {"tokens": torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(4))}
