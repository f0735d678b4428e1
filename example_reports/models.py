"""Models behind the example reports; each callable returns (module, example_inputs).

Written here (no torchvision, no downloads): a ResNet-18-shaped CNN, a small
GPT-2 from a Hugging Face config with random weights, a model whose
forward branches on the data, and (from the test fixtures) a 48-layer
GPT-style model for the large-report example.
"""
from __future__ import annotations

import torch
from torch import nn

from mevreport.demo import BasicBlock


class ResNet18(nn.Module):
    """ResNet-18's layout (two basic blocks per stage, 64-512 channels) at 224x224."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        chans = [64, 128, 256, 512]
        stages = []
        cin = 64
        for i, c in enumerate(chans):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(cin, c, stride), BasicBlock(c, c)))
            cin = c
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18():
    torch.manual_seed(0)
    return ResNet18().eval(), torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def gpt2_small():
    """A 4-layer GPT-2 (hidden 256, 4 heads) on 64 tokens, called with input_ids as a keyword."""
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=4, n_embd=256, n_head=4, vocab_size=4096, n_positions=256, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(cfg).eval()
    ids = torch.randint(0, cfg.vocab_size, (1, 64), generator=torch.Generator().manual_seed(0))
    return model, {"input_ids": ids}


class BranchyNet(nn.Module):
    """Takes a different path depending on the input's values: fx and torch.export cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 64))
        self.small = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
        self.large = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 64))
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        h = self.large(h) if h.norm() > 5 else self.small(h)
        return self.head(h)


def branchy():
    torch.manual_seed(0)
    return BranchyNet().eval(), torch.randn(4, 32, generator=torch.Generator().manual_seed(0))


def gpt_large():
    """A 48-layer GPT-style decoder written out op by op (tests/models_report.py): about 10,000 executed ops."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.models_report import gpt_own
    return gpt_own(48)
