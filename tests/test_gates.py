"""--fail-if gates: every expression form, in-process and through the CLI with its exit codes.

Reports are TinyMLP v1 and v2 (params 484 -> 916, MACs 896 -> 1664, FLOPs 1928 -> 3720;
see tests/test_diff.py for the derivation) with latencies set as a timed run would store them.
"""
from __future__ import annotations

import dataclasses

import pytest

import mevreport
from mevreport.errors import UsageError
from mevreport.gates import evaluate, parse_gate

from .conftest import run_cli
from .models_diff import mlp_v1, mlp_v2


def _timed(report, total: float, spread: float):
    totals = dataclasses.replace(report.totals, latency_ms=total, latency_spread_ms=spread, latency_runs=5)
    return dataclasses.replace(report, totals=totals)


@pytest.fixture(scope="module")
def reports():
    v1 = mevreport.analyze(*mlp_v1(), runs=0, stats=False)
    v2 = mevreport.analyze(*mlp_v2(), runs=0, stats=False)
    # base 10.0 ms (spread 0.4), head 10.3 ms (spread 0.5): +3%, within the spread.
    return _timed(v1, 10.0, 0.4), _timed(v2, 10.3, 0.5), v1, v2


@pytest.fixture(scope="module")
def files(reports, tmp_path_factory):
    d = tmp_path_factory.mktemp("gates")
    base, head, untimed_base, _ = reports
    base.save_json(d / "base.json")
    head.save_html(d / "head.html")  # HEAD read from the HTML report's embedded JSON
    untimed_base.save_json(d / "untimed.json")
    (d / "broken.json").write_text("{not json", encoding="utf-8")
    return d


@pytest.mark.parametrize("expr, metric, op, threshold, mode", [
    ("macs>+5%", "macs", ">", 0.05, "relative"),
    ("params>+0", "params", ">", 0.0, "change"),
    ("latency_ms>+10%", "latency_ms", ">", 0.10, "relative"),
    ("peak_activation_bytes>+5%", "peak_activation_bytes", ">", 0.05, "relative"),
    ("flops>2e9", "flops", ">", 2e9, "absolute"),
    ("flops >= 1.5G", "flops", ">=", 1.5e9, "absolute"),
    ("peak_activation_bytes<=512MiB", "peak_activation_bytes", "<=", 512 * 2 ** 20, "absolute"),
    ("params<-10%", "params", "<", -0.10, "relative"),
    ("macs<-1k", "macs", "<", -1000.0, "change"),
    ("latency>+2", "latency_ms", ">", 2.0, "change"),
])
def test_parse_forms(expr, metric, op, threshold, mode):
    g = parse_gate(expr)
    assert (g.metric, g.op, g.mode) == (metric, op, mode)
    assert g.threshold == pytest.approx(threshold)


@pytest.mark.parametrize("expr, message", [
    ("macs>5%", "needs a sign"),
    ("macs=+5%", "malformed"),
    ("macs>", "malformed"),
    ("bananas>+1", "unknown metric 'bananas'"),
    ("macs>+5%%", "malformed"),
    (">+5%", "malformed"),
])
def test_parse_errors(expr, message):
    with pytest.raises(UsageError, match=message):
        parse_gate(expr)


@pytest.mark.parametrize("expr, failed", [
    ("macs>+5%", True),              # +85.7 %
    ("macs>+90%", False),
    ("macs>=+768", True),            # change is exactly +768
    ("macs>+768", False),
    ("params>+0", True),             # +432
    ("params<-10%", False),          # it grew
    ("flops>2e9", False),            # HEAD 3720
    ("flops>3719", True),
    ("flops<=3720", True),
    ("flops<3720", False),
    ("peak_activation_bytes>+99%", True),   # 256 -> 512 B: +100 %
    ("peak_activation_bytes>+100%", False),
    ("latency_ms>+1%", False),       # +3 % but |+0.3 ms| <= 0.5 ms spread: counted as no change
    ("latency_ms>=+0%", True),       # no change still satisfies >= 0
    ("latency_ms>10.2", True),       # absolute HEAD value is not subject to noise
])
def test_evaluate(reports, expr, failed):
    base, head, _, _ = reports
    assert evaluate(parse_gate(expr), base, head).failed is failed


def test_latency_beyond_spread_fails(reports):
    base, head, _, _ = reports
    slow = _timed(head, 11.5, 0.5)  # +15 %, 1.5 ms > 0.5 ms spread
    r = evaluate(parse_gate("latency_ms>+10%"), base, slow)
    assert r.failed and not r.noise and r.relative == pytest.approx(0.15)
    within = evaluate(parse_gate("latency_ms>+1%"), base, head)
    assert within.noise and "within the run-to-run spread" in within.line()


def test_result_line_names_metric_base_head_change(reports):
    base, head, _, _ = reports
    line = evaluate(parse_gate("macs>+5%"), base, head).line()
    assert line == "macs>+5%: failed: macs base 896, head 1,664, change +768 (+85.71%)"


def test_cli_gate_failures_exit_1(files):
    r = run_cli("diff", str(files / "base.json"), str(files / "head.html"), "-q",
                "--fail-if", "macs>+5%", "--fail-if", "params>+0", "--fail-if", "flops>2e9",
                "--fail-if", "latency_ms>+1%")
    assert r.returncode == 1, r.stderr
    failed = [line for line in r.stderr.splitlines() if line.startswith("mevreport: gate ")]
    assert failed == [
        "mevreport: gate macs>+5%: failed: macs base 896, head 1,664, change +768 (+85.71%)",
        "mevreport: gate params>+0: failed: params base 484, head 916, change +432 (+89.26%)",
    ]
    # Without -o, the Markdown summary goes to stdout and lists every gate.
    assert "| MACs | 896 | 1.66 K | +768 (+85.7%) |" in r.stdout
    assert "\u2705 `flops>2e9: passed: flops base 1,928, head 3,720, change +1,792 (+92.95%)`" in r.stdout


def test_cli_all_gates_hold_exit_0(files, tmp_path):
    out = tmp_path / "d.html"
    r = run_cli("diff", str(files / "base.json"), str(files / "head.html"), "-o", str(out),
                "--fail-if", "macs>+90%", "--fail-if", "flops>=1e4", "--fail-if", "latency_ms>+1%")
    assert r.returncode == 0, r.stderr
    assert "all 3 gate(s) passed" in r.stderr
    assert out.is_file() and r.stdout == ""


@pytest.mark.parametrize("args, message", [
    (["--fail-if", "macs>5%"], "needs a sign"),
    (["--fail-if", "macs"], "malformed --fail-if 'macs'"),
    (["--fail-if", "latency_ms>+10%", "--base", "untimed.json"], "BASE has no latency_ms"),
    (["--base", "broken.json"], "is not a mevreport JSON document"),
    (["--base", "missing.json"], "no such file"),
])
def test_cli_usage_errors_exit_2(files, tmp_path, capsys, args, message):
    base = "base.json"
    if "--base" in args:
        i = args.index("--base")
        base = args[i + 1]
        args = args[:i] + args[i + 2:]
    out = tmp_path / "d.html"
    argv = ["diff", str(files / base), str(files / "head.html"), "-o", str(out), *args]
    if message == "needs a sign":  # once as a real process, the rest in-process (same code path, faster)
        r = run_cli(*argv)
        code, stderr = r.returncode, r.stderr
    else:
        from mevreport.cli import main
        code = main(argv)
        stderr = capsys.readouterr().err
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mevreport: error: ") and message in lines[0]
    assert not out.exists()
