"""A tiny Llama (transformers) with its own tensor-parallel plan (``config.base_model_tp_plan``), for
``mevreport report --world-size N --shard tp`` without a plan of ours (tests/test_distributed_sim.py)."""
from __future__ import annotations

import torch

HIDDEN, INTER, VOCAB, LAYERS, HEADS = 16, 32, 32, 1, 2
BATCH, SEQ = 1, 4


def build():
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                         num_attention_heads=HEADS, num_key_value_heads=HEADS, vocab_size=VOCAB,
                         max_position_embeddings=64, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    return model, (torch.zeros(BATCH, SEQ, dtype=torch.long),)
