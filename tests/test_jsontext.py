"""mevreport.jsontext writes exactly what ``json.dumps(data, indent=1, allow_nan=False)`` writes."""
from __future__ import annotations

import json

import pytest

import mevreport
from mevreport.jsontext import dumps_indent1

from . import models_report as M

CASES = [
    {}, [], "", 0, -7, 1.5, -0.0, 1e300, 5e-324, True, False, None, "é\u2028</script>\"\\\n",
    {"a": [], "b": {}, "c": [[], [[1]], {"d": None}], "e": [1, 2.5, "x", True, None, [3]], "f": [4, 4]},
    [{"shape": [2, 3], "dtype": "float32"}, {"k": {"deep": {"deeper": [0]}}}],
    {"é": 1, "\u2028": [True, False]},
]
# What the standard library writes differently from plain data, or refuses: handed to it whole.
OTHER = [{1: 2}, {"x": (1, 2)}, {"t": 1 << 70}, [float("nan")], {"inf": float("inf")}, {"b": b"x"}]


@pytest.mark.parametrize("value", CASES + OTHER[:3], ids=repr)
def test_same_text_as_the_standard_library(value):
    assert dumps_indent1(value) == json.dumps(value, indent=1, allow_nan=False)


@pytest.mark.parametrize("value", OTHER[3:], ids=repr)
def test_same_errors_as_the_standard_library(value):
    with pytest.raises((ValueError, TypeError)) as std:
        json.dumps(value, indent=1, allow_nan=False)
    with pytest.raises(type(std.value), match=str(std.value)):
        dumps_indent1(value)


def test_a_whole_report_document():
    model, ids = M.gpt_own(2)
    report = mevreport.analyze(model, ids, runs=1)
    data = report.to_dict()
    assert report.to_json() == json.dumps(data, indent=1, allow_nan=False)
    assert mevreport.Report.from_json(report.to_json()) == report
