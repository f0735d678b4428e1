"""Reporting the same model and inputs twice gives the same document (DESIGN §2).

Only ``created_at``, ``environment`` and the measured latencies (``latency_ms``
fields and the forward ``latency_spread_ms``) may differ; with those scrubbed
the JSON text and the HTML page are identical, within one process and across
processes with different hash seeds (set iteration order, ``id()`` values).
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mevreport
from mevreport.report import Environment, Report

from .conftest import REPO
from .models_diff import convnet, mixed

MODELS = {"convnet": convnet, "mixed": mixed}


def scrub(report: Report) -> Report:
    """The report with every field that may legitimately change between runs set to a constant."""
    totals = dataclasses.replace(report.totals, latency_ms=None, latency_spread_ms=None)
    return dataclasses.replace(
        report, created_at="<scrubbed>", environment=Environment("", "", "", ""), totals=totals,
        modules=tuple(dataclasses.replace(m, latency_ms=None) for m in report.modules),
        nodes=tuple(dataclasses.replace(n, latency_ms=None) for n in report.nodes),
    )


def report_of(name: str) -> Report:
    model, inputs = MODELS[name]()
    return mevreport.analyze(model, inputs, runs=2, stats=True)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_same_process_identical_after_scrub(name):
    a, b = report_of(name), report_of(name)
    # The scrub is not vacuous: latencies were measured, and stats taken.
    assert a.totals.latency_ms is not None and a.nodes[0].latency_ms is not None
    assert sum(n.stats is not None for n in a.nodes) > 5
    assert scrub(a).to_json() == scrub(b).to_json()
    assert scrub(a).to_dict() == scrub(b).to_dict()
    from mevreport.render.html import render_html
    assert render_html(scrub(a)) == render_html(scrub(b))
    # Node ids are execution order, 0..n-1; module order is first-call order with the root first.
    assert [n.id for n in a.nodes] == list(range(len(a.nodes)))
    assert a.modules[0].path == ""


_CHILD = """
import sys
from pathlib import Path
from tests.test_determinism import MODELS, report_of, scrub
for name in sorted(MODELS):
    s = scrub(report_of(name))
    Path(sys.argv[1], name + ".json").write_text(s.to_json(), encoding="utf-8")
    s.save_html(Path(sys.argv[1], name + ".html"))
"""


@pytest.mark.slow
def test_across_processes_and_hash_seeds(tmp_path):
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        (tmp_path / seed).mkdir()
        subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / seed)], check=True, cwd=REPO, env=env,
                       timeout=300)
    for name in sorted(MODELS):
        for ext in ("json", "html"):
            one, two = (Path(tmp_path, seed, f"{name}.{ext}").read_bytes() for seed in ("1", "2"))
            assert one == two, f"{name}.{ext} differs between processes"
        assert b'"created_at": "<scrubbed>"' in Path(tmp_path, "1", f"{name}.json").read_bytes()
