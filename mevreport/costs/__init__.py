"""Cost rules: import the rule modules so they register, then expose lookups."""
from . import matmul_rules, onnx_rules, pointwise_rules  # noqa: F401  (registration side effects)
from .registry import Cost, cost_of, lookup, rule_table

__all__ = ["Cost", "cost_of", "lookup", "rule_table"]
