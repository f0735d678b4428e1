"""The graph in Chromium: the one layout (the page's), any size, search, keys, export, scrolling.

The layout lives only in ``templates/js/graph.js``, so its rules are tested here,
through the page.  Draw and frame times are measured and printed (run with
``-s`` to read them), never asserted: speed belongs to ``benchmarks/``.
"""
from __future__ import annotations

import base64
import io
import itertools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mevreport

from . import models_report as M
from .test_browser import Page, browser  # noqa: F401  (the module-scoped Chromium fixture)

pytestmark = pytest.mark.browser


class Attention(nn.Module):
    """One fused attention kernel: its softmax is inside SDPA, never an op of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(16, 48)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).view(1, 8, 3, 2, 8).permute(2, 0, 3, 1, 4)
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(1, 8, 16)


class ObjectWords(nn.Module):
    """Modules named like the properties every JavaScript object inherits: a map keyed by module path
    built from ``{}`` finds ``constructor`` there before any module, and drops ``__proto__``."""

    NAMES = ("__proto__", "constructor", "hasOwnProperty", "toString")

    def __init__(self) -> None:
        super().__init__()
        for name in self.NAMES:
            self.add_module(name, nn.Sequential(nn.Linear(4, 4), nn.ReLU()) if name == "constructor"
                            else nn.Linear(4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.NAMES:
            x = getattr(self, name)(x)
        return x


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, tuple[Path, mevreport.Report]]:
    out = tmp_path_factory.mktemp("graph")
    made = {}
    builds = {
        "small": lambda: M.small_net(),
        "deep": lambda: M.deep_mlp(),
        "gpt3": lambda: M.gpt_own(n_layer=3),
        "gpt1": lambda: M.gpt_own(n_layer=1),
        "bottleneck": lambda: (M.Bottleneck(64, 16).eval(), torch.randn(1, 64, 8, 8)),
        "attention": lambda: (Attention().eval(), torch.randn(1, 8, 16)),
        "words": lambda: (ObjectWords().eval(), torch.randn(2, 4)),
    }
    for name, build in builds.items():
        model, x = build()
        report = mevreport.analyze(model, x, runs=0, stats=name == "small")
        made[name] = (report.save_html(out / f"{name}.html"), report)
    return made


def _open(browser, pages, name):  # noqa: F811
    path, report = pages[name]
    return Page(browser, path), report


def _all_open(report: mevreport.Report) -> list[str]:
    return sorted({".".join(n.module_path.split(".")[: i + 1]) for n in report.nodes if n.module_path
                   for i in range(n.module_path.count(".") + 1)})


def test_param_only_ops_sit_beside_their_consumer(browser, pages):  # noqa: F811
    """``t`` of a Linear weight has no op inputs: it goes one layer above its addmm, not to layer 0."""
    p, small = _open(browser, pages, "small")
    pos = {k: tuple(v) for k, v in p.page.evaluate(f"mevreport.graph.layoutFor({_all_open(small)!r})").items()}
    ops = {n.id: n.op.split(".")[1] for n in small.nodes}
    ts = [n for n in small.nodes if ops[n.id] == "t"]
    assert ts
    for n in ts:
        addmm = next(m for m in small.nodes if n.id in m.inputs)
        assert ops[addmm.id] == "addmm"
        assert pos[f"n{n.id}"][1] == pos[f"n{addmm.id}"][1] - 1
        assert abs(pos[f"n{n.id}"][0] - pos[f"n{addmm.id}"][0]) == 1  # beside the main path
    chain = [0, 1, 2, 3, 4, 6]  # conv -> bn -> relu -> pool -> view -> addmm runs straight down column 0
    assert [ops[i] for i in chain] == ["convolution", "native_batch_norm", "relu", "_adaptive_avg_pool2d", "view",
                                       "addmm"]
    assert [pos[f"n{i}"] for i in chain] == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (0, 5)]
    p.page.close()


def test_first_depth_labels_and_depth_control(browser, pages):  # noqa: F811
    p, report = _open(browser, pages, "deep")
    assert p.page.evaluate("mevreport.graph.firstDepth") == 2  # depth 3 would show 70 * 3 + 2 = 212 boxes > 150
    assert len(p.page.evaluate("mevreport.graph.units()")) == 70 + 2  # "out" is depth 1: its t and addmm are boxes
    lines = "k => mevreport.graphCore.scene.byKey[k].desc.lines"
    assert p.page.evaluate(lines, "m:layers.3") == ["layers.3", "Sequential \u00d770"]
    assert p.page.locator("#graph-depth-note").text_content().startswith("Modules at depth 2")
    assert p.page.evaluate("mevreport.expandToDepth(3)") == 70 * 3 + 2
    assert p.page.evaluate(lines, "m:layers.0.0") == ["layers.0.0", "Linear \u00d770"]
    assert p.page.evaluate("mevreport.collapseAll()") == 2  # one box for "layers", one for the head "out"
    assert p.page.evaluate("mevreport.expandAll()") == len(report.nodes)
    assert len(p.page.evaluate("mevreport.graph.units()")) == len(report.nodes)
    assert p.errors == []
    p.page.close()


def test_module_list_that_never_runs_is_not_a_box(browser, pages):  # noqa: F811
    p, _ = _open(browser, pages, "gpt3")
    p.page.evaluate("mevreport.expandToDepth(2)")
    keys = set(p.page.evaluate("mevreport.graph.units()"))
    assert {"m:h.0", "m:h.1", "m:h.2"} <= keys and "m:h" not in keys
    p.page.close()


def test_a_module_called_three_times_gives_three_boxes(browser, pages):  # noqa: F811
    """The bottleneck's one ReLU runs three times: one box per call, so the layout has no loop."""
    p, _ = _open(browser, pages, "bottleneck")
    p.page.evaluate("mevreport.expandToDepth(1)")
    keys = p.page.evaluate("mevreport.graph.units()")
    assert [k for k in keys if k.startswith("m:relu")] == ["m:relu", "m:relu#1", "m:relu#2"]
    assert p.page.evaluate("mevreport.graphCore.scene.byKey['m:relu#2'].desc.lines") == ["relu", "ReLU (call 2)"]
    y = {k: p.page.evaluate(f"mevreport.graph.position({k!r}).y") for k in
         ("m:relu", "m:conv2", "m:relu#1", "m:conv3", "m:relu#2")}
    assert y["m:relu"] < y["m:conv2"] < y["m:relu#1"] < y["m:conv3"] < y["m:relu#2"]
    p.page.close()


