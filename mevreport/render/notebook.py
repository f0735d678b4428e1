"""The report inside a notebook cell (``Report._repr_html_``).

The whole page goes into an ``<iframe srcdoc=...>``: its styles, scripts and
element ids stay inside the frame, so neither the notebook's CSS nor a second
report in the same notebook can change it, and the same markup works in
JupyterLab, classic Notebook and VS Code (each renders ``text/html`` outputs,
and each allows ``srcdoc`` frames).  The frame is sandboxed: scripts run (the
graph needs them) but without the notebook's origin, so the report cannot
read or change the notebook; downloads (SVG/PNG export) and links opening in
a new tab stay allowed.
"""
from __future__ import annotations

import html

from ..report import Report

FRAME_HEIGHT_PX = 820  # a screen's worth: the header, the graph and the start of the tables


def notebook_html(report: Report, page: str, height: int = FRAME_HEIGHT_PX) -> str:
    """``page`` (the report's own HTML) framed for a notebook output."""
    title = html.escape(f"mevreport: {report.title or report.model.name}", quote=True)
    return (f'<iframe title="{title}" srcdoc="{html.escape(page, quote=True)}" '
            f'sandbox="allow-scripts allow-downloads allow-popups allow-popups-to-escape-sandbox" '
            f'style="width:100%;height:{int(height)}px;border:1px solid rgba(128,128,128,.35);border-radius:4px" '
            f'loading="lazy"></iframe>')
