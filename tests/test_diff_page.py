"""The diff's HTML page and Markdown summary: content, escaping, self-containment, browser behaviour."""
from __future__ import annotations

import json
import re

import pytest

import mevreport
from mevreport.diff import compare
from mevreport.gates import evaluate_all, parse_gates
from mevreport.render.diff_page import render_diff_html
from mevreport.render.markdown import md_code, md_text, render_markdown

from .browser_pages import visit
from .models_diff import HOSTILE, HostileMLP, mlp_v1, mlp_v2

EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//|@import|url\(""", re.I)


@pytest.fixture(scope="module")
def mlp_diff():
    v1 = mevreport.analyze(*mlp_v1(), runs=0, stats=False, label="v1.9.0")
    v2 = mevreport.analyze(*mlp_v2(), runs=0, stats=False, label="v1.10.0")
    return v1, v2, compare(v1, v2, "v1.json", "v2.json")


@pytest.fixture(scope="module")
def hostile_diff():
    v1 = mevreport.analyze(*mlp_v1(), runs=0, stats=False)
    model = HostileMLP().eval()
    bad = mevreport.analyze(model, mlp_v1()[1], runs=0, stats=False)
    return compare(v1, bad)


def test_md_escaping():
    assert md_text("a|b*c_<d>@e#1\nz") == r"a\|b\*c\_\<d\>\@e\#1 z"
    assert md_code("enc.0") == "`enc.0`"
    assert md_code("a|b") == r"`a\|b`"
    assert md_code("x`y") == "``x`y``"
    assert md_code("`x`") == "`` `x` ``"


def test_markdown_summary(mlp_diff):
    *_, d = mlp_diff
    gates = evaluate_all(parse_gates(["macs>+5%"]), *mlp_diff[:2])
    md = render_markdown(d, gates, top=3, html_name="diff.html")
    lines = md.splitlines()
    assert lines[0] == r"### mevreport diff: v1\.9\.0 → v1\.10\.0"
    assert "| Parameters | 484 | 916 | +432 (+89.3%) |" in lines
    assert "| MACs | 896 | 1.66 K | +768 (+85.7%) |" in lines
    assert "| Peak activation memory | 256 B | 512 B | +256 B (+100.0%) |" in lines
    assert "| Latency | — | — | — |" in lines
    assert "**Modules:** 4 changed, 1 added, 1 removed, 0 renamed, 1 unchanged." in lines
    assert r"| `fc1` | changed\: params\, macs\, flops\, output shapes | 144 → 288 | 256 → 512 | \[2×16\] → \[2×32\] |" \
        in lines
    assert r"_3 more module changes in diff\.html._" in lines
    assert "- \u274c `macs>+5%: failed: macs base 896, head 1,664, change +768 (+85.71%)`" in lines
    assert len(md) < 4000  # fits a PR comment easily


def test_markdown_escapes_hostile_module(hostile_diff):
    md = render_markdown(hostile_diff)
    row = next(line for line in md.splitlines() if line.startswith("| ``"))
    # One code span; pipes escaped so the table keeps its five columns.
    cells = re.split(r"(?<!\\)\|", row)
    assert len(cells) == 7, row
    assert cells[1].strip() == "``" + HOSTILE.replace("|", "\\|") + "``"
    # Linear(4, 4) on [2, 4]: 20 params, 32 MACs; its output is the model's.
    assert [c.strip() for c in cells[2:6]] == ["added", "20", "32", r"\[2×4\]"]


def test_diff_page_escapes_and_embeds(hostile_diff):
    page = render_diff_html(hostile_diff)
    assert HOSTILE not in page and "<img src=x" not in page
    assert "&lt;/script&gt;&lt;img src=x onerror=pwned=1&gt;|`x`*_[y](z)@all#1" in page
    assert "Bad&lt;b&gt;|`Cls`" in page
    assert not EXTERNAL.search(page)
    m = re.search(r'<script type="application/json" id="mevreport-diff">(.*?)</script>', page, re.S)
    data = json.loads(m.group(1))
    assert "</" not in m.group(1)
    added = [row for row in data["modules"] if row["kind"] == "added"]
    assert [row["path"] for row in added] == [HOSTILE]
    assert added[0]["head"]["params"] == 20 and added[0]["head"]["class_name"] == "Bad<b>|`Cls`"


def test_cli_writes_page_and_markdown(mlp_diff, tmp_path):
    from .conftest import run_cli
    v1, v2, _ = mlp_diff
    v1.save_json(tmp_path / "v1.json")
    v2.save_html(tmp_path / "v2.html")
    r = run_cli("diff", str(tmp_path / "v1.json"), str(tmp_path / "v2.html"), "-o", str(tmp_path / "d.html"),
                "--markdown", str(tmp_path / "d.md"), "-q")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    page = (tmp_path / "d.html").read_text(encoding="utf-8")
    assert "<title>mevreport diff: v1.9.0 → v1.10.0 · mevreport</title>" in page
    listed = page.split('<section id="modules">', 1)[1]  # the change list (the tree above marks each module too)
    assert listed.count('<span class="badge changed">') == 4 and listed.count('<span class="badge added">') == 1
    tree = page.split('<section id="tree">', 1)[1].split("</section>", 1)[0]
    assert tree.count('<span class="badge changed">') == 4 and tree.count('<span class="badge removed">') == 1
    md = (tmp_path / "d.md").read_text(encoding="utf-8")
    assert "| MACs | 896 | 1.66 K | +768 (+85.7%) |" in md


@pytest.mark.browser
def test_diff_page_in_browser(hostile_diff, tmp_path):
    path = tmp_path / "diff.html"
    path.write_text(render_diff_html(hostile_diff), encoding="utf-8")

    def check(page):
        assert page.evaluate("typeof pwned") == "undefined"
        page.click("#theme-toggle")
        assert page.evaluate("document.documentElement.classList.contains('dark')")
        total = page.locator("tr[data-search]").count()
        page.fill("#filter", "img src")
        visible = page.evaluate("Array.from(document.querySelectorAll('tr[data-search]'))"
                                ".filter(r => r.style.display !== 'none').length")
        assert (total, visible) == (2, 1)  # root changed + hostile module added; the filter keeps one

    requests, errors = visit(path, check)
    assert requests == [path.as_uri()]
    assert errors == []


@pytest.mark.browser
def test_diff_and_index_follow_the_system_theme_and_fit_a_phone(mlp_diff, tmp_path):
    from playwright.sync_api import sync_playwright

    from .browser_pages import ARGS
    from .conftest import CHROMIUM, require_browser
    require_browser()
    path = tmp_path / "diff.html"
    path.write_text(render_diff_html(mlp_diff[2]), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, color_scheme="dark")
            page.goto(path.as_uri())
            assert page.evaluate("document.documentElement.classList.contains('dark')")
            assert page.locator("#theme-toggle").text_content() == "Light mode"
            assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways page scroll
            page.screenshot(path=str(tmp_path / "diff-phone.png"), full_page=True)
            light = browser.new_page(viewport={"width": 1400, "height": 900}, color_scheme="light")
            light.goto(path.as_uri())
            assert not light.evaluate("document.documentElement.classList.contains('dark')")
            assert light.evaluate("document.documentElement.scrollWidth") <= 1400
        finally:
            browser.close()
