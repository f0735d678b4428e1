"""The report in a real browser: offline, error-free, drawn, clickable, safe.

Debian's Chromium driven by playwright's sync API.  Every request the page
makes is logged; the only allowed schemes are ``file:`` and ``data:``.
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest

import mevreport

from . import models_report as M
from .conftest import CHROMIUM, require_browser

pytestmark = pytest.mark.browser
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, tuple[Path, mevreport.Report]]:
    out = tmp_path_factory.mktemp("reports")
    made = {}
    for name, build, runs in (("small", M.small_net, 1), ("deep", M.deep_mlp, 0), ("hostile", M.hostile_net, 1),
                              ("nan", lambda: (M.NaNNet().eval(), __import__("torch").randn(2, 4)), 0),
                              ("identity", lambda: (__import__("torch").nn.Identity(), __import__("torch").randn(2)), 0)):
        model, inputs = build()
        report = mevreport.analyze(model, inputs, runs=runs, title=M.HOSTILE if name == "hostile" else None)
        made[name] = (report.save_html(out / f"{name}.html"), report)
    return made


class Page:
    """A page with its requests, console errors, page errors and dialogs recorded."""

    def __init__(self, browser, path: Path, scheme: str = "light") -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page = browser.new_page(viewport={"width": 1300, "height": 900}, color_scheme=scheme)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(path.as_uri())
        self.page.wait_for_function("window.mevreport && mevreport.firstDraw !== null", timeout=15000)

    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("file:", "data:"))]

    def unit_position(self, key: str) -> dict:
        """Where a graph box's centre is inside #graph, after bringing it into view."""
        self.page.locator("#graph").scroll_into_view_if_needed()
        self.page.evaluate(f"mevreport.graph.focus({key!r}, 1)")
        self.page.wait_for_timeout(50)  # one animation frame: the box is drawn where the camera put it
        return self.page.evaluate(f"mevreport.graph.screen({key!r})")

    def click_unit(self, key: str) -> None:
        """A real mouse click on the centre of a graph box."""
        self.page.click("#graph", position=self.unit_position(key))


def _colours(png: bytes) -> int:
    from PIL import Image
    img = Image.open(io.BytesIO(png)).convert("RGB")
    return len(img.getcolors(maxcolors=1 << 24))


def test_offline_error_free_and_graph_drawn(browser, reports):
    path, report = reports["small"]
    p = Page(browser, path)
    assert p.external_requests() == []
    assert p.errors == []
    assert p.page.evaluate("mevreport.graph.units().length") == len(report.nodes)  # 17 ops <= 250: one box each
    png = p.page.locator("#graph canvas:not(.minimap)").screenshot()
    assert _colours(png) > 20, "graph canvas looks blank"
    # the op table is drawn client-side from the embedded document: one row per op on the first page
    assert p.page.locator("#op-table tbody tr").count() == len(report.nodes)
    assert p.page.locator("#module-table tbody tr").count() == len(report.modules)
    p.page.close()


def test_node_click_shows_panel_with_histogram(browser, reports):
    path, report = reports["small"]
    p = Page(browser, path)
    conv = next(n for n in report.nodes if n.op == "aten.convolution.default")
    p.click_unit(f"n{conv.id}")
    heading = p.page.locator("#panel h3").first.text_content()
    assert heading == f"convolution (node {conv.id})"
    assert p.page.locator("#panel svg.hist rect").count() == len(conv.stats.histogram.counts)
    assert p.errors == []
    p.page.close()


def test_dark_mode_toggle_switches_and_is_keyboard_reachable(browser, reports):
    path, _ = reports["small"]
    p = Page(browser, path, scheme="light")
    bg = "getComputedStyle(document.body).backgroundColor"
    assert p.page.evaluate("document.documentElement.classList.contains('dark')") is False
    light = p.page.evaluate(bg)
    p.page.focus("#theme-toggle")
    p.page.keyboard.press("Enter")
    assert p.page.evaluate("document.documentElement.classList.contains('dark')") is True
    assert p.page.evaluate(bg) != light
    assert p.page.locator("#theme-toggle").get_attribute("aria-pressed") == "true"
    p.page.click("#theme-toggle")
    assert p.page.evaluate(bg) == light
    p.page.close()
    # the system preference is the default
    d = Page(browser, path, scheme="dark")
    assert d.page.evaluate("document.documentElement.classList.contains('dark')") is True
    d.page.close()


def test_hostile_names_stay_text(browser, reports):
    path, report = reports["hostile"]
    p = Page(browser, path)
    p.page.wait_for_timeout(200)
    assert p.dialogs == []
    assert p.errors == []
    assert p.external_requests() == []
    assert p.page.locator("h1").text_content() == M.HOSTILE
    assert p.page.locator("img").count() == 0  # no <img onerror> became an element
    assert M.HOSTILE in p.page.locator("#module-table").text_content()
    # click every box: panels build from model strings too
    for key in p.page.evaluate("mevreport.graph.units()"):
        p.page.evaluate(f"mevreport.graph.showPanel({key!r})")
    assert p.page.locator("#panel img").count() == 0
    p.page.fill("#op-search", "<img")
    assert p.dialogs == [] and p.errors == []
    assert mevreport.load(path) == report
    p.page.close()


