"""ONNX in and out (issue 5): agreement with the PyTorch path, hand-built graphs, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import mevreport
from mevreport.costs import cost_of
from mevreport.errors import MevreportError, UsageError
from mevreport.graph import Node, TensorMeta
from mevreport.onnx import export as export_mod
from mevreport.onnx.build import path_from_node_name

from .conftest import run_cli
from .models_onnx import AttentionBlock, MHABlock, SmallCNN

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models_onnx.py"


def _export_and_read(model, x, tmp_path: Path, name: str = "m.onnx"):
    path = tmp_path / name
    torch_report = mevreport.analyze(model, x, runs=0, stats=False, onnx_path=path)
    onnx_report = mevreport.analyze(str(path), runs=0, stats=False)
    return torch_report, onnx_report


def _no_dynamo(*_a, **_k):
    raise RuntimeError("dynamo exporter disabled by the test")


# --- agreement -----------------------------------------------------------------

# MACs by hand: conv1 8·32·32 outputs × 3·3·3; block.0 16·16·16 outputs × (8/4)·3·3; fc 16·10
CNN_MACS = 8 * 32 * 32 * 27 + 16 * 16 * 16 * 18 + 16 * 10
CNN_PARAMS = (8 * 27 + 8) + 2 * 8 + 16 * 18 + 2 * 16 + (160 + 10)


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_cnn_agreement(exporter, tmp_path, monkeypatch):
    if exporter == "torchscript":
        monkeypatch.setattr(export_mod, "_dynamo", _no_dynamo)
    model, x = SmallCNN().eval(), torch.randn(1, 3, 32, 32)
    tr, orep = _export_and_read(model, x, tmp_path)
    assert tr.onnx_export.exporter == exporter and tr.onnx_export.error is None
    assert tr.onnx_export.opset == 20
    assert any(f"by the {exporter} exporter, opset 20" in n for n in tr.capture.notes)
    if exporter == "torchscript":
        assert "dynamo exporter failed" in tr.onnx_export.notes[0]
    assert tr.totals.macs == orep.totals.macs == CNN_MACS
    assert tr.totals.params == orep.totals.params == CNN_PARAMS
    assert orep.totals.buffers == 2 * 8 + 2 * 16  # running mean/var; num_batches_tracked is not exported
    assert orep.capture.method == "onnx"
    convs = [n for n in orep.nodes if n.op == "onnx.Conv"]
    assert [n.module_path for n in convs] == ["conv1", "block.0"]
    assert [n.macs for n in convs] == [8 * 32 * 32 * 27, 16 * 16 * 16 * 18]
    mods = {m.path: m for m in orep.modules}
    assert mods["block"].params == 16 * 18 + 32 and mods["fc"].params == 170 and mods[""].params == CNN_PARAMS
    assert mods["block.0"].macs == 16 * 16 * 16 * 18
    if exporter == "dynamo":  # the dynamo exporter records module classes
        assert (mods["block.1"].class_name, mods[""].class_name) == ("BatchNorm2d", "SmallCNN")
    assert model.training is False and all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_attention_block_agreement(exporter, tmp_path, monkeypatch):
    if exporter == "torchscript":
        monkeypatch.setattr(export_mod, "_dynamo", _no_dynamo)
    b, t, d, h = 2, 16, 32, 4
    model, x = AttentionBlock(d, h).eval(), torch.randn(b, t, d)
    tr, orep = _export_and_read(model, x, tmp_path)
    assert tr.onnx_export.exporter == exporter
    macs = b * t * d * 3 * d + b * h * t * t * 2 * (d // h) + b * t * d * d + 2 * b * t * d * 4 * d
    assert tr.totals.macs == orep.totals.macs == macs
    assert tr.totals.params == orep.totals.params == 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (8 * d * d + 5 * d)
    assert orep.uncounted_ops == ()
    mods = {m.path: m for m in orep.modules}
    assert mods["qkv"].macs == b * t * d * 3 * d
    assert mods["mlp.0"].params == d * 4 * d + 4 * d


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_multihead_attention_fast_path_agreement(exporter, tmp_path, monkeypatch):
    """PyTorch counts aten._native_multi_head_attention; the ONNX file has plain MatMuls: same MACs."""
    if exporter == "torchscript":
        monkeypatch.setattr(export_mod, "_dynamo", _no_dynamo)
    b, t, d = 2, 16, 32
    tr, orep = _export_and_read(MHABlock(d, 4).eval(), torch.randn(b, t, d), tmp_path)
    assert tr.onnx_export.exporter == exporter
    assert any(n.op.startswith("aten._native_multi_head_attention") for n in tr.nodes)
    macs = b * t * 3 * d * d + 2 * b * t * t * d + b * t * d * d  # in-projections, Q·Kᵀ and A·V, out-projection
    assert tr.totals.macs == orep.totals.macs == macs
    assert tr.totals.params == orep.totals.params == 4 * d * d + 4 * d + 2 * d


# --- a graph built by hand -------------------------------------------------------

def _handmade(path: Path, batch: str | int = "N") -> Path:
    """x (N,3,8,8) -> Conv 4x3x3x3 (+bias) -> Relu -> Reshape (N,256) -> Gemm 256->10 -> MatMul 10->6 -> Add."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "conv.weight"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "conv.bias"),
        numpy_helper.from_array(np.array([-1, 256], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(rng.standard_normal((10, 256)).astype(np.float32), "fc.weight"),
        numpy_helper.from_array(rng.standard_normal(10).astype(np.float32), "fc.bias"),
        numpy_helper.from_array(rng.standard_normal((10, 6)).astype(np.float32), "head.weight"),
        numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "head.bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="/act/Relu"),
        helper.make_node("Reshape", ["r", "flat_shape"], ["f"], name="/Reshape"),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["g"], name="/fc/Gemm", transB=1),
        helper.make_node("MatMul", ["g", "head.weight"], ["m"], name="/head/MatMul"),
        helper.make_node("Add", ["m", "head.bias"], ["y"], name="/head/Add"),
    ]
    graph = helper.make_graph(nodes, "handmade", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("n", [1, 3])
def test_handmade_graph_macs_flops(tmp_path, n):
    path = _handmade(tmp_path / "hand.onnx")
    r = mevreport.analyze(str(path), {"x": (n, 3, 8, 8)}, runs=1)
    conv, gemm, mm = n * 4 * 8 * 8 * 27, n * 256 * 10, n * 10 * 6
    assert r.totals.macs == conv + gemm + mm
    flops = (2 * conv + n * 256) + n * 256 + 0 + (2 * gemm + n * 10) + 2 * mm + n * 6
    assert r.totals.flops == flops
    assert [nd.op for nd in r.nodes] == ["onnx.Conv", "onnx.Relu", "onnx.Reshape", "onnx.Gemm", "onnx.MatMul", "onnx.Add"]
    assert [nd.module_path for nd in r.nodes] == ["conv", "act", "", "fc", "head", "head"]
    assert r.totals.params == 108 + 4 + 2560 + 10 + 60 + 6  # the int64 shape constant is not a parameter
    assert r.inputs[0].shape == (n, 3, 8, 8)
    # measured with onnxruntime: stats on every float output, per-node and forward latency
    assert all(nd.stats is not None for nd in r.nodes)
    relu = r.nodes[1]
    assert relu.stats.min == 0.0 and relu.stats.zero_fraction > 0
    assert r.totals.latency_ms is not None and all(nd.latency_ms is not None for nd in r.nodes)
    assert r.nodes[2].output_bytes == 0 and r.nodes[0].output_bytes == n * 256 * 4  # Reshape is a view


def test_input_shape_binding_named_positional_and_errors(tmp_path):
    path = _handmade(tmp_path / "hand.onnx")
    by_pos = mevreport.analyze(str(path), [(2, 3, 8, 8)], runs=0, stats=False)
    assert by_pos.inputs[0].shape == (2, 3, 8, 8) and by_pos.nodes[-1].outputs[0].shape == (2, 6)
    with pytest.raises(UsageError, match=r"unknown input shape for 'x' \(\[N,3,8,8\]\)"):
        mevreport.analyze(str(path), runs=0)
    with pytest.raises(UsageError, match="fixed shape"):
        mevreport.analyze(str(path), {"x": (2, 4, 8, 8)}, runs=0)
    with pytest.raises(UsageError, match=r"'y'.*inputs are 'x'"):
        mevreport.analyze(str(path), {"y": (2, 3, 8, 8)}, runs=0)
    static = _handmade(tmp_path / "static.onnx", batch=5)
    assert mevreport.analyze(str(static), runs=0, stats=False).inputs[0].shape == (5, 3, 8, 8)


def _two_inputs(path: Path) -> Path:
    """a (B,S,8) and b (B,8,T) -> MatMul; T is only on b."""
    nodes = [helper.make_node("MatMul", ["a", "b"], ["y"], name="/mm/MatMul")]
    graph = helper.make_graph(nodes, "two", [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["B", "S", 8]),
                                             helper.make_tensor_value_info("b", TensorProto.FLOAT, ["B", 8, "T"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "S", "T"])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_unknown_shapes_name_each_input_and_symbols_are_shared(tmp_path):
    path = _two_inputs(tmp_path / "two.onnx")
    with pytest.raises(UsageError) as err:
        mevreport.analyze(str(path), runs=0)
    assert "'a' ([B,S,8])" in str(err.value) and "'b' ([B,8,T])" in str(err.value)
    with pytest.raises(UsageError, match=r"'b' \(\[B,8,T\]\)") as err:
        mevreport.analyze(str(path), {"a": (2, 5, 8)}, runs=0)  # binds B, not T
    assert "'a'" not in str(err.value).split("unknown input shape for")[1].split(":")[0]
    r = mevreport.analyze(str(path), {"a": (2, 5, 8), "b": (2, 8, 7)}, runs=0, stats=False)
    assert r.totals.macs == 2 * 5 * 8 * 7


def test_shared_initializer_counted_once(tmp_path):
    w = numpy_helper.from_array(np.eye(8, dtype=np.float32) * 0.5, "shared.weight")
    nodes = [helper.make_node("MatMul", ["x", "shared.weight"], ["h"], name="/a/MatMul"),
             helper.make_node("MatMul", ["h", "shared.weight"], ["y"], name="/b/MatMul")]
    graph = helper.make_graph(nodes, "tied", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])], [w])
    path = tmp_path / "tied.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    r = mevreport.analyze(str(path), runs=0)
    assert r.totals.params == 64 and len(r.params) == 1
    assert r.totals.macs == 2 * (2 * 8 * 8)
    # no module 'shared' ran, so the weight belongs to its first reader, as torch names a shared module
    assert {m.path: m.params for m in r.modules} == {"": 64, "a": 64, "b": 0}
    assert r.nodes[1].stats.max == pytest.approx(0.5 * r.nodes[0].stats.max, rel=1e-6)  # y = h/2


