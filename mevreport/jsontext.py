"""The saved JSON document's text, written by orjson.

The standard library's ``json.dumps`` indents in pure Python (its C encoder has
no indentation before Python 3.13): a 100,000-op report's document took about
9 s.  orjson writes the same data, indented by two spaces, in a fraction of a
second, so it is a dependency rather than an encoder of our own.  The
document :meth:`Report.to_dict <mevreport.report.Report.to_dict>` makes is
plain data whose non-finite floats are already ``null``; what orjson refuses
(an integer beyond 64 bits, a key that is not a string) is handed to
``json.dumps``, so its text and any error are the standard library's.
"""
from __future__ import annotations

import json
from typing import Any

import orjson

INDENT_UP_TO = 2_000_000
"""Characters of compact text up to which the document is indented for people to read; a larger
one (a model of some 10,000 ops, read by ``mevreport diff`` and gates) stays compact: the
100,000-op document is 75 MB so and 168 MB indented, where two spaces per level are most of it."""


def document_text(data: Any) -> str:
    """``data`` as JSON text, indented by two spaces unless it is large (:data:`INDENT_UP_TO`);
    parses back to ``data``."""
    text = compact_text(data)
    if len(text) > INDENT_UP_TO:
        return text
    try:
        return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(data, indent=2, allow_nan=False)


def compact_text(data: Any) -> str:
    """``data`` as JSON text without spaces (the page's embedded documents, large saved ones).

    Unlike ``json.dumps`` it leaves non-ASCII characters as they are (the page is
    UTF-8) and writes a NaN or infinity as ``null``.
    """
    try:
        return orjson.dumps(data).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(data, separators=(",", ":"), allow_nan=False)


__all__ = ["compact_text", "document_text"]
