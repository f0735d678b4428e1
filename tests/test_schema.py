"""The report's shape is written once: the dataclasses (issue 13).

The shipped ``mevreport/schema.json`` must be exactly what pydantic generates
from them now (regenerate: ``python -m mevreport.schema > mevreport/schema.json``),
and ``mevreport.load`` must accept and refuse what that schema accepts and refuses.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import mevreport
from mevreport.errors import ReportReadError
from mevreport.report import Report
from mevreport.schema import json_schema, schema_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_reports" / "gpt2_small.json"


def test_shipped_schema_is_the_generated_one() -> None:
    shipped = (ROOT / "mevreport" / "schema.json").read_text(encoding="utf-8")
    assert shipped == schema_text(), "mevreport/schema.json is stale: python -m mevreport.schema > mevreport/schema.json"
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_regenerate_command_prints_the_shipped_file() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "mevreport.schema"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (ROOT / "mevreport" / "schema.json").read_text(encoding="utf-8")


def _doc() -> dict:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


# (where, bad value, what load says): each is refused by the shipped schema too.
BAD = [
    (("totals", "params"), -1, "field totals.params: Input should be greater than or equal to 0"),
    (("totals", "params"), "5", "field totals.params: Input should be a valid integer"),
    (("totals", "params"), True, "field totals.params: Input should be a valid integer"),
    (("nodes", 3, "macs"), 1.5, "field nodes[3].macs: Input should be a valid integer"),
    (("nodes", 5, "stats", "zero_fraction"), 1.5, "field nodes[5].stats.zero_fraction: Input should be less than"),
    (("capture", "fake"), 1, "field capture.fake: Input should be a valid boolean"),
    (("tool", "name"), "other", "field tool.name: Input should be 'mevreport'"),
    (("uncounted_ops",), [{"op": "x", "count": 0}], "field uncounted_ops[0].count: Input should be greater than"),
    (("inputs", 0, "shape"), "1,2", "field inputs[0].shape: Input should be a valid array"),
]


@pytest.mark.parametrize("where,value,message", BAD, ids=[m.split(":")[0] + f"={v!r}" for _, v, m in BAD])
def test_load_refuses_what_the_schema_refuses(tmp_path, where, value, message) -> None:
    doc = _doc()
    parent = doc
    for k in where[:-1]:
        parent = parent[k]
    parent[where[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(json_schema()).validate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ReportReadError) as info:
        mevreport.load(path)
    text = str(info.value)
    assert text.startswith(f"{str(path)!r} is a malformed mevreport report: {message}"), text
    assert "\n" not in text


def test_missing_field_and_unknown_field(tmp_path) -> None:
    doc = _doc()
    del doc["nodes"][2]["op"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ReportReadError, match=r"field nodes\[2\]\.op: Field required"):
        mevreport.load(path)
    doc = _doc()
    doc["a_field_from_a_later_version"] = {"x": 1}           # fields are only ever added: accepted, ignored
    doc["totals"]["another"] = [1, 2]
    jsonschema.Draft202012Validator(json_schema()).validate(doc)
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert mevreport.load(path) == mevreport.load(EXAMPLE)


def test_load_gives_back_records_of_the_declared_types() -> None:
    """tuples, floats where floats are declared (a JSON 3 in a float field is 3.0), nested dataclasses."""
    report = mevreport.load(EXAMPLE)
    assert isinstance(report.nodes, tuple) and isinstance(report.nodes[0].outputs[0].shape, tuple)
    assert type(report.nodes[0].outputs[0]).__name__ == "TensorMeta"
    doc = _doc()
    doc["totals"]["latency_ms"] = 3
    assert Report.from_dict(doc).totals.latency_ms == 3.0 and type(Report.from_dict(doc).totals.latency_ms) is float
    assert Report.from_dict(_doc()).to_dict() == _doc()
