"""The training section in a real browser: drawn, offline, error-free, in light and dark mode.

The page is a crafted training report (tests/models_training.py): 16 forward and
16 backward ops, 11 parameters, one NaN gradient, one parameter without one.
"""
from __future__ import annotations

import pytest

from . import models_training as T
from .conftest import CHROMIUM, require_browser
from .test_browser import ARGS, Page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page_path(tmp_path_factory):
    report = T.training_report()
    return report.save_html(tmp_path_factory.mktemp("train") / "train.html"), report


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_training_section_renders(browser, page_path, scheme):
    path, report = page_path
    p = Page(browser, path, scheme)
    page = p.page
    assert p.errors == [] and p.external_requests() == []
    assert page.evaluate("document.documentElement.classList.contains('dark')") == (scheme == "dark")
    section = page.locator("#training")
    assert section.is_visible()
    # both charts are inline SVG with a drawn size
    for key in ("grad_flow", "train_memory"):
        box = page.locator(f"#plot-{key} svg.plot").bounding_box()
        assert box is not None and box["width"] > 400 and box["height"] > 150, key
    rows = page.locator("#grad-table tbody tr")
    assert rows.count() == len(report.grads) == 11
    bad = page.locator("#grad-table tbody tr.bad td:last-child").all_text_contents()
    assert bad == ["2 NaN", "no gradient"]
    # the chart text follows the theme: currentColor resolves to the page's foreground
    fg = page.evaluate("getComputedStyle(document.body).color")
    svg_color = page.evaluate("getComputedStyle(document.querySelector('#plot-grad_flow svg.plot')).color")
    assert svg_color == fg
    page.close()


def test_phase_column_and_backward_link(browser, page_path):
    path, report = page_path
    p = Page(browser, path)
    page = p.page
    heads = page.locator("#op-table thead th").all_text_contents()
    assert heads[:3] == ["#", "Op", "Phase"]
    phases = page.locator("#op-table tbody td.phase").all_text_contents()
    n = len(report.nodes) // 2
    assert phases == ["forward"] * n + ["backward"] * n  # one page of 32 rows, forward first
    # every row has as many cells as the header
    assert page.evaluate("Array.from(document.querySelectorAll('#op-table tbody tr'))"
                         ".every(tr => tr.cells.length === 14)")
    # re-drawn rows (a sort) get their phase again
    page.click("#op-table th[data-sort='id']")
    page.click("#op-table th[data-sort='id']")  # descending: backward first
    assert page.locator("#op-table tbody td.phase").first.text_content() == "backward"
    # the backward NaN warning's link highlights that backward op in the table
    node = next(w.node for w in report.warnings if w.kind == "nan_backward")
    page.click(f"#training a[data-goto-op='{node}']")
    row = page.locator(f"#op-{node}")
    assert row.get_attribute("class") == "hl" and row.locator("td.phase").text_content() == "backward"
    assert p.errors == []
    page.close()


def test_real_training_step_page(browser, tmp_path):
    """A step captured for real (train=True): every phase in the table, both charts drawn, no script error."""
    import torch

    import mevreport

    from . import models_report as M
    model, x = M.small_net()
    target = torch.tensor([3])
    report = mevreport.analyze(model.train(), x, train=True, runs=0, optimizer="adamw",
                               loss=lambda out, inp: torch.nn.functional.cross_entropy(out, target))
    p = Page(browser, report.save_html(tmp_path / "real.html"))
    page = p.page
    for key in ("grad_flow", "train_memory"):
        assert page.locator(f"#plot-{key} svg.plot").count() == 1, key
    assert page.locator("#grad-table tbody tr").count() == len(report.grads) == 11
    counts = {ph: sum(1 for n in report.nodes if (n.phase or "forward") == ph) for ph in ("forward", "backward",
                                                                                          "optimizer")}
    assert all(counts.values())
    page.select_option("#op-type", "t")  # a filter redraws the rows: each keeps its phase
    shown = page.locator("#op-table tbody td.phase").all_text_contents()
    assert shown == [(n.phase or "forward") for n in report.nodes if n.op == "aten.t.default"]
    assert {"forward", "backward"} <= set(shown)
    assert p.errors == [] and p.external_requests() == []
    page.close()
