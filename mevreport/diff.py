"""Compare two reports: a pure function from (BASE, HEAD) to a :class:`ReportDiff`.

Nothing here reads files or renders: ``compare`` takes two :class:`Report`
objects and returns frozen records that the HTML page, the Markdown summary
and the gates all read, so the three can never disagree.

Modules are matched by path first.  What is left over on each side is then
matched by *subtree signature* (class names, parameter counts, MACs, and the
executed op sequence with output shapes, all relative to the module), so a
block moved from ``encoder.3`` to ``encoder.blocks.3`` shows as one rename,
not as a removal plus an addition.  Latency changes no larger than the
run-to-run spread measured in either report are marked as noise.
"""
from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from .distributed.comm import CommChange, communication_changes
from .modpath import prefixes
from .report import OMIT_DEFAULT, ModuleRow, Report, ReportNode

TOTAL_METRICS = ("params", "macs", "flops", "peak_activation_bytes", "latency_ms")
# The training step's totals (DESIGN §6): compared when either report has them, so a diff of two
# forward-only reports is what it always was.
TRAIN_METRICS = ("backward_macs", "backward_flops", "optimizer_flops", "grad_bytes", "optimizer_state_bytes",
                 "saved_activation_bytes", "train_peak_bytes", "measured_train_peak_bytes")
MODULE_FIELDS = ("class_name", "params", "macs", "flops", "output_shapes", "latency_ms")
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Side:
    """Which report one side of the diff is."""

    source: str
    name: str
    class_name: str
    title: str | None
    label: str | None
    created_at: str
    device: str
    latency_spread_ms: float | None


@dataclass(frozen=True)
class MetricChange:
    """One total, on both sides.  ``noise``: a latency change within the run-to-run spread."""

    metric: str
    base: float | None
    head: float | None
    noise: bool = False

    @property
    def change(self) -> float | None:
        return None if self.base is None or self.head is None else self.head - self.base

    @property
    def relative(self) -> float | None:
        return relative_change(self.base, self.head)

    @property
    def status(self) -> str:
        """``same``, ``up``, ``down``, ``noise`` or ``n/a`` (not measured on a side)."""
        if self.change is None:
            return "n/a"
        if self.change == 0:
            return "same"
        if self.noise:
            return "noise"
        return "up" if self.change > 0 else "down"


@dataclass(frozen=True)
class ModuleFigures:
    """One module's numbers on one side.  ``output_shapes``: shapes leaving the module."""

    path: str
    class_name: str
    params: int
    macs: int | None
    flops: int | None
    latency_ms: float | None
    output_shapes: tuple[Shape, ...]
    calls: int
    position: int


class TwoSides:
    """A record with a BASE side and a HEAD side (either may be missing): its path and signed deltas."""

    base: Any
    head: Any

    @property
    def path(self) -> str:
        side = self.head if self.head is not None else self.base
        assert side is not None
        return side.path

    def delta(self, name: str) -> float | None:
        """HEAD minus BASE (a missing side counts as 0); None where either side was not measured."""
        b = getattr(self.base, name) if self.base is not None else 0
        h = getattr(self.head, name) if self.head is not None else 0
        return None if b is None or h is None else h - b


@dataclass(frozen=True)
class ModuleChange(TwoSides):
    """A module that was added, removed, renamed or changed.

    ``changed`` names the fields that differ (of :data:`MODULE_FIELDS`);
    ``size`` is the largest change as a fraction of the model total (params,
    MACs, FLOPs, latency beyond noise), the sort key; ``submodules`` counts
    the submodules a rename carried along, or those folded into an added or
    removed subtree (a new block is one addition, not one per layer in it).
    """

    kind: str  # "added" | "removed" | "changed" | "renamed"
    base: ModuleFigures | None
    head: ModuleFigures | None
    changed: tuple[str, ...]
    size: float
    latency_noise: bool = False
    submodules: int = 0
    note: str = ""



