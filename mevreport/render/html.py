"""Render a :class:`Report` to one self-contained HTML file (DESIGN §4).

One ``jinja2.Environment`` with autoescaping and the unit formatters as
filters; the page data is prepared here as plain objects and the templates
only lay it out.  vis-network's JS and CSS are inlined from pyvis's bundled
``lib/``; the JSON document is embedded with :func:`json_for_script`, so the
file makes no network request and ``mevreport load`` can read it back.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2
import pyvis

from ..report import Report
from .embed import SCRIPT_ID, json_for_script
from .format import FILTERS
from .graphview import build_view

_VIS_DIR = Path(pyvis.__file__).parent / "lib" / "vis-9.1.2"


def templates_dir() -> Path:
    """Templates ship inside the wheel as ``mevreport/templates``; in a checkout they sit at the top."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "report.html.j2").is_file():
            return candidate
    raise FileNotFoundError("mevreport templates not found: the installation is incomplete")


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.filters["script_json"] = lambda data: jinja2.utils.markupsafe.Markup(json_for_script(data))
    return env


@functools.lru_cache(maxsize=1)
def vis_assets() -> tuple[str, str]:
    js = (_VIS_DIR / "vis-network.min.js").read_text(encoding="utf-8")
    css = (_VIS_DIR / "vis-network.css").read_text(encoding="utf-8")
    # Neither may close the element it is inlined into.
    return js.replace("</script", "<\\/script"), css.replace("</style", "<\\/style")


def page_context(report: Report) -> dict[str, Any]:
    view = build_view(report)
    vis_js, vis_css = vis_assets()
    return {
        "r": report,
        "title": report.title or report.model.name,
        "doc": report.to_dict(),
        "doc_id": SCRIPT_ID,
        "graph": {"nodes": view.nodes, "edges": view.edges, "depth": view.depth, "units": view.units},
        "vis_js": jinja2.utils.markupsafe.Markup(vis_js),
        "vis_css": jinja2.utils.markupsafe.Markup(vis_css),
    }


def render_html(report: Report) -> str:
    return environment().get_template("report.html.j2").render(**page_context(report))