def _custom_op(path: Path) -> Path:
    """MatMul 4->5, Relu, then an op onnxruntime does not know (com.example.Mystery)."""
    w = numpy_helper.from_array(np.ones((4, 5), dtype=np.float32), "lin.weight")
    nodes = [helper.make_node("MatMul", ["x", "lin.weight"], ["h"], name="/lin/MatMul"),
             helper.make_node("Relu", ["h"], ["r"], name="/act/Relu"),
             helper.make_node("Mystery", ["r"], ["y"], name="/odd/Mystery", domain="com.example")]
    graph = helper.make_graph(nodes, "custom", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
                              ir_version=8)
    onnx.save(model, str(path))
    return path


def test_op_onnxruntime_cannot_run_gives_static_report(tmp_path):
    path = _custom_op(tmp_path / "custom.onnx")
    proc = run_cli("report", str(path), "--json", "custom.json", "-o", "custom.html", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "custom.json").read_text())
    assert data["capture"]["method"] == "onnx"
    assert any("onnxruntime could not run the model" in n for n in data["capture"]["notes"])
    assert data["totals"]["macs"] == 4 * 5 and data["totals"]["latency_ms"] is None
    assert [n["stats"] for n in data["nodes"]] == [None, None, None]
    assert data["uncounted_ops"] == [{"op": "com_example.Mystery", "count": 1}]
    assert (tmp_path / "custom.html").stat().st_size > 0


