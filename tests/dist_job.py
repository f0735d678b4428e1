"""The multi-process job of tests/test_distributed.py: run under ``torchrun --nproc-per-node 2`` (gloo, CPU).

Every rank builds the same model, wraps it in each mode in turn and calls
``mevreport.generate`` as a training script would; the writer rank writes the
report to OUT/<mode>.html (and a training step's to OUT/<mode>-train.html).  Each rank also writes OUT/<mode>.rank<r>.json with
the op sequence it recorded and its own ``distributed`` rows, so the test can
check that no rank diverged.  Usage: dist_job.py OUT
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from models_dist import build, wrap

import mevreport

WRITERS = {"ddp": 0, "fsdp": 0, "tp": 1, "fsdp+tp": 0}  # tp: another writer rank, as generate(writer_rank=1)
TRAIN = ("fsdp", "tp")


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    for mode, writer in WRITERS.items():
        model, ids = build()
        wrapped = wrap(model, mode, world)
        report = mevreport.generate(wrapped, ids, out / f"{mode}.html", runs=2, writer_rank=writer)
        side = {"ops": [n.op for n in report.nodes], "comm": [n.comm_bytes for n in report.nodes],
                "distributed": report.to_dict()["distributed"]}
        (out / f"{mode}.rank{rank}.json").write_text(json.dumps(side))
        dist.barrier()
    for mode in TRAIN:  # one training step (DESIGN §6) of a freshly wrapped model: backward's collectives too
        model, ids = build()
        mevreport.generate(wrap(model, mode, world), ids, out / f"{mode}-train.html", runs=0, train=True,
                           optimizer="adam")
        dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