@dataclass(frozen=True)
class ReportDiff:
    base: Side
    head: Side
    totals: tuple[MetricChange, ...]
    modules: tuple[ModuleChange, ...]
    unchanged_modules: int
    latency_noise_ms: float | None
    notes: tuple[str, ...]
    # collectives side by side, when either report is distributed (left out of the document otherwise)
    communication: tuple[CommChange, ...] = field(default=(), metadata=OMIT_DEFAULT)

    def total(self, metric: str) -> MetricChange:
        return next(t for t in self.totals if t.metric == metric)

    def count(self, kind: str) -> int:
        return sum(1 for m in self.modules if m.kind == kind)

    def to_dict(self) -> dict[str, Any]:
        from .report import _to_plain
        data = _to_plain(self)
        for t, row in zip(self.totals, data["totals"]):
            row.update(change=t.change, relative=_finite(t.relative), status=t.status)
        for m, row in zip(self.modules, data["modules"]):
            row["path"] = m.path
        return data


def _finite(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None


def relative_change(base: float | None, head: float | None) -> float | None:
    """(head - base) / base; ±inf when base is 0 and head is not, 0 when both are 0."""
    if base is None or head is None:
        return None
    if base == 0:
        return 0.0 if head == 0 else math.copysign(math.inf, head)
    return (head - base) / abs(base)


def latency_noise_ms(base: Report, head: Report) -> float | None:
    """How far apart two medians can be while the two reports' measured runs still overlap: the sum of their
    run-to-run spreads (max - min).  Each median lies inside its own runs' range, so two ranges that overlap
    put the medians at most the two widths apart; the larger spread alone called a change "decreased" that
    the runs themselves could not tell from noise."""
    spreads = [s for s in (base.totals.latency_spread_ms, head.totals.latency_spread_ms) if s is not None]
    return sum(spreads) if spreads else None


def within_noise(change: float | None, noise: float | None) -> bool:
    return change is not None and noise is not None and change != 0 and abs(change) <= noise


def _inside(path: str, root: str) -> bool:
    return root == "" or path == root or path.startswith(root + ".")


def _relative(path: str, root: str) -> str:
    if path == root:
        return ""
    return path if root == "" else path[len(root) + 1:]


def _under_any(path: str, roots: set[str], proper: bool = False) -> bool:
    """Whether ``path`` lies in the subtree of one of ``roots`` (strictly below it when ``proper``)."""
    chain = prefixes(path)
    return any(q in roots for q in (chain[:-1] if proper else chain))


class _Index:
    """Per-report lookups built once: nodes by module subtree, output shapes."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.rows: dict[str, ModuleRow] = {}
        self.position: dict[str, int] = {}
        for i, m in enumerate(report.modules):  # a path listed twice (only in a crafted file) counts once
            if m.path not in self.rows:
                self.rows[m.path], self.position[m.path] = m, i
        self.modules = tuple(self.rows.values())
        self.subtree_nodes: dict[str, list[ReportNode]] = defaultdict(list)
        for n in report.nodes:
            for p in prefixes(n.module_path):
                self.subtree_nodes[p].append(n)
        self.subtree_modules: dict[str, list[ModuleRow]] = defaultdict(list)
        for m in self.modules:
            for p in prefixes(m.path):
                self.subtree_modules[p].append(m)
        self.output_shapes = _module_output_shapes(report)

    def figures(self, row: ModuleRow) -> ModuleFigures:
        return ModuleFigures(row.path, row.class_name, row.params, row.macs, row.flops, row.latency_ms,
                             self.output_shapes.get(row.path, ()), row.calls, self.position[row.path])

    def signature(self, path: str) -> tuple:
        """What makes two subtrees identical, independent of where they sit."""
        mods = tuple((_relative(m.path, path), m.class_name, m.params, m.macs, m.flops, m.calls)
                     for m in self.subtree_modules.get(path, ()))
        ops = tuple((n.op, _relative(n.module_path, path), tuple(o.shape for o in n.outputs))
                    for n in self.subtree_nodes.get(path, ()))
        return mods, ops


def _module_output_shapes(report: Report) -> dict[str, tuple[Shape, ...]]:
    """Shapes that leave each module: first outputs of its ops read outside it, and of its last op.

    The JSON document has no module outputs as such; an op whose result is
    consumed by an op outside the module (or the module's last op, which
    covers model outputs) is what the module hands back.
    """
    common: dict[int, list[str]] = {}  # producer id -> longest common module path of its consumers
    for n in report.nodes:
        parts = n.module_path.split(".") if n.module_path else []
        for src in n.inputs:
            have = common.get(src)
            if have is None:
                common[src] = parts
            else:
                k = 0
                while k < len(have) and k < len(parts) and have[k] == parts[k]:
                    k += 1
                common[src] = have[:k]
    leaving: dict[str, list[int]] = defaultdict(list)
    last: dict[str, ReportNode] = {}
    for n in report.nodes:
        lcp = ".".join(common[n.id]) if n.id in common else None
        for p in prefixes(n.module_path):
            last[p] = n
            # some consumer lies outside p exactly when p does not contain all consumers' common path
            if p and lcp is not None and not _inside(lcp, p):
                leaving[p].append(n.id)
    by_id = {n.id: n for n in report.nodes}
    shapes: dict[str, tuple[Shape, ...]] = {}
    for p, n in last.items():
        ids = sorted(set(leaving.get(p, [])) | {n.id})
        seen: dict[Shape, None] = {}
        for i in ids:
            outs = by_id[i].outputs
            if outs:
                seen.setdefault(tuple(outs[0].shape), None)
        shapes[p] = tuple(seen)
    return shapes


def _side(report: Report, source: str) -> Side:
    return Side(source, report.model.name, report.model.class_name, report.title, report.label, report.created_at,
                report.environment.device, report.totals.latency_spread_ms)


def _size(base: ModuleFigures | None, head: ModuleFigures | None, scale: dict[str, float],
          noise: float | None, subtract: dict[str, float] | None = None) -> float:
    """Largest change as a fraction of the model total (the larger of the two models)."""
    best = 0.0
    for name in ("params", "macs", "flops", "latency_ms"):
        b = getattr(base, name) if base is not None else 0
        h = getattr(head, name) if head is not None else 0
        if b is None or h is None or not scale.get(name):
            continue
        change = abs(h - b) - (subtract or {}).get(name, 0)
        if name == "latency_ms" and noise is not None and change <= noise:
            continue
        best = max(best, change / scale[name])
    return best


def _changed_fields(b: ModuleFigures, h: ModuleFigures, noise: float | None) -> tuple[tuple[str, ...], bool]:
    fields: list[str] = []
    is_noise = False
    for name in MODULE_FIELDS:
        bv, hv = getattr(b, name), getattr(h, name)
        if name == "latency_ms":
            if bv is None or hv is None or bv == hv:
                continue
            if within_noise(hv - bv, noise):
                is_noise = True
                continue
        if bv != hv:
            fields.append(name)
    return tuple(fields), is_noise


def _find_renames(base: _Index, head: _Index, base_only: list[str],
                  head_only: list[str]) -> list[tuple[str, str, int]]:
    """(base path, head path, submodules moved) for leftover subtrees with equal signatures.

    Shallow modules first, so a moved block is one rename rather than one per
    submodule; equal signatures pair up in execution order.
    """
    wanted: dict[tuple, deque[str]] = defaultdict(deque)
    for p in head_only:
        wanted[head.signature(p)].append(p)
    taken_base: set[str] = set()
    taken_head: set[str] = set()
    pairs: list[tuple[str, str, int]] = []
    for p in sorted(base_only, key=lambda q: (q.count("."), base.position[q])):
        if p in taken_base:
            continue
        options = wanted.get(base.signature(p))
        while options and options[0] in taken_head:  # each head path leaves its queue once: linear overall
            options.popleft()
        if not options:
            continue
        q = options.popleft()
        moved_base = [m.path for m in base.subtree_modules[p]]
        taken_base.update(moved_base)
        taken_head.update(m.path for m in head.subtree_modules[q])
        pairs.append((p, q, len(moved_base) - 1))
    return pairs


def compare(base: Report, head: Report, base_source: str = "BASE", head_source: str = "HEAD") -> ReportDiff:
    """Everything that changed from ``base`` to ``head`` (pure)."""
    noise = latency_noise_ms(base, head)
    totals = []
    for metric in compared_metrics(base, head):
        b, h = getattr(base.totals, metric), getattr(head.totals, metric)
        change = None if b is None or h is None else h - b
        totals.append(MetricChange(metric, b, h, noise=metric == "latency_ms" and within_noise(change, noise)))
    sharded = base.distributed is not None or head.distributed is not None
    if sharded:  # communication per rank; a single-process report communicates nothing (0, not "not measured")
        totals.append(MetricChange("comm_bytes", base.totals.comm_bytes or 0, head.totals.comm_bytes or 0))
    scale = {name: float(max(abs(getattr(base.totals, name) or 0), abs(getattr(head.totals, name) or 0)))
             for name in ("params", "macs", "flops", "latency_ms")}

    bi, hi = _Index(base), _Index(head)
    base_only = [m.path for m in bi.modules if m.path not in hi.rows]
    head_only = [m.path for m in hi.modules if m.path not in bi.rows]
    renames = _find_renames(bi, hi, base_only, head_only)
    moved_base = {m.path for p, _, _ in renames for m in bi.subtree_modules[p]}
    moved_head = {m.path for _, q, _ in renames for m in hi.subtree_modules[q]}

    changes: list[ModuleChange] = []
    unchanged = 0
    for m in hi.modules:
        if m.path not in bi.rows:
            continue
        b, h = bi.figures(bi.rows[m.path]), hi.figures(m)
        fields, is_noise = _changed_fields(b, h, noise)
        if fields:
            changes.append(ModuleChange("changed", b, h, fields, _size(b, h, scale, noise), is_noise))
        else:
            unchanged += 1
    for p, q, carried_along in renames:
        b, h = bi.figures(bi.rows[p]), hi.figures(hi.rows[q])
        fields, is_noise = _changed_fields(b, h, noise)
        fields = tuple(f for f in fields if f == "latency_ms")
        changes.append(ModuleChange("renamed", b, h, fields, _size(b, h, scale, noise), is_noise,
                                    submodules=carried_along))
    for kind, index, others, moved, renamed_roots in (
        ("added", hi, head_only, moved_head, [q for _, q, _ in renames]),
        ("removed", bi, base_only, moved_base, [p for p, _, _ in renames]),
    ):
        # A subtree that is new through and through is one change: fold its descendants into its top.
        wrapping = {a for r in renamed_roots for a in prefixes(r)}  # modules with a renamed one inside
        plain = {p for p in others if p not in moved and p not in wrapping}
        folded = {p for p in others if _under_any(p, plain, proper=True)}
        inner_of: dict[str, list[str]] = defaultdict(list)  # module -> renamed roots inside it
        for r in renamed_roots:
            for a in prefixes(r):
                inner_of[a].append(r)
        folded_into: dict[str, int] = defaultdict(int)  # top of each new subtree -> modules folded into it
        for p in folded:
            folded_into[next(a for a in prefixes(p) if a in plain)] += 1
        for p in others:
            if p in moved or p in folded:
                continue
            fig = index.figures(index.rows[p])
            inner = inner_of.get(p, [])
            below = folded_into.get(p, 0)
            carried = {name: float(sum(getattr(index.rows[r], name) or 0 for r in inner))
                       for name in ("params", "macs", "flops")}
            note = f"wraps {len(inner)} renamed module(s)" if inner else ""
            base_side, head_side = (None, fig) if kind == "added" else (fig, None)
            changes.append(ModuleChange(kind, base_side, head_side, changed=(),
                                        size=_size(base_side, head_side, scale, noise, carried),
                                        submodules=below, note=note))

    order = {"changed": 0, "renamed": 1, "added": 2, "removed": 3}
    changes.sort(key=lambda c: (-round(c.size, 12), (c.head or c.base).position, order[c.kind]))  # type: ignore[union-attr]
    return ReportDiff(_side(base, base_source), _side(head, head_source), tuple(totals), tuple(changes), unchanged,
                      noise, tuple(_notes(base, head)), communication_changes(base, head) if sharded else ())


def compared_metrics(base: Report, head: Report) -> tuple[str, ...]:
    """The totals a diff shows: the forward ones always, a training one when either side has it."""
    train = tuple(m for m in TRAIN_METRICS
                  if getattr(base.totals, m) is not None or getattr(head.totals, m) is not None)
    return TOTAL_METRICS + train


def uncounted_sides(base: Report, head: Report) -> list[str]:
    """``BASE has 3 op(s) of 1 kind(s) without a cost rule`` for each side with uncounted ops: its MACs
    and FLOPs are lower bounds.  One phrase for the diff's notes and the gates' warning lines."""
    sides = [(name, sum(u.count for u in r.uncounted_ops), len(r.uncounted_ops))
             for name, r in (("BASE", base), ("HEAD", head))]
    return [f"{name} has {n:,} op(s) of {k} kind(s) without a cost rule" for name, n, k in sides if n]


def _notes(base: Report, head: Report) -> list[str]:
    """Differences in how the two reports were made that explain (or spoil) the numbers."""
    notes = []
    uncounted = uncounted_sides(base, head)
    if uncounted:
        notes.append(f"MACs and FLOPs are lower bounds: {'; '.join(uncounted)}")
    b_in = [(i.name, tuple(i.shape), i.dtype) for i in base.inputs]
    h_in = [(i.name, tuple(i.shape), i.dtype) for i in head.inputs]
    if b_in != h_in:
        fmt = lambda xs: ", ".join(f"{n} {list(s)} {d}" for n, s, d in xs) or "none"  # noqa: E731
        notes.append(f"inputs differ: base {fmt(b_in)}; head {fmt(h_in)}")
    if base.environment.device != head.environment.device:
        notes.append(f"devices differ (base {base.environment.device}, head {head.environment.device}): "
                     "latencies are not comparable")
    if base.capture.method != head.capture.method:
        notes.append(f"capture methods differ: base {base.capture.method}, head {head.capture.method}")
    if (base.totals.latency_ms is None) != (head.totals.latency_ms is None):
        notes.append("latency was measured on one side only")
    bt, ht = base.training, head.training
    if (bt is None) != (ht is None):
        notes.append(f"the training step was captured on one side only ({'base' if bt else 'head'}): "
                     "its totals have no counterpart")
    elif bt is not None and ht is not None:
        if bt.optimizer.class_name != ht.optimizer.class_name:
            notes.append(f"optimizers differ: base {bt.optimizer.class_name}, head {ht.optimizer.class_name}")
        if (bt.loss.source, bt.loss.name) != (ht.loss.source, ht.loss.name):
            notes.append(f"losses differ: base {bt.loss.name} ({bt.loss.source}), "
                         f"head {ht.loss.name} ({ht.loss.source})")
    for side, r in (("base", base), ("head", head)):
        d = r.distributed
        if d is not None:
            how = "simulated" if d.simulated else "run"
            mesh = f", mesh {' × '.join(map(str, d.mesh.shape))} ({', '.join(d.mesh.dim_names)})" if d.mesh else ""
            notes.append(f"{side} was {how} on {d.world_size} ranks ({d.backend}{mesh}): its figures are global, "
                         f"latency is rank {d.writer_rank}'s, communication per rank is listed")
    return notes


__all__ = [
    "TOTAL_METRICS",
    "TRAIN_METRICS",
    "MetricChange",
    "ModuleChange",
    "ModuleFigures",
    "ReportDiff",
    "Side",
    "compare",
    "compared_metrics",
    "latency_noise_ms",
    "relative_change",
    "uncounted_sides",
    "within_noise",
]
