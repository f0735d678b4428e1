"""The JSON Schema of the report document (``schema_version`` 1), generated from the dataclasses.

:class:`~mevreport.report.Report` and the records it holds are the one statement
of the document's shape (issue 13): pydantic turns their type hints, the
constraints in ``Annotated`` (counts are never negative) and their docstrings
into the schema, and ``mevreport.load`` validates with the same adapter.  The
generated schema ships as ``mevreport/schema.json`` so that consumers need
neither pydantic nor mevreport to validate; ``tests/test_schema.py`` fails when
the shipped file is not what the dataclasses generate.  Regenerate it with::

    python -m mevreport.schema > mevreport/schema.json

Objects accept properties the schema does not list (pydantic sets no
``additionalProperties``), because fields are only ever added within a schema
version (DESIGN §2): a consumer validating older or newer version-1 documents
keeps working.
"""
from __future__ import annotations

import json
import sys
from importlib import resources
from typing import Any

from .report import Report, report_adapter

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "https://mevreport.invalid/schema/report-1.json"


def generated_schema() -> dict[str, Any]:
    """The schema as pydantic generates it from :class:`Report` now (draft 2020-12)."""
    body = report_adapter().json_schema()
    body["title"] = "mevreport report document, schema_version 1"
    return {"$schema": DIALECT, "$id": SCHEMA_ID, **body}


def schema_text() -> str:
    """``generated_schema`` as the bytes of ``mevreport/schema.json`` (stable key order, final newline)."""
    return json.dumps(generated_schema(), indent=1, ensure_ascii=False) + "\n"


def json_schema() -> dict[str, Any]:
    """The shipped schema as a new dict, read from the installed package (no pydantic needed)."""
    return json.loads(resources.files("mevreport").joinpath("schema.json").read_text(encoding="utf-8"))


__all__ = ["Report", "generated_schema", "json_schema", "schema_text"]

if __name__ == "__main__":
    sys.stdout.write(schema_text())
