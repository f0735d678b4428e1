"""Reading a report document from untrusted text: every refusal is one line naming the file and the field.

``json.loads`` alone accepts ``NaN`` and ``Infinity`` (not JSON), turns
``1e999`` into infinity, raises ``ValueError`` on an integer over 4,300
digits and ``RecursionError`` on deep nesting; an integer like ``10**400``
parses but overflows the first float conversion (a ratio in ``diff``, a plot
in ``index``).  Here the parse hooks keep each of those as a marker instead,
and one iterative walk (no recursion limit) finds the first one with its
path, e.g. ``totals.latency_ms``.
"""
from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from .errors import ReportReadError

MAX_INT = 10**30          # far beyond any count a report holds, well inside float range
MAX_DEPTH = 64            # a report nests about 6 deep
MAX_INT_DIGITS = 4000     # below Python's int-from-string limit (4,300), which raises instead


def read_report_text(path: Path) -> str:
    """The text of a report file, refusing anything but a regular file in one line.

    ``index`` reads every ``*.json``/``*.html`` in a directory someone else may
    have filled: a FIFO there would block ``read_text`` forever, and a device
    (``/dev/zero`` under a report name) would never end.  The file is opened
    without blocking and checked with ``fstat`` on that descriptor, so what is
    checked is what is read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ReportReadError(f"no such file: {str(path)!r}") from None
    except IsADirectoryError:
        raise ReportReadError(f"{str(path)!r} is a directory, not a report") from None
    except OSError as exc:
        raise ReportReadError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ReportReadError(f"{str(path)!r} is a directory, not a report")
        if not stat.S_ISREG(mode):
            raise ReportReadError(f"{str(path)!r} is not a regular file (a FIFO, socket or device); not a report")
        try:
            data = f.read()
        except OSError as exc:
            raise ReportReadError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReportReadError(f"cannot read {str(path)!r}: {exc}") from None


class _Bad:
    """A value the document cannot hold, kept for the walk to report with its path."""

    def __init__(self, what: str) -> None:
        self.what = what


def _parse_int(text: str) -> Any:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        return _Bad(f"an integer of {digits:,} digits")
    value = int(text)
    return value if abs(value) <= MAX_INT else _Bad(f"the integer {text[:12]}... ({digits} digits), beyond any count")


def _parse_float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else _Bad(f"{text[:20]}, beyond float range")


def _parse_constant(text: str) -> Any:
    return _Bad(f"{text}, which is not JSON")


def _field(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the document"


def parse_document(text: str, source: str) -> Any:
    """``json.loads`` with the hostile cases above as :class:`ReportReadError` naming the field."""
    try:
        data = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except json.JSONDecodeError as exc:
        raise ReportReadError(f"{source!r} is not a mevreport JSON document: {exc}") from None
    except RecursionError:
        raise ReportReadError(f"{source!r} is not a mevreport report: it nests deeper than Python can parse") from None
    except (ValueError, MemoryError) as exc:
        raise ReportReadError(f"{source!r} is not a mevreport JSON document: {str(exc)[:120]}") from None
    stack: list[tuple[list[Any], Any]] = [([], data)]
    while stack:
        path, value = stack.pop()
        if len(path) > MAX_DEPTH:
            raise ReportReadError(f"{source!r}: field {_field(path[:8])}... nests deeper than {MAX_DEPTH} levels; "
                                  f"not a mevreport report")
        if isinstance(value, _Bad):
            raise ReportReadError(f"{source!r}: field {_field(path)} is {value.what}; not a mevreport report value")
        if isinstance(value, dict):
            stack.extend((path + [k], v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((path + [i], v) for i, v in reversed(list(enumerate(value))))
    return data


def malformed_report(source: str, errors: list[Any]) -> str:
    """One line for a document that parsed but does not fit the report's dataclasses:
    the first problem with its field (pydantic's ``ValidationError.errors()``), and how many more."""
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return (f"{source!r} is a malformed mevreport report: field {_field(list(first['loc']))}: "
            f"{first['msg']}{more}").replace("\n", " ")


__all__ = ["MAX_DEPTH", "MAX_INT", "malformed_report", "parse_document", "read_report_text"]
