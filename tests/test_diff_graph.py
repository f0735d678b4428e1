"""The diff page's graph of HEAD: drawn by the report page's own graph scripts (one layout), each box
coloured by what changed in its module, the change in its title and details, on a phone and in dark mode.

The models (tests/models_diff.py): v1 is fc1 8->16, ReLU, fc2 16->16, Tanh (act2), out 16->4; v2 widens fc1
to 32 (fc2 reads 32) and puts a LayerNorm (norm) where the Tanh was.  Batch 2, float32, no timing.
"""
from __future__ import annotations

import json
import re

import pytest

import mevreport
from mevreport.cli import main
from mevreport.errors import ReportReadError
from mevreport.render.embed import extract_embedded_json

from .browser_pages import ARGS
from .conftest import CHROMIUM, require_browser
from .models_diff import mlp_v1, mlp_v2

# Hand-derived changes v1 -> v2 (batch 2, 4-byte floats):
#   fc1: params 8*32+32 - (8*16+16) = 144, MACs 2*8*(32-16) = 256, output 2*(32-16)*4 = 128 B
#   act: its output widens the same 128 B;  fc2: params 32*16 - 16*16 = 256, MACs 2*16*(32-16) = 512
#   norm (added): params 16+16 = 32, outputs 2*16*4 plus mean and rstd 2 * (2*1*4) = 144 B
#   root: params 144+256+32 = 432, MACs 256+512 = 768, activations 128+128+144-128 (Tanh's, gone) = 272 B
KINDS = {"": "changed", "fc1": "changed", "act": "changed", "fc2": "changed", "norm": "added", "out": "same"}
NOTES = {"": "Params +432, MACs +768, Activations +272 B", "fc1": "Params +144, MACs +256, Activations +128 B",
         "act": "Activations +128 B", "fc2": "Params +256, MACs +512", "norm": "Params +32, Activations +144 B"}
COLOURS = {"added": "#b9f0b0", "changed": "#ffe08a", "renamed": "#cdc4ff", "inner": "#fff3c4", "same": "#eceff4"}


@pytest.fixture(scope="module")
def diff_page(tmp_path_factory):
    out = tmp_path_factory.mktemp("diffgraph")
    for name, build in (("v1", mlp_v1), ("v2", mlp_v2)):
        mevreport.analyze(*build(), runs=0, stats=False, label=name).save_json(out / f"{name}.json")
    assert main(["diff", str(out / "v1.json"), str(out / "v2.json"), "-o", str(out / "diff.html"), "-q"]) == 0
    return out / "diff.html"


def _embedded(page: str, element_id: str) -> str:
    return re.search(f'id="{element_id}">(.*?)</script>', page, re.S).group(1)


def test_the_page_embeds_heads_graph_and_the_marks(diff_page):
    page = diff_page.read_text(encoding="utf-8")
    marks = json.loads(_embedded(page, "mevreport-diff-marks"))
    assert marks == {"kinds": KINDS, "notes": NOTES, "removed": 1}  # act2 (the Tanh) is gone
    doc = json.loads(_embedded(page, "mevreport-head-graph"))
    assert [n["op"] for n in doc["nodes"]] == ["aten.t.default", "aten.addmm.default", "aten.relu.default",
                                               "aten.t.default", "aten.addmm.default",
                                               "aten.native_layer_norm.default", "aten.t.default",
                                               "aten.addmm.default"]
    assert sorted(m["path"] for m in doc["modules"]) == sorted(KINDS)
    assert set(doc) == {"model", "nodes", "modules"}  # only what the graph draws
    # the page is no report: reading it as one says so, and HEAD's document is not mistaken for its own
    with pytest.raises(ReportReadError, match="no embedded JSON document"):
        extract_embedded_json(page, "diff.html")


def test_a_page_without_head_has_no_graph():
    from mevreport.diff import compare
    from mevreport.render.diff_page import render_diff_html
    v1 = mevreport.analyze(*mlp_v1(), runs=0, stats=False)
    v2 = mevreport.analyze(*mlp_v2(), runs=0, stats=False)
    page = render_diff_html(compare(v1, v2))
    assert 'id="graph-section"' not in page and "mevreport-head-graph" not in page
    assert 'id="graph-section"' in render_diff_html(compare(v1, v2), head=v2)


_STATE = """() => { const S = mevreport.graphCore.scene;
  return S.units.map(u => ({key: u.key, op: u.module ? null : mevreport.graphCore.byId[u.ids[0]].op,
    path: u.module ? mevreport.graphCore.unitPath(u.key) : mevreport.graphCore.byId[u.ids[0]].module_path,
    kind: mevreport.changeOf(u), colour: S.colours[u.key], title: u.desc.title})); }"""


def _check_coloured_page(browser, diff_page, width: int, scheme: str) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(diff_page.as_uri())
    page.wait_for_function("window.mevreport && mevreport.firstDraw !== null", timeout=15000)
    units = page.evaluate(_STATE)
    assert len(units) == 8  # every op of HEAD, one box each (8 ops fit the first view)
    for u in units:
        want = "same" if u["path"] == "" else KINDS[u["path"]]  # an op takes its module's change
        assert (u["path"], u["kind"], u["colour"]) == (u["path"], want, COLOURS[want])
    norm = next(u for u in units if u["op"] == "aten.native_layer_norm.default")
    assert norm["title"].endswith("\u2014 added (in norm)")
    # module boxes: the change and the figures that moved, in the title and the details panel
    assert page.evaluate("mevreport.expandToDepth(1)") == 5
    boxes = {u["path"]: u for u in page.evaluate(_STATE)}
    assert boxes["fc1"]["title"].endswith("\u2014 changed: " + NOTES["fc1"])
    assert boxes["out"]["kind"] == "same" and "\u2014" not in boxes["out"]["title"].split(": ", 1)[1]
    page.evaluate("mevreport.graph.select('m:norm')")
    assert page.locator("#panel .change-note").text_content() == "added: " + NOTES["norm"]
    assert page.locator("#panel button", has_text="op table").count() == 0  # no op table here
    legend = page.locator("#legend [data-kind]").all_text_contents()
    assert legend == ["added", "changed", "renamed", "changes inside", "unchanged"]
    assert "1 removed module(s)" in page.locator("#legend").text_content()
    assert page.evaluate("document.documentElement.classList.contains('dark')") == (scheme == "dark")
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways page scroll
    # the page's own theme toggle redraws the graph in the other theme
    frames = page.evaluate("mevreport.frames.length")
    page.click("#theme-toggle")
    page.wait_for_timeout(100)
    assert page.evaluate("mevreport.frames.length") > frames
    assert errors == [] and [u for u in requests if not u.startswith("file:")] == []
    page.close()


@pytest.mark.browser
def test_boxes_are_coloured_by_change_with_a_legend_on_a_phone_in_dark_mode(diff_page):
    from playwright.sync_api import sync_playwright
    require_browser()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for width, scheme in ((1400, "light"), (390, "dark")):
                _check_coloured_page(browser, diff_page, width, scheme)
        finally:
            browser.close()
