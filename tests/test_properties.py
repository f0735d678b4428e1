"""Properties over random small models (issue 7).

Hypothesis builds random stacks of conv / linear / norm / activation /
attention / residual layers of random sizes, in two families (images
[B, C, H, W] and sequences [B, T, D]), and checks for each report:

1. a report is produced and rendered;
2. per-node MACs (and FLOPs) sum to the totals;
3. every module's MACs, FLOPs, node count and activation bytes equal the sum
   over the nodes under its path (the root's equal the totals);
4. the total MACs equal an independent formula per layer, derived by hand;
5. parameters: the total equals ``sum(p.numel())`` and each module row equals
   its own ``parameters()``;
6. node ids are execution order and every input edge points backwards;
7. the memory timeline has one entry per node and never exceeds the peak,
   which never exceeds all activation bytes;
8. the JSON document validates against ``mevreport/schema.json``;
9. the HTML embeds the JSON document and ``mevreport.load`` reads back an
   equal report, from the HTML and from the JSON.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import mevreport
from mevreport.report import Report
from mevreport.schema import json_schema

MAX_EXAMPLES = 100
PROPERTIES = 9


# --- layers that know their own MACs ------------------------------------------------------------

class Conv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def macs(self, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
        b, cin, h, w = shape
        c = self.conv
        ho = (h + 2 * c.padding[0] - c.kernel_size[0]) // c.stride[0] + 1
        wo = (w + 2 * c.padding[1] - c.kernel_size[1]) // c.stride[1] + 1
        per_output = (cin // c.groups) * c.kernel_size[0] * c.kernel_size[1]
        return b * c.out_channels * ho * wo * per_output, (b, c.out_channels, ho, wo)


class Linear(nn.Module):
    def __init__(self, din: int, dout: int, bias: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(din, dout, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)

    def macs(self, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
        rows = 1
        for d in shape[:-1]:
            rows *= d
        return rows * shape[-1] * self.fc.out_features, shape[:-1] + (self.fc.out_features,)


class NoMacs(nn.Module):
    """Norms and activations: no MACs, shape kept."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)

    def macs(self, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
        return 0, shape


class Residual(nn.Module):
    """x + f(x), with f a shape-keeping layer."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.inner(x)

    def macs(self, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
        return self.inner.macs(shape)[0], shape


class Attention(nn.Module):
    """nn.MultiheadAttention (eval + no_grad takes the fused fast path) or functional SDPA on projections."""

    def __init__(self, d: int, heads: int, fused: bool) -> None:
        super().__init__()
        self.fused, self.heads = fused, heads
        if fused:
            self.mha = nn.MultiheadAttention(d, heads, batch_first=True)
        else:
            self.qkv = nn.Linear(d, 3 * d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return self.mha(x, x, x, need_weights=False)[0]
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)

    def macs(self, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
        b, t, d = shape
        projections = b * t * d * 3 * d + (b * t * d * d if self.fused else 0)  # in-projection (+ out-projection)
        return projections + 2 * b * t * t * d, shape  # Q·Kᵀ and A·V over all heads


@dataclass(frozen=True)
class Spec:
    family: str
    input_shape: tuple[int, ...]
    layers: tuple[tuple, ...]


def _act(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "gelu": nn.GELU(), "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh()}[name]


def build(spec: Spec) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = spec.input_shape[1] if spec.family == "image" else spec.input_shape[-1]
    for kind, *p in spec.layers:
        if kind == "conv":
            cout, k, stride, grouped = p
            groups = width if grouped and cout % width == 0 else 1
            layers.append(Conv(width, cout, k, stride, groups))
            width = cout
        elif kind == "bn":
            layers.append(NoMacs(nn.BatchNorm2d(width)))
        elif kind == "act":
            layers.append(NoMacs(_act(p[0])))
        elif kind == "res_conv":
            layers.append(Residual(Conv(width, width, 3, 1, 1)))
        elif kind == "linear":
            layers.append(Linear(width, p[0], p[1]))
            width = p[0]
        elif kind == "ln":
            layers.append(NoMacs(nn.LayerNorm(width)))
        elif kind == "res_linear":
            layers.append(Residual(Linear(width, width, True)))
        elif kind == "attn":
            heads = p[0] if width % p[0] == 0 else 1
            layers.append(Residual(Attention(width, heads, p[1])))
    return nn.Sequential(*layers).eval()


def expected_macs(model: nn.Sequential, shape: tuple[int, ...]) -> int:
    total = 0
    for layer in model:
        macs, shape = layer.macs(shape)
        total += macs
    return total


image_layer = st.one_of(
    st.tuples(st.just("conv"), st.sampled_from([2, 4, 6, 8]), st.sampled_from([1, 3]), st.sampled_from([1, 2]),
              st.booleans()),
    st.tuples(st.just("bn")),
    st.tuples(st.just("act"), st.sampled_from(["relu", "gelu", "sigmoid", "tanh"])),
    st.tuples(st.just("res_conv")),
)
sequence_layer = st.one_of(
    st.tuples(st.just("linear"), st.sampled_from([4, 8, 12, 16]), st.booleans()),
    st.tuples(st.just("ln")),
    st.tuples(st.just("act"), st.sampled_from(["relu", "gelu", "sigmoid", "tanh"])),
    st.tuples(st.just("res_linear")),
    st.tuples(st.just("attn"), st.sampled_from([1, 2, 4]), st.booleans()),
)
specs = st.one_of(
    st.builds(Spec, st.just("image"),
              st.tuples(st.integers(1, 2), st.sampled_from([1, 2, 3, 4]), st.integers(3, 9), st.integers(3, 9)),
              st.lists(image_layer, min_size=1, max_size=6).map(tuple)),
    st.builds(Spec, st.just("sequence"),
              st.tuples(st.integers(1, 2), st.integers(1, 6), st.sampled_from([4, 8, 12])),
              st.lists(sequence_layer, min_size=1, max_size=6).map(tuple)),
)


def _under(path: str, module_path: str) -> bool:
    return path == "" or module_path == path or module_path.startswith(path + ".")


_EMBEDDED = re.compile(r'<script type="application/json" id="mevreport-data">(.*?)</script>', re.DOTALL)


@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spec=specs)
def test_random_models(spec: Spec, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build(spec)
    x = torch.randn(spec.input_shape)
    report = mevreport.analyze(model, x, runs=0)                                                    # 1
    nodes = report.nodes

    assert sum(n.macs or 0 for n in nodes) == report.totals.macs                                   # 2
    assert sum(n.flops or 0 for n in nodes) == report.totals.flops
    for m in report.modules:                                                                        # 3
        mine = [n for n in nodes if _under(m.path, n.module_path)]
        assert m.macs == sum(n.macs or 0 for n in mine), m.path
        assert m.flops == sum(n.flops or 0 for n in mine), m.path
        assert m.nodes == len(mine), m.path
        assert m.activation_bytes == sum(n.output_bytes for n in mine), m.path
    root = report.modules[0]
    assert (root.path, root.macs, root.flops, root.nodes) == ("", report.totals.macs, report.totals.flops, len(nodes))

    assert report.totals.macs == expected_macs(model, spec.input_shape), spec                      # 4
    assert report.uncounted_ops == ()

    assert report.totals.params == sum(p.numel() for p in model.parameters())                     # 5
    modules = dict(model.named_modules())
    for m in report.modules:
        assert m.params == sum(p.numel() for p in modules[m.path].parameters()), m.path

    assert [n.id for n in nodes] == list(range(len(nodes)))                                         # 6
    assert all(0 <= i < n.id for n in nodes for i in n.inputs)

    timeline = report.memory_timeline                                                               # 7
    assert len(timeline) == len(nodes) and max(timeline) == report.totals.peak_activation_bytes
    assert report.totals.peak_activation_bytes <= report.totals.activation_bytes

    doc = json.loads(report.to_json())                                                              # 8
    jsonschema.Draft202012Validator(json_schema()).validate(doc)

    html_path, json_path = tmp_path / "r.html", tmp_path / "r.json"                                # 9
    report.save_html(html_path)
    report.save_json(json_path)
    embedded = _EMBEDDED.findall(html_path.read_text(encoding="utf-8"))
    assert len(embedded) == 1 and json.loads(embedded[0]) == doc
    assert mevreport.load(html_path) == report == mevreport.load(json_path)
    assert Report.from_dict(doc) == report


def test_schema_covers_every_report_field() -> None:
    """Every dataclass field of the report is described in mevreport/schema.json (the schema is generated
    from the dataclasses, issue 13; this reads the shipped file the way a consumer would)."""
    import dataclasses
    import typing

    from mevreport import report as r

    schema = json_schema()
    defs = schema["$defs"]

    def resolve(p: dict) -> dict:
        while True:
            if "$ref" in p:
                p = defs[p["$ref"].rsplit("/", 1)[1]]
            elif "anyOf" in p:
                p = next(x for x in p["anyOf"] if x.get("type") != "null")
            elif p.get("type") == "array" and "items" in p:
                p = p["items"]
            else:
                return p

    seen: set[type] = set()
    todo: list[tuple[type, dict]] = [(r.Report, schema)]
    while todo:
        cls, described = todo.pop()
        seen.add(cls)
        properties = described["properties"]
        missing = {f.name for f in dataclasses.fields(cls)} - set(properties)
        assert not missing, f"{cls.__name__} fields missing from mevreport/schema.json: {sorted(missing)}"
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            inner = [a for a in typing.get_args(hints[f.name]) if dataclasses.is_dataclass(a)]
            if dataclasses.is_dataclass(hints[f.name]):
                inner.append(hints[f.name])
            for sub in inner:
                if sub not in seen:
                    todo.append((sub, resolve(properties[f.name])))
    assert {r.Report, r.Totals, r.ReportNode, r.TensorMeta, r.TensorStats, r.Histogram, r.WeightStats,
            r.OnnxExport, r.ParamSummary, r.GradStats, r.TrainingInfo, r.LossInfo, r.OptimizerInfo} <= seen
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_ships_in_the_wheel() -> None:
    """hatch packages the mevreport/ directory: the schema is in the wheel, where json_schema() reads it."""
    hatchling = pytest.importorskip("hatchling.builders.wheel", reason="lists wheel files with hatchling")
    root = Path(__file__).resolve().parent.parent
    files = {f.distribution_path for f in hatchling.WheelBuilder(str(root)).recurse_included_files()}
    assert {"mevreport/schema.json", "mevreport/schema.py"} <= files
