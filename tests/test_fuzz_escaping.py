"""Hostile names cannot change the page (issue 7, DESIGN §4).

Hypothesis builds a tiny model whose module names, class names, input name,
model name, title and label are made of HTML/JS-special characters
(``<>&"'/\\``, backticks, ``</script>``, ``<!--``, U+2028 ...), renders the
report, and checks with Python's ``html.parser``:

* the page has exactly the elements, attributes and ``<script>`` elements
  (their count, ``type`` and ``id``) of the same model with plain names, so
  no string opened, closed or added anything;
* no attribute anywhere starts with ``on``;
* the JSON inside the two data scripts holds no ``<`` at all, so neither
  ``</script>`` nor ``<!--`` can occur in it, and parses as JSON;
* the title reads back as text, and ``mevreport.load`` reads back every name.
"""
from __future__ import annotations

import functools
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import mevreport
from mevreport.errors import ReportReadError
from mevreport.render.html import render_html

MAX_EXAMPLES = 40

FRAGMENTS = ["<", ">", "&", '"', "'", "/", "\\", "`", "=", "</script>", "</SCRIPT >", "<script>", "<!--", "-->",
             "<![CDATA[", "]]>", "\u2028", "\u2029", "${x}", "{{ x }}", "{% raw %}", "&amp;", "&#60;", "\\u003c",
             "<img src=x onerror=alert(1)>", " onload=alert(1) ", "javascript:", "<style>", "</style>", "\n", "\t"]
hostile = st.lists(st.sampled_from(FRAGMENTS) | st.text(alphabet="<>&\"'/\\`=!- ab", min_size=1, max_size=3),
                   min_size=1, max_size=5).map("".join)


