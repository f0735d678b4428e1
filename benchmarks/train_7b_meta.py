"""A training step of a 7B Llama-shaped model on fake tensors (issue 14): time, peak RSS, memory counts.

    PYTHONPATH=. python benchmarks/train_7b_meta.py [--layers 32] [--seq 4096] [--json out.json]

LlamaConfig of Llama-2-7B (hidden 4096, intermediate 11008, 32 layers, 32
heads, vocabulary 32000), built on the meta device, batch 1 at sequence
4096 with labels (the model's own loss), AdamW.  Target on the 2-core
development machine: under 2 minutes and 3 GB of peak RSS.  Prints the
training memory totals; ``--layers`` scales the depth down for a quick look.
"""
from __future__ import annotations

import argparse
import resource
import time

import torch

import mevreport


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--seq", type=int, default=4096)
    parser.add_argument("--json", default=None, help="also write the report's JSON document here")
    args = parser.parse_args()
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=args.layers,
                         num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                         max_position_embeddings=args.seq)
    start = time.perf_counter()
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    ids = torch.zeros(1, args.seq, dtype=torch.long)
    built = time.perf_counter() - start
    start = time.perf_counter()
    report = mevreport.analyze(model, {"input_ids": ids, "labels": ids}, device="meta", train=True,
                               optimizer="adamw", runs=0, stats=False)
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux -> GiB
    t = report.totals
    gib = 2.0 ** 30
    print(f"Llama-shaped, {args.layers} layers, seq {args.seq}, batch 1, AdamW, fake tensors")
    print(f"  built in {built:.1f} s; step analysed in {seconds:.1f} s; peak RSS {rss:.2f} GiB; {t.nodes} nodes")
    print(f"  params {t.params / 1e9:.3f} B ({t.param_bytes / gib:.2f} GiB)")
    print(f"  grads {t.grad_bytes / gib:.2f} GiB, optimizer state {t.optimizer_state_bytes / gib:.2f} GiB, "
          f"saved activations {t.saved_activation_bytes / gib:.2f} GiB")
    print(f"  train peak {t.train_peak_bytes / gib:.2f} GiB; forward {t.macs / 1e12:.2f} TMACs, "
          f"backward {t.backward_macs / 1e12:.2f} TMACs")
    if args.json:
        report.save_json(args.json)


if __name__ == "__main__":
    main()
