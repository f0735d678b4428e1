"""nodes[].args: an op's non-tensor arguments by schema name, JSON-safe, omitted when there are none."""
from __future__ import annotations

import json

import torch
from torch import nn

import mevreport


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 6, kernel_size=(3, 5), stride=2, padding=(1, 2), dilation=1, groups=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.conv(x).relu(), dim=1)


def test_args_of_conv_softmax_and_none_for_relu():
    report = mevreport.analyze(Net().eval(), torch.randn(1, 4, 8, 8), runs=0, stats=False)
    ops = {n.op: n for n in report.nodes}
    assert ops["aten.convolution.default"].args == {
        "stride": (2, 2), "padding": (1, 2), "dilation": (1, 1), "transposed": False, "output_padding": (0, 0),
        "groups": 2, "kernel": (3, 5)}  # kernel: the weight [6, 2, 3, 5] without its two channel dimensions
    assert ops["aten._softmax.default"].args == {"dim": 1, "half_to_float": False}
    assert ops["aten.relu.default"].args == {}
    doc = report.to_dict()
    by_op = {n["op"]: n for n in doc["nodes"]}
    assert "args" not in by_op["aten.relu.default"]  # omitted when empty: documents without args read as before
    assert by_op["aten.convolution.default"]["args"]["groups"] == 2
    assert mevreport.Report.from_dict(json.loads(report.to_json())) == report