def test_parallel_branches_read_left_to_right_in_execution_order(browser, pages):  # noqa: F811
    """Six attention heads fed by one norm sit side by side as heads.0 ... heads.5."""
    p, report = _open(browser, pages, "gpt1")
    opened = [q for q in _all_open(report) if q not in {f"h.0.heads.{i}" for i in range(6)}]
    pos = p.page.evaluate(f"mevreport.graph.layoutFor({opened!r})")
    heads = [pos[f"m:h.0.heads.{i}"] for i in range(6)]
    assert len({layer for _, layer in heads}) == 1
    assert [c for c, _ in heads] == sorted(c for c, _ in heads) and len({c for c, _ in heads}) == 6
    p.page.close()


def test_ten_thousand_ops_expand_all_draws_every_op(browser, tmp_path):  # noqa: F811
    model, ids = M.gpt_own(48)
    report = mevreport.analyze(model, ids, runs=0, stats=False)
    assert len(report.nodes) > 10_000
    p = Page(browser, report.save_html(tmp_path / "g10k.html"))
    first = p.page.evaluate("mevreport.firstDraw")
    timing = p.page.evaluate("""() => { const t0 = performance.now(); const n = mevreport.expandAll();
      return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() =>
        r({n: n, ms: performance.now() - t0, layout: mevreport.graph.layoutMs()})))); }""")
    assert timing["n"] == len(report.nodes) == len(p.page.evaluate("mevreport.graph.units()"))
    frames = p.page.evaluate("""async () => { mevreport.graph.fit(); const out = [];
      for (const f of [1.6, 1.6, 1.6, 1.6, 1.6, 1.6, 1.6, 0.5, 0.5, 0.5]) {
        const at = mevreport.frames.length; mevreport.graph.zoomAt(f, 300, 40);
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        out.push(mevreport.frames[at]); }
      return out; }""")
    assert len(frames) == 10 and all(f is not None for f in frames)
    one = p.page.evaluate("""() => { mevreport.graph.collapse('h.7'); const t0 = performance.now();
      mevreport.graph.expand('h.7'); return performance.now() - t0; }""")
    print(f"\n10k ops: first draw {first:.0f} ms after navigation; expand all {timing['ms']:.0f} ms "
          f"(layout {timing['layout']:.0f} ms); zoom frames ms {[round(f, 1) for f in frames]}; "
          f"one block expanded in the expanded graph {one:.0f} ms")
    _no_overlap_and_attached(p)
    assert p.errors == []
    p.page.close()


