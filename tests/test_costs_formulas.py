"""The documented cost formulas are the code's: every registered rule's expressions, evaluated on
sample symbols, equal what its formula function returns (so the docs' FLOP table cannot drift).

Each rule is a :class:`~mevreport.costs.formulas.Formula` applied to symbols a binder reads off the
node; the docs print the formula's ``macs`` / ``flops`` expressions.  Breaking either side (an
expression, or the function) fails ``test_every_documented_formula_is_its_code``.
"""
from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as nnf
from torch import nn

import mevreport.costs  # registers the rules
from mevreport.capture import capture
from mevreport.costs import formulas as F
from mevreport.costs.registry import Cost, entries, lookup


def documented(formula: F.Formula, symbols: dict) -> Cost:
    """The formula's documented expressions evaluated on ``symbols`` (what the docs claim).

    Here, not in the package: mevreport evaluates no text (tests/test_nothing_executed.py),
    and these strings are the package's own docs, not input.
    """
    env = {"__builtins__": {}, "numel": math.prod, "prod": math.prod, **symbols}
    macs = eval(formula.macs, env)
    flops = eval(formula.flops, {**env, "macs": macs})
    return Cost(int(macs), int(flops))

# Rules that are algorithms, not expressions: described in prose, checked by tests/test_costs*.py.
PROSE = {"aten.einsum", "onnx.Einsum", "aten.convolution_backward",
         "aten._scaled_dot_product_efficient_attention_backward", "aten._scaled_dot_product_flash_attention_backward",
         "aten._scaled_dot_product_cudnn_attention_backward", "aten._flash_attention_backward",
         "aten._efficient_attention_backward"}


def _formulas() -> dict[str, F.Formula]:
    found: dict[str, F.Formula] = {}
    for entry in entries().values():
        if entry.formula is not None:
            found.setdefault(entry.formula.name, entry.formula)
    return found


def test_every_rule_has_a_checked_formula_or_is_a_listed_algorithm():
    prose = {op for op, e in entries().items() if e.formula is None}
    # The training step's backward and optimizer rules (costs/train_rules.py) are described in prose
    # and checked by value against hand-derived counts in tests/test_train.py.
    training = {op for op, e in entries().items()
                if e.formula is None and getattr(e.rule, "__module__", "") == "mevreport.costs.train_rules"}
    assert len(training) > 20
    assert prose - training == PROSE
    assert all(e.prose for op, e in entries().items() if op in PROSE)


@pytest.mark.parametrize("name", sorted(_formulas()))
def test_every_documented_formula_is_its_code(name):
    formula = _formulas()[name]
    rng = random.Random(name)
    for _ in range(200):
        symbols = formula.sample(rng)
        assert documented(formula, symbols) == formula(**symbols), (name, symbols, formula.text())


def test_the_check_fails_when_text_and_code_disagree():
    """A formula whose text says 2·MACs + m·n while its code adds nothing is caught."""
    wrong = F.Formula(F.mm.fn, "m*k*n", "2*macs + m*n")
    rng = random.Random(0)
    samples = [wrong.sample(rng) for _ in range(50)]
    assert any(documented(wrong, s) != wrong(**s) for s in samples)


def test_formulas_call_flop_counter_where_it_is_right():
    """mm, bmm and conv are torch.utils.flop_counter's (its FLOPs are 2·MACs); ours adds bias adds."""
    from torch.utils.flop_counter import conv_flop_count, mm_flop

    assert F.mm(m=3, k=5, n=7) == Cost(105, int(mm_flop((3, 5), (5, 7))))
    assert F.addmm(m=3, k=5, n=7, bias=True) == Cost(105, 210 + 21)
    x, w, y = (2, 4, 9, 9), (6, 2, 3, 3), (2, 6, 7, 7)  # groups = 2
    assert F.conv(x=x, w=w, y=y, transposed=False, bias=False).flops == conv_flop_count(list(x), list(w), list(y))
    assert F.conv(x=x, w=w, y=y, transposed=False, bias=True).macs == 2 * 6 * 49 * 2 * 9
    assert F.attention(b=1, h=2, l=3, s=4, e=5, ev=6) == Cost(2 * 3 * 4 * 11, 2 * 2 * 3 * 4 * 11 + 5 * 2 * 3 * 4)


def test_docs_show_the_checked_expressions():
    table = dict(mevreport.costs.rule_table())
    assert table["aten.addmm"] == "a (m,k), b (k,n), bias = 1: MACs m·k·n; FLOPs 2·MACs + bias·m·n"
    assert table["onnx.Gemm"].endswith(F.addmm.text())
    assert table["aten.relu"].endswith("FLOPs y")


class _Mixed(nn.Module):
    """Conv, batch norm, pooling, linear, attention, layer norm, softmax, an LSTM: many rules at once."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, groups=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(4 * 4, 16)
        self.norm = nn.LayerNorm(16)
        self.lstm = nn.LSTM(16, 8, batch_first=True)
        self.mha = nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x):
        h = nnf.max_pool2d(torch.relu(self.bn(self.dw(self.conv(x)))), 2)
        h = nnf.adaptive_avg_pool2d(self.up(h), 4).flatten(2)           # (B, 4, 16)
        h = self.norm(self.fc(h))
        q = h.view(2, 4, 2, 8).transpose(1, 2)
        a = nnf.scaled_dot_product_attention(q, q, q).transpose(1, 2).reshape(2, 4, 16)
        m, _ = self.mha(a, a, a)
        out, _ = self.lstm(m)
        return torch.softmax(out @ out.transpose(1, 2), -1).sum()


def test_every_rule_met_in_a_capture_is_its_documented_formula():
    """On real captured nodes: each rule's result equals its documented expressions evaluated on
    the symbols its binder reads (the rule-level check; the sample test above covers the formulas)."""
    graph = capture(_Mixed().eval(), torch.randn(2, 3, 17, 17), runs=0, stats=False)
    met = set()
    for node in graph.nodes:
        entry = lookup(node.op)
        if entry is None or entry.formula is None or entry.bind is None:
            continue
        symbols = entry.bind(node)
        assert symbols is not None
        assert entry.rule(node) == documented(entry.formula, dict(symbols)), (node.op, symbols)
        met.add(entry.formula.name)
    assert {"conv", "batch_norm", "pool", "reduction", "addmm", "layer_norm", "attention", "softmax",
            "elementwise", "bmm", "zero"} <= met, met
