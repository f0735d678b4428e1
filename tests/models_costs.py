"""Fixture models for the cost, memory and statistics tests (and the benchmark).

Each model is small and written out in full so the expected numbers in the
tests can be derived by hand from the constructor arguments.  The two
reference-shaped models (ResNet-50, BERT-base) are built here without
torchvision or transformers so the benchmark and the tests share one
definition.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SDPABlock(nn.Module):
    """Pre-norm transformer block: q/k/v/out Linear on 3-d input, SDPA, GELU MLP."""

    def __init__(self, d: int = 32, heads: int = 4, ffn: int = 64) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.out = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn)
        self.fc2 = nn.Linear(ffn, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.ln1(x)

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(split(self.q(h)), split(self.k(h)), split(self.v(h)))
        x = x + self.out(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class MatmulOps(nn.Module):
    """bmm, baddbmm and einsum on plain tensors (no parameters)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = torch.bmm(a, b)                       # (B,M,K)·(B,K,N)
        y = torch.baddbmm(c, a, b)                # c + a·b
        z = torch.einsum("bmk,bkn->bmn", a, b)    # the same product again
        return x + y + z


class ConvZoo(nn.Module):
    """Grouped 2-d conv and transposed 1/2/3-d convs, bias on some."""

    def __init__(self) -> None:
        super().__init__()
        self.grouped = nn.Conv2d(8, 12, 3, padding=1, groups=4, bias=False)
        self.t1 = nn.ConvTranspose1d(4, 6, 3, stride=2, bias=True)
        self.t2 = nn.ConvTranspose2d(4, 6, (3, 2), stride=2, groups=2, bias=False)
        self.t3 = nn.ConvTranspose3d(2, 4, 2, stride=1, bias=True)

    def forward(self, img: torch.Tensor, seq: torch.Tensor, vol: torch.Tensor):
        return self.grouped(img), self.t1(seq), self.t2(img[:, :4]), self.t3(vol)


class Chain(nn.Module):
    """x -> relu -> *2 -> +1 (a chain whose peak memory is computed by hand)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(x)       # new: n floats
        b = a * 2               # new: n floats; a dies after this
        c = b.view(-1)          # a view: 0 bytes
        d = c + 1               # new: n floats; b dies after this
        return d.sum()          # new: 1 float; d dies


class Tied(nn.Module):
    """An embedding tied to the output projection, one frozen layer, one buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight
        self.f16 = nn.Linear(4, 4, bias=False).to(torch.float16)
        self.register_buffer("scale", torch.ones(3, dtype=torch.float64))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.frozen(self.emb(ids))
        h = h + self.f16(h.half()).float()
        return self.head(h)


class LogOf(nn.Module):
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.log(h - 100.0)       # every element negative: NaN


class NanMaker(nn.Module):
    """A log of negative numbers inside ``inner.log``: that node is the NaN origin."""

    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Linear(4, 4)
        self.inner = nn.Sequential(LogOf())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bad = self.inner(self.pre(x))
        return bad * 2                    # propagates the NaN, but is not the origin


class DeadAndLarge(nn.Module):
    """A ReLU that kills everything (module ``dead``), and values scaled far past 1e4 (``big``)."""

    class Scale(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 1e6

    def __init__(self) -> None:
        super().__init__()
        self.dead = nn.ReLU()
        self.big = DeadAndLarge.Scale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dead(-x.abs() - 1.0).sum() + self.big(x)


# --- reference-shaped models for DESIGN §3 and the benchmark ------------------

class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """torchvision's resnet50 layout (stride on the 3×3 conv), 1000 classes."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        layers, cin = [], 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = []
            for i in range(blocks):
                stage.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class BertLayer(nn.Module):
    def __init__(self, d: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attn_out = nn.Linear(d, d)
        self.ln1 = nn.LayerNorm(d, eps=1e-12)
        self.intermediate = nn.Linear(d, ffn)
        self.output = nn.Linear(ffn, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)))
        x = self.ln1(x + self.attn_out(a.transpose(1, 2).reshape(b, t, d)))
        return self.ln2(x + self.output(F.gelu(self.intermediate(x))))


class BertBase(nn.Module):
    """BERT-base's encoder shape: 12 layers, hidden 768, 12 heads, FFN 3072, pooler."""

    def __init__(self, layers: int = 12, d: int = 768, heads: int = 12, ffn: int = 3072,
                 vocab: int = 30522, positions: int = 512) -> None:
        super().__init__()
        self.word = nn.Embedding(vocab, d)
        self.position = nn.Embedding(positions, d)
        self.token_type = nn.Embedding(2, d)
        self.ln = nn.LayerNorm(d, eps=1e-12)
        self.layers = nn.ModuleList(BertLayer(d, heads, ffn) for _ in range(layers))
        self.pooler = nn.Linear(d, d)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.ln(self.word(input_ids) + self.position(pos) + self.token_type(torch.zeros_like(input_ids)))
        for layer in self.layers:
            x = layer(x)
        return torch.tanh(self.pooler(x[:, 0]))
