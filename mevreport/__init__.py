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
import sys
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import MevreportError

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below
    from .api import analyze, generate, load
    from .report import Report

_LAZY = {"analyze": ".api", "generate": ".api", "load": ".api", "Report": ".api"}  # via the API, which installs its renderers

__all__ = ["MevreportError", "Report", "__version__", "analyze", "generate", "load"]


def _resolve(name: str) -> Any:
    return getattr(importlib.import_module(_LAZY[name], __name__), name)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = _resolve(name)
        globals()[name] = value  # once: later lookups are plain attribute reads
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    """``mevreport.analyze`` is the function even after the submodule ``mevreport/analyze.py`` is
    imported: importing a submodule writes it onto the package under the same name, which a
    module-level ``__getattr__`` (consulted only for missing names) would not undo."""

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if name in _LAZY and isinstance(value, types.ModuleType):
            value = _resolve(name)
            super().__setattr__(name, value)
        return value


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
