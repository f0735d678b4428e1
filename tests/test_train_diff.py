"""Diff, gates and the archive index know the training step's totals (DESIGN §6).

Two crafted training reports (tests/models_training.py) differ only in their
training totals; BASE and HEAD figures are written out here, the changes
derived from them by hand.  Forward-only reports keep their diff and index.
"""
from __future__ import annotations

import json
import re

import pytest

import mevreport
from mevreport.archive import scan
from mevreport.cli import main
from mevreport.diff import TOTAL_METRICS, compare
from mevreport.gates import evaluate, parse_gate
from mevreport.render.markdown import render_markdown

from . import models_report as M
from . import models_training as T

BASE = dict(T.TOTALS)  # backward 6,000 MACs, grads 4,000 B, train peak 20,000 B, optimizer state 8,000 B (AdamW)
HEAD = {**BASE, "backward_macs": 6_600, "grad_bytes": 4_400, "train_peak_bytes": 21_050}  # +10%, +10%, +5.25%


@pytest.fixture(scope="module")
def reports():
    base = T.training_report(BASE, label="v1", optimizer="AdamW")
    head = T.training_report(HEAD, label="v2", optimizer="SGD")
    model, inputs = M.small_net()
    forward = mevreport.analyze(model, inputs, runs=0, stats=False, label="v0")
    return base, head, forward


def test_diff_shows_training_totals(reports):
    base, head, forward = reports
    d = compare(base, head)
    got = {t.metric: (t.base, t.head, t.change, t.status) for t in d.totals}
    assert got["backward_macs"] == (6_000, 6_600, 600, "up")
    assert got["grad_bytes"] == (4_000, 4_400, 400, "up")
    assert got["train_peak_bytes"] == (20_000, 21_050, 1_050, "up")
    assert got["optimizer_state_bytes"] == (8_000, 8_000, 0, "same")
    assert d.total("train_peak_bytes").relative == pytest.approx(1_050 / 20_000)
    assert "measured_train_peak_bytes" not in got  # None on both sides: not a row
    assert "optimizers differ: base AdamW, head SGD" in d.notes
    md = render_markdown(d)
    assert "| Train step peak | 19.5 KiB | 20.6 KiB | +1.03 KiB (+5.2%) |" in md  # 21,050 B / 1024 = 20.56 KiB
    assert "| Backward MACs | 6.00 K | 6.60 K | +600 (+10.0%) |" in md
    # Two forward-only reports: exactly the forward totals, as before.
    assert [t.metric for t in compare(forward, forward).totals] == list(TOTAL_METRICS)
    one_side = compare(forward, head)
    assert one_side.total("train_peak_bytes").status == "n/a"
    assert any("captured on one side only (head)" in n for n in one_side.notes)


def test_gates_on_training_totals(reports):
    base, head, forward = reports
    assert evaluate(parse_gate("train_peak_bytes>+5%"), base, head).failed  # +5.25%
    assert not evaluate(parse_gate("train_peak_bytes>+6%"), base, head).failed
    assert evaluate(parse_gate("grad_bytes>+399"), base, head).failed and \
        not evaluate(parse_gate("grad_bytes>+400"), base, head).failed  # +400 B is not more than +400
    assert not evaluate(parse_gate("backward_macs>=6.7k"), base, head).failed  # head 6,600
    with pytest.raises(mevreport.errors.UsageError, match=r"BASE has no train_peak_bytes \(a forward-only report"):
        evaluate(parse_gate("train_peak_bytes>+5%"), forward, head)
    with pytest.raises(mevreport.errors.UsageError, match="measured on CUDA only"):
        evaluate(parse_gate("measured_train_peak_bytes>+0"), base, head)


def test_cli_gate_exit_codes(reports, tmp_path, capsys):
    base, head, forward = reports
    b, h, f = base.save_json(tmp_path / "b.json"), head.save_html(tmp_path / "h.html"), forward.save_json(
        tmp_path / "f.json")
    assert main(["diff", str(b), str(h), "--fail-if", "train_peak_bytes>+5%"]) == 1
    err = capsys.readouterr().err
    assert "train_peak_bytes base 20,000, head 21,050, change +1,050 (+5.25%)" in err
    assert main(["diff", str(b), str(h), "--fail-if", "train_peak_bytes>+6%", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["diff", str(f), str(h), "--fail-if", "train_peak_bytes>+5%"]) == 2
    assert "forward-only report: make it with --train" in capsys.readouterr().err


def test_index_plots_training_totals_when_present(reports, tmp_path):
    base, head, forward = reports
    forward.save_json(tmp_path / "v0.json")
    base.save_json(tmp_path / "v1.json")
    head.save_json(tmp_path / "v2.json")
    a = scan(tmp_path)
    assert [e.label for e in a.entries] == ["v0", "v1", "v2"]
    assert a.trends()["train_peak_bytes"] == [None, 20_000, 21_050]
    assert a.trends()["backward_macs"] == [None, 6_000, 6_600]
    assert a.trends()["grad_bytes"] == [None, 4_000, 4_400]
    assert main(["index", str(tmp_path), "--quiet"]) == 0
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    # params, MACs, peak (latency: not measured, runs=0) + backward MACs, train peak, gradient memory
    assert page.count("<svg") == 3 + 3 and "Latency (median): not measured in any report" in page
    assert "<th class=\"n\">Train step peak</th>" in page and "<td class=\"n\">20.6 KiB</td>" in page
    data = json.loads(re.search(r'id="mevreport-index">(.*?)</script>', page, re.S).group(1))
    assert data["train_metrics"] == ["backward_macs", "train_peak_bytes", "grad_bytes"]
    assert [e["train_peak_bytes"] for e in data["entries"]] == [None, 20_000, 21_050]


def test_forward_only_index_has_no_training_trace(reports, tmp_path):
    forward = reports[2]
    forward.save_json(tmp_path / "v0.json")
    a = scan(tmp_path)
    assert set(a.trends()) == {"params", "macs", "flops", "peak_activation_bytes", "latency_ms"}
    assert main(["index", str(tmp_path), "--quiet"]) == 0
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "train_metrics" not in page and "Train step peak" not in page and "train_peak_bytes" not in page
