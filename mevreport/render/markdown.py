"""The diff as Markdown short enough for a pull-request comment.

A totals table, the largest module changes, and the gate results.  Every
string that comes from a model (names, paths, class names, labels) is
escaped: plain text gets a backslash before each ASCII punctuation mark (so
``*``, ``_``, ``[``, ``<``, ``@``, ``#`` and ``|`` stay literal and cannot
link, mention or break the table), code spans get a fence longer than any
backtick run inside and ``\\|`` for pipes (GitHub tables split on a bare
``|`` even inside code).
"""
from __future__ import annotations

import re
import string

from ..diff import ModuleChange, ReportDiff
from ..gates import GateResult
from .format import count, ms, nbytes, shape

TOP_MODULES = 10
_PUNCT = set(string.punctuation)
_METRIC_NAMES = {"params": "Parameters", "macs": "MACs", "flops": "FLOPs",
                 "peak_activation_bytes": "Peak activation memory", "latency_ms": "Latency",
                 "backward_macs": "Backward MACs", "backward_flops": "Backward FLOPs",
                 "optimizer_flops": "Optimizer FLOPs", "grad_bytes": "Gradient memory",
                 "optimizer_state_bytes": "Optimizer state", "saved_activation_bytes": "Saved activations",
                 "train_peak_bytes": "Train step peak", "measured_train_peak_bytes": "Train peak (measured)",
                 "comm_bytes": "Communication per rank"}


def md_text(value: object) -> str:
    """Plain Markdown text showing ``value`` literally."""
    text = re.sub(r"[\x00-\x1f\x7f\u2028\u2029]+", " ", str(value))
    return "".join("\\" + c if c in _PUNCT else c for c in text)


def md_code(value: object) -> str:
    """A code span showing ``value`` literally, safe inside a table cell."""
    text = re.sub(r"[\x00-\x1f\x7f\u2028\u2029]+", " ", str(value)).replace("|", "\\|")
    if not text:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def metric_value(metric: str, value: float | None) -> str:
    if metric == "latency_ms":
        return ms(value)
    if metric.endswith("_bytes"):
        return nbytes(None if value is None else int(value))
    return count(value)


def signed_change(metric: str, change: float | None) -> str:
    """``+1.2 M`` / ``−3.4 MiB``: a change with its sign and the metric's unit (shared with the diff page)."""
    if change is None:
        return "\u2014"
    if change == 0:
        return "0"
    return ("+" if change > 0 else "\u2212") + metric_value(metric, abs(change))


def _pct(rel: float | None) -> str:
    if rel is None:
        return ""
    if rel in (float("inf"), float("-inf")):
        return " (new)" if rel > 0 else ""
    return f" ({rel * 100:+.1f}%)".replace("-", "\u2212")


def field_name(field: str) -> str:
    return {"class_name": "class", "latency_ms": "latency", "output_shapes": "output shapes"}.get(field, field)


def module_cell(m: ModuleChange) -> str:
    if m.kind == "renamed" and m.base is not None:
        return f"{md_code(m.base.path or '(root)')} \u2192 {md_code(m.path or '(root)')}"
    return md_code(m.path or "(root)")


def pair_text(m: ModuleChange, name: str, fmt) -> str:
    """``base → head`` of one field, or one value when it did not change or exists on one side."""
    b = getattr(m.base, name) if m.base is not None else None
    h = getattr(m.head, name) if m.head is not None else None
    if m.base is None:
        return fmt(h)
    if m.head is None:
        return fmt(b)
    return fmt(h) if b == h else f"{fmt(b)} \u2192 {fmt(h)}"


def shapes_text(shapes: tuple | None) -> str:
    return ", ".join(shape(s) for s in shapes) if shapes else "\u2014"


def _what(m: ModuleChange) -> str:
    if m.kind == "changed":
        return "changed: " + ", ".join(field_name(f) for f in m.changed)
    parts = [f"with {m.submodules} submodule(s)"] if m.submodules else []
    parts += [m.note] if m.note else []
    return m.kind + (f" ({', '.join(parts)})" if parts else "")


def render_markdown(diff: ReportDiff, gates: tuple[GateResult, ...] = (), top: int = TOP_MODULES,
                    html_name: str | None = None) -> str:
    b, h = diff.base, diff.head
    lines = [
        f"### mevreport diff: {md_text(b.label or b.name)} \u2192 {md_text(h.label or h.name)}",
        "",
        "| | base | head | change |",
        "|---|---:|---:|---:|",
    ]
    for t in diff.totals:
        change = signed_change(t.metric, t.change) + _pct(t.relative)
        if t.status == "noise":
            change += f" _within noise (runs overlap; spreads sum to {ms(diff.latency_noise_ms)})_"
        lines.append(f"| {_METRIC_NAMES[t.metric]} | {metric_value(t.metric, t.base)} | "
                     f"{metric_value(t.metric, t.head)} | {change} |")
    counts = ", ".join(f"{diff.count(k)} {k}" for k in ("changed", "added", "removed", "renamed"))
    lines += ["", f"**Modules:** {counts}, {diff.unchanged_modules} unchanged."]
    if diff.modules:
        lines += ["", "| module | what | params | MACs | output shapes |", "|---|---|---:|---:|---|"]
        for m in diff.modules[:top]:
            lines.append(f"| {module_cell(m)} | {md_text(_what(m))} | {pair_text(m, 'params', count)} | "
                         f"{pair_text(m, 'macs', count)} | {md_text(pair_text(m, 'output_shapes', shapes_text))} |")
        if len(diff.modules) > top:
            more = f" in {md_text(html_name)}" if html_name else " in the HTML diff"
            lines.append(f"\n_{len(diff.modules) - top} more module changes{more}._")
    if diff.communication:
        lines += ["", "| collective | what | calls | bytes per rank |", "|---|---|---:|---:|"]
        for c in diff.communication:
            lines.append(f"| {md_code(c.op)} | {c.kind} | {c.base_count} \u2192 {c.head_count} | "
                         f"{nbytes(c.base_bytes)} \u2192 {nbytes(c.head_bytes)} |")
    for note in diff.notes:
        lines += ["", f"> {md_text(note)}"]
    if gates:
        lines += ["", "**Gates**", ""]
        for g in gates:
            mark = "\u274c" if g.failed else "\u2705"
            lines.append(f"- {mark} {md_code(g.line())}")
    return "\n".join(lines) + "\n"


__all__ = ["md_code", "md_text", "metric_value", "render_markdown"]
