"""Fixture models for the activation warnings: real problems, and things that only look like one.

Every model takes one (4, 64) float32 input.  The real problems depend on the
input and reach the output; the look-alikes are constants, masks, index tables,
bias slices and anchor grids (none depends on the input), or non-finite values
that are masked, cast away or never used.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class DeadReLU(nn.Module):
    """A ReLU after a linear layer whose bias pushes every pre-activation below zero: truly dead."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 64)
        with torch.no_grad():
            self.fc.weight.fill_(0.001)
            self.fc.bias.fill_(-100.0)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x))


class NaNToOutput(nn.Module):
    """``log`` of negative numbers, carried on to the output: a true NaN origin."""

    def forward(self, x):
        return torch.log(-x.abs() - 1.0) * 2.0 + 1.0


class LargeActivation(nn.Module):
    """Values far past 1e4, computed from the input and returned."""

    def forward(self, x):
        return torch.tanh(x) * 1e6


class MaskedLog(nn.Module):
    """``torch.where(mask, log(x), 0)``: the ``-inf`` of ``log(0)`` is replaced before it goes on."""

    def forward(self, x):
        positive = x.clamp(min=0.0)
        return torch.where(positive > 0, torch.log(positive), torch.zeros_like(positive)) + x


class UnusedLog(nn.Module):
    """A ``log(0)`` whose result nothing reads."""

    def forward(self, x):
        torch.log(x - x)
        return x * 2.0


class T5Buckets(nn.Module):
    """T5's relative position buckets: ``log`` of a distance of 0 is ``-inf``, then cast to
    ``long`` and clamped, so only integer bucket ids (and a learned bias) go on."""

    def __init__(self, buckets: int = 8, max_distance: int = 16) -> None:
        super().__init__()
        self.buckets, self.max_distance = buckets, max_distance
        self.bias = nn.Embedding(buckets, 1)

    def forward(self, x):
        n = x.shape[-1]
        pos = torch.arange(n)
        distance = (pos[None, :] - pos[:, None]).abs()
        exact = self.buckets // 2
        large = exact + (torch.log(distance.float() / exact) / math.log(self.max_distance / exact)
                         * (self.buckets - exact)).to(torch.long)
        large = torch.minimum(large, torch.full_like(large, self.buckets - 1))
        bucket = torch.where(distance < exact, distance, large)
        return x @ x.transpose(0, 1).sum(-1, keepdim=True).expand(-1, n) + self.bias(bucket[: x.shape[0]]).squeeze(-1)


class ConstantsAndMasks(nn.Module):
    """Swin/DETR-style constants: a zero-initialised mask built by slice assignment, an index
    table, a cat of zero-initialised bias parameters and a slice of one, all mostly zeros;
    and an anchor grid in pixels far past 1e4.  None of them depends on the input."""

    def __init__(self) -> None:
        super().__init__()
        self.q_bias = nn.Parameter(torch.zeros(64))
        self.v_bias = nn.Parameter(torch.zeros(64))

    def forward(self, x):
        region = torch.zeros(16, 16)
        region[15:, 15:] = 1.0                                   # one element of 256 set
        attn_mask = region.reshape(256, 1) - region.reshape(1, 256)  # 99.2 % zeros
        index = torch.zeros(256).scatter_(0, torch.tensor([3]), 1.0)  # 255 of 256 zeros
        qkv_bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        bias_slice = qkv_bias[64:128] * 1.0                       # a slice, copied
        anchors = (torch.arange(64.0) * 1000.0 + 500.0).repeat(4, 1)  # up to 63 500 pixels
        return (x + bias_slice + anchors * 0.0 + attn_mask.sum() + index.sum(), anchors)


class ManyWarnings(nn.Module):
    """One of each: a dead ReLU, large values, a NaN reaching the output, a discarded ``log(0)``,
    and a data-dependent branch that makes ``--capture export`` fall back (a capture note)."""

    def __init__(self) -> None:
        super().__init__()
        self.dead = DeadReLU()
        self.large = LargeActivation()
        self.nan = NaNToOutput()
        self.masked = MaskedLog()

    def forward(self, x):
        if x.sum() > -1e9:  # data-dependent: torch.export refuses it
            x = x + 1.0
        return self.dead(x), self.large(x), self.nan(x), self.masked(x)