_CELLS = """() => Object.fromEntries(mevreport.graphCore.scene.units.map(u => [u.key, [u.col, u.layer]]))"""


def _no_overlap_and_attached(p) -> None:
    cells = p.page.evaluate(_CELLS)
    assert len(set(map(tuple, cells.values()))) == len(cells)  # one box per grid cell: boxes (200 x 44) never meet
    assert p.page.evaluate("""() => { const S = mevreport.graphCore.scene;
      return S.edges.every(e => S.byKey[e.a.key] === e.a && S.byKey[e.b.key] === e.b); }""")


@pytest.mark.parametrize("name, depth, path", [("deep", 2, "layers.4"), ("bottleneck", 1, "relu"),
                                               ("gpt3", 2, "h.1")])
def test_expanding_a_block_lays_out_only_its_inside(browser, pages, name, depth, path):  # noqa: F811
    """Boxes above stay, boxes below move down together, boxes beside it move out; nothing overlaps."""
    p, _ = _open(browser, pages, name)
    p.page.evaluate(f"mevreport.expandToDepth({depth})")
    before = {k: tuple(v) for k, v in p.page.evaluate(_CELLS).items()}
    boxes = {k: v for k, v in before.items() if k == f"m:{path}" or k.startswith(f"m:{path}#")}
    assert boxes and (len(boxes) == 3) == (name == "bottleneck")  # the bottleneck's ReLU runs three times
    p.page.evaluate(f"mevreport.graph.expand({path!r})")
    after = {k: tuple(v) for k, v in p.page.evaluate(_CELLS).items()}
    inner = {k: v for k, v in after.items() if k not in before}
    assert inner and set(before) - set(after) == set(boxes)
    bottom = max(layer for _, layer in boxes.values())
    grown = max(after[k][1] for k in after) - max(before[k][1] for k in before)  # the insides' heights
    for k, (col, layer) in before.items():
        if k in boxes:
            continue
        moved_down = after[k][1] - layer
        if layer < min(b[1] for b in boxes.values()):
            assert after[k] == (col, layer)  # above every box: not moved
        elif layer > bottom:
            assert moved_down == grown  # below them all: down by the insides' heights, column kept
            assert after[k][0] == col
        if all(layer != b[1] for b in boxes.values()):
            assert after[k][0] == col
    order = sorted(k for k in before if k not in boxes)  # every other pair keeps its order, both ways
    for axis in (0, 1):
        rank = sorted(order, key=lambda k: (before[k][axis], k))
        assert all(before[a][axis] <= before[b][axis] and after[a][axis] <= after[b][axis]
                   for a, b in itertools.pairwise(rank))
    _no_overlap_and_attached(p)
    assert len(p.page.evaluate("mevreport.graph.units()")) == len(after)
    p.page.close()


def test_search_fused_ops_shapes_next_previous_and_no_match(browser, pages):  # noqa: F811
    p, report = _open(browser, pages, "attention")
    sdpa = [n.id for n in report.nodes if "scaled_dot_product" in n.op]
    assert len(sdpa) == 1 and not any("softmax" in n.op for n in report.nodes)
    assert p.page.evaluate("mevreport.search('softmax')") == 1
    assert p.page.evaluate("mevreport.graph.selected()") == f"n{sdpa[0]}"
    assert p.page.locator("#graph-search-status").text_content() == "1 of 1 ops"
    out = report.nodes[sdpa[0]].outputs[0].shape
    wanted = [n.id for n in report.nodes if any(list(o.shape) == list(out) for o in n.outputs)]
    typed_x = "[" + "x".join(map(str, out)) + "]"  # brackets: exactly this shape
    assert p.page.evaluate(f"mevreport.search({typed_x!r})") == len(wanted) >= 2
    typed_times = " \u00d7 ".join(map(str, out))  # no brackets: these dimensions, contiguous, inside any shape
    inside = [n.id for n in report.nodes if any(f"x{'x'.join(map(str, out))}x" in f"x{'x'.join(map(str, o.shape))}x"
                                                for o in n.outputs)]
    assert p.page.evaluate(f"mevreport.search({typed_times!r})") == len(inside) > len(wanted)
    assert p.page.evaluate("mevreport.search('8x1')") == 0  # dimensions are whole: 8x16 is not 8x1...
    assert p.page.evaluate(f"mevreport.search({typed_x!r})") == len(wanted)
    assert p.page.evaluate("mevreport.graph.selected()") == f"n{wanted[0]}"
    p.page.click("#graph-search-prev")  # previous from the first wraps to the last
    assert p.page.evaluate("mevreport.graph.selected()") == f"n{wanted[-1]}"
    assert p.page.evaluate("mevreport.search('linear qkv')") == sum(1 for n in report.nodes if n.module_path == "qkv")
    p.page.fill("#graph-search", "no such op")
    p.page.press("#graph-search", "Enter")
    assert p.page.locator("#graph-search-status").text_content() == "No match for \u201cno such op\u201d"
    # the op table searches the same way
    p.page.fill("#op-search", "softmax")
    assert p.page.locator("#op-count").text_content() == f"1 of {len(report.nodes)} ops"
    p.page.fill("#op-search", typed_x.replace("x", " \u00d7 "))
    assert p.page.locator("#op-count").text_content() == f"{len(wanted)} of {len(report.nodes)} ops"
    p.page.fill("#op-search", "zzz")
    assert p.page.locator("#op-count").text_content() == f"0 of {len(report.nodes)} ops: no match"
    assert p.errors == []
    p.page.close()


