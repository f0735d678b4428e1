"""The saved JSON document's text: exactly ``json.dumps(data, indent=1, allow_nan=False)``, faster.

With ``indent`` set, the standard library encodes in pure Python through
nested generators (its C encoder has no indentation before Python 3.13): a
100,000-op report's document took about 9 s, the largest single step after
the capture.  :func:`dumps_indent1` writes the same characters for the plain
data :meth:`Report.to_dict <mevreport.report.Report.to_dict>` makes (dicts
with ``str`` keys, lists, ``str``, ``int``, finite ``float``, ``bool``,
``None``), with the standard library's own string encoder (C) and ``repr``
of numbers; for anything else (another type, a non-finite float) it hands
the whole document to ``json.dumps``, so the text, and any error, are the
standard library's.
"""
from __future__ import annotations

import json
import math
from json.encoder import encode_basestring_ascii as _string  # the C string encoder json.dumps uses
from typing import Any

_INTS = {int}


class _Other(Exception):
    """A value this writer does not handle: the standard library writes the document."""


def _scalar(v: Any) -> str | None:
    """A scalar's text, or None for a container (or a value the standard library must write)."""
    t = type(v)
    if t is str:
        return _string(v)
    if t is int:
        return int.__repr__(v)
    if v is None:
        return "null"
    if t is float:
        if not math.isfinite(v):
            raise _Other
        return float.__repr__(v)
    if v is True:
        return "true"
    if v is False:
        return "false"
    if t is dict or t is list:
        return None
    raise _Other


def _write(value: Any, out: list[str], nl: str) -> None:
    """Append the text of ``value``, a dict or list whose lines are indented ``nl`` (a newline and spaces)."""
    inner = nl + " "
    if type(value) is dict:
        if not value:
            out.append("{}")
            return
        sep = "{" + inner
        for k, v in value.items():
            if type(k) is not str:
                raise _Other
            text = _scalar(v)
            if text is not None:
                out.append(f"{sep}{_string(k)}: {text}")
            elif not v:
                out.append(f"{sep}{_string(k)}: {'{}' if type(v) is dict else '[]'}")
            else:
                out.append(f"{sep}{_string(k)}: ")
                _write(v, out, inner)
            sep = "," + inner
        out.append(nl + "}")
        return
    if not value:
        out.append("[]")
        return
    if set(map(type, value)) == _INTS:  # shapes, histogram counts, the memory timeline: joined in C
        out.append("[" + inner + ("," + inner).join(map(int.__repr__, value)) + nl + "]")
        return
    sep = "[" + inner
    for v in value:
        text = _scalar(v)
        if text is not None:
            out.append(sep + text)
        else:
            out.append(sep)
            _write(v, out, inner)
        sep = "," + inner
    out.append(nl + "]")


def dumps_indent1(data: Any) -> str:
    """``json.dumps(data, indent=1, allow_nan=False)``, character for character."""
    out: list[str] = []
    try:
        text = _scalar(data)
        if text is not None:
            return text
        _write(data, out, "\n")
    except (_Other, RecursionError):
        return json.dumps(data, indent=1, allow_nan=False)
    return "".join(out)


__all__ = ["dumps_indent1"]
