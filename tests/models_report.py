"""Fixture models for the HTML report tests: small, deterministic, some hostile."""
from __future__ import annotations

import torch
from torch import nn

HOSTILE = "</script><script>alert(1)</script>\"'<img src=x onerror=alert(1)>"


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


class SmallNet(nn.Module):
    """conv -> bn -> relu -> pool -> 3 identical blocks -> head: every report section has something."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.blocks = nn.Sequential(Block(16), Block(16), Block(16))
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.bn(self.conv(x))))
        return self.head(self.blocks(torch.flatten(x, 1)))


def small_net() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return SmallNet().eval(), torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))


class DeepMLP(nn.Module):
    """70 identical blocks: more ops than the graph shows at once, so modules start collapsed."""

    def __init__(self, blocks: int = 70, width: int = 8) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width), nn.GELU())
                                      for _ in range(blocks)])
        self.out = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.layers(x))


def deep_mlp() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return DeepMLP().eval(), torch.randn(2, 8, generator=torch.Generator().manual_seed(1))


class NaNNet(nn.Module):
    """log of a negative number: the report must point at the first NaN."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(self.fc(x) - 100.0).relu()


def hostile_net() -> tuple[nn.Module, torch.Tensor]:
    """Module names and the class name carry script-closing text, quotes and an <img onerror>."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._modules[HOSTILE](x) + getattr(self, "q'\"<b>")(x)

    cls = type("Evil" + HOSTILE, (nn.Module,), {"forward": forward})
    model = cls()
    model.add_module(HOSTILE, nn.Linear(4, 4))
    model.add_module("q'\"<b>", nn.Linear(4, 4))
    return model.eval(), torch.randn(2, 4, generator=torch.Generator().manual_seed(2))


# ResNet-50 (and its Bottleneck) are shared with the cost tests and the benchmark.
from .models_costs import Bottleneck, ResNet50  # noqa: E402,F401


class _Norm(nn.Module):
    """LayerNorm written out in elementwise ops, as older GPT code does."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-5) * self.weight + self.bias


class _Head(nn.Module):
    def __init__(self, width: int, head: int) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(width, head), nn.Linear(width, head), nn.Linear(width, head)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        att = (q @ k.transpose(-2, -1)) / (q.shape[-1] ** 0.5)
        return torch.softmax(att.masked_fill(mask, float("-inf")), dim=-1) @ v


class _GPTBlock(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = _Norm(width), _Norm(width)
        self.heads = nn.ModuleList(_Head(width, width // heads) for _ in range(heads))
        self.proj = nn.Linear(width, width)
        self.fc, self.out = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.proj(torch.cat([head(h, mask) for head in self.heads], dim=-1))
        h = self.fc(self.ln2(x))
        h = 0.5 * h * (1 + torch.tanh(0.7978845608 * (h + 0.044715 * h ** 3)))
        return x + self.out(h)


class GPTStyle(nn.Module):
    """A GPT with per-head attention modules and written-out norms: ~10,000 executed ops at 48 layers."""

    def __init__(self, n_layer: int = 48, width: int = 48, heads: int = 6, vocab: int = 512, seq: int = 32) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, width), nn.Embedding(seq, width)
        self.h = nn.ModuleList(_GPTBlock(width, heads) for _ in range(n_layer))
        self.ln_f = _Norm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        seq = ids.shape[1]
        mask = torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)
        x = self.wte(ids) + self.wpe(torch.arange(seq))
        for block in self.h:
            x = block(x, mask)
        return self.lm_head(self.ln_f(x))


def gpt_own(n_layer: int = 48) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return GPTStyle(n_layer).eval(), torch.randint(0, 512, (1, 32), generator=torch.Generator().manual_seed(0))