class _Child(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


class _Root(nn.Module):
    def __init__(self, child_names: list[str], child_class: type) -> None:
        super().__init__()
        for name in child_names:
            self.add_module(name, child_class())

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        (x,) = inputs.values()
        for child in self.children():
            x = child(x)
        return x


def build(class_name: str, child_class_name: str, child_names: list[str]) -> nn.Module:
    child_class = type(child_class_name, (_Child,), {})
    return type(class_name, (_Root,), {})(child_names, child_class).eval()


class Structure(HTMLParser):
    """Every tag with its attribute names, the scripts with their type/id and text, comments, declarations.

    Tags inside inline ``<svg>`` plots are left out of ``tags``: matplotlib picks
    ticks and glyphs by the label text, so their count follows the names.  Their
    attributes still go into ``attributes`` (no ``on*`` allowed anywhere), and a
    ``<script>`` inside one would still be counted in ``scripts``.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.attributes: list[str] = []
        self.scripts: list[dict] = []
        self.others: list[str] = []
        self.text: dict[str, list[str]] = {}
        self._open: list[str] = []
        self._svg_depth = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "svg":
            self._svg_depth += 1
        if self._svg_depth == 0 or tag == "svg":
            self.tags.append((tag, tuple(name for name, _ in attrs)))
        self.attributes.extend(name for name, _ in attrs)
        if tag == "script":
            self.scripts.append({"type": dict(attrs).get("type"), "id": dict(attrs).get("id"), "text": ""})
        self._open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if self._svg_depth == 0:
            self.tags.append((tag + "/", tuple(name for name, _ in attrs)))
        self.attributes.extend(name for name, _ in attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg_depth -= 1
        if self._svg_depth == 0:
            self.tags.append(("/" + tag, ()))
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open:
            if self._open[-1] == "script":
                self.scripts[-1]["text"] += data
            self.text.setdefault(self._open[-1], []).append(data)

    def handle_comment(self, data: str) -> None:
        self.others.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.others.append("decl:" + decl)

    def handle_pi(self, data: str) -> None:
        self.others.append("pi")

    def unknown_decl(self, data: str) -> None:
        self.others.append("unknown")


def parse(page: str) -> Structure:
    parser = Structure()
    parser.feed(page)
    parser.close()
    return parser


def page_of(model: nn.Module, input_name: str, title: str, name: str, label: str) -> tuple[mevreport.Report, str]:
    report = mevreport.analyze(model, {input_name: torch.randn(2, 4)}, runs=0, title=title, name=name, label=label)
    return report, render_html(report)


@functools.cache
def _plain_page(children: int) -> str:
    """The page of a model with plain names and the same structure (rendered once per child count)."""
    return page_of(build("Plain", "Child", [f"m{i}" for i in range(children)]), "x", "plain", "plain", "v1")[1]


@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(class_name=hostile, child_class_name=hostile, child_names=st.lists(hostile, min_size=1, max_size=3, unique=True),
       input_name=hostile, title=hostile, name=hostile, label=hostile)
def test_hostile_names_are_inert(class_name: str, child_class_name: str, child_names: list[str], input_name: str,
                                 title: str, name: str, label: str, tmp_path: Path) -> None:
    child_names = [c.replace(".", "_") for c in child_names]  # torch forbids dots in module names
    report, page = page_of(build(class_name, child_class_name, child_names), input_name, title, name, label)
    plain_page = _plain_page(len(child_names))
    got, want = parse(page), parse(plain_page)

    assert got.tags == want.tags  # same elements, same attributes, in the same order
    assert [(s["type"], s["id"]) for s in got.scripts] == [(s["type"], s["id"]) for s in want.scripts] == [
        (None, None), ("application/json", "mevreport-data"), ("application/json", "mevreport-view"), (None, None)]
    assert got.others == want.others == ["decl:DOCTYPE html"]
    assert not [a for a in got.attributes if a.lower().startswith("on")]
    for script in got.scripts[1:3]:
        assert "<" not in script["text"]
        json.loads(script["text"])
    assert "".join(got.text["title"]) == f"{title} \u00b7 mevreport"
    assert "".join(got.text["h1"]) == title

    path = tmp_path / "r.html"
    report.save_html(path)
    back = mevreport.load(path)
    assert back == report
    assert (back.title, back.label, back.model.name, back.model.class_name) == (title, label, name, class_name)
    assert [m.path for m in back.modules] == [""] + [p for c in child_names for p in (c, f"{c}.fc")]
    assert [m.class_name for m in back.modules] == [class_name] + [child_class_name, "Linear"] * len(child_names)
    assert [i.name for i in back.inputs] == [input_name]
    assert {n.module_path for n in back.nodes} == {p for c in child_names for p in (c, f"{c}.fc")}
    assert {p.name for p in back.params} == {f"{c}.fc.{w}" for c in child_names for w in ("weight", "bias")}


def test_malformed_embedded_json_is_a_clean_error(tmp_path: Path) -> None:
    """A crafted report whose embedded JSON is broken gives one ReportReadError line; nothing is evaluated."""
    marker = tmp_path / "EXECUTED"
    payloads = {
        "truncated": '{"schema_version": 1, "tool": {"name": "mevreport"',
        "javascript": f'alert(1); require("child_process").execSync("touch {marker}")',
        "python": f'__import__("os").system("touch {marker}")',
        "wrong-kind": '{"schema_version": 1, "tool": "mevreport", "modules": "abc"}',
        "not-mevreport": '{"hello": "world"}',
    }
    for kind, payload in payloads.items():
        page = tmp_path / f"{kind}.html"
        page.write_text('<!DOCTYPE html><html><body><script type="application/json" id="mevreport-data">'
                        f"{payload}</script></body></html>", encoding="utf-8")
        with pytest.raises(ReportReadError) as info:
            mevreport.load(page)
        message = str(info.value)
        assert "\n" not in message and str(page) in message
        assert ("not a mevreport" in message or "malformed" in message), message
    no_script = tmp_path / "plain.html"
    no_script.write_text("<html><body>hello</body></html>", encoding="utf-8")
    with pytest.raises(ReportReadError, match="no embedded JSON document found"):
        mevreport.load(no_script)
    assert not marker.exists()
