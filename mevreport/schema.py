"""The JSON Schema of the report document (``schema_version`` 1), shipped in the package.

``mevreport/schema.json`` describes every field of :class:`~mevreport.report.Report`
as written by ``Report.to_json``.  Objects accept properties it does not list,
because fields are only ever added within a schema version (DESIGN §2): a
consumer validating older or newer version-1 documents keeps working.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any


def json_schema() -> dict[str, Any]:
    """The schema as a new dict (draft 2020-12), read from the installed package."""
    return json.loads(resources.files("mevreport").joinpath("schema.json").read_text(encoding="utf-8"))
