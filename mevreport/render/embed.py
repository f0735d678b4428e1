"""The JSON document inside the HTML report, written and read back safely.

Written into ``<script type="application/json" id="mevreport-data">``, with
``<``, ``>``, ``&`` and the line separators escaped as ``\\uXXXX`` so no model
string can close the script element or start a comment (DESIGN §4).  Read
back by locating that element and parsing its text with ``json``: nothing is
evaluated.

A large document (over :data:`COMPRESS_ABOVE` characters: a model of some
10,000 ops) is embedded gzip-compressed and base64-encoded instead, in
``<script type="application/gzip+base64" id="mevreport-data">``: 100,000 ops
are 75 MB of JSON but under a tenth of that compressed, and the browser spends
less time inflating it (``DecompressionStream``, a standard API: the page stays
offline) than its HTML parser spends scanning the plain text.  Base64 has no
``<`` or ``&``, so nothing in it can close the element.
"""
from __future__ import annotations

import base64
import binascii
import gzip
import re
import zlib
from typing import Any

from ..errors import ReportReadError
from ..jsontext import compact_text

SCRIPT_ID = "mevreport-data"
PLAIN_TYPE = "application/json"
GZIP_TYPE = "application/gzip+base64"
COMPRESS_ABOVE = 2_000_000  # characters of JSON; below this the page keeps the readable form
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_PATTERN = re.compile(
    r'<script\s+type="(' + re.escape(PLAIN_TYPE) + "|" + re.escape(GZIP_TYPE) + r')"\s+id="' + SCRIPT_ID
    + r'"\s*>(.*?)</script>', re.DOTALL
)


def json_for_script(data: Any) -> str:
    """JSON text that is safe verbatim inside a ``<script>`` element.

    Written by orjson (:func:`~mevreport.jsontext.compact_text`) and escaped by
    ``str.replace`` passes: the 100,000-op document took 2.0 s with ``json.dumps``
    and a regular-expression substitution, 0.24 s so; 6.7 MB of table markup
    (2 million ``<``, ``>`` and ``&``, each a Python call to the substitution's
    function) 0.43 s, 0.05 s so.
    """
    text = compact_text(data)
    for char, escape in _ESCAPES.items():
        if char in text:
            text = text.replace(char, escape)
    return text


def document_for_script(data: Any, compress_above: int | None = None) -> tuple[str, str]:
    """The report's document as (script type, element text): plain JSON, or gzip + base64 when
    longer than ``compress_above`` characters (default :data:`COMPRESS_ABOVE`, read when called).

    gzip at level 3 (on the 100k-op document: 0.5 s CPU for 14.6 MB of base64, where level 6 took 1.3 s for
    12.7 MB) with no time stamp (``mtime=0``), so the same report gives the same page.
    """
    text = json_for_script(data)
    if len(text) <= (COMPRESS_ABOVE if compress_above is None else compress_above):
        return PLAIN_TYPE, text
    packed = gzip.compress(text.encode("utf-8"), compresslevel=3, mtime=0)
    return GZIP_TYPE, base64.b64encode(packed).decode("ascii")


def extract_embedded_json(page: str, source: str = "report") -> str:
    match = _PATTERN.search(page)
    if match is None:
        raise ReportReadError(f"{source!r} is not a mevreport HTML report: no embedded JSON document found")
    kind, body = match.group(1), match.group(2)
    if kind == PLAIN_TYPE:
        return body
    try:
        return gzip.decompress(base64.b64decode(body.strip(), validate=True)).decode("utf-8")
    except (binascii.Error, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise ReportReadError(f"{source!r}: its embedded report document is damaged ({exc})") from None
