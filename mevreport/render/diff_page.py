"""The diff as one self-contained HTML page, in the report's style.

Rows are prepared here as plain strings (coverage.py's way: data first, then
one template lays it out); the template autoescapes every model string and
the diff itself is embedded as JSON with :func:`json_for_script`.  No
external resources: the page opens offline.
"""
from __future__ import annotations

from typing import Any

from ..diff import ModuleChange, ReportDiff
from ..gates import GateResult
from .format import count, ms
from .markdown import _METRIC_NAMES, field_name, metric_value, pair_text, shapes_text, signed_change

_VERDICT = {"same": "unchanged", "up": "increased", "down": "decreased", "noise": "within noise",
            "n/a": "not measured on both sides"}


def _relative(rel: float | None) -> str:
    if rel is None:
        return "\u2014"
    if rel in (float("inf"), float("-inf")):
        return "new"
    return f"{rel * 100:+.1f}%".replace("-", "\u2212")


def module_row(m: ModuleChange) -> dict[str, Any]:
    detail = ""
    if m.kind == "changed":
        detail = ", ".join(field_name(f) for f in m.changed)
    else:
        parts = [f"with {m.submodules} submodule(s)"] if m.submodules else []
        detail = ", ".join(parts + ([m.note] if m.note else []))
    base_path = m.base.path or "(root)" if m.kind == "renamed" and m.base is not None else None
    return {
        "kind": m.kind, "detail": detail, "path": m.path or "(root)", "base_path": base_path,
        "class_name": pair_text(m, "class_name", str),
        "params": pair_text(m, "params", count), "macs": pair_text(m, "macs", count), "flops": pair_text(m, "flops", count),
        "shapes": pair_text(m, "output_shapes", shapes_text), "latency": pair_text(m, "latency_ms", ms),
        "latency_noise": m.latency_noise, "size": f"{m.size * 100:.1f}%",
        "search": " ".join(x for x in (m.kind, base_path or "", m.path, pair_text(m, "class_name", str)) if x),
    }


def page_context(diff: ReportDiff, gates: tuple[GateResult, ...] = ()) -> dict[str, Any]:
    b, h = diff.base, diff.head
    totals = [{
        "name": _METRIC_NAMES[t.metric], "base": metric_value(t.metric, t.base),
        "head": metric_value(t.metric, t.head), "change": signed_change(t.metric, t.change),
        "relative": _relative(t.relative), "status": t.status.replace("/", ""), "verdict": _VERDICT[t.status],
    } for t in diff.totals]
    data = diff.to_dict()
    data["gates"] = [{"expr": g.gate.expr, "failed": g.failed, "line": g.line()} for g in gates]
    return {
        "title": f"mevreport diff: {b.label or b.name} \u2192 {h.label or h.name}",
        "base": b, "head": h, "totals": totals, "notes": diff.notes, "communication": diff.communication,
        "noise": None if diff.latency_noise_ms is None else ms(diff.latency_noise_ms),
        "gates": [{"failed": g.failed, "line": g.line()} for g in gates],
        "counts": [(k, diff.count(k)) for k in ("changed", "added", "removed", "renamed")]
                  + [("unchanged", diff.unchanged_modules)],
        "modules": [module_row(m) for m in diff.modules],
        "data": data,
    }


def render_diff_html(diff: ReportDiff, gates: tuple[GateResult, ...] = ()) -> str:
    from .html import environment
    return environment().get_template("diff.html.j2").render(**page_context(diff, gates))


__all__ = ["page_context", "render_diff_html"]
