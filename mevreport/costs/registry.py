"""The one registry of cost rules, keyed by op name (DESIGN §3, §5).

A rule takes a captured :class:`~mevreport.graph.Node` (shapes and scalar
arguments, no tensors) and returns its :class:`Cost`.  Rules are registered
with :func:`register` under full overload names (``aten.addmm.default``) or
overload packets (``aten.addmm``, matching every overload).  There is no
second table: the documentation's FLOP table is generated from this registry
(:func:`rule_table`).  An op with no rule gets ``None`` from :func:`cost_of`,
and the analysis lists it as uncounted rather than calling it zero.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..graph import Node, TensorMeta


@dataclass(frozen=True)
class Cost:
    macs: int
    flops: int


ZERO = Cost(0, 0)
Rule = Callable[[Node], Cost]


@dataclass(frozen=True)
class RuleEntry:
    rule: Rule
    formula: str  # one line for the docs' table


_RULES: dict[str, RuleEntry] = {}


def register(*ops: str, formula: str) -> Callable[[Rule], Rule]:
    """Register ``rule`` for each op name; later registrations must not clash."""

    def deco(rule: Rule) -> Rule:
        for op in ops:
            if op in _RULES:
                raise ValueError(f"cost rule for {op} registered twice")
            _RULES[op] = RuleEntry(rule, formula)
        return rule

    return deco


def _packet(op: str) -> str:
    """``aten.add.Tensor`` -> ``aten.add``; names without an overload stay."""
    parts = op.split(".")
    return ".".join(parts[:2]) if len(parts) >= 3 else op


def lookup(op: str) -> RuleEntry | None:
    return _RULES.get(op) or _RULES.get(_packet(op))


def cost_of(node: Node) -> Cost | None:
    """The node's cost, or None when no rule covers its op."""
    entry = lookup(node.op)
    return entry.rule(node) if entry is not None else None


def rule_table() -> list[tuple[str, str]]:
    """(op, formula) for every registered op, sorted: the docs' FLOP table."""
    return sorted((op, e.formula) for op, e in _RULES.items())


# --- helpers shared by rules -------------------------------------------------

def prod(shape: tuple[int, ...] | list[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def tensor_args(node: Node) -> list[TensorMeta]:
    """Tensor arguments in call order (lists of tensors flattened)."""
    found: list[TensorMeta] = []

    def walk(v: object) -> None:
        if isinstance(v, TensorMeta):
            found.append(v)
        elif isinstance(v, tuple):
            for x in v:
                walk(x)

    for a in node.args:
        walk(a)
    for _, v in node.kwargs:
        walk(v)
    return found


def arg(node: Node, index: int, name: str, default: object = None) -> object:
    """Positional argument ``index`` or keyword ``name``."""
    if index < len(node.args):
        return node.args[index]
    return node.kwarg(name, default)


def out_numel(node: Node) -> int:
    return node.outputs[0].numel if node.outputs else 0


def in_numel(node: Node) -> int:
    ts = tensor_args(node)
    return ts[0].numel if ts else 0
