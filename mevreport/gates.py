"""CI gates: ``--fail-if EXPR`` conditions on the totals of two reports.

An expression is ``METRIC OP VALUE``; the gate *fails* when the condition is
true, like coverage.py's ``--fail-under`` turned into a general comparison.

* ``macs>+5%``: a signed percentage compares the relative change from BASE
  to HEAD;
* ``params>+0``, ``latency_ms>+2``: a signed number compares the absolute
  change (HEAD - BASE, in the metric's unit);
* ``flops>2e9``, ``peak_activation_bytes>=512MiB``: an unsigned number
  compares HEAD's own value.

The training step's totals (``train_peak_bytes>+5%``, ``backward_macs``,
``grad_bytes``, ...; DESIGN §6) gate the same way; a report made without
``--train`` has none, and naming one is an error, not a pass.

OP is one of ``>``, ``>=``, ``<``, ``<=``.  Numbers take SI suffixes
(``k``/``K``, ``M``, ``G``, ``T``) or binary ones (``KiB``, ``MiB``,
``GiB``, ``TiB``).  A latency change within the run-to-run spread measured
in either report counts as no change.  Parsing errors and metrics a report
did not measure raise :class:`UsageError` (exit code 2), never a silent pass.
"""
from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from .diff import TRAIN_METRICS, latency_noise_ms, relative_change, uncounted_sides, within_noise
from .errors import UsageError
from .report import Report, Totals

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}
_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
           "KiB": 2.0 ** 10, "MiB": 2.0 ** 20, "GiB": 2.0 ** 30, "TiB": 2.0 ** 40}
_PATTERN = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>>=|<=|>|<)\s*(?P<sign>[+-]?)\s*"
    r"(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<suffix>%|KiB|MiB|GiB|TiB|[kKMGT])?\s*$"
)
ALIASES = {"latency": "latency_ms", "peak_memory": "peak_activation_bytes", "peak_activation": "peak_activation_bytes"}


def gate_metrics() -> tuple[str, ...]:
    """Every numeric total a gate may name."""
    return tuple(f.name for f in dataclasses.fields(Totals))


@dataclass(frozen=True)
class Gate:
    """A parsed ``--fail-if`` expression.  ``mode``: ``relative``, ``change`` or ``absolute``."""

    expr: str
    metric: str
    op: str
    threshold: float  # a fraction for ``relative`` (5% -> 0.05)
    mode: str


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    base: float | None
    head: float
    failed: bool
    noise: bool = False

    @property
    def change(self) -> float | None:
        return None if self.base is None else self.head - self.base

    @property
    def relative(self) -> float | None:
        return relative_change(self.base, self.head)

    def line(self) -> str:
        """One line naming metric, base, head and change, for logs and PR comments."""
        verdict = "failed" if self.failed else "passed"  # the gate, not its condition: "holds" read as the opposite
        parts = [f"{self.gate.expr}: {verdict}:", f"{self.gate.metric}"]
        if self.base is not None:
            parts.append(f"base {_num(self.base)},")
        parts.append(f"head {_num(self.head)}")
        if self.change is not None:
            parts[-1] += ","
            parts.append(f"change {_signed(self.change)} ({_pct(self.relative)})")
        if self.noise:
            parts.append("(within the run-to-run spread: counted as no change)")
        return " ".join(parts)


def _num(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e18:
        return f"{int(x):,}"
    return f"{x:.4g}"


def _signed(x: float) -> str:
    return ("+" if x >= 0 else "-") + _num(abs(x))


def _pct(x: float | None) -> str:
    if x is None:
        return "n/a"
    if math.isinf(x):
        return "new" if x > 0 else "-inf%"
    return f"{x * 100:+.2f}%"


def parse_gate(expr: str) -> Gate:
    """Parse one expression; a :class:`UsageError` says exactly what is wrong."""
    m = _PATTERN.match(expr)
    if m is None:
        raise UsageError(f"malformed --fail-if {expr!r}: expected METRIC OP VALUE, like 'macs>+5%', "
                         "'params>+0' or 'flops>2e9' (OP is >, >=, < or <=)")
    metric = ALIASES.get(m["metric"], m["metric"])
    if metric not in gate_metrics():
        raise UsageError(f"unknown metric {m['metric']!r} in --fail-if {expr!r}: use one of {', '.join(gate_metrics())}")
    suffix = m["suffix"] or ""
    value = float(m["number"])
    sign = m["sign"]
    if suffix == "%":
        if not sign:
            raise UsageError(f"--fail-if {expr!r}: a percentage is a change from BASE and needs a sign, "
                             f"like '{m['metric']}{m['op']}+{m['number']}%'")
        return Gate(expr, metric, m["op"], (-value if sign == "-" else value) / 100.0, "relative")
    value *= _SUFFIX[suffix]
    if sign:
        return Gate(expr, metric, m["op"], -value if sign == "-" else value, "change")
    return Gate(expr, metric, m["op"], value, "absolute")


def parse_gates(exprs: list[str] | tuple[str, ...]) -> tuple[Gate, ...]:
    return tuple(parse_gate(e) for e in exprs)


def _value(report: Report, metric: str, side: str, gate: Gate) -> float:
    v = getattr(report.totals, metric)
    if v is None:
        why = " (reported with --runs 0 or without data)" if metric.startswith("latency") else ""
        if metric in TRAIN_METRICS:
            why = (" (measured on CUDA only)" if metric.startswith("measured") and report.training is not None
                   else " (a forward-only report: make it with --train)")
        raise UsageError(f"cannot check --fail-if {gate.expr!r}: {side} has no {metric}{why}")
    return float(v)


def evaluate(gate: Gate, base: Report, head: Report) -> GateResult:
    """Check one gate; relative and change gates need the metric on both sides."""
    h = _value(head, gate.metric, "HEAD", gate)
    compare = _OPS[gate.op]
    if gate.mode == "absolute":
        b = getattr(base.totals, gate.metric)
        return GateResult(gate, None if b is None else float(b), h, compare(h, gate.threshold))
    b = _value(base, gate.metric, "BASE", gate)
    change = h - b
    noise = gate.metric.startswith("latency") and within_noise(change, latency_noise_ms(base, head))
    if noise:
        change = 0.0
    if gate.mode == "change":
        return GateResult(gate, b, h, compare(change, gate.threshold), noise)
    rel = 0.0 if noise else relative_change(b, h)
    assert rel is not None
    return GateResult(gate, b, h, compare(rel, gate.threshold), noise)


def lower_bound_warnings(gates: tuple[Gate, ...], base: Report, head: Report) -> list[str]:
    """One line per MACs/FLOPs gate when either report has ops without a cost rule: its totals are lower
    bounds, so the gate compares lower bounds (an uncounted op can hide a change)."""
    short = uncounted_sides(base, head)
    if not short:
        return []
    return [f"warning: gate {g.expr!r} compares lower bounds: {'; '.join(short)} (see their uncounted_ops)"
            for g in gates if g.metric in ("macs", "flops", "backward_macs", "backward_flops")]


def evaluate_all(gates: tuple[Gate, ...], base: Report, head: Report) -> tuple[GateResult, ...]:
    return tuple(evaluate(g, base, head) for g in gates)


__all__ = [
    "Gate",
    "GateResult",
    "evaluate",
    "evaluate_all",
    "gate_metrics",
    "lower_bound_warnings",
    "parse_gate",
    "parse_gates",
]
