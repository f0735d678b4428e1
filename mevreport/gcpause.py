"""Pausing Python's cycle collector while a report is converted in bulk.

Turning a 100,000-op report into plain data, JSON text or a page allocates
millions of dicts, lists and strings; each time enough have piled up the
collector walks every tracked object, the report's own millions included,
and finds nothing to free (none of these conversions makes a reference
cycle).  Measured on that report (CPU time): ``to_dict`` 4.2 -> 1.9 s,
``to_json`` 6.8 -> 5.9 s, ``render_html`` 15.8 -> 12.1 s.  Reference
counting still frees everything as usual; the collector runs again after.
"""
from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The collector off inside the block, back as it was after (nested blocks leave it off)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


__all__ = ["gc_paused"]