# --- cost rules for ONNX ops without a hand-built file ------------------------------

def _node(op: str, args: tuple, out: tuple[int, ...], **attrs) -> Node:
    return Node(id=0, op=op, module_path="", module_call=0, inputs=(), outputs=(TensorMeta(out, "float32"),),
                output_bytes=0, alias_of=(-1,), args=args, kwargs=tuple(sorted(attrs.items())))


def F(*shape: int) -> TensorMeta:
    return TensorMeta(tuple(shape), "float32")


def test_onnx_rules_formulas():
    # ConvTranspose: X (1,8,5,5), W (8, 4/2, 3, 3), group 2 -> each input element × (4/2)·9
    ct = cost_of(_node("onnx.ConvTranspose", (F(1, 8, 5, 5), F(8, 2, 3, 3), None), (1, 4, 7, 7), group=2))
    assert ct.macs == 8 * 25 * 2 * 9
    gemm = cost_of(_node("onnx.Gemm", (F(7, 3), F(5, 7)), (3, 5), transA=1, transB=1))
    assert (gemm.macs, gemm.flops) == (3 * 7 * 5, 2 * 105)
    ein = cost_of(_node("onnx.Einsum", (F(2, 3, 4), F(2, 4, 5)), (2, 3, 5), equation="bij,bjk->bik"))
    assert ein.macs == 2 * 3 * 4 * 5
    # opset-23 Attention, 3-d inputs with 4 heads: Q (2,10,64), K/V (2,12,64)
    att = cost_of(_node("onnx.Attention", (F(2, 10, 64), F(2, 12, 64), F(2, 12, 64)), (2, 10, 64),
                        q_num_heads=4, kv_num_heads=4))
    assert (att.macs, att.flops) == (2 * 4 * 10 * 12 * 32, 2 * 2 * 4 * 10 * 12 * 32 + 5 * 2 * 4 * 10 * 12)
    ms = cost_of(_node("com_microsoft.Attention", (F(2, 10, 48), F(48, 3 * 64), F(3 * 64)), (2, 10, 64), num_heads=4))
    assert ms.macs == 2 * 10 * 48 * 192 + 2 * 10 * 10 * 128
    mha = cost_of(_node("com_microsoft.MultiHeadAttention", (F(2, 10, 64), F(2, 12, 64), F(2, 12, 64)), (2, 10, 64),
                        num_heads=4))
    assert mha.macs == 2 * 4 * 10 * 12 * 32
    assert cost_of(_node("onnx.MatMulInteger", (F(3, 4), F(4, 6)), (3, 6))).macs == 72
    assert cost_of(_node("onnx.LayerNormalization", (F(4, 8), F(8), F(8)), (4, 8))).flops == 7 * 32
    assert cost_of(_node("onnx.RMSNormalization", (F(4, 8), F(8)), (4, 8))).flops == 5 * 32
    assert cost_of(_node("onnx.BatchNormalization", (F(1, 2, 3, 3),) + (F(2),) * 4, (1, 2, 3, 3))).flops == 4 * 18
    assert cost_of(_node("onnx.AveragePool", (F(1, 2, 4, 4),), (1, 2, 2, 2), kernel_shape=(2, 2))).flops == 8 * 4
    assert cost_of(_node("onnx.Softmax", (F(3, 4),), (3, 4))).flops == 60
    assert cost_of(_node("onnx.ReduceMean", (F(3, 4),), (3, 1))).flops == 12
    assert cost_of(_node("onnx.MatMul", (F(-1, 4), F(4, 6)), (-1, 6))) is None  # unknown shape: uncounted


