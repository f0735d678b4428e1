"""Cost rules: import the rule modules so they register, then expose lookups."""
from . import comm_rules, fused_rules, matmul_rules, onnx_rules, pointwise_rules, train_rules  # noqa: F401  (registration side effects)
from .registry import Cost, cost_of, lookup, rule_table

CONVENTIONS = """\
# MACs and FLOPs: conventions and the rule table

This page is generated from the cost registry (`mevreport/costs/`) by
`python -m mevreport.costs > docs/flops.md`; a test checks it is current.

* **MACs** count the multiply-accumulates of matmul-like work only:
  convolutions (1/2/3-d, grouped, transposed), linear / `addmm` / `mm` / `bmm` /
  `baddbmm` / `matmul` / `einsum` / `mv` / `dot`, recurrent layers, and attention
  (Q·Kᵀ and A·V over the full L×S square, masks and causality ignored) in every
  kernel PyTorch may pick, including `_scaled_dot_product_flash_attention_for_cpu`
  and the `nn.MultiheadAttention` fast path `_native_multi_head_attention`;
  the fused `nn.TransformerEncoderLayer` fast path
  `_transformer_encoder_layer_fwd`; grouped (MoE expert) and scaled (float8)
  matmuls `_grouped_mm`, `_scaled_grouped_mm`, `_scaled_mm`; and the backward
  kernels (`convolution_backward`, attention backward) by
  `torch.utils.flop_counter`'s own formulas. Bias adds are not MACs.
* **FLOPs** = 2 × MACs + every other op by the table below: bias adds 1 per
  output element, elementwise ops and activations 1 per output element,
  softmax 5 per element, norms by their formula, reductions 1 per input
  element, pooling 1 per window element; views, copies, indexing and
  random generation 0.
* Grouped-query attention counts every query head (H from q, not from k).
* Ops are counted at the level PyTorch dispatches them (aten): `nn.Linear` on a
  3-d input is a view, an `addmm` (or `mm` without bias) and a view; `einsum`
  arrives as `bmm`; `F.scaled_dot_product_attention` as the kernel it picked.
  Under `--capture export`, an `einsum` of three or more operands is counted
  as torch contracts it, pair by pair (left to right, or opt_einsum's path
  when torch uses it), not as one product over every index.
* Every aten op `torch.utils.flop_counter` counts has a rule here (a test
  walks its registry), and every registered name is an op of the installed
  torch (a test resolves each).
* An op with no rule is **not** counted as zero: it is listed under
  `uncounted_ops` in the report and flagged on its node.

## Rule table

Each row names the symbols (read off the op's shapes and arguments; `bias`,
`affine`, `training`, `transposed` are 0 or 1), then MACs and FLOPs as
expressions over them: the formulas of `mevreport/costs/formulas.py`, which
`tests/test_costs_formulas.py` evaluates against the code. Rows in prose are
algorithms rather than expressions (einsum's contraction path, the backward
kernels by `torch.utils.flop_counter`).

| ops | MACs / FLOPs |
|---|---|
"""


PIPE = "\\|"  # a literal | inside a Markdown table cell


def flops_markdown() -> str:
    """The conventions and the rule table as Markdown, ops sharing a formula on one row."""
    by_formula: dict[str, list[str]] = {}
    for op, formula in rule_table():
        by_formula.setdefault(formula, []).append(op.removeprefix("aten."))
    rows = sorted(by_formula.items(), key=lambda kv: (kv[1][0].lstrip("_"), kv[0]))
    lines = []
    for formula, ops in rows:
        names = ", ".join(f"`{o}`" for o in ops)
        lines.append(f"| {names} | {formula.replace('|', PIPE)} |")
    return CONVENTIONS + "\n".join(lines) + "\n"


__all__ = ["CONVENTIONS", "Cost", "cost_of", "flops_markdown", "lookup", "rule_table"]
