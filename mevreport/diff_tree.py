"""HEAD's module tree with every change of a diff marked on its row (pure, like :mod:`mevreport.diff`).

The change list of :func:`mevreport.diff.compare` says *what* changed, largest
first; a reader also wants to see *where*: the model as HEAD has it, each
module marked added, renamed, changed or unchanged, the modules BASE had and
HEAD lost placed where they used to sit, and the figures of both sides on
every row.  This module only arranges what ``compare`` decided (it never
matches modules itself), so the tree and the change list cannot disagree.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .diff import ReportDiff, TwoSides
from .modpath import prefixes
from .report import ModuleRow, Report

TREE_METRICS = ("params", "macs", "latency_ms", "activation_bytes")


@dataclass(frozen=True)
class TreeRow(TwoSides):
    """One module in the tree: HEAD's row (None when removed) and its BASE counterpart (None when added).

    ``kind``: ``same`` | ``changed`` | ``added`` | ``removed`` | ``renamed``; ``inside``: the nearest
    enclosing module that the change list names with this kind, for a row that came along with it
    (``""`` for a row the change list names itself, and for unchanged and changed rows), so a new
    block reads as one change with its layers under it.
    """

    kind: str
    depth: int
    base: ModuleRow | None
    head: ModuleRow | None
    inside: str = ""



def _parent(path: str) -> str | None:
    return None if path == "" else path.rpartition(".")[0]


def _moved(path: str, roots: dict[str, str]) -> tuple[str, str] | None:
    """(root, counterpart) when ``path`` lies in the subtree of one of ``roots`` (root -> its other name)."""
    for p in reversed(prefixes(path)):
        if p in roots:
            return p, roots[p] + path[len(p):]
    return None


def module_tree(base: Report, head: Report, diff: ReportDiff) -> tuple[TreeRow, ...]:
    """HEAD's modules in HEAD's order, BASE's lost modules after the sibling they followed there."""
    b_rows = {m.path: m for m in base.modules}
    h_rows = {m.path: m for m in head.modules}
    kinds = {(c.kind, c.path) for c in diff.modules}
    changed = {p for k, p in kinds if k == "changed"}
    renamed = {c.head.path: c.base.path for c in diff.modules if c.kind == "renamed" and c.head and c.base}
    back = {b: h for h, b in renamed.items()}
    added = {p for k, p in kinds if k == "added"}
    removed = {p for k, p in kinds if k == "removed"}

    def head_row(m: ModuleRow) -> TreeRow:
        depth = len(prefixes(m.path)) - 1
        moved = _moved(m.path, renamed)
        if moved is not None:
            root, was = moved
            return TreeRow("renamed", depth, b_rows.get(was), m, "" if root == m.path else root)
        top = next((p for p in reversed(prefixes(m.path)) if p in added), None)  # the nearest added one
        if top is not None or m.path not in b_rows:
            return TreeRow("added", depth, None, m, "" if top in (None, m.path) else top)
        return TreeRow("changed" if m.path in changed else "same", depth, b_rows[m.path], m)

    def base_counterpart_in_head(path: str) -> str | None:
        moved = _moved(path, back)
        if moved is not None:
            return moved[1]
        return path if path in h_rows else None

    # BASE modules HEAD lost, grouped under the HEAD module that is their parent's counterpart.
    lost_under: dict[str, list[ModuleRow]] = defaultdict(list)
    b_children: dict[str, list[str]] = defaultdict(list)
    for m in base.modules:
        parent = _parent(m.path)
        if parent is not None:
            b_children[parent].append(m.path)
    for m in base.modules:
        parent = _parent(m.path)
        if m.path in removed and parent is not None:
            home = base_counterpart_in_head(parent)
            if home is not None:
                lost_under[home].append(m)

    def lost_rows(root: ModuleRow, depth: int) -> list[TreeRow]:
        out = [TreeRow("removed", depth, root, None)]
        stack = [(c, depth + 1) for c in reversed(b_children[root.path])]
        while stack:
            path, d = stack.pop()
            if _moved(path, back) is not None:  # renamed away: HEAD shows it under its new name
                continue
            top = next(p for p in reversed(prefixes(path)) if p in removed)  # the nearest removed one
            out.append(TreeRow("removed", d, b_rows[path], None, "" if top == path else top))
            stack.extend((c, d + 1) for c in reversed(b_children[path]))
        return out

    # Where each lost subtree goes: after the HEAD counterpart of the last BASE sibling before it that HEAD kept.
    after: dict[str, list[ModuleRow]] = defaultdict(list)  # HEAD path -> lost subtrees after its subtree
    first: dict[str, list[ModuleRow]] = defaultdict(list)  # HEAD parent -> lost subtrees before its children
    for home, lost in lost_under.items():
        for m in lost:
            siblings = b_children[_parent(m.path) or ""]
            kept = [k for s in siblings[: siblings.index(m.path)]
                    if (k := base_counterpart_in_head(s)) is not None and _parent(k) == home]
            (after[kept[-1]] if kept else first[home]).append(m)

    h_children: dict[str, list[str]] = defaultdict(list)
    for m in head.modules:
        parent = _parent(m.path)
        if parent is not None:
            h_children[parent].append(m.path)
    out: list[TreeRow] = []
    roots = [m.path for m in head.modules if _parent(m.path) is None or _parent(m.path) not in h_rows]
    stack: list[tuple[str, bool]] = [(r, False) for r in reversed(roots)]
    while stack:  # pre-order; the flag marks "this subtree is done: its lost next siblings follow"
        path, done = stack.pop()
        if done:
            for m in after.get(path, []):
                out.extend(lost_rows(m, len(prefixes(path)) - 1))
            continue
        row = head_row(h_rows[path])
        out.append(row)
        for m in first.get(path, []):
            out.extend(lost_rows(m, row.depth + 1))
        stack.append((path, True))
        stack.extend((c, False) for c in reversed(h_children[path]))
    return tuple(out)


__all__ = ["TREE_METRICS", "TreeRow", "module_tree"]