def test_torchscript_scope_names_to_module_paths():
    assert path_from_node_name("/layer1/layer1.0/conv1/Conv") == "layer1.0.conv1"
    assert path_from_node_name("/block/block.0/Conv") == "block.0"
    assert path_from_node_name("/fc/Gemm") == "fc"
    assert path_from_node_name("/Flatten") == ""
    assert path_from_node_name("node_conv2d") == ""
    assert path_from_node_name("/layer1/layer10/Relu") == "layer1.layer10"


# --- the command line --------------------------------------------------------------

def test_cli_bad_onnx_files(tmp_path):
    good = _handmade(tmp_path / "good.onnx").read_bytes()
    cases = {"empty.onnx": b"", "truncated.onnx": good[: len(good) // 2],
             "random.onnx": np.random.default_rng(1).bytes(4096)}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    # the library raises one clear error for each
    for name in cases:
        with pytest.raises(MevreportError, match=str(tmp_path / name).replace("/", ".")):
            mevreport.analyze(str(tmp_path / name), {"x": (1, 3, 8, 8)})
    # and the CLI says it in one line, exit 2, no file
    proc = run_cli("report", "empty.onnx", "-o", "out.html", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "is empty" in proc.stderr
    proc = run_cli("report", "random.onnx", "-o", "out.html", "--json", "out.json", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    (tmp_path / "hand.onnx").write_bytes(good)
    proc = run_cli("report", "hand.onnx", "-o", "out.html", "-q", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "unknown input shape for 'x'" in proc.stderr and "--input-shape" in proc.stderr
    assert not (tmp_path / "out.html").exists() and not (tmp_path / "out.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.onnx", "good.onnx", "hand.onnx", "random.onnx",
                                                          "truncated.onnx"]


def test_cli_onnx_named_input_shape(tmp_path):
    _handmade(tmp_path / "hand.onnx")
    proc = run_cli("report", "hand.onnx", "--input-shape", "x=2,3,8,8", "--json", "h.json", "--runs", "1", "-q",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "h.json").read_text())
    assert data["inputs"] == [{"name": "x", "shape": [2, 3, 8, 8], "dtype": "float32"}]
    assert data["totals"]["macs"] == 2 * (4 * 64 * 27 + 2560 + 60)
    assert (tmp_path / "hand.html").exists()


@pytest.mark.slow
def test_cli_export_written_and_export_failure_keeps_report(tmp_path):
    proc = run_cli("report", f"{MODELS}:build_cnn", "--onnx", "cnn.onnx", "--json", "cnn.json", "--runs", "0", "-q",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "cnn.json").read_text())
    assert data["onnx_export"]["exporter"] == "dynamo" and data["onnx_export"]["opset"] == 20
    assert onnx.load(str(tmp_path / "cnn.onnx")).graph.node
    assert mevreport.analyze(str(tmp_path / "cnn.onnx"), runs=0, stats=False).totals.macs == CNN_MACS
    proc = run_cli("report", f"{MODELS}:build_eigen", "--onnx", "eig.onnx", "--json", "eig.json", "--runs", "0", "-q",
                   cwd=tmp_path)
    assert proc.returncode == 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mevreport: warning: ONNX export failed") and "eigvals" in lines[0]
    data = json.loads((tmp_path / "eig.json").read_text())
    assert data["onnx_export"]["exporter"] is None and "torchscript exporter failed" in data["onnx_export"]["error"]
    assert any(n.startswith("ONNX export to eig.onnx failed") for n in data["capture"]["notes"])
    assert not (tmp_path / "eig.onnx").exists() and (tmp_path / "Eigen.html").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_onnx_report_is_deterministic_apart_from_latency(tmp_path):
    """DESIGN §2: only created_at, environment and latency fields change between two runs."""
    path = _handmade(tmp_path / "hand.onnx")

    def scrub(value):
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()
                    if k not in ("created_at", "environment") and "latency" not in k}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    a = mevreport.analyze(str(path), {"x": (2, 3, 8, 8)}, runs=1).to_dict()
    b = mevreport.analyze(str(path), {"x": (2, 3, 8, 8)}, runs=1).to_dict()
    assert scrub(a) == scrub(b)
    assert a["nodes"][0]["stats"] is not None
    assert mevreport.Report.from_dict(a).to_dict() == a


@pytest.mark.parametrize("dims", [[2**40, 2**40], [2**20, 2**20]], ids=["past-int64", "past-memory"])
def test_cli_declared_input_too_big_is_one_line(tmp_path, dims):
    """Issue 11: dims that multiply past int64 or memory: one line, exit 2, suggesting --input-shape."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              str(tmp_path / "huge.onnx"))
    r = run_cli("report", "huge.onnx", "-q", "-o", "h.html", "--json", "h.json", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith(f"mevreport: error: cannot create the random input 'x' of shape {dims}")
    assert "--input-shape x=8,8" in lines[0] and "--device meta" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.onnx"]


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/hostname", "link.bin"], ids=["dotdot", "absolute", "symlink"])
def test_external_data_outside_the_model_directory_is_refused(tmp_path, location):
    """Issue 11: onnx external data is read only from inside the model's directory (onnx's own check)."""
    (tmp_path / "secret.bin").write_bytes(b"SECRETSECRETSECR")
    d = tmp_path / "model"
    d.mkdir()
    (d / "link.bin").symlink_to(tmp_path / "secret.bin")
    w = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", location
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(d / "m.onnx"))
    r = run_cli("report", "model/m.onnx", "-q", "-o", "m.html", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a readable ONNX model" in lines[0], r.stderr
    assert not (tmp_path / "m.html").exists()


@pytest.mark.parametrize("scopes", ["1+" * 100_000 + "1", "-" * 100_000 + "1", "[" * 100_000 + "]" * 100_000,
                                    "['a'] * 10**9", "__import__('os').system('touch PWNED')"],
                         ids=["binop-chain", "unary-chain", "deep-brackets", "repeat", "call"])
def test_crafted_scope_metadata_is_ignored(tmp_path, scopes):
    """Issue 11: node metadata is file text read as a literal; a hostile one is ignored, never a traceback."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    relu = helper.make_node("Relu", ["x"], ["y"], name="/body/Relu")
    entry = relu.metadata_props.add()
    entry.key, entry.value = "pkg.torch.onnx.name_scopes", scopes
    onnx.save(helper.make_model(helper.make_graph([relu], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=8), str(tmp_path / "m.onnx"))
    r = run_cli("report", "m.onnx", "-q", "--runs", "0", "-o", "m.html", "--json", "m.json", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    doc = json.loads((tmp_path / "m.json").read_text())
    assert [(n["op"], n["module_path"]) for n in doc["nodes"]] == [("onnx.Relu", "body")]  # from the node name
    assert not (tmp_path / "PWNED").exists()
