"""mevreport index: discovery, version-aware ordering, trends, links, skipped files, the page."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import mevreport
from mevreport.archive import scan, version_key

from .conftest import run_cli
from .models_diff import mlp_v1


def test_version_key_orders_releases():
    labels = ["v1.10.0", "nightly-10", "v1.9.0", "1.2", "v1.0.0", "nightly-2", "v1.0.0rc1"]
    assert sorted(labels, key=version_key) == \
        ["v1.0.0rc1", "v1.0.0", "1.2", "v1.9.0", "v1.10.0", "nightly-2", "nightly-10"]


def _variant(report, label, created_at, params, latency=None):
    totals = dataclasses.replace(report.totals, params=params, macs=params * 2, latency_ms=latency,
                                 latency_spread_ms=None if latency is None else latency / 10)
    return dataclasses.replace(report, label=label, created_at=created_at, totals=totals)


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory):
    base = mevreport.analyze(*mlp_v1(), runs=0, stats=False)
    d = tmp_path_factory.mktemp("archive")
    (d / "b").mkdir()
    (d / "nested" / "deeper").mkdir(parents=True)
    (d / ".hidden").mkdir()
    _variant(base, "v1.9.0", "2026-01-03T00:00:00+00:00", 100, 1.0).save_json(d / "a.json")
    c = _variant(base, "v1.10.0", "2026-01-01T00:00:00+00:00", 300, 2.0)
    c.save_html(d / "b" / "c.html")
    c.save_json(d / "b" / "c.json")  # the same report twice: one entry, HTML linked first
    _variant(base, "v1.2.0", "2026-01-05T00:00:00+00:00", 50).save_json(d / "nested" / "deeper" / "d.json")
    _variant(base, None, "2026-01-02T00:00:00+00:00", 10).save_json(d / "e.json")
    _variant(base, "<script>$x$</script>", "2026-01-01T00:00:00+00:00", 20).save_json(d / "f f.json")
    _variant(base, "v9.9.9", "2026-01-01T00:00:00+00:00", 1).save_json(d / ".hidden" / "ignored.json")
    (d / "junk.json").write_text('{"a": 1}', encoding="utf-8")
    (d / "broken.html").write_text("<html>not a report</html>", encoding="utf-8")
    (d / "notes.txt").write_text("ignored: not .html/.json", encoding="utf-8")
    return d


def test_scan_orders_by_version_then_time(archive_dir):
    a = scan(archive_dir)
    got = [(e.label, e.path.relative_to(archive_dir).as_posix(), [p.name for p in e.also]) for e in a.entries]
    # Labels in version order (v1.10.0 after v1.9.0); "<script>..." is not a version: after them;
    # unlabelled reports last, by created_at.
    assert got == [
        ("v1.2.0", "nested/deeper/d.json", []),
        ("v1.9.0", "a.json", []),
        ("v1.10.0", "b/c.html", ["c.json"]),
        ("<script>$x$</script>", "f f.json", []),
        (None, "e.json", []),
    ]
    assert a.trends()["params"] == [50, 100, 300, 20, 10]
    assert a.trends()["macs"] == [100, 200, 600, 40, 20]
    assert a.trends()["latency_ms"] == [None, 1.0, 2.0, None, None]
    skipped = sorted((s.path.name, s.reason.split(":")[0]) for s in a.skipped)
    assert [name for name, _ in skipped] == ["broken.html", "junk.json"]


def test_cli_index_page(archive_dir, tmp_path, capsys):
    r = run_cli("index", str(archive_dir))
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stderr and "junk.json" in r.stderr and "broken.html" in r.stderr
    page = (archive_dir / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+)">', page)
    assert links == ["nested/deeper/d.json", "a.json", "b/c.html", "b/c.json", "f%20f.json", "e.json"]
    assert page.count("<svg") == 4  # params, MACs, peak memory, latency (measured in two reports)
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # four inline SVGs in one document: ids kept apart
    assert "<script>$x$" not in page and "&lt;script&gt;$x$&lt;/script&gt;" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    data = json.loads(re.search(r'id="mevreport-index">(.*?)</script>', page, re.S).group(1))
    assert [e["params"] for e in data["entries"]] == [50, 100, 300, 20, 10]
    # Running again skips the index it wrote (it is not a report) without a note about it.
    from mevreport.cli import main
    assert main(["index", str(archive_dir), "-o", str(tmp_path / "site.html")]) == 0
    assert "index.html" not in capsys.readouterr().err
    links = re.findall(r'<a href="([^"]+)">', (tmp_path / "site.html").read_text(encoding="utf-8"))
    expected = Path("..") / Path(archive_dir).name / "a.json"  # both under pytest's base temp directory
    assert links[1] == expected.as_posix(), links


def test_cli_index_errors(tmp_path, capsys):
    from mevreport.cli import main
    assert main(["index", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "other.json").write_text("[]", encoding="utf-8")
    assert main(["index", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "no mevreport reports" in err and "skipped" in err and "other.json" in err
    assert not (tmp_path / "empty" / "index.html").exists()


def test_index_page_is_deterministic(archive_dir, tmp_path):
    from mevreport.render.index_page import render_index_html
    out = tmp_path / "index.html"
    one, two = (render_index_html(scan(archive_dir), out) for _ in range(2))
    assert one == two
    assert "<dc:date>" not in one  # matplotlib's date metadata is dropped


@pytest.mark.browser
def test_index_page_in_browser(archive_dir, tmp_path):
    from mevreport.render.index_page import render_index_html

    from .browser_pages import visit
    out = archive_dir / "browser-index.html"
    out.write_text(render_index_html(scan(archive_dir), out), encoding="utf-8")

    def check(page):
        assert page.locator("figure.plot svg").count() == 4
        assert page.locator("#reports tbody tr").count() == 5
        page.fill("#filter", "v1.1")
        assert page.evaluate("Array.from(document.querySelectorAll('tr[data-search]'))"
                             ".filter(r => r.style.display !== 'none').length") == 1  # v1.10.0
        href = page.locator("#reports a").nth(2).get_attribute("href")
        assert href == "b/c.html"

    try:
        requests, errors = visit(out, check)
    finally:
        out.unlink()
    assert requests == [out.as_uri()]
    assert errors == []