def test_expand_and_collapse_a_module(browser, reports):
    path, report = reports["deep"]
    p = Page(browser, path)
    assert p.page.evaluate("mevreport.graph.firstDepth") == 2  # boxes are layers.i: 70 blocks + the head's 2 ops
    before = p.page.evaluate("mevreport.graph.units()")
    assert len(before) == 72 and "m:layers.5" in before
    p.click_unit("m:layers.5")
    assert p.page.locator("#panel h3").first.text_content() == "layers.5"
    assert "\u00d770 alike" in p.page.locator("#panel").text_content()  # 70 identical blocks
    p.page.locator("#panel").get_by_role("button", name="Expand layers.5", exact=True).click()
    expanded = p.page.evaluate("mevreport.graph.units()")
    assert "m:layers.5" not in expanded and {"m:layers.5.0", "m:layers.5.1", "m:layers.5.2"} <= set(expanded)
    assert len(expanded) == len(before) + 2
    # the box after the expanded module still sits below it: layout recomputed, not stacked
    pos = {k: p.page.evaluate(f"mevreport.graph.position({k!r})") for k in ("m:layers.5.2", "m:layers.6")}
    assert pos["m:layers.6"]["y"] > pos["m:layers.5.2"]["y"]
    p.page.dblclick("#graph", position=p.unit_position("m:layers.5.0"))
    ops = [f"n{n.id}" for n in report.nodes if n.module_path == "layers.5.0"]
    after = p.page.evaluate("mevreport.graph.units()")
    assert ops and set(ops) <= set(after) and "m:layers.5.0" not in after
    assert len(after) == len(expanded) - 1 + len(ops)
    p.click_unit(ops[-1])
    p.page.locator("#panel").get_by_role("button", name="Collapse layers.5", exact=True).click()
    assert p.page.evaluate("mevreport.graph.units()") == before
    assert p.errors == []
    p.page.close()


def test_warning_links_reach_graph_and_op_table(browser, reports):
    path, report = reports["nan"]
    origin = next(w for w in report.warnings if w.kind == "nan_origin")
    p = Page(browser, path)
    p.page.click(f"[data-goto-op='{origin.node}']")
    assert p.page.locator(f"#op-{origin.node}").get_attribute("class") == "hl"
    p.page.click(f"#warnings [data-goto-graph='{origin.node}']")
    assert p.page.evaluate("mevreport.graph.selected()") == f"n{origin.node}"
    assert p.page.locator("#panel").text_content().count("NaN / Inf") == 1
    p.page.select_option("#color-by", "nan")
    assert p.errors == []
    p.page.close()


def test_op_table_filters(browser, reports):
    path, report = reports["deep"]
    p = Page(browser, path)
    assert p.page.locator("#op-count").text_content() == f"{len(report.nodes)} of {len(report.nodes)} ops"
    assert p.page.locator("#op-table tbody tr").count() == 100  # paged
    p.page.select_option("#op-type", "gelu")
    gelus = sum(1 for n in report.nodes if n.op.split(".")[1] == "gelu")
    assert p.page.locator("#op-count").text_content() == f"{gelus} of {len(report.nodes)} ops"
    p.page.select_option("#op-type", "")
    p.page.fill("#op-module", "layers.7")
    in7 = sum(1 for n in report.nodes if n.module_path.startswith("layers.7."))
    assert p.page.locator("#op-table tbody tr").count() == in7
    p.page.close()


def test_model_without_ops_opens_cleanly(browser, reports):
    """nn.Identity executes no op: an empty graph and table, and still no script error."""
    path, report = reports["identity"]
    assert report.nodes == ()
    p = Page(browser, path)
    assert p.errors == [] and p.external_requests() == []
    assert p.page.locator("#op-count").text_content() == "0 of 0 ops"
    p.page.close()


def test_module_tree_sorts_within_parents_and_collapses(browser, reports):
    path, _report = reports["small"]
    p = Page(browser, path)
    head = p.page.locator("#module-table th[data-sort='params']")
    head.click()  # a number: largest first on the first click
    assert head.get_attribute("aria-sort") == "descending"
    order = p.page.eval_on_selector_all("#module-table tbody tr", "rows => rows.map(r => r.dataset.path)")
    # root, then its children by params (blocks 816 > conv 108 > head 85 > bn 8), each child's subtree under it
    assert order[:6] == ["", "blocks", "blocks.0", "blocks.0.fc", "blocks.0.act", "blocks.1"]
    top = [path for path in order if path and "." not in path]
    assert top[:4] == ["blocks", "conv", "head", "bn"]
    toggle = p.page.locator("#module-table tr[data-path='blocks'] .tree-toggle")
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "false"
    assert p.page.locator("#module-table tr[data-path='blocks.0']").is_hidden()
    assert p.errors == []
    p.page.close()


def test_module_tree_links_to_the_graph(browser, reports):
    path, report = reports["deep"]
    p = Page(browser, path)
    p.page.select_option("#tree-depth", "99")  # show every row
    p.page.click("#module-table a[data-goto-module='layers.9']")  # a collapsed box at depth 2
    assert p.page.evaluate("mevreport.graph.selected()") == "m:layers.9"
    p.page.click("#module-table a[data-goto-module='out']")  # open: its two ops are marked, the first selected
    ops = sorted(f"n{n.id}" for n in report.nodes if n.module_path == "out")
    assert p.page.evaluate("mevreport.graph.marked()") == ops and len(ops) == 2
    assert p.page.evaluate("mevreport.graph.selected()") == min(ops, key=lambda k: int(k[1:]))
    assert p.errors == []
    p.page.close()
