"""Distributed runs (DESIGN §7): one real two-process gloo job on CPU, shared by every assertion here.

tests/dist_job.py runs under ``torchrun --standalone --nproc-per-node 2`` and
calls ``mevreport.generate`` on every rank for the same small transformer
wrapped four ways (DDP, FSDP2, tensor parallel, FSDP+TP on a 2-d mesh).  The
job is bounded by a timeout, so a deadlock (ranks diverging in their
collectives) fails the test instead of stalling CI.  Reference figures come
from the same model analysed here, in one process; the per-rank and
communication bytes are derived by hand below.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mevreport

from .models_dist import BATCH, DIM, HEADS, HIDDEN, LAYERS, SEQ, VOCAB, build

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="needs torch.distributed with gloo")
HERE = Path(__file__).resolve().parent
MODES = ("ddp", "fsdp", "tp", "fsdp+tp")
F32 = 4


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    env = dict(os.environ, PYTHONPATH=str(HERE.parent), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(HERE / "dist_job.py"), str(out)]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:  # a hang: ranks waiting in different collectives
        pytest.fail(f"the two-process job did not finish in 120 s (deadlock?): {(exc.stderr or b'')[-2000:]!r}")
    assert done.returncode == 0, done.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def reference() -> mevreport.Report:
    model, ids = build()
    return mevreport.analyze(model, ids, runs=0)


def _report(job: Path, mode: str) -> mevreport.Report:
    return mevreport.load(job / f"{mode}.html")


def _side(job: Path, mode: str, rank: int) -> dict:
    return json.loads((job / f"{mode}.rank{rank}.json").read_text())


# --- by hand ---------------------------------------------------------------------------------
LINEAR = lambda i, o: i * o + o  # noqa: E731
BLOCK_PARAMS = 2 * 2 * DIM + 4 * LINEAR(DIM, DIM) + LINEAR(DIM, HIDDEN) + LINEAR(HIDDEN, DIM)
PARAMS = VOCAB * DIM + LAYERS * BLOCK_PARAMS + LINEAR(DIM, VOCAB)
TOKENS = BATCH * SEQ
BLOCK_MACS = 4 * TOKENS * DIM * DIM + 2 * BATCH * HEADS * SEQ * SEQ * (DIM // HEADS) + 2 * TOKENS * DIM * HIDDEN
MACS = LAYERS * BLOCK_MACS + TOKENS * DIM * VOCAB
# tensor parallel over 2 ranks: q, k, v, up column-wise (weight rows and bias halved), o, down row-wise
# (weight columns halved, bias replicated), norms, embedding and head replicated
TP_BLOCK = (3 * LINEAR(DIM, DIM) // 2 + (DIM * DIM // 2 + DIM) + LINEAR(DIM, HIDDEN) // 2
            + (HIDDEN * DIM // 2 + DIM) + 2 * 2 * DIM)
TP_RANK_PARAM_BYTES = F32 * (LAYERS * TP_BLOCK + VOCAB * DIM + LINEAR(DIM, VOCAB))
# row-wise layers end with an all-reduce of their partial (batch, seq, dim) output: two per block
TP_COMM = LAYERS * 2 * TOKENS * DIM * F32


def test_one_report_per_mode_and_no_rank_diverged(job: Path):
    assert sorted(p.name for p in job.glob("*.html")) == sorted([f"{m}.html" for m in MODES] +
                                                                ["fsdp-train.html", "tp-train.html"])
    for mode in MODES:
        a, b = _side(job, mode, 0), _side(job, mode, 1)
        assert a["ops"] == b["ops"] and a["comm"] == b["comm"]   # the same ops and collectives, in order
        assert a["distributed"] == b["distributed"]              # every rank holds every rank's row
    assert _report(job, "tp").distributed.writer_rank == 1      # generate(writer_rank=1)
    assert _report(job, "fsdp").distributed.writer_rank == 0
    page = (job / "tp.html").read_text(encoding="utf-8")
    table = page[page.index('id="rank-table"'):page.index("</table>", page.index('id="rank-table"'))]
    assert table.count("<tr data-rank=") == 2 and table.count(">straggler<") == 1


@pytest.mark.parametrize("mode", MODES)
def test_global_params_macs_and_weight_stats_equal_the_unsharded_model(job: Path, reference, mode: str):
    r = _report(job, mode)
    assert r.totals.params == reference.totals.params == PARAMS
    assert r.totals.macs == reference.totals.macs == MACS
    assert r.totals.flops == reference.totals.flops
    assert r.totals.param_bytes == PARAMS * F32
    assert {w.name: w for w in r.weight_stats} == {w.name: w for w in reference.weight_stats}  # exact
    assert [(m.path, m.params) for m in r.modules if m.path in {"", "blocks.0", "head"}] == \
        [(m.path, m.params) for m in reference.modules if m.path in {"", "blocks.0", "head"}]
    d = r.distributed
    assert d.world_size == 2 and d.backend == "gloo" and not d.simulated and [x.rank for x in d.ranks] == [0, 1]
    assert all(x.latency_ms is not None for x in d.ranks)


def _stats_by_module_op(r: mevreport.Report, op: str) -> dict[str, object]:
    return {n.module_path: n.stats for n in r.nodes if n.op == op}


@pytest.mark.parametrize("mode", MODES)
def test_activation_stats_are_global(job: Path, reference, mode: str):
    """GELU runs on each rank's half of the hidden units under tensor parallelism: its statistics are the
    union of both halves, equal to the unsharded model's (the matmul before it may round differently
    when split, so moments to float32 precision; counts exact)."""
    r = _report(job, mode)
    for op in ("aten.gelu.default", "aten.native_layer_norm.default"):
        got, want = _stats_by_module_op(r, op), _stats_by_module_op(reference, op)
        assert got.keys() == want.keys() and got
        for path, s in got.items():
            w = want[path]
            assert s.numel == w.numel and s.nan_count == w.nan_count == 0
            assert s.mean == pytest.approx(w.mean, rel=1e-5, abs=1e-6)
            assert s.std == pytest.approx(w.std, rel=1e-5)
            assert s.min == pytest.approx(w.min, rel=1e-5) and s.max == pytest.approx(w.max, rel=1e-5)
            assert sum(s.histogram.counts) == sum(w.histogram.counts) == w.numel
            if mode in ("ddp", "fsdp"):  # the same kernels on the same values: bit for bit
                assert s == w


def test_fsdp_per_rank_shards_and_all_gathers_by_hand(job: Path):
    r = _report(job, "fsdp")
    # every parameter's dim 0 is even: each rank holds exactly half of each
    half = PARAMS * F32 // 2
    assert [(x.param_bytes, x.grad_bytes, x.optimizer_state_bytes) for x in r.distributed.ranks] == [(half, half, 0)] * 2
    gathers = [n for n in r.nodes if n.comm_bytes is not None]
    # one all-gather per sharded block in the recorded call (the root keeps its parameters unsharded after
    # the first forward): each rank contributes its half of the block's flat parameters
    assert [(n.op, n.comm_bytes) for n in gathers] == [("c10d._allgather_base_.default", BLOCK_PARAMS * F32 // 2)] * 2
    assert [n.outputs[0].shape for n in gathers] == [(BLOCK_PARAMS,)] * 2
    assert r.totals.comm_bytes == LAYERS * BLOCK_PARAMS * F32 // 2 == sum(x.comm_bytes for x in r.distributed.ranks) / 2
    assert r.distributed.mesh.shape == (2,) and r.distributed.mesh.dim_names == ("dp",)
    assert not [w for w in r.warnings if w.kind in ("nan_origin", "nan_discarded")]  # buffers in flight unread


@pytest.mark.parametrize("mode", ["tp", "fsdp+tp"])
def test_tensor_parallel_shards_and_all_reduces_by_hand(job: Path, reference, mode: str):
    r = _report(job, mode)
    assert [x.param_bytes for x in r.distributed.ranks] == [TP_RANK_PARAM_BYTES] * 2
    reduces = [n for n in r.nodes if n.comm_bytes is not None]
    assert [(n.op, n.comm_bytes) for n in reduces] == [("_c10d_functional.all_reduce.default", TOKENS * DIM * F32)] * 4
    assert r.totals.comm_bytes == TP_COMM and all(x.comm_bytes == TP_COMM for x in r.distributed.ranks)
    gelu = [n for n in r.nodes if n.op == "aten.gelu.default"]
    assert [n.outputs[0].shape for n in gelu] == [(BATCH, SEQ, HIDDEN // 2)] * LAYERS  # one rank's half
    assert all(n.shard_factor == 2 and n.inputs and n.flops == TOKENS * HIDDEN for n in gelu)
    assert r.totals.peak_activation_bytes == reference.totals.peak_activation_bytes
    want_mesh = ((2,), ("tp",)) if mode == "tp" else ((1, 2), ("dp", "tp"))
    assert (r.distributed.mesh.shape, r.distributed.mesh.dim_names) == want_mesh


@pytest.mark.parametrize("mode", ["fsdp", "tp"])
def test_trace_marks_the_collectives_as_communication(job: Path, mode: str):
    from mevreport.render.trace import trace_events
    r = _report(job, mode)
    comm = [e for e in trace_events(r)["traceEvents"] if e.get("cat") == "comm"]
    want = [(n.id, n.op, n.comm_bytes) for n in r.nodes if n.comm_bytes is not None]
    assert [(e["args"]["node"], e["name"], e["args"]["comm_bytes"]) for e in comm] == want
    assert len(want) == {"fsdp": 2, "tp": 4}[mode]


ROOT_PARAMS = VOCAB * DIM + LINEAR(DIM, VOCAB)  # embedding and head: FSDP2's root group
STEPS = (LAYERS * 16 + 3) * F32  # Adam's step counter: one float32 scalar per parameter tensor, not sharded


@pytest.fixture(scope="module")
def reference_step() -> mevreport.Report:
    model, ids = build()
    return mevreport.analyze(model, ids, runs=0, train=True, optimizer="adam")


def test_fsdp_training_step_communication_forward_and_backward_by_hand(job: Path, reference_step):
    """FSDP2 step of a fresh model: forward all-gathers every group (the root first) of its half; backward
    all-gathers the resharded blocks again and reduce-scatters each group's whole gradient."""
    r = _report(job, "fsdp-train")
    assert (r.totals.params, r.totals.macs, r.totals.backward_macs) == \
        (PARAMS, MACS, reference_step.totals.backward_macs)
    assert r.totals.optimizer_state_bytes == reference_step.totals.optimizer_state_bytes == 2 * PARAMS * F32 + STEPS
    comm = [(n.phase, n.op.split(".")[1], n.comm_bytes) for n in r.nodes if n.comm_bytes is not None]
    half_block = BLOCK_PARAMS * F32 // 2
    assert comm == ([("forward", "_allgather_base_", ROOT_PARAMS * F32 // 2)] + [("forward", "_allgather_base_", half_block)] * 2
                    + [("backward", "_allgather_base_", half_block)] * 2
                    + [("backward", "_reduce_scatter_base_", BLOCK_PARAMS * F32)] * 2
                    + [("backward", "_reduce_scatter_base_", ROOT_PARAMS * F32)])
    assert r.totals.comm_bytes == PARAMS * F32 // 2
    assert r.totals.backward_comm_bytes == 2 * half_block + (2 * BLOCK_PARAMS + ROOT_PARAMS) * F32
    half = PARAMS * F32 // 2
    assert [(x.param_bytes, x.grad_bytes, x.optimizer_state_bytes, x.comm_bytes) for x in r.distributed.ranks] == \
        [(half, half, 2 * half + STEPS, r.totals.comm_bytes + r.totals.backward_comm_bytes)] * 2
    page = (job / "fsdp-train.html").read_text(encoding="utf-8")
    assert "42.6 KiB in the backward" in page  # 43,584 bytes


def test_simulated_fsdp_training_step_matches_the_real_job(job: Path):
    """The same step planned on 2 fake ranks in one process communicates what the real job did, forward
    and backward (optimizer state per rank is not simulated: 0, the global total is measured)."""
    with torch.device("meta"):
        model = type(build()[0])()
    _, ids = build()
    sim = mevreport.analyze(model, ids, device="meta", world_size=2, shard="fsdp", train=True, optimizer="adam")
    real = _report(job, "fsdp-train")
    assert (sim.totals.comm_bytes, sim.totals.backward_comm_bytes, sim.totals.optimizer_state_bytes) == \
        (real.totals.comm_bytes, real.totals.backward_comm_bytes, real.totals.optimizer_state_bytes)
    assert [(x.param_bytes, x.grad_bytes, x.comm_bytes) for x in sim.distributed.ranks] == \
        [(x.param_bytes, x.grad_bytes, x.comm_bytes) for x in real.distributed.ranks]
    assert [x.optimizer_state_bytes for x in sim.distributed.ranks] == [0, 0]


def test_tensor_parallel_training_step_all_reduces_by_hand(job: Path, reference_step):
    """Row-wise layers all-reduce their output in forward (2 a block); in backward each column-wise layer
    all-reduces the gradient of its replicated input (q, k, v, up: 4 a block)."""
    r = _report(job, "tp-train")
    assert (r.totals.params, r.totals.macs, r.totals.backward_macs) == \
        (PARAMS, MACS, reference_step.totals.backward_macs)
    comm = [(n.phase, n.comm_bytes) for n in r.nodes if n.comm_bytes is not None]
    assert comm == [("forward", TOKENS * DIM * F32)] * 4 + [("backward", TOKENS * DIM * F32)] * 8
    assert (r.totals.comm_bytes, r.totals.backward_comm_bytes) == (TP_COMM, 2 * TP_COMM)
    assert [(x.param_bytes, x.grad_bytes, x.optimizer_state_bytes, x.comm_bytes) for x in r.distributed.ranks] == \
        [(TP_RANK_PARAM_BYTES, TP_RANK_PARAM_BYTES, 2 * TP_RANK_PARAM_BYTES + STEPS, 3 * TP_COMM)] * 2


def test_ddp_is_analysed_through_its_module(job: Path, reference):
    r = _report(job, "ddp")
    assert [m.path for m in r.modules] == [m.path for m in reference.modules]
    assert [x.param_bytes for x in r.distributed.ranks] == [PARAMS * F32] * 2  # replicated
    assert r.totals.comm_bytes == 0 and "DistributedDataParallel" in r.distributed.notes[0]
    assert r.distributed.mesh is None


def test_single_process_document_has_no_distributed_fields(reference):
    doc = reference.to_dict()
    assert "distributed" not in doc and "comm_bytes" not in doc["totals"]
    assert all("comm_bytes" not in n and "shard_factor" not in n for n in doc["nodes"])
    assert mevreport.Report.from_dict(doc) == reference


def test_simulated_tensor_parallel_matches_the_real_job(job: Path):
    """The same model planned on 2 fake ranks (one process) holds and sends what the real job did."""
    model, ids = build()
    plan = {"blocks.*.attn.[qkv]": "colwise", "blocks.*.attn.o": "rowwise", "blocks.*.mlp.up": "colwise",
            "blocks.*.mlp.down": "rowwise"}
    sim = mevreport.analyze(model, ids, device="meta", world_size=2, shard="tp", tp_plan=plan)
    real = _report(job, "tp")
    key = lambda x: (x.rank, x.param_bytes, x.grad_bytes, x.peak_activation_bytes, x.comm_bytes)  # noqa: E731
    assert [key(x) for x in sim.distributed.ranks] == [key(x) for x in real.distributed.ranks]
    assert (sim.totals.macs, sim.totals.flops, sim.totals.comm_bytes) == (real.totals.macs, real.totals.flops,
                                                                           real.totals.comm_bytes)
    assert sim.distributed.simulated and not real.distributed.simulated


@pytest.mark.parametrize("mode", ["fsdp", "tp"])
def test_diff_against_single_process_lists_communication_as_added(job: Path, reference, mode: str):
    from mevreport.diff import compare
    from mevreport.render.markdown import render_markdown
    d = compare(reference, _report(job, mode))
    assert {t.metric: t.status for t in d.totals if t.metric != "latency_ms"} == {
        "params": "same", "macs": "same", "flops": "same", "comm_bytes": "up",
        "peak_activation_bytes": "up" if mode == "fsdp" else "same"}  # FSDP2's all-gather buffers are activations
    assert not [m for m in d.modules if set(m.changed) - {"latency_ms"} or m.kind != "changed"]
    want = {"fsdp": ("c10d._allgather_base_", 2, LAYERS * BLOCK_PARAMS * F32 // 2),
            "tp": ("_c10d_functional.all_reduce", 4, TP_COMM)}[mode]
    assert [(c.op, c.kind, c.base_count, c.head_count, c.base_bytes, c.head_bytes) for c in d.communication] == \
        [(want[0], "added", 0, want[1], 0, want[2])]
    assert d.total("comm_bytes").head == want[2]
    md = render_markdown(d)
    assert f"| `{want[0]}` | added | 0 \u2192 {want[1]} |" in md and "was run on 2 ranks" in md


def test_lightning_ddp_under_torchrun_writes_one_report_and_ends(tmp_path):
    """MevreportCallback at the end of a 2-process DDP fit: every rank takes part (the analysis makes
    collectives; rank zero alone waited for ever), rank zero writes the one report."""
    pytest.importorskip("lightning")
    env = dict(os.environ, PYTHONPATH=str(HERE.parent), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(HERE / "dist_lightning_job.py"), str(tmp_path)]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the Lightning DDP job did not finish in 120 s: a rank is waiting in a collective")
    assert done.returncode == 0, done.stderr[-4000:]
    assert sorted(p.name for p in tmp_path.glob("*.html")) == ["mevreport.html"]
    sides = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [len(s["paths"]) for s in sides] == [2, 0]
    r = mevreport.load(tmp_path / "mevreport.html")
    assert r.distributed.world_size == 2 and r.totals.params == 4 * 8 + 8 + 8 + 1
    assert [x.param_bytes for x in r.distributed.ranks] == [(4 * 8 + 8 + 8 + 1) * F32] * 2


def test_hugging_face_trainer_under_torchrun_writes_one_report_and_ends(tmp_path):
    """MevreportTrainerCallback at the end of a 2-process DDP Trainer.train: every rank takes part (the main
    process alone waited for ever in the per-rank gather), the main process writes the one report."""
    pytest.importorskip("transformers")
    env = dict(os.environ, PYTHONPATH=str(HERE.parent), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(HERE / "dist_hf_job.py"), str(tmp_path)]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the Trainer DDP job did not finish in 120 s: a rank is waiting in a collective")
    assert done.returncode == 0, done.stderr[-4000:]
    assert sorted(p.name for p in tmp_path.glob("*.html")) == ["mevreport-train.html"]
    sides = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [len(s["paths"]) for s in sides] == [2, 0] and sides[0]["world"] == 2
    r = mevreport.load(tmp_path / "mevreport-train.html")
    params = 4 * 3 + 3
    assert r.distributed.world_size == 2 and r.totals.params == params and r.training is not None
    # the model the callback gets is the one inside DDP: replicated, its gradients and Adam(W)'s two states too
    assert [(x.param_bytes, x.grad_bytes) for x in r.distributed.ranks] == [(params * F32, params * F32)] * 2
    assert all(x.optimizer_state_bytes == r.totals.optimizer_state_bytes for x in r.distributed.ranks)
