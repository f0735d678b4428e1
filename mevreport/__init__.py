"""mevreport: one self-contained HTML report of what a PyTorch model executes.

See DESIGN §2 for the contracts: ``analyze`` runs the model and returns a
:class:`Report`; ``generate`` also writes the HTML; ``load`` reads a saved
JSON document or HTML report back.

The public names are imported on first use (PEP 562), not here: importing
torch costs about a second, and ``mevreport --help``, ``--version`` or a
usage error should not pay it.  ``from mevreport import analyze`` and
``mevreport.Report`` work as before.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import MevreportError

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below
    from .api import analyze, generate, load
    from .report import Report

_LAZY = {"analyze": ".api", "generate": ".api", "load": ".api", "Report": ".api"}  # via the API, which installs its renderers

__all__ = ["MevreportError", "Report", "__version__", "analyze", "generate", "load"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # once: later lookups are plain attribute reads
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