def test_export_png_and_svg_are_the_whole_graph(browser, pages):  # noqa: F811
    from PIL import Image
    p, report = _open(browser, pages, "deep")
    p.page.evaluate("mevreport.expandAll()")
    size = p.page.evaluate("mevreport.graph.exportSize()")
    url = p.page.evaluate("mevreport.exportPNG()")
    assert url.startswith("data:image/png;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert img.size == (size["width"], size["height"])
    assert size["height"] > 5 * p.page.evaluate("document.getElementById('graph').clientHeight")  # not the view
    assert len(img.convert("RGB").getcolors(maxcolors=1 << 24)) > 3
    svg = p.page.evaluate("mevreport.exportSVG()")
    assert svg.startswith("<svg") and svg.count("<rect ") == 1 + len(report.nodes)  # background + one per op
    assert p.errors == []
    p.page.close()


def test_wheel_scrolls_the_page_until_the_graph_is_engaged(browser, pages):  # noqa: F811
    p, _ = _open(browser, pages, "deep")
    g = p.page.locator("#graph")
    g.scroll_into_view_if_needed()
    box = g.bounding_box()
    p.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    scale, y0 = p.page.evaluate("mevreport.graph.camera.s"), p.page.evaluate("window.scrollY")
    p.page.mouse.wheel(0, 300)
    p.page.wait_for_timeout(200)
    assert p.page.evaluate("window.scrollY") > y0  # the page moved
    assert p.page.evaluate("mevreport.graph.camera.s") == scale  # the graph did not zoom
    box = g.bounding_box()
    p.page.mouse.click(box["x"] + 20, box["y"] + box["height"] - 20)  # engage
    y1 = p.page.evaluate("window.scrollY")
    p.page.mouse.wheel(0, 300)
    p.page.wait_for_timeout(200)
    assert p.page.evaluate("window.scrollY") == y1
    assert p.page.evaluate("mevreport.graph.camera.s") < scale  # zoomed out
    p.page.close()


def test_phone_swipe_scrolls_the_page_until_a_tap_engages_the_graph(browser, pages):  # noqa: F811
    """A 390 x 844 touch phone: a swipe over the graph scrolls the page; after a tap on it, a swipe pans it."""
    path, _ = pages["deep"]
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True,
                              device_scale_factor=2)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function("window.mevreport && mevreport.firstDraw !== null", timeout=15000)
    cdp = ctx.new_cdp_session(page)

    def swipe_up(by: float = 200) -> None:  # a finger moving up over the graph's centre, as Chromium gets it
        box = page.locator("#graph").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + by / 2
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        for i in range(1, 9):
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y - by * i / 8}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        page.wait_for_timeout(300)

    def state() -> tuple[float, list[float]]:
        return page.evaluate("window.scrollY"), page.evaluate("[mevreport.graph.camera.x, mevreport.graph.camera.y]")

    page.evaluate("document.getElementById('graph').scrollIntoView({block: 'center'})")
    y0, cam0 = state()
    swipe_up()
    y1, cam1 = state()
    assert y1 > y0 and cam1 == cam0  # the page scrolled; the graph did not move
    assert not page.evaluate("document.getElementById('graph').classList.contains('engaged')")
    box = page.locator("#graph").bounding_box()
    page.touchscreen.tap(box["x"] + 20, box["y"] + box["height"] - 20)  # engage
    assert page.evaluate("document.getElementById('graph').classList.contains('engaged')")
    y2, cam2 = state()
    swipe_up()
    y3, cam3 = state()
    assert y3 == y2 and cam3[0] == cam2[0] and cam3[1] < cam2[1] - 100  # the graph panned up; the page stayed
    page.locator("#graph-section h2").tap()  # a tap outside the graph hands the swipe back to the page
    assert not page.evaluate("document.getElementById('graph').classList.contains('engaged')")
    page.evaluate("document.getElementById('graph').scrollIntoView({block: 'center'})")
    y4, cam4 = state()
    swipe_up()
    assert page.evaluate("window.scrollY") > y4 and state()[1] == cam4
    assert errors == []
    ctx.close()


