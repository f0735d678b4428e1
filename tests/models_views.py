"""Fixture models made of views, for byte and edge parity between capture methods.

Every model takes a (3, 10) float32 input, so an op output of that shape is
120 bytes; the tests derive each node's bytes from these shapes by hand.
"""
from __future__ import annotations

import torch
from torch import nn


class SplitViews(nn.Module):
    """The issue's case: three views of one product."""

    def forward(self, x):
        return (x * 2).split(4, dim=1)


class ChunkViews(nn.Module):
    def forward(self, x):
        a, b = (x + 1).chunk(2, dim=0)  # rows 2 and 1
        return a * b                    # broadcast to (2, 10)


class ViewReshape(nn.Module):
    def forward(self, x):
        return (x * 3).view(6, 5).reshape(30).sum()


class TransposeContiguous(nn.Module):
    def forward(self, x):
        return (x * 3).transpose(0, 1).contiguous() + 1


class InPlaceChain(nn.Module):
    def forward(self, x):
        y = x * 2
        y.add_(1)
        y.relu_()
        return y * 3


class Slicing(nn.Module):
    def forward(self, x):
        y = x * 2
        return y[:, 1:3] + y[0, 1:3]


class WeightView(nn.Module):
    """A view of a parameter (``t`` of the weight) and a view of an op output."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(10, 4)

    def forward(self, x):
        return self.fc(x).t()


class CopyingComposites(nn.Module):
    """Ops whose schema declares an alias but which copy when they must.

    torch.export keeps them whole (``reshape``, ``flatten``, ``to``); dispatch
    sees what they decompose into (``clone`` + ``_unsafe_view``, ``_to_copy``,
    or nothing at all for a ``to`` to the tensor's own dtype).
    """

    def forward(self, x):
        y = (x * 3).t()
        a = y.reshape(30)            # not viewable: a copy, 120 bytes
        b = (x * 1).reshape(5, 6)    # contiguous: a view
        c = x.to(torch.float64)      # a conversion: 240 bytes
        d = b.float()                # already float32: the same tensor
        e = y.flatten()              # not viewable: a copy, 120 bytes
        return a, b, c, d, e


# Steps for random chains (tests/test_node_parity.py): each keeps the tensor 2-d with even sides.
STEPS = {
    "mul": lambda x: x * 2.0,                                       # new storage
    "t_contiguous": lambda x: x.t().contiguous(),                   # a copy (the transpose is a view)
    "t_reshape": lambda x: x.t().reshape(-1).view(x.shape[1], x.shape[0]),  # a copy: not viewable flat
    "view_reshape": lambda x: x.reshape(-1).view(x.shape),          # views only
    "split_cat": lambda x: torch.cat(x.split(2, dim=0), 0),         # views, then one copy
    "chunk_cat": lambda x: torch.cat(list(reversed(x.chunk(2, dim=1))), 1),
    "inplace": lambda x: x.add_(1.0).relu_(),                       # in place: nothing new
    "slice_cat": lambda x: torch.cat([x[1:], x[:1]], 0),            # slices are views
    "to_same": lambda x: x.float() + 0.0,                           # a no-op ``to``, then an add
}


class Chain(nn.Module):
    """A chain of :data:`STEPS` on a private copy of the input."""

    def __init__(self, steps: list[str]) -> None:
        super().__init__()
        self.steps = list(steps)

    def forward(self, x):
        x = x * 1.0
        for name in self.steps:
            x = STEPS[name](x)
        return x
