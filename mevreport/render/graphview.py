"""What the page's graph needs from Python: repeat groups and a few constants.

The graph is laid out in exactly one place, the page script
(``templates/js/graph.js``): it chooses the first depth, groups ops into
boxes and lays every view out, the first one included.  Measured on the
10,148-op GPT example, that layout of every op takes about 50 ms in
Chromium, so expanding a module re-lays out the whole view and no position is
computed here (it once was, mirrored line for line in JavaScript and kept
equal by a browser test).  What stays here is what needs the whole report and
does not change with the view: which modules look alike.
"""
from __future__ import annotations

from ..report import Report

MAX_UNITS = 150  # more boxes than this in the first view and it stops being readable
LABEL_CHARS = 26


def repeat_groups(report: Report) -> dict[str, list[int]]:
    """Modules that look alike (class, op count, MACs, params): path -> [group, size].

    80 identical decoder layers share one group, so the page gives them one
    colour and an "×80" hint.  Groups are numbered by first appearance.
    """
    signature: dict[str, tuple] = {}
    for m in report.modules:
        if m.path:
            signature[m.path] = (m.class_name, m.depth, m.nodes, m.macs, m.params)
    sizes: dict[tuple, int] = {}
    for sig in signature.values():
        sizes[sig] = sizes.get(sig, 0) + 1
    numbers: dict[tuple, int] = {}
    out: dict[str, list[int]] = {}
    for path, sig in signature.items():
        if sizes[sig] > 1:
            numbers.setdefault(sig, len(numbers))
            out[path] = [numbers[sig], sizes[sig]]
    return out


def view_data(report: Report, max_units: int = MAX_UNITS) -> dict:
    """What the page script needs beside the report's own nodes and modules."""
    return {"groups": repeat_groups(report), "max_units": max_units, "label_chars": LABEL_CHARS}
