"""The JSON document's text (orjson) parses back to exactly the data, and refuses what JSON cannot hold."""
from __future__ import annotations

import json

import pytest

import mevreport
from mevreport.jsontext import document_text

from . import models_report as M

CASES = [
    {}, [], "", 0, -7, 1.5, -0.0, 1e300, 5e-324, True, False, None, "é\u2028</script>\"\\\n",
    {"a": [], "b": {}, "c": [[], [[1]], {"d": None}], "e": [1, 2.5, "x", True, None, [3]], "f": [4, 4]},
    [{"shape": [2, 3], "dtype": "float32"}, {"k": {"deep": {"deeper": [0]}}}],
    {"é": 1, "\u2028": [True, False]}, {"t": 1 << 70}, {"u": -(1 << 63)},
]


@pytest.mark.parametrize("value", CASES, ids=repr)
def test_text_parses_back_to_the_same_data(value):
    text = document_text(value)
    assert json.loads(text) == value
    back = json.loads(text)
    if isinstance(value, float):  # -0.0 and the smallest subnormal survive bit for bit
        assert repr(back) == repr(value)


def test_indented_two_spaces():
    assert document_text({"a": [1]}) == '{\n  "a": [\n    1\n  ]\n}'


@pytest.mark.parametrize("value", [{"b": b"x"}, [object()]], ids=repr)
def test_what_json_cannot_hold_is_refused(value):
    with pytest.raises(TypeError):
        document_text(value)


def test_a_whole_report_document():
    model, ids = M.gpt_own(2)
    report = mevreport.analyze(model, ids, runs=1)
    assert json.loads(report.to_json()) == json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert mevreport.Report.from_json(report.to_json()) == report


def test_a_large_document_stays_compact_and_a_small_one_is_indented(monkeypatch):
    import mevreport.jsontext as J
    data = {"nodes": [{"id": i, "shape": [1, i]} for i in range(50)]}
    compact = json.dumps(data, separators=(",", ":"))
    assert document_text(data) == json.dumps(data, indent=2)  # small: for people to read
    monkeypatch.setattr(J, "INDENT_UP_TO", len(compact) - 1)
    assert document_text(data) == compact  # one character over: compact, the same data
    monkeypatch.setattr(J, "INDENT_UP_TO", len(compact))
    assert document_text(data) == json.dumps(data, indent=2)
