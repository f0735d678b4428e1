"""Small hand-written fixture models with known structure (torchinfo style).

Each model is small enough that its executed aten ops, module paths,
parameter counts and output sizes can be worked out by hand in the tests.
"""
from __future__ import annotations

import torch
from torch import nn


class TwoLinear(nn.Module):
    """fc1 (4->8) -> relu -> fc2 (8->3): a static graph, export works."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DataDependentIf(nn.Module):
    """Branches on a tensor value: fx tracing and torch.export both refuse it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if y.sum() > 0:
            return torch.relu(y)
        return -y


class InPlaceViews(nn.Module):
    """mul (new storage), view, in-place add, transpose, clone (new storage)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2          # new: numel*4 bytes
        z = y.view(-1)     # view: 0
        z.add_(1)          # in-place: 0
        t = y.t()          # view: 0
        return t.clone()   # new (keeps t's strides): numel*4 bytes


class TiedLM(nn.Module):
    """Embedding and output head share one weight; integer token inputs."""

    def __init__(self, vocab: int = 10, dim: int = 6) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.embed(ids)))


class CalledTwice(nn.Module):
    """One Linear applied twice: two calls of ``shared`` recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(self.shared(x))


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x)) + x


class Nested(nn.Module):
    """Blocks inside a Sequential inside the root: paths like ``body.1.fc``."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.body = nn.Sequential(Block(dim), Block(dim))
        self.head = nn.Linear(dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class TupleDictOutputs(nn.Module):
    """Returns a tuple holding a dict; takes a dict keyword input too."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, extra: dict | None = None) -> tuple:
        y = self.fc(x)
        out = {"logits": y, "probs": torch.softmax(y, dim=-1)}
        if extra is not None:
            out["shifted"] = y + extra["bias"]
        return y.sum(), out


class FrozenWithBuffers(nn.Module):
    """A frozen Linear, a trainable Linear and a BatchNorm (buffers)."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen = nn.Linear(4, 4)
        for p in self.frozen.parameters():
            p.requires_grad_(False)
        self.bn = nn.BatchNorm1d(4)
        self.out = nn.Linear(4, 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.bn(self.frozen(x)))


class RaisesInSubmodule(nn.Module):
    """A Python-level raise inside a nested submodule's forward."""

    class Check(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[-1] != 3:
                raise ValueError(f"expected 3 features, got {x.shape[-1]}")
            return x

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(8, 4), nn.ReLU())
        self.guard = nn.Sequential(self.Check())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.guard(self.enc(x))


class ShapeMismatchInside(nn.Module):
    """A Linear two levels down that rejects inputs of the wrong width."""

    def __init__(self) -> None:
        super().__init__()
        self.stage = nn.Sequential(Block(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage(x)


def build_two_linear() -> tuple[nn.Module, torch.Tensor]:
    """For the CLI: a callable returning (module, example_inputs)."""
    torch.manual_seed(0)
    return TwoLinear(), torch.randn(2, 4)


def build_nested() -> nn.Module:
    """For the CLI: a callable returning only a module (inputs from --input-shape)."""
    torch.manual_seed(0)
    return Nested()


def build_shape_mismatch() -> nn.Module:
    return ShapeMismatchInside()


class PairEmbed(nn.Module):
    """Two integer inputs sharing one embedding table (vocabulary 100)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 4)

    def forward(self, ids: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return self.embed(ids) + self.embed(other)


def build_pair_embed() -> nn.Module:
    torch.manual_seed(0)
    return PairEmbed()


def build_data_dependent() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return DataDependentIf(), torch.randn(2, 4)


class MixedOps(nn.Module):
    """Ops whose export-IR names differ from what dispatch records.

    Grouped strided conv with bias, transposed conv, functional matmul,
    scaled-dot-product attention, layer norm, GELU, softmax, avg pooling.
    Input (1, 4, 8, 8).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2)     # -> (1, 8, 4, 4)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)                     # -> (1, 4, 8, 8)
        self.pool = nn.AvgPool2d(2)                                         # -> (1, 4, 4, 4)
        self.norm = nn.LayerNorm(4)
        self.proj = nn.Linear(4, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.up(torch.nn.functional.gelu(self.conv(x))))
        seq = self.norm(h.flatten(2).transpose(1, 2))                       # (1, 16, 4)
        q, k, v = self.proj(seq).view(1, 16, 3, 4).unbind(2)                # each (1, 16, 4)
        att = torch.nn.functional.scaled_dot_product_attention(q, k, v)     # (1, 16, 4)
        return torch.softmax(att @ seq.transpose(1, 2), dim=-1)             # (1, 16, 16)
