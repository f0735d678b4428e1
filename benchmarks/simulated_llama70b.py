"""Planning a 70B Llama on 64 simulated ranks (issue 15): time and peak RSS of ``analyze(world_size=64)``.

    PYTHONPATH=. python benchmarks/simulated_llama70b.py [--seq 2048] [--shards fsdp,fsdp+tp]

The model is transformers' ``LlamaForCausalLM`` with Llama-3-70B's shape
(hidden 8192, 80 layers, 64 heads / 8 KV heads, MLP 28672, vocabulary 128256),
built on meta; each run shards a fake copy in torch's fake process group of
64 ranks (``fsdp``: 64-way FSDP2; ``fsdp+tp``: 8 × 8, tensor parallel within
8).  Each shard kind runs in a fresh process so its RSS is its own.  Prints
one table row per kind: seconds, peak RSS, nodes, params, TFLOPs, one rank's
parameter bytes and its communication bytes.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(shard: str, seq: int) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    import mevreport
    config = LlamaConfig(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
                         num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192,
                         torch_dtype="bfloat16")
    with torch.device("meta"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    ids = torch.zeros((1, seq), dtype=torch.long)
    start = time.perf_counter()
    r = mevreport.analyze(model, ids, device="meta", world_size=64, shard=shard, tp_size=8)
    seconds = time.perf_counter() - start
    row = r.distributed.ranks[0]
    return {"shard": shard, "seconds": seconds, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "nodes": len(r.nodes), "params": r.totals.params, "tflops": r.totals.flops / 1e12,
            "rank_param_gib": row.param_bytes / 2**30, "rank_comm_gib": row.comm_bytes / 2**30}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--shards", default="fsdp,fsdp+tp")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one, a.seq)))
        return
    print(f"{'shard':>8} {'time (s)':>9} {'RSS (MiB)':>10} {'nodes':>6} {'params':>14} {'TFLOPs':>8} "
          f"{'rank params (GiB)':>18} {'rank comm (GiB)':>16}")
    for shard in a.shards.split(","):
        out = subprocess.run([sys.executable, __file__, "--one", shard, "--seq", str(a.seq)], capture_output=True,
                             text=True, check=True).stdout.strip().splitlines()[-1]
        d = json.loads(out)
        print(f"{d['shard']:>8} {d['seconds']:>9.1f} {d['rss_mib']:>10.0f} {d['nodes']:>6} {d['params']:>14,} "
              f"{d['tflops']:>8.1f} {d['rank_param_gib']:>18.3f} {d['rank_comm_gib']:>16.3f}")


if __name__ == "__main__":
    main()
