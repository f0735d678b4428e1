"""Wall time of the ONNX path against the PyTorch path for one ResNet-50-shaped model.

Builds ResNet-50 (bottleneck blocks 3-4-6-3, no torchvision), exports it once
to ONNX with mevreport's exporter, then times, in this process:

* torch: ``mevreport.analyze(model, x)`` (dispatch capture, stats, timing);
* onnx:  ``mevreport.analyze("resnet50.onnx")`` (shape inference, onnxruntime
  values/profiler/latency);

each with the same ``--runs`` and statistics on, and prints MACs, params and
seconds.  Run from the repository root:

    PYTHONPATH=$PWD python benchmarks/onnx_resnet50.py [--runs 3] [--repeat 1] [--no-stats]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import mevreport


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
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin, layers = 64, []
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            seq = []
            for i in range(blocks):
                seq.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
            layers.append(nn.Sequential(*seq))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=1, help="time each path this many times, report each")
    ap.add_argument("--no-stats", action="store_true")
    ap.add_argument("--dir", default=None, help="where to write resnet50.onnx (default: a temporary directory)")
    opts = ap.parse_args()
    torch.manual_seed(0)
    model, x = ResNet50().eval(), torch.randn(1, 3, 224, 224)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(opts.dir or tmp) / "resnet50.onnx"
        t0 = time.perf_counter()
        export = mevreport.onnx.export_onnx(model, x, path)
        print(f"export: {time.perf_counter() - t0:.2f} s ({export.exporter}, opset {export.opset}, "
              f"{path.stat().st_size / 1e6:.1f} MB)")
        for i in range(opts.repeat):
            t0 = time.perf_counter()
            tr = mevreport.analyze(model, x, runs=opts.runs, stats=not opts.no_stats)
            t_torch = time.perf_counter() - t0
            t0 = time.perf_counter()
            orp = mevreport.analyze(str(path), runs=opts.runs, stats=not opts.no_stats)
            t_onnx = time.perf_counter() - t0
            print(f"[{i}] torch path: {t_torch:.2f} s, {tr.totals.macs} MACs, {tr.totals.params} params, "
                  f"{tr.totals.nodes} nodes, forward {tr.totals.latency_ms:.1f} ms")
            print(f"[{i}] onnx path:  {t_onnx:.2f} s, {orp.totals.macs} MACs, {orp.totals.params} params, "
                  f"{orp.totals.nodes} nodes, forward {orp.totals.latency_ms:.1f} ms")
        assert tr.totals.macs == orp.totals.macs and tr.totals.params == orp.totals.params


if __name__ == "__main__":
    import mevreport.onnx  # noqa: F401
    main()
