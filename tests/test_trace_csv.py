"""Issue 17: the measured timeline as a Chrome trace, and the tables as CSV."""
from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import mevreport
from mevreport.modpath import prefixes
from mevreport.render.tables import MODULE_COLUMNS, OP_COLUMNS, modules_csv, ops_csv
from mevreport.render.trace import trace_events
from tests.conftest import run_cli


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Twice(nn.Module):
    """A block called twice: two slices for it, each inside the root's."""

    def __init__(self) -> None:
        super().__init__()
        self.block, self.head = Block(), nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.head(self.block(x)))


@pytest.fixture(scope="module")
def report() -> mevreport.Report:
    return mevreport.analyze(Twice(), torch.randn(3, 8), runs=2)


def test_one_event_per_timed_node_with_its_measured_duration(report) -> None:
    doc = json.loads(json.dumps(trace_events(report), allow_nan=False))  # valid JSON, no NaN
    ops = [e for e in doc["traceEvents"] if e.get("cat") == "op"]
    timed = [n for n in report.nodes if n.latency_ms is not None]
    assert len(timed) == len(report.nodes) > 0
    assert [e["args"]["node"] for e in ops] == [n.id for n in timed]
    assert [e["dur"] for e in ops] == pytest.approx([n.latency_ms * 1000 for n in timed])
    # end to end in execution order, from 0
    assert ops[0]["ts"] == 0
    for a, b in itertools.pairwise(ops):
        assert b["ts"] == pytest.approx(a["ts"] + a["dur"])
    assert all(e["ph"] == "X" and e["pid"] == 1 and e["tid"] == 1 for e in ops)


def test_module_slices_nest_and_repeat_per_call(report) -> None:
    events = trace_events(report)["traceEvents"]
    slices = [e for e in events if e.get("cat") == "module"]
    names = [e["name"] for e in slices]
    assert names.count("block") == 2 and names.count("head") == 1 and names.count("<root>") == 1
    assert names.count("block.fc1") == 2
    root = next(e for e in slices if e["name"] == "<root>")
    ops = [e for e in events if e.get("cat") == "op"]
    assert root["ts"] == 0 and root["dur"] == pytest.approx(sum(e["dur"] for e in ops))
    # Every op lies inside each slice of its module's chain that covers its start: proper nesting.
    for op in ops:
        path = op["args"]["module"]
        for name in prefixes(path):
            covering = [s for s in slices if (s["name"] if s["name"] != "<root>" else "") == name
                        and s["ts"] <= op["ts"] + 1e-9 and op["ts"] + op["dur"] <= s["ts"] + s["dur"] + 1e-6]
            assert len(covering) == 1, (op, name)
    block = [e for e in slices if e["name"] == "block"]
    assert block[0]["args"]["class"] == "Block"


def test_phases_get_their_own_track(report) -> None:
    """Backward and optimizer nodes (a training step) go on tracks 2 and 3; forward stays on 1."""
    nodes = list(report.nodes)
    marked = nodes[:-2] + [dataclasses.replace(n, phase="backward") for n in nodes[-2:]]
    events = trace_events(dataclasses.replace(report, nodes=tuple(marked)))["traceEvents"]
    tids = [e["tid"] for e in events if e.get("cat") == "op"]
    assert tids == [1] * (len(nodes) - 2) + [2, 2]
    names = {e["tid"]: e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    assert names == {1: "forward", 2: "backward", 3: "optimizer"}


def test_collectives_have_the_comm_category_and_their_bytes(report) -> None:
    """A node with comm_bytes (a c10d collective of a distributed run) is a ``comm`` event, not an ``op``;
    a real two-process run's trace is checked in tests/test_distributed.py."""
    nodes = list(report.nodes)
    marked = [dataclasses.replace(nodes[0], comm_bytes=4096)] + nodes[1:]
    events = trace_events(dataclasses.replace(report, nodes=tuple(marked)))["traceEvents"]
    comm = [e for e in events if e.get("cat") == "comm"]
    assert [(e["args"]["node"], e["args"]["comm_bytes"]) for e in comm] == [(nodes[0].id, 4096)]
    assert len([e for e in events if e.get("cat") == "op"]) == len(nodes) - 1
    assert all("comm_bytes" not in e["args"] for e in trace_events(report)["traceEvents"] if e.get("cat") == "op")


def test_csv_tables_hold_the_report_numbers(report) -> None:
    ops = list(csv.DictReader(io.StringIO(ops_csv(report))))
    assert tuple(ops[0]) == OP_COLUMNS and len(ops) == len(report.nodes)
    for row, n in zip(ops, report.nodes):
        assert int(row["id"]) == n.id and row["op"] == n.op and row["module_path"] == n.module_path
        assert row["macs"] == ("" if n.macs is None else str(n.macs))
        assert float(row["latency_ms"]) == pytest.approx(n.latency_ms)
        assert row["inputs"] == " ".join(map(str, n.inputs))
        assert row["output_shapes"] == " ".join("x".join(map(str, o.shape)) for o in n.outputs)
    fc1 = next(r for r in ops if r["module_path"] == "block.fc1" and "addmm" in r["op"])
    assert int(fc1["macs"]) == 3 * 8 * 16  # addmm of (3, 8) by (8, 16)
    mods = list(csv.DictReader(io.StringIO(modules_csv(report))))
    assert tuple(mods[0]) == MODULE_COLUMNS and [m["path"] for m in mods] == [m.path for m in report.modules]
    root = mods[0]
    assert int(root["params"]) == (8 * 16 + 16) + (16 * 4 + 4) + (4 * 8 + 8)
    assert int(next(m for m in mods if m["path"] == "block")["calls"]) == 2


def test_csv_guards_cells_a_spreadsheet_would_run() -> None:
    model = nn.Sequential()
    model.add_module("=HYPERLINK(1)", nn.Linear(2, 2))
    report = mevreport.analyze(model, torch.randn(1, 2), runs=0, stats=False)
    rows = list(csv.reader(io.StringIO(modules_csv(report))))
    assert rows[2][0] == "'=HYPERLINK(1)"
    assert any(r[3] == "'=HYPERLINK(1)" for r in csv.reader(io.StringIO(ops_csv(report))))


def test_cli_writes_trace_and_csv_and_refuses_a_trace_without_timing(tmp_path: Path) -> None:
    proc = run_cli("report", "tests.models_hostile:small_conv_with_inputs", "--runs", "1", "-q",
                   "-o", str(tmp_path / "r.html"), "--trace", str(tmp_path / "t.json"), "--csv", str(tmp_path / "tab"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "t.json").read_text())
    report = mevreport.load(tmp_path / "r.html")
    assert sum(e.get("cat") == "op" for e in doc["traceEvents"]) == len(report.nodes)
    assert len((tmp_path / "tab" / "ops.csv").read_text().splitlines()) == len(report.nodes) + 1
    bad = run_cli("report", "tests.models_hostile:small_conv_with_inputs", "--runs", "0",
                  "-o", str(tmp_path / "b.html"), "--trace", str(tmp_path / "b.json"))
    assert bad.returncode == 2 and "with --runs 0 there are none" in bad.stderr
    assert not (tmp_path / "b.html").exists() and not (tmp_path / "b.json").exists()
