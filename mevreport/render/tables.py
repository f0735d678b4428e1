"""The op and module tables as CSV (``--csv DIR``, ``Report.save_csv``), for pandas and spreadsheets.

``ops.csv`` has one row per executed op in execution order, ``modules.csv``
one per module in tree order, with the same numbers as the JSON document
(empty cells where the JSON has ``null``).  Text cells that a spreadsheet
would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return: a module can be named anything) get a leading ``'``, the
usual guard; numbers are written as they are.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from ..report import Report, ReportNode

OP_COLUMNS = ("id", "phase", "op", "module_path", "inputs", "output_shapes", "output_dtypes", "macs", "flops",
              "output_bytes", "latency_ms", "mean", "std", "min", "max", "abs_max", "zero_fraction", "nan_count",
              "inf_count")
MODULE_COLUMNS = ("path", "class_name", "depth", "calls", "params", "macs", "flops", "latency_ms",
                  "activation_bytes", "nodes")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_STATS = ("mean", "std", "min", "max", "abs_max", "zero_fraction", "nan_count", "inf_count")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return buf.getvalue()


def ops_csv(report: Report) -> str:
    def row(n: ReportNode) -> list[Any]:
        stats = [getattr(n.stats, k) if n.stats is not None else None for k in _STATS]
        return [n.id, n.phase or "forward", n.op, n.module_path,
                " ".join(map(str, n.inputs)), " ".join("x".join(map(str, o.shape)) for o in n.outputs),
                " ".join(o.dtype for o in n.outputs), n.macs, n.flops, n.output_bytes, n.latency_ms, *stats]
    return _csv(OP_COLUMNS, (row(n) for n in report.nodes))


def modules_csv(report: Report) -> str:
    return _csv(MODULE_COLUMNS, ([m.path, m.class_name, m.depth, m.calls, m.params, m.macs, m.flops, m.latency_ms,
                                  m.activation_bytes, m.nodes] for m in report.modules))


def csv_files(report: Report) -> dict[str, str]:
    """File name -> text, for one atomic write of the pair."""
    return {"ops.csv": ops_csv(report), "modules.csv": modules_csv(report)}
