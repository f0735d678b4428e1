"""Small fixture models for the ONNX tests (tests/test_onnx.py)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SmallCNN(nn.Module):
    """Grouped conv, batch norm, ReLU, max pool, global average pool, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.block = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=4, bias=False),
                                   nn.BatchNorm2d(16), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)
        with torch.no_grad():  # distinct running statistics: exporters merge identical initializers
            for bn in (self.bn1, self.block[1]):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 1.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.block(x))
        return self.fc(torch.flatten(self.gap(x), 1))


class AttentionBlock(nn.Module):
    """Pre-norm transformer block: fused QKV, scaled_dot_product_attention, GELU MLP."""

    def __init__(self, d: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        with torch.no_grad():  # distinct norm parameters: the TorchScript exporter merges identical initializers
            for ln in (self.ln1, self.ln2):
                ln.weight.uniform_(0.5, 1.5)
                ln.bias.uniform_(-0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, c)
        x = x + self.proj(y)
        return x + self.mlp(self.ln2(x))


class MHABlock(nn.Module):
    """nn.MultiheadAttention (PyTorch runs its fused fast path) + residual + LayerNorm."""

    def __init__(self, d: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln = nn.LayerNorm(d)
        with torch.no_grad():  # MHA's biases start as zeros, like LayerNorm's: make every initializer distinct
            for t in (self.attn.in_proj_bias, self.attn.out_proj.bias, self.ln.weight, self.ln.bias):
                t.uniform_(-0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(x + self.attn(x, x, x, need_weights=False)[0])


class Eigen(nn.Module):
    """Runs anywhere, exports nowhere: ONNX has no eigenvalue op."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.eigvals(self.lin(x)).real


def build_cnn():
    return SmallCNN().eval(), torch.randn(1, 3, 32, 32)


def build_eigen():
    return Eigen().eval(), torch.randn(4, 4)
