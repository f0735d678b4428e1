"""mevreport: one self-contained HTML report of what a PyTorch model executes.

See DESIGN §2 for the contracts: ``analyze`` runs the model and returns a
:class:`Report`; ``generate`` also writes the HTML; ``load`` reads a saved
JSON document or HTML report back.
"""
from ._version import __version__
from .api import analyze, generate, load
from .errors import MevreportError
from .report import Report

__all__ = ["MevreportError", "Report", "__version__", "analyze", "generate", "load"]
