"""Crafted report files never crash ``load``, ``diff`` or ``index`` (issue 11).

A valid report document is mutated (a value's type, a value, a key dropped,
nesting, sizes, numbers JSON cannot hold) and written as JSON or inside an
HTML report; then ``mevreport.load``, ``diff.compare`` with the gates and
both renderers, and ``archive.scan`` with the index page run on it.  Each
either works or raises ``MevreportError`` (one line, exit 2 at the CLI):
never another exception, never a hang.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mevreport
from mevreport.archive import scan
from mevreport.diff import compare
from mevreport.errors import MevreportError
from mevreport.gates import evaluate_all, parse_gates
from mevreport.render.diff_page import render_diff_html
from mevreport.render.embed import SCRIPT_ID
from mevreport.render.index_page import render_index_html
from mevreport.render.markdown import render_markdown

from .conftest import run_cli
from .models import Nested

GATES = parse_gates(["macs>+5%", "params>+0", "latency_ms>2e9"])


@pytest.fixture(scope="module")
def base_doc() -> dict:
    torch.manual_seed(0)
    report = mevreport.analyze(Nested().eval(), torch.randn(2, 4), runs=2)
    return json.loads(report.to_json())


def _paths(doc) -> list[tuple]:
    out, stack = [], [((), doc)]
    while stack:
        path, v = stack.pop()
        out.append(path)
        if isinstance(v, dict):
            stack.extend((path + (k,), x) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((path + (i,), x) for i, x in enumerate(v))
    return sorted(out, key=repr)


NASTY = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([0, -1, 10**400, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["", "\x1b[2J", "</script><script>alert(1)</script>", "a" * 5000, "..", "\u2028"]),
    st.lists(st.integers(), max_size=4), st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
    st.integers(1, 400).map(lambda n: [[]] * 1 if n < 0 else json.loads("[" * n + "]" * n)),
)


@st.composite
def mutated(draw, doc: dict) -> str:
    doc = json.loads(json.dumps(doc))
    paths = _paths(doc)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        parent = doc
        try:
            for k in path[:-1]:
                parent = parent[k]
            key = path[-1]
            action = draw(st.sampled_from(["same-type"] * 4 + ["replace", "drop", "repeat", "wrap"]))
            old = parent[key]
            if action == "same-type":  # loads, then must not crash what reads it
                if type(old) is int:
                    parent[key] = draw(st.sampled_from([0, -1, -(2**62), 2**62, 10**29]) | st.integers())
                elif type(old) is float:
                    parent[key] = draw(st.sampled_from([0.0, -1.0, 1e300, -1e-300]) | st.floats(allow_nan=False,
                                                                                             allow_infinity=False))
                elif isinstance(old, str):
                    parent[key] = draw(st.sampled_from(["", ".", "a..b", "\x1b]0;x\x07", "<b>"]) | st.text(max_size=30))
                elif isinstance(old, list):
                    parent[key] = old[::-1] if draw(st.booleans()) else []
            elif action == "replace":
                parent[key] = draw(NASTY)
            elif action == "drop":
                del parent[key]
            elif action == "repeat" and isinstance(parent[key], list):
                parent[key] = parent[key] * draw(st.integers(2, 300))
            elif action == "wrap":
                parent[key] = [parent[key]]
        except (KeyError, IndexError, TypeError):
            continue
    text = json.dumps(doc, allow_nan=True)
    if draw(st.booleans()):  # also digits past Python's int-from-string limit, which json.dumps cannot make
        text = text.replace('"params": ', '"params": 9' + "9" * draw(st.sampled_from([0, 4400])), 1)
    return text


class _Hang(Exception):
    pass


def _alarm(_sig, _frame):
    raise _Hang()


def _check(base_doc: dict, text: str, as_html: bool, tmp: Path) -> None:
    path = tmp / ("r.html" if as_html else "r.json")
    if as_html:
        safe = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        path.write_text(f'<html><script type="application/json" id="{SCRIPT_ID}">{safe}</script></html>')
    else:
        path.write_text(text)
    good = tmp / "good.json"
    good.write_text(json.dumps(base_doc))
    try:
        head = mevreport.load(path)
    except MevreportError as exc:
        assert "\n" not in str(exc)
        head = None
    base = mevreport.load(good)
    if head is not None:
        for b, h in ((base, head), (head, base), (head, head)):
            d = compare(b, h, "BASE", "HEAD")
            results = evaluate_all(GATES, b, h)
            render_markdown(d, results)
            render_diff_html(d, results)
    archive = scan(tmp, exclude=(tmp / "index.html",))
    assert len(archive.entries) + len(archive.skipped) >= 1
    render_index_html(archive, tmp / "index.html")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                HealthCheck.function_scoped_fixture])
@given(data=st.data(), as_html=st.booleans())
def test_mutated_reports_never_crash_load_diff_index(base_doc, tmp_path_factory, data, as_html) -> None:
    text = data.draw(mutated(base_doc))
    tmp = tmp_path_factory.mktemp("fuzz")
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)  # a hang fails the example instead of the suite
    try:
        _check(base_doc, text, as_html, tmp)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("case,replace,field", [
    ("nan", ("latency_ms", "NaN"), "totals.latency_ms is NaN"),
    ("infinity", ("macs", "-Infinity"), "totals.macs is -Infinity"),
    ("float-overflow", ("macs", "1e999"), "totals.macs is 1e999"),
    ("int-beyond-float", ("macs", "1" + "0" * 400), "totals.macs is the integer 1000"),
    ("int-over-4300-digits", ("macs", "1" * 5000), "totals.macs is an integer of 5,000 digits"),
])
@pytest.mark.parametrize("container", ["json", "html"])
def test_crafted_number_is_one_line_naming_file_and_field(base_doc, tmp_path, case, replace, field, container):
    key, literal = replace
    doc = dict(base_doc)
    doc["totals"] = {**doc["totals"], key: "@@"}
    text = json.dumps(doc).replace('"@@"', literal)
    path = tmp_path / f"{case}.{container}"
    if container == "html":
        path.write_text(f'<!DOCTYPE html><script type="application/json" id="{SCRIPT_ID}">{text}</script>')
    else:
        path.write_text(text)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(base_doc))
    r = run_cli("diff", str(path), str(good), "-o", str(tmp_path / "d.html"), cwd=tmp_path, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith(f"mevreport: error: '{path}': field {field}"), lines[0]
    assert not (tmp_path / "d.html").exists()


def test_nesting_past_the_recursion_limit(base_doc, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(base_doc)[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(MevreportError, match=r"deep\.json' is not a mevreport report: it nests deeper"):
        mevreport.load(path)
    shallow = tmp_path / "shallow.json"  # parses, but deeper than any report
    shallow.write_text(json.dumps(base_doc)[:-1] + ', "extra": ' + "[" * 500 + "]" * 500 + "}")
    with pytest.raises(MevreportError, match=r"field extra\[0\]\[0\].*nests deeper than 64"):
        mevreport.load(shallow)


@pytest.mark.parametrize("container", ["json", "html"])
@pytest.mark.parametrize("depth", [100_000, 500])
def test_deep_nesting_through_the_cli_is_one_line(base_doc, tmp_path, depth, container):
    """Past the parser's recursion limit the field cannot be known, so the line names the file and the depth."""
    text = json.dumps(base_doc)[:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}"
    path = tmp_path / f"deep.{container}"
    path.write_text(text if container == "json" else
                    f'<!DOCTYPE html><script type="application/json" id="{SCRIPT_ID}">{text}</script>')
    good = tmp_path / "good.json"
    good.write_text(json.dumps(base_doc))
    r = run_cli("diff", str(path), str(good), "-o", str(tmp_path / "d.html"), cwd=tmp_path, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"mevreport: error: '{path}' is not a mevreport report: it nests deeper than Python can parse"
        if depth > 1000 else
        f"mevreport: error: '{path}': field extra[0][0][0][0][0][0][0]... nests deeper than 64 levels; "
        "not a mevreport report"], r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, "good.json"])


