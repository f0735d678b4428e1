"""Hugging Face GPT-2 small (the default ``GPT2Config``: 12 layers, hidden 768,
12 heads, vocabulary 50257; 124 M parameters) with random weights, for timing
``mevreport report`` on a real-sized transformer without any download::

    mevreport report benchmarks/gpt2_model.py:build -o gpt2.html --json gpt2.json

``build`` returns the model in eval mode and one batch of 128 token ids,
passed as the ``input_ids`` keyword, so the output holds a KV cache.
"""
from __future__ import annotations

import torch

SEQ_LEN = 128


def build():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).eval()
    ids = torch.randint(0, model.config.vocab_size, (1, SEQ_LEN), generator=torch.Generator().manual_seed(0))
    return model, {"input_ids": ids}
