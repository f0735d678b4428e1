"""A large report's page: the document and the module rows packed (gzip + base64) and unpacked in the browser.

Pages over ``embed.COMPRESS_ABOVE`` characters of JSON carry their document
compressed and only the first view's module rows in the table (render/html.py,
templates/js/load.js).  Here the limit is lowered so a small nested model takes
that path, and the page must end up as the plain page of the same report: the
same document, the same rows in the same order once shown, the same sorting,
hostile names still text.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

import mevreport
from mevreport.errors import ReportReadError
from mevreport.render import embed

from . import models_report as M
from .test_browser import Page, browser  # noqa: F401  (the module-scoped browser fixture)

pytestmark = pytest.mark.browser


def nested() -> tuple[nn.Module, torch.Tensor]:
    """8 stages of 10 Linear(2, 2): 89 module rows, more than the 60 of a first view, so it opens at depth 1."""
    torch.manual_seed(0)
    stages = [nn.Sequential(*[nn.Linear(2, 2) for _ in range(10)]) for _ in range(8)]
    stages[3].add_module(M.HOSTILE, nn.Linear(2, 2))  # a script-closing name, inside the packed rows
    return nn.Sequential(*stages).eval(), torch.randn(1, 2)


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> tuple[Path, Path, mevreport.Report]:
    out = tmp_path_factory.mktemp("packed")
    model, x = nested()
    report = mevreport.analyze(model, x, runs=0)
    plain = report.save_html(out / "plain.html")
    limit = embed.COMPRESS_ABOVE
    embed.COMPRESS_ABOVE = 0
    try:
        packed = report.save_html(out / "packed.html")
    finally:
        embed.COMPRESS_ABOVE = limit
    return plain, packed, report


def test_packed_page_is_compressed_and_loads_back(pages):
    plain, packed, report = pages
    html = packed.read_text(encoding="utf-8")
    assert f'<script type="{embed.GZIP_TYPE}" id="{embed.SCRIPT_ID}">' in html
    assert f'<script type="{embed.GZIP_TYPE}" id="mevreport-module-rows">' in html
    assert 'type="application/json" id="mevreport-data"' not in html and "<img src=x" not in html
    assert len(report.modules) == 90  # root, 8 stages, 81 linears
    # the table carries the first view only: the root and the 8 stages (depth 1)
    assert html.count('<tr data-path="') == 9
    assert plain.read_text(encoding="utf-8").count('<tr data-path="') == 90
    assert mevreport.load(packed) == report == mevreport.load(plain)


def test_damaged_packed_document_is_a_read_error(pages, tmp_path):
    _plain, packed, _report = pages
    html = packed.read_text(encoding="utf-8")
    broken = re.sub(r'(id="mevreport-data">)([A-Za-z0-9+/]{8})', r"\1!!!!!!!!", html, count=1)
    (tmp_path / "broken.html").write_text(broken, encoding="utf-8")
    with pytest.raises(ReportReadError, match="damaged"):
        mevreport.load(tmp_path / "broken.html")


def _rows(p: Page) -> list[tuple[str, bool]]:
    return p.page.eval_on_selector_all("#module-table tbody tr", "rows => rows.map(r => [r.dataset.path, r.hidden])")


def test_packed_page_unpacks_to_the_plain_page(browser, pages):  # noqa: F811
    plain_path, packed_path, report = pages
    plain, packed = Page(browser, plain_path), Page(browser, packed_path)
    for p in (plain, packed):
        assert p.errors == [] and p.external_requests() == [] and p.dialogs == []
        assert p.page.evaluate("mevreport.doc.nodes.length") == len(report.nodes) == 162  # t and addmm per Linear
        assert p.page.evaluate("mevreport.graph.units().length") > 0
        assert p.page.locator("#op-count").text_content() == "162 of 162 ops"
    assert p.page.evaluate("document.getElementById('tree-depth').value") == "1"
    # first view: the same 9 visible rows; the plain page has the other 81 hidden, the packed one not yet in
    visible = [path for path, hidden in _rows(plain) if not hidden]
    assert visible == [path for path, hidden in _rows(packed)] == ["", *[str(i) for i in range(8)]]
    for p in (plain, packed):
        p.page.select_option("#tree-depth", "99")
    assert _rows(packed) == _rows(plain) and len(_rows(plain)) == 90
    assert all(not hidden for _path, hidden in _rows(packed))
    assert M.HOSTILE in packed.page.locator("#module-table").text_content()
    assert packed.page.locator("#module-table img").count() == 0
    for p in (plain, packed):
        p.page.click("#module-table th[data-sort='path']")
    assert _rows(packed) == _rows(plain)
    assert packed.errors == [] and packed.dialogs == []
    plain.page.close()
    packed.page.close()


def test_packed_page_expands_a_row_on_first_click(browser, pages):  # noqa: F811
    _plain, packed_path, _report = pages
    p = Page(browser, packed_path)
    p.page.click("#module-table tr[data-path='3'] .tree-toggle")  # stage 3's rows are put in, then shown
    shown = [path for path, hidden in _rows(p) if not hidden]
    assert shown == ["", "0", "1", "2", "3", *[f"3.{i}" for i in range(10)], f"3.{M.HOSTILE}", "4", "5", "6", "7"]
    assert p.page.locator("#module-table tr[data-path='3'] .tree-toggle").get_attribute("aria-expanded") == "true"
    assert p.errors == []
    p.page.close()