def test_keys_move_along_edges_expand_and_collapse_without_clicking(browser, pages):  # noqa: F811
    p, _ = _open(browser, pages, "deep")
    assert p.page.evaluate("mevreport.select('m:layers.4')") is True
    p.page.keyboard.press("ArrowDown")
    assert p.page.evaluate("mevreport.graph.selected()") == "m:layers.5"
    p.page.keyboard.press("ArrowUp")
    assert p.page.evaluate("mevreport.graph.selected()") == "m:layers.4"
    p.page.keyboard.press("Enter")
    units = p.page.evaluate("mevreport.graph.units()")
    assert "m:layers.4" not in units and "m:layers.4.0" in units
    assert p.page.evaluate("mevreport.graph.selected()") == "m:layers.4.0"
    p.page.keyboard.press("Escape")
    assert "m:layers.4" in p.page.evaluate("mevreport.graph.units()")
    p.page.close()


def test_panel_links_inputs_and_consumers(browser, pages):  # noqa: F811
    p, report = _open(browser, pages, "small")
    addmm = next(n for n in report.nodes if n.op == "aten.addmm.default")
    p.page.evaluate(f"mevreport.select({addmm.id})")
    panel = p.page.locator("#panel")
    links = panel.locator("[data-goto-graph]")
    assert sorted(int(a) for a in links.evaluate_all("as => as.map(a => a.dataset.gotoGraph)")) == sorted(
        list(addmm.inputs) + [n.id for n in report.nodes if addmm.id in n.inputs])
    conv = next(n for n in report.nodes if n.op == "aten.convolution.default")
    p.page.evaluate(f"mevreport.select({conv.id})")
    pairs = panel.locator("dl").first.evaluate(
        "d => Array.from(d.querySelectorAll('dt')).map(t => [t.textContent, t.nextElementSibling.textContent])")
    assert ["stride", "[1,1]"] in pairs and ["groups", "1"] in pairs and ["kernel", "[3,3]"] in pairs
    assert ["class", "Conv2d"] not in pairs and any(k == "module" and "Conv2d" in v for k, v in pairs)
    p.page.evaluate(f"mevreport.select({addmm.id})")
    first_input = addmm.inputs[0]
    panel.locator(f"[data-goto-graph='{first_input}']").first.click()
    assert p.page.evaluate("mevreport.graph.selected()") == f"n{first_input}"
    p.page.close()


def test_colour_legend_has_labelled_quantile_bins(browser, pages):  # noqa: F811
    p, report = _open(browser, pages, "small")
    p.page.select_option("#color-by", "macs")
    bins = p.page.locator("#legend .bin")
    counted = sorted(n.macs for n in report.nodes if n.macs)
    assert 2 <= bins.count() <= 5
    text = bins.all_text_contents()
    assert all("\u2013" in t for t in text[:-1]) and text[-1].endswith("+")
    assert len(counted) >= 2
    p.page.close()


def test_flat_ranking_across_depths_descending(browser, pages):  # noqa: F811
    p, report = _open(browser, pages, "deep")
    by_macs = sorted((m for m in report.modules if m.path and m.macs is not None), key=lambda m: (-m.macs, m.path))
    rows = p.page.eval_on_selector_all("#rank-table tbody tr", "rs => rs.map(r => r.cells[1].textContent)")
    assert rows == [m.path for m in by_macs[:10]]
    assert rows[0] == "layers"  # the Sequential holding every layer: depth 1 outranks each of its children
    p.page.select_option("#rank-n", "100")
    p.page.select_option("#rank-by", "bytes")
    paths = p.page.eval_on_selector_all("#rank-table tbody tr", "rs => rs.map(r => r.cells[1].textContent)")
    want = sorted((m for m in report.modules if m.path), key=lambda m: (-m.activation_bytes, m.path))[:100]
    assert paths == [m.path for m in want]
    depths = {m.depth for m in want}
    assert len(depths) >= 2  # a flat ranking: modules of several depths side by side
    p.page.click("#module-table th[data-sort='macs']")  # numbers: largest first on the first click
    assert p.page.locator("#module-table th[data-sort='macs']").get_attribute("aria-sort") == "descending"
    p.page.close()


