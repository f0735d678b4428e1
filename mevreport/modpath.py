"""Dotted module paths (``encoder.layer.0.attn``; the root module is ``""``): one place for their ancestry.

Every stage walks module paths (the analysis rolls node figures up the module tree, the diff
matches subtrees, the ONNX reader and the graph view group nodes by module), so the one helper
lives in this leaf module, which imports nothing of mevreport's.
"""
from __future__ import annotations


def prefixes(path: str) -> list[str]:
    """The root ``""``, every ancestor and the path itself, outermost first."""
    if not path:
        return [""]
    parts = path.split(".")
    return [""] + [".".join(parts[: i + 1]) for i in range(len(parts))]
