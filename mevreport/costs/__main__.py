"""``python -m mevreport.costs > docs/flops.md``: the FLOP table, generated from the registry.

The registry is the one source of truth (DESIGN §5); this prints it as
Markdown, ops that share a formula on one row, with the conventions above it.
``tests/test_costs.py`` checks that ``docs/flops.md`` equals this output.
"""
from __future__ import annotations

from . import flops_markdown

if __name__ == "__main__":
    print(flops_markdown(), end="")