def test_print_gives_the_whole_graph_and_every_row(browser, pages):  # noqa: F811
    from PIL import Image
    p, report = _open(browser, pages, "deep")
    assert p.page.locator("#op-table tbody tr").count() == 100  # paged on screen
    p.page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert p.page.locator("#op-table tbody tr").count() == len(report.nodes) == 282
    assert p.page.locator("#module-table tbody tr:not([hidden])").count() == len(report.modules)
    src = p.page.locator("#graph-print").get_attribute("src")
    size = p.page.evaluate("mevreport.graph.exportSize()")
    img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    assert img.size == (size["width"], size["height"])
    p.page.emulate_media(media="print")
    assert p.page.locator("#graph-print").is_visible() and p.page.locator("#graph").is_hidden()
    p.page.emulate_media(media="screen")
    p.page.evaluate("window.dispatchEvent(new Event('afterprint'))")
    assert p.page.locator("#op-table tbody tr").count() == 100
    assert p.page.locator("#graph-print").is_hidden()
    p.page.close()


def test_modules_named_like_object_properties(browser, pages):  # noqa: F811
    """``__proto__``, ``constructor``, ... are module paths like any other: their boxes, labels, search,
    expansion and module rows all work (each page map keyed by path has no prototype)."""
    p, report = _open(browser, pages, "words")
    assert p.errors == []
    assert p.page.evaluate("mevreport.collapseAll()") == 4
    labels = p.page.evaluate("mevreport.graphCore.scene.units.map(u => u.desc.lines)")
    # three alike Linear(4, 4) modules share a repeat group; the Sequential is alone
    assert labels == [["__proto__", "Linear \u00d73"], ["constructor", "Sequential"],
                      ["hasOwnProperty", "Linear \u00d73"], ["toString", "Linear \u00d73"]]
    # depth 2: the three Linears' t and addmm each, constructor's two children as boxes
    assert p.page.evaluate("mevreport.expandToDepth(2)") == 3 * 2 + 2
    assert p.page.evaluate("mevreport.expandAll()") == len(report.nodes) == 3 * 2 + 2 + 1
    assert p.page.evaluate("mevreport.collapseAll()") == 4
    p.page.evaluate("mevreport.graph.select('m:constructor')")
    p.page.keyboard.press("Enter")  # expands constructor alone: its two children become boxes
    assert len(p.page.evaluate("mevreport.graph.units()")) == 4 - 1 + 2
    for name in ObjectWords.NAMES:
        ops = sum(1 for n in report.nodes if n.module_path == name or n.module_path.startswith(name + "."))
        assert p.page.evaluate(f"mevreport.search({name!r})") == ops > 0
    rows = p.page.eval_on_selector_all("#module-table tbody tr", "rows => rows.map(r => r.dataset.path)")
    assert sorted(rows) == sorted(m.path for m in report.modules)
    assert p.errors == []
    p.page.close()


def test_long_op_names_are_shortened_to_fit_their_box(browser, pages):  # noqa: F811
    """CPU attention runs ``_scaled_dot_product_flash_attention_for_cpu`` (43 characters): its label keeps
    the end of the name, like a module path's, within the box's ``label_chars``."""
    p, report = _open(browser, pages, "attention")
    n = p.page.evaluate("mevreport.graphCore.view.label_chars")
    assert p.page.evaluate("mevreport.expandAll()") == len(report.nodes)
    labels = {u["key"]: u["lines"][0] for u in p.page.evaluate(
        "mevreport.graphCore.scene.units.map(u => ({key: u.key, lines: u.desc.lines}))")}
    for node in report.nodes:
        name = node.op.split(".")[1]
        want = name if len(name) <= n else "\u2026" + name[len(name) - (n - 1):]
        assert labels[f"n{node.id}"] == want
    assert any(len(node.op.split(".")[1]) > n for node in report.nodes)  # the case this is about occurs
    assert p.errors == []
    p.page.close()

