"""HEAD's module tree on the diff page: each module's mark and deltas, links to both reports, phone and theme.

The model pair edits a net four ways at once (``models_diff.Edited``): a LayerNorm added,
the ffn widened from 32 to 64, ``gate`` renamed ``proj``, the Tanh ``drop`` removed.  The
figures are hand-derived: Linear(a, b) has a*b + b parameters and, on a [2, a] input, 2*a*b MACs.
"""
from __future__ import annotations

import pytest

import mevreport
from mevreport.diff import compare
from mevreport.diff_tree import module_tree

from .conftest import run_cli
from .models_diff import Edited, Encoder

KINDS = [("", "changed"), ("embed", "same"), ("extra", "added"), ("ffn", "changed"), ("ffn.0", "changed"),
         ("ffn.1", "changed"), ("ffn.2", "changed"), ("proj", "renamed"), ("drop", "removed"), ("out", "same")]


@pytest.fixture(scope="module")
def edited():
    x = Edited.example_input()
    v1 = mevreport.analyze(Edited(1).eval(), x, runs=0, stats=False, label="v1")
    v2 = mevreport.analyze(Edited(2).eval(), x, runs=0, stats=False, label="v2")
    return v1, v2


def test_tree_marks_every_module_of_head_and_places_the_lost_one(edited):
    v1, v2 = edited
    tree = module_tree(v1, v2, compare(v1, v2))
    assert [(r.path, r.kind) for r in tree] == KINDS  # "drop" sits where it was: after gate (now proj)
    by = {r.path: r for r in tree}
    assert by["proj"].base.path == "gate" and by["proj"].delta("params") == 0  # 16*16 + 16 both sides
    assert by["extra"].base is None and by["extra"].delta("params") == 32  # LayerNorm(16): weight and bias
    assert by["ffn"].delta("params") == (16 * 64 + 64 + 64 * 16 + 16) - (16 * 32 + 32 + 32 * 16 + 16) == 1056
    assert by["ffn.0"].delta("macs") == 2 * 16 * 64 - 2 * 16 * 32 == 1024
    assert by["drop"].head is None and by["drop"].delta("activation_bytes") == -2 * 16 * 4  # a [2, 16] fp32 gone
    assert [r.depth for r in tree] == [0, 1, 1, 1, 2, 2, 2, 1, 1, 1]


def test_tree_of_a_moved_block_keeps_what_came_with_it():
    """encoder.0 and encoder.1 move under encoder.blocks and the last GELU becomes Tanh (models_diff.Encoder)."""
    x = Encoder.example_input()
    v1 = mevreport.analyze(Encoder(1), x, runs=0, stats=False)
    v3 = mevreport.analyze(Encoder(3), x, runs=0, stats=False)
    tree = module_tree(v1, v3, compare(v1, v3))
    assert [(r.path, r.kind, r.base.path if r.base else None, r.inside) for r in tree] == [
        ("", "same", "", ""), ("stem", "same", "stem", ""), ("encoder", "changed", "encoder", ""),
        ("encoder.1", "removed", "encoder.1", ""), ("encoder.1.act", "removed", "encoder.1.act", ""),
        ("encoder.blocks", "added", None, ""),
        ("encoder.blocks.0", "renamed", "encoder.0", ""),
        ("encoder.blocks.0.fc", "renamed", "encoder.0.fc", "encoder.blocks.0"),
        ("encoder.blocks.0.act", "renamed", "encoder.0.act", "encoder.blocks.0"),
        ("encoder.blocks.1", "added", None, ""),
        ("encoder.blocks.1.fc", "renamed", "encoder.1.fc", ""),
        ("encoder.blocks.1.act", "added", None, ""),
        ("head", "same", "head", "")]


@pytest.mark.browser
def test_diff_page_tree_links_phone_and_system_theme(edited, tmp_path):
    from playwright.sync_api import sync_playwright

    from .browser_pages import ARGS
    from .conftest import CHROMIUM, require_browser
    require_browser()
    v1, v2 = edited
    v1.save_json(tmp_path / "v1.json")
    v1.save_html(tmp_path / "v1.html")  # base: the HTML beside the JSON is what the page links
    v2.save_json(tmp_path / "v2.json")  # head: JSON only, so the link is the file given
    out = tmp_path / "pages" / "diff.html"
    r = run_cli("diff", str(tmp_path / "v1.json"), str(tmp_path / "v2.json"), "-o", str(out), "-q")
    assert r.returncode == 0, r.stderr
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            errors: list[str] = []
            page = browser.new_page(viewport={"width": 390, "height": 844}, color_scheme="light")
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(out.as_uri())
            rows = page.eval_on_selector_all("#tree-table tbody tr",
                                             "rs => rs.map(r => [r.dataset.path, r.dataset.kind])")
            assert [tuple(x) for x in rows] == KINDS

            def cells(path: str) -> list[str]:
                return page.eval_on_selector_all(f"#tree-table tr[data-path='{path}'] td.n",
                                                 "ts => ts.map(t => t.textContent)")
            # params, MACs, latency (not measured: runs=0), activations; each figure with its change under it
            assert cells("extra") == ["32+32", "0", "\u2014", "144 B+144 B"]
            assert cells("ffn")[:2] == ["2.13 K+1.06 K", "4.10 K+2.05 K"]
            assert cells("ffn.0")[:2] == ["1.09 K+544", "2.05 K+1.02 K"]
            assert cells("drop") == ["0", "0", "\u2014", "128 B\u2212128 B"]
            assert cells("embed") == ["144", "256", "\u2014", "128 B"]  # unchanged: no change line
            assert "was gate" in page.locator("#tree-table tr[data-path='proj'] td.name").text_content()
            assert page.locator("#link-base").get_attribute("href") == "../v1.html"
            assert page.locator("#link-head").get_attribute("href") == "../v2.json"
            assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
            page.check("#changes-only")
            shown = page.eval_on_selector_all("#tree-table tbody tr",
                                              "rs => rs.filter(r => r.offsetParent !== null).map(r => r.dataset.path)")
            assert shown == [path for path, kind in KINDS if kind != "same" or path == ""]
            light = page.evaluate("getComputedStyle(document.body).backgroundColor")
            page.emulate_media(color_scheme="dark")  # the system switches while the page is open
            page.wait_for_function("document.documentElement.classList.contains('dark')", timeout=5000)
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") != light
            wide = browser.new_page(viewport={"width": 1400, "height": 900}, color_scheme="dark")
            wide.goto(out.as_uri())
            assert wide.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(20, 23, 28)"
            assert light == "rgb(255, 255, 255)"
            assert wide.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
            assert errors == []
        finally:
            browser.close()
