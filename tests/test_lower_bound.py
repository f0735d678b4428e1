"""While ops without a cost rule remain, MACs/FLOPs are lower bounds, and the page and the gates say so."""
from __future__ import annotations

import torch
from torch import nn

import mevreport
from mevreport.cli import main
from mevreport.gates import lower_bound_warnings, parse_gates
from mevreport.render.html import summary_cards


class _WithFFT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x):
        return torch.fft.rfft(self.fc(x)).abs()


def _compute(report):
    return next(c for c in summary_cards(report) if c["label"].startswith("Compute"))


def test_compute_card_says_lower_bound_and_how_many_ops(tmp_path):
    report = mevreport.analyze(_WithFFT(), torch.randn(4, 16), runs=0, stats=False)
    missing = sum(u.count for u in report.uncounted_ops)
    assert missing == report.totals.uncounted_nodes >= 1
    card = _compute(report)
    assert report.totals.macs == 4 * 16 * 16
    assert card["label"] == "Compute (lower bound)" and card["value"] == "≥ 1.02 KMACs"
    assert f"lower bound: {missing} op" in card["detail"] and "without a cost rule" in card["detail"]
    path = tmp_path / "r.html"
    report.save_html(str(path))
    assert "Compute (lower bound)" in path.read_text(encoding="utf-8")
    counted = mevreport.analyze(nn.Linear(16, 16), torch.randn(4, 16), runs=0, stats=False)
    assert _compute(counted) == {"label": "Compute", "value": "1.02 KMACs", "detail": "2.11 KFLOPs", "href": "#ops"}


def test_macs_gate_warns_when_either_side_has_uncounted_ops(tmp_path, capsys):
    full = mevreport.analyze(nn.Linear(16, 16), torch.randn(4, 16), runs=0, stats=False)
    partial = mevreport.analyze(_WithFFT(), torch.randn(4, 16), runs=0, stats=False)
    gates = parse_gates(["macs>+5%", "params>+0", "flops>1e12"])
    lines = lower_bound_warnings(gates, full, partial)
    n = partial.totals.uncounted_nodes
    assert len(lines) == 2 and all("compares lower bounds" in ln and f"HEAD has {n} op(s)" in ln for ln in lines)
    assert "BASE" not in lines[0].split("compares lower bounds")[1]
    assert lower_bound_warnings(gates, full, full) == []
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    partial.save_json(str(base))
    full.save_json(str(head))
    code = main(["diff", str(base), str(head), "--markdown", str(tmp_path / "d.md"), "--fail-if", "macs>+50%"])
    err = capsys.readouterr().err
    assert code == 0
    assert [ln for ln in err.splitlines() if "lower bounds" in ln] == [
        f"mevreport: warning: gate 'macs>+50%' compares lower bounds: BASE has {n} op(s) of "
        f"{len(partial.uncounted_ops)} kind(s) without a cost rule (see their uncounted_ops)"]
    code = main(["diff", str(head), str(head), "--markdown", str(tmp_path / "e.md"), "--fail-if", "macs>+50%"])
    assert code == 0 and "lower bounds" not in capsys.readouterr().err


def test_totals_say_lower_bound_in_the_diff_and_the_repr(tmp_path):
    """The totals outside the card: the diff (Markdown and HTML) notes that they are lower bounds and on
    which side; the one-line repr marks its MACs."""
    from mevreport.diff import compare
    from mevreport.render.markdown import md_text, render_markdown

    full = mevreport.analyze(nn.Linear(16, 16), torch.randn(4, 16), runs=0, stats=False)
    partial = mevreport.analyze(_WithFFT(), torch.randn(4, 16), runs=0, stats=False)
    n = partial.totals.uncounted_nodes
    note = f"MACs and FLOPs are lower bounds: HEAD has {n} op(s) of 1 kind(s) without a cost rule"
    d = compare(full, partial)
    assert note in d.notes
    assert not [x for x in compare(full, full).notes if "lower bounds" in x]
    assert f"> {md_text(note)}\n" in render_markdown(d)
    assert repr(partial).endswith(f"4 ops, ≥ 1,024 MACs ({n} op(s) without a cost rule)>")
    assert repr(full).endswith("2 ops, 1,024 MACs>")
