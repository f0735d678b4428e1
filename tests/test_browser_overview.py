"""Seeing the whole graph: the first view is readable (labels drawn, the model's top in view) at any
size, and the overview (minimap) shows the graph and moves the view where it is clicked."""
from __future__ import annotations

import pytest

import mevreport

from . import models_report as M
from .test_browser import Page, browser  # noqa: F401  (the module-scoped Chromium fixture)

pytestmark = pytest.mark.browser

LABELS_FROM = 0.45  # graph.js paints box labels from this scale up (its level of detail)

_VIEW = """() => { const c = mevreport.graph.camera, S = mevreport.graphCore.scene, cv = document.querySelector('#graph canvas:not(.minimap)');
  const W = cv.clientWidth, H = cv.clientHeight, top = S.units.reduce((a, u) => u.y < a.y ? u : a, S.units[0]);
  const b = S.bounds;
  return {s: c.s, W: W, H: H, top: [c.x + c.s * top.x, c.y + c.s * top.y], n: S.units.length,
          fits: c.s * (b.x1 - b.x0) <= W + 1 && c.s * (b.y1 - b.y0) <= H + 1}; }"""


@pytest.fixture(scope="module")
def gpt_page(tmp_path_factory):
    model, ids = M.gpt_own(n_layer=6)
    report = mevreport.analyze(model, ids, runs=0, stats=False)
    return report.save_html(tmp_path_factory.mktemp("overview") / "gpt6.html"), report


def _readable(view: dict) -> None:
    assert view["s"] >= LABELS_FROM  # labels are painted at this scale
    x, y = view["top"]
    assert 0 <= x <= view["W"] and 0 <= y <= view["H"]  # the model's first box is on screen


def test_first_view_is_readable_collapsed_and_fully_expanded(browser, gpt_page):  # noqa: F811
    path, report = gpt_page
    p = Page(browser, path)
    first = p.page.evaluate(_VIEW)
    _readable(first)
    assert p.page.evaluate("mevreport.expandAll()") == len(report.nodes)
    p.page.wait_for_timeout(50)
    whole = p.page.evaluate(_VIEW)
    assert whole["n"] == len(report.nodes)
    assert not whole["fits"]  # too tall to show whole at a legible scale: the view starts at the top instead
    _readable(whole)
    p.page.evaluate("mevreport.graph.fit()")
    p.page.wait_for_timeout(50)
    assert p.page.evaluate(_VIEW)["fits"]  # Fit shows the whole graph (labels dropped: level of detail)
    assert p.errors == []
    p.page.close()


@pytest.mark.parametrize("width", [1300, 390])
def test_minimap_shows_the_graph_and_a_click_moves_the_view_there(browser, gpt_page, width):  # noqa: F811
    """On a phone the overview is drawn smaller (90 x 66 CSS pixels) from the same 150 x 110 canvas."""
    path = gpt_page[0]
    p = Page(browser, path)
    p.page.set_viewport_size({"width": width, "height": 900})
    p.page.evaluate("mevreport.expandAll()")
    p.page.wait_for_timeout(50)
    mini = p.page.locator("#graph canvas.minimap")
    mini.scroll_into_view_if_needed()
    assert mini.is_visible()
    assert p.page.evaluate("[document.querySelector('#graph canvas.minimap').width, "
                           "document.querySelector('#graph canvas.minimap').height]") == [150, 110]
    # the overview has drawn boxes: pixels other than the background colour
    drawn = p.page.evaluate("""() => { const m = document.querySelector('#graph canvas.minimap');
      const d = m.getContext('2d').getImageData(0, 0, m.width, m.height).data, bg = [d[0], d[1], d[2]];
      let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] !== bg[0] || d[i + 1] !== bg[1] || d[i + 2] !== bg[2]) n++;
      return n; }""")
    assert drawn > 100
    # a click at the overview's bottom middle brings that part of the graph to the centre of the view
    t = p.page.evaluate("document.querySelector('#graph canvas.minimap')._t")
    b = p.page.evaluate("mevreport.graphCore.scene.bounds")
    wx, wy = (b["x0"] + b["x1"]) / 2, b["y0"] + 0.9 * (b["y1"] - b["y0"])
    before = p.page.evaluate(_VIEW)
    box = mini.bounding_box()
    assert box is not None
    css = (150, 110) if width > 600 else (90, 66)
    assert (box["width"], box["height"]) == (css[0] + 2, css[1] + 2)  # and a 1 px border
    kx, ky = css[0] / 150, css[1] / 110
    p.page.mouse.click(box["x"] + 1 + kx * (t["ox"] + t["s"] * wx), box["y"] + 1 + ky * (t["oy"] + t["s"] * wy))
    p.page.wait_for_timeout(50)
    cam = p.page.evaluate("({s: mevreport.graph.camera.s, x: mevreport.graph.camera.x, y: mevreport.graph.camera.y})")
    assert cam["s"] == pytest.approx(before["s"])  # the zoom is kept
    # the clicked world point is now at the centre of the view (within the pixel the click was rounded to)
    assert cam["x"] + cam["s"] * wx == pytest.approx(before["W"] / 2, abs=cam["s"] / (kx * t["s"]) + 1)
    assert cam["y"] + cam["s"] * wy == pytest.approx(before["H"] / 2, abs=cam["s"] / (ky * t["s"]) + 1)
    assert p.errors == []
    p.page.close()
