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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..graph import Node, TensorMeta

if TYPE_CHECKING:
    from .formulas import Formula


@dataclass(frozen=True)
class Cost:
    macs: int
    flops: int


ZERO = Cost(0, 0)
Rule = Callable[[Node], "Cost | None"]
Symbols = Mapping[str, Any]
Binder = Callable[[Node], "Symbols | None"]


@dataclass(frozen=True)
class RuleEntry:
    """A rule, and what the docs' table says of it.

    Most rules are a :class:`~.formulas.Formula` and a binder that reads its symbols off the
    node (``where`` says how, for the docs); ``rule`` then is the formula applied to what
    the binder returns, so the documented expressions (checked against the formula by a
    test) are the code's.  A few rules are algorithms, not expressions (einsum's
    contraction path, flop_counter's backward formulas): ``formula`` is None and ``prose``
    describes them.
    """

    rule: Rule
    formula: Formula | None = None
    bind: Binder | None = None
    where: str = ""
    prose: str = ""

    @property
    def text(self) -> str:
        """One line for the docs' table."""
        if self.formula is None:
            return self.prose
        return f"{self.where}: {self.formula.text()}" if self.where else self.formula.text()


_RULES: dict[str, RuleEntry] = {}


def _add(ops: tuple[str, ...], entry: RuleEntry) -> None:
    for op in ops:
        if op in _RULES:
            raise ValueError(f"cost rule for {op} registered twice")
        _RULES[op] = entry


def register(*ops: str, formula: Formula, where: str = "") -> Callable[[Binder], Binder]:
    """Register ``formula`` for each op name, its symbols read off the node by the decorated
    binder (None: uncounted); later registrations must not clash."""

    def deco(bind: Binder) -> Binder:
        def rule(node: Node) -> Cost | None:
            symbols = bind(node)
            return None if symbols is None else formula(**symbols)

        _add(ops, RuleEntry(rule, formula, bind, where))
        return bind

    return deco


def register_rule(*ops: str, prose: str) -> Callable[[Rule], Rule]:
    """Register a rule that is an algorithm rather than an expression, described by ``prose``."""

    def deco(rule: Rule) -> Rule:
        _add(ops, RuleEntry(rule, prose=prose))
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
    """(op, formula text) for every registered op, sorted: the docs' FLOP table."""
    return sorted((op, e.text) for op, e in _RULES.items())


def entries() -> dict[str, RuleEntry]:
    """Every registered op and its entry (for the tests that check every rule)."""
    return dict(_RULES)


# --- helpers shared by rules -------------------------------------------------

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


def arg(node: Node, index: int, name: str, default: Any = None) -> Any:  # an op's scalars: int, list, ...
    """Positional argument ``index`` or keyword ``name``."""
    if index < len(node.args):
        return node.args[index]
    return node.kwarg(name, default)


def out_numel(node: Node) -> int:
    return node.outputs[0].numel if node.outputs else 0


def in_numel(node: Node) -> int:
    ts = tensor_args(node)
    return ts[0].numel if ts else 0


def out_shape(node: Node) -> tuple[int, ...]:
    return tuple(node.outputs[0].shape) if node.outputs else ()
