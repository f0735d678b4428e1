"""Three releases of the demo ResNet, for the example diff and index pages.

* ``v1_8``: the demo model with one block in ``layer3``;
* ``v1_9``: the demo model as bundled (``mevreport.demo``);
* ``v1_10``: a third block in ``layer3``, and the classifier moved from ``fc`` to ``classifier.fc``
  (unchanged, so the diff shows it as a rename).

    mevreport report example_reports/release_models.py:v1_9 --label v1.9.0 -o v1.9.0.html --json v1.9.0.json
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from mevreport.demo import BasicBlock, DemoResNet


class DemoResNetV110(DemoResNet):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(num_classes)
        self.layer3.append(BasicBlock(64, 64))
        self.classifier = nn.Sequential(OrderedDict(fc=self.fc))
        del self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.classifier(torch.flatten(self.pool(x), 1))


def _inputs() -> torch.Tensor:
    return torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def v1_8():
    torch.manual_seed(0)
    model = DemoResNet()
    del model.layer3[1]
    return model.eval(), _inputs()


def v1_9():
    torch.manual_seed(0)
    return DemoResNet().eval(), _inputs()


def v1_10():
    torch.manual_seed(0)
    return DemoResNetV110().eval(), _inputs()
