"""The JSON document inside the HTML report, written and read back safely.

Written into ``<script type="application/json" id="mevreport-data">``, with
``<``, ``>``, ``&`` and the line separators escaped as ``\\uXXXX`` so no model
string can close the script element or start a comment (DESIGN §4).  Read
back by locating that element and parsing its text with ``json``: nothing is
evaluated.
"""
from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ReportReadError

SCRIPT_ID = "mevreport-data"
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_PATTERN = re.compile(
    r'<script\s+type="application/json"\s+id="' + SCRIPT_ID + r'"\s*>(.*?)</script>', re.DOTALL
)


def json_for_script(data: Any) -> str:
    """JSON text that is safe verbatim inside a ``<script>`` element."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _ESCAPES[m.group(0)], text)


def extract_embedded_json(page: str, source: str = "report") -> str:
    match = _PATTERN.search(page)
    if match is None:
        raise ReportReadError(f"{source!r} is not a mevreport HTML report: no embedded JSON document found")
    return match.group(1)
