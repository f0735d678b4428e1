"""Memory of the training step against torch's MemTracker, fake tensors against real ones, and the CLI."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import mevreport

from . import models_train as M
from .conftest import run_cli

MEMORY_FIELDS = ("backward_macs", "backward_flops", "optimizer_flops", "grad_bytes", "optimizer_state_bytes",
                 "saved_activation_bytes", "train_peak_bytes", "macs", "flops")


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.GELU(), nn.Linear(128, 10))


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_train_peak_equals_memtracker(name):
    """torch.distributed._tools.mem_tracker.MemTracker follows every storage of the same step
    (parameters, gradients, activations, temporaries, optimizer state): its peak is ours.  The step
    keeps the model's outputs and the loss until it ends, as a loop ``outputs = model(x); loss = ...;
    loss.backward(); opt.step()`` does."""
    mem_tracker = pytest.importorskip("torch.distributed._tools.mem_tracker")
    x = torch.randn(16, 64)
    report = mevreport.analyze(_mlp(), x, train=True, optimizer=name, runs=0, stats=False)
    model = _mlp()
    opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name](model.parameters())
    tracker = mem_tracker.MemTracker()
    tracker.track_external(model, opt)
    with tracker:
        outputs = model(x)
        loss = outputs.mean()
        loss.backward()
        opt.step()
    peak = tracker.get_tracker_snapshot("peak")[torch.device("cpu")]
    assert report.totals.train_peak_bytes == peak["Total"]
    params = sum(p.numel() for p in model.parameters()) * 4
    assert report.totals.param_bytes == peak[mem_tracker._MemRefType.PARAM] == params


@pytest.mark.parametrize(("build", "shape"), [(lambda: M.Block(8), (2, 4, 8)), (M.BNNet, (2, 3, 6, 6)),
                                              (M.ConvNet, (2, 3, 8, 8))], ids=["block", "batchnorm", "conv"])
def test_train_peak_equals_memtracker_on_blocks_and_convs(build, shape):
    """Attention (the CPU flash kernel), layer norms, batch norm with its buffers, dropout, convolutions."""
    mem_tracker = pytest.importorskip("torch.distributed._tools.mem_tracker")
    x = torch.randn(shape)
    torch.manual_seed(0)
    report = mevreport.analyze(build(), x, train=True, optimizer="adamw", runs=0, stats=False)
    torch.manual_seed(0)
    model = build().train()
    opt = torch.optim.AdamW(model.parameters())
    tracker = mem_tracker.MemTracker()
    tracker.track_external(model, opt)
    with tracker:
        outputs = model(x)
        loss = outputs.mean()
        loss.backward()
        opt.step()
    assert report.totals.train_peak_bytes == tracker.get_tracker_snapshot("peak")[torch.device("cpu")]["Total"]


def _tiny_llama():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=128,
                                      max_position_embeddings=64)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config)


def test_fake_tensors_count_what_real_tensors_do():
    """The 7B benchmark's architecture (benchmarks/train_7b_meta.py) scaled down: on fake tensors every
    training figure, in total and per module, is exactly the one taken on real tensors."""
    model = _tiny_llama()
    ids = torch.randint(0, 128, (1, 16))
    inputs = {"input_ids": ids, "labels": ids}
    real = mevreport.analyze(model, inputs, device="cpu", train=True, optimizer="adamw", runs=0)
    fake = mevreport.analyze(model, inputs, device="meta", train=True, optimizer="adamw", runs=0, stats=False)
    assert fake.capture.fake and not real.capture.fake
    assert real.training.loss.source == "output" == fake.training.loss.source
    for f in MEMORY_FIELDS:
        assert getattr(fake.totals, f) == getattr(real.totals, f), f
    per_module = ("saved_activation_bytes", "grad_bytes", "optimizer_state_bytes", "backward_macs")
    assert [[getattr(m, f) for f in per_module] for m in fake.modules] == \
           [[getattr(m, f) for f in per_module] for m in real.modules]
    assert fake.memory_timeline == real.memory_timeline
    # AdamW: exp_avg and exp_avg_sq like each parameter, and a float32 step per parameter tensor
    params = list(model.parameters())
    assert real.totals.optimizer_state_bytes == sum(2 * p.numel() * 4 + 4 for p in params)
    assert real.totals.grad_bytes == sum(p.numel() * 4 for p in params)
    assert all(g.stats is None for g in fake.grads) and all(g.stats is not None for g in real.grads)


def test_model_built_on_meta_trains_on_fake_tensors():
    with torch.device("meta"):
        model = _tiny_llama()
    ids = torch.zeros(1, 16, dtype=torch.long)
    r = mevreport.analyze(model, {"input_ids": ids, "labels": ids}, train=True, optimizer="sgd", runs=0)
    assert r.capture.fake and r.totals.optimizer_state_bytes == 0
    assert r.totals.grad_bytes == sum(p.numel() * 4 for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_cli_train_writes_training_fields(tmp_path):
    out, doc = tmp_path / "r.html", tmp_path / "r.json"
    done = run_cli("report", "tests.models:TwoLinear", "--input-shape", "2,4", "--train", "--optimizer", "adam",
                   "--runs", "0", "-q", "-o", str(out), "--json", str(doc))
    assert done.returncode == 0, done.stderr
    d = json.loads(doc.read_text())
    assert d["training"] == {"loss": {"source": "synthetic", "name": "sum of the means of the floating-point outputs"},
                             "optimizer": {"class_name": "Adam"}}
    assert {n["phase"] for n in d["nodes"]} == {"forward", "backward", "optimizer"}
    assert d["totals"]["grad_bytes"] == d["totals"]["param_bytes"]
    assert mevreport.load(out).totals == mevreport.load(doc).totals


@pytest.mark.parametrize(("args", "message"), [
    (["--train", "--optimizer", "lion"], "unknown --optimizer 'lion'"),
    (["--train", "--loss", "notaspec"], "malformed --loss 'notaspec'"),
    (["--train", "--loss", "no_such_module_xyz:fn"], "bad --loss"),
    (["--optimizer", "sgd"], "add --train"),
])
def test_cli_bad_train_options_one_line_exit_2(tmp_path, args, message):
    out = tmp_path / "r.html"
    done = run_cli("report", "tests.models:TwoLinear", "--input-shape", "2,4", "-o", str(out), *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not out.exists()


def test_fake_step_with_a_stepped_optimizer_instance():
    """A user's Adam after one step (its step counts are read with .item()): on fake tensors its state is
    copied in and the step runs; the figures are the real step's and the user's optimizer is untouched."""
    model, x = _mlp(), torch.randn(16, 64)
    opt = torch.optim.Adam(model.parameters())
    model(x).mean().backward()
    opt.step()
    steps = [s["step"].item() for s in opt.state.values()]
    fake = mevreport.analyze(model, x, device="meta", train=True, optimizer=opt, runs=0, stats=False)
    real = mevreport.analyze(model, x, device="cpu", train=True, optimizer=opt, runs=0, stats=False)
    for f in MEMORY_FIELDS:
        assert getattr(fake.totals, f) == getattr(real.totals, f), f
    assert real.totals.optimizer_state_bytes == sum(2 * p.numel() * 4 + 4 for p in model.parameters())
    assert [s["step"].item() for s in opt.state.values()] == steps == [1.0] * 6