def test_index_skips_bad_files_and_symlinks_with_a_note(base_doc, tmp_path):
    d = tmp_path / "reports"
    (d / "sub").mkdir(parents=True)
    (d / "good.json").write_text(json.dumps(base_doc))
    (d / "nan.json").write_text(json.dumps(base_doc).replace('"params": 50', '"params": NaN', 1))
    (d / "binary.json").write_bytes(b"\xff\xfe\x00")
    (d / "loop1.json").symlink_to("loop2.json")
    (d / "loop2.json").symlink_to("loop1.json")
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(base_doc))
    (d / "out.json").symlink_to(outside)
    (d / "sub" / "up").symlink_to("..")  # a directory loop
    os.mkfifo(d / "fifo.json")  # reading it would block forever
    r = run_cli("index", str(d), "-q", cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    notes = r.stderr.strip().splitlines()
    assert all(n.startswith("mevreport: warning: skipped ") for n in notes), r.stderr
    named = sorted(n.split("skipped ", 1)[1].split(":")[0].rsplit("/", 1)[-1] for n in notes)
    assert named == ["binary.json", "fifo.json", "loop1.json", "loop2.json", "nan.json", "out.json"]
    page = (d / "index.html").read_text()
    assert "outside the directory; not followed" in page and "field totals.params is NaN" in page
    assert "is not a regular file (a FIFO, socket or device)" in page
    assert page.count("good.json") >= 1 and "outside.json\"" not in page


def test_diff_of_a_base_with_60000_repeated_module_rows(base_doc) -> None:
    """Issue 11: the crafted BASE that made diff run for minutes; the alarm turns a hang into a failure."""
    from mevreport.report import Report
    head = Report.from_dict(base_doc)
    crafted = json.loads(json.dumps(base_doc))
    crafted["modules"] += [dict(crafted["modules"][1], path="evil.block")] * 60_000
    base = Report.from_dict(crafted)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    try:
        d = compare(base, head)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert [(c.kind, c.path) for c in d.modules] == [("removed", "evil.block")]
    assert d.unchanged_modules == len(head.modules)
