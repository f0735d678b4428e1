"""Simulated worlds (DESIGN §7, ``world_size=`` / ``--world-size``): N ranks planned in one process on
torch's fake process group; per-rank shard and all-gather bytes derived by hand for an uneven split."""
from __future__ import annotations

import json

import pytest
import torch

import mevreport
from mevreport.errors import UsageError

from .conftest import REPO, run_cli
from .models_dist import DIM, HIDDEN, LAYERS, VOCAB, TinyLM, build

F32 = 4
PLAN = {"blocks.*.attn.[qkv]": "colwise", "blocks.*.attn.o": "rowwise", "blocks.*.mlp.up": "colwise",
        "blocks.*.mlp.down": "rowwise"}


def chunk(d0: int, n: int, r: int) -> int:
    """Rows of a dim-0 size ``d0`` that rank ``r`` of ``n`` holds, as torch.chunk splits (FSDP2's rule)."""
    size = -(-d0 // n)
    return max(0, min(d0, (r + 1) * size) - r * size)


def fsdp_shapes() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(dim 0, elements per row) of the root's own parameters and of one block's, in FSDP2's order."""
    root = [(VOCAB, DIM), (VOCAB, DIM), (VOCAB, 1)]  # embedding, head weight, head bias
    block = [(DIM, 1), (DIM, 1)] + [(DIM, DIM), (DIM, 1)] * 4 + [(DIM, 1), (DIM, 1)] \
        + [(HIDDEN, DIM), (HIDDEN, 1), (DIM, HIDDEN), (DIM, 1)]
    return root, block


@pytest.fixture(scope="module")
def meta_model() -> TinyLM:
    with torch.device("meta"):
        return TinyLM()


def test_fsdp_on_three_ranks_by_hand(meta_model):
    """Dims that 3 does not divide: ranks 0 and 1 hold ceil(d/3) rows, rank 2 the rest; every rank's
    all-gather contribution is padded to ceil(d/3) rows (FSDP2 pads so the gathers are equal)."""
    _, ids = build()
    r = mevreport.analyze(meta_model, ids, device="meta", world_size=3, shard="fsdp")
    d = r.distributed
    assert d.simulated and d.world_size == 3 and d.backend == "fake" and d.mesh.shape == (3,)
    root, block = fsdp_shapes()
    params = root + block * LAYERS
    want = [F32 * sum(chunk(d0, 3, rank) * row for d0, row in params) for rank in range(3)]
    assert want[0] == want[1] > want[2]
    assert [x.param_bytes for x in d.ranks] == [x.grad_bytes for x in d.ranks] == want
    padded = [F32 * sum(-(-d0 // 3) * row for d0, row in group) for group in (root, block, block)]
    assert [(n.op, n.comm_bytes) for n in r.nodes if n.comm_bytes is not None] == \
        [("c10d._allgather_base_.default", b) for b in padded]
    assert r.totals.comm_bytes == sum(padded) and all(x.comm_bytes == sum(padded) for x in d.ranks)
    assert all(x.latency_ms is None for x in d.ranks)  # nothing ran
    assert r.totals.params == sum(d0 * row for d0, row in params)
    assert not torch.distributed.is_initialized()  # the fake group is gone afterwards


def test_fsdp_tp_mesh_and_global_figures(meta_model):
    _, ids = build()
    flat = mevreport.analyze(meta_model, ids, device="meta")
    r = mevreport.analyze(meta_model, ids, device="meta", world_size=4, shard="fsdp+tp", tp_size=2, tp_plan=PLAN)
    assert (r.distributed.mesh.shape, r.distributed.mesh.dim_names) == ((2, 2), ("dp", "tp"))
    assert (r.totals.params, r.totals.macs, r.totals.flops) == (flat.totals.params, flat.totals.macs, flat.totals.flops)
    ops = {n.op for n in r.nodes if n.comm_bytes is not None}
    assert ops == {"c10d._allgather_base_.default", "_c10d_functional.all_reduce.default"}


def test_bad_worlds_are_one_line_usage_errors(meta_model):
    _, ids = build()
    with pytest.raises(UsageError, match=r"fsdp, tp, fsdp\+tp"):
        mevreport.analyze(meta_model, ids, device="meta", world_size=4, shard="zero3")
    with pytest.raises(UsageError, match="multiple of the tensor-parallel size 3"):
        mevreport.analyze(meta_model, ids, device="meta", world_size=4, shard="fsdp+tp", tp_size=3)
    with pytest.raises(UsageError, match="tensor-parallel plan"):
        mevreport.analyze(meta_model, ids, device="meta", world_size=2, shard="tp")
    with pytest.raises(UsageError, match="device 'meta'"):
        mevreport.analyze(meta_model, ids, device="cpu", world_size=2)


def test_cli_world_size(tmp_path):
    spec = f"{REPO / 'tests' / 'models_dist.py'}:build"
    out = run_cli("report", spec, "--device", "meta", "--world-size", "3", "--shard", "fsdp",
                  "-o", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.json"), "-q", timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["distributed"]["simulated"] is True and len(doc["distributed"]["ranks"]) == 3
    bad = run_cli("report", spec, "--world-size", "3", "-o", str(tmp_path / "x.html"))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--device meta" in bad.stderr
    assert not (tmp_path / "x.html").exists()


def test_cli_tensor_parallel_with_the_models_own_plan(tmp_path):
    """``--shard tp`` with no plan of ours: a transformers Llama brings ``base_model_tp_plan`` (q, k, v,
    gate, up column-wise; o, down row-wise) and its ``lm_head`` column-wise with the logits gathered."""
    pytest.importorskip("transformers")
    from .models_dist_llama import BATCH, HIDDEN, INTER, SEQ, VOCAB
    spec = f"{REPO / 'tests' / 'models_dist_llama.py'}:build"
    out = run_cli("report", spec, "--device", "meta", "--world-size", "2", "--shard", "tp",
                  "-o", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.json"), "-q", timeout=180)
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    d = doc["distributed"]
    replicated = VOCAB * HIDDEN + 3 * HIDDEN                             # embedding, three RMSNorms
    split = 4 * HIDDEN * HIDDEN + 3 * HIDDEN * INTER + HIDDEN * VOCAB     # attention, MLP, lm_head
    assert doc["totals"]["params"] == replicated + split
    comm = [BATCH * SEQ * HIDDEN * F32] * 2 + [BATCH * SEQ * VOCAB // 2 * F32]  # o, down all-reduce; logits gather
    assert [n["comm_bytes"] for n in doc["nodes"] if "comm_bytes" in n] == comm
    assert [(x["param_bytes"], x["comm_bytes"]) for x in d["ranks"]] == [((replicated + split // 2) * F32, sum(comm))] * 2
    assert d["simulated"] and d["mesh"] == {"shape": [2], "dim_names": ["tp"]}
