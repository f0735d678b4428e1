"""The archive: every report under a directory, in release order.

``scan`` finds reports (HTML or JSON, recursively), reads each with
:func:`mevreport.load`, skips what it cannot read with a note instead of
failing the whole index, and folds the HTML and JSON copies of one report
into one entry.  Entries are ordered by their release label when they have
one, with version-aware comparison (``v1.10.0`` after ``v1.9.0``,
``1.0.0rc1`` before ``1.0.0``), and by ``created_at`` otherwise; labelled
releases come first, unlabelled reports after them.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import MevreportError, UsageError
from .report import Report

REPORT_SUFFIXES = (".html", ".htm", ".json")
TREND_METRICS = ("params", "macs", "flops", "peak_activation_bytes", "latency_ms")
# The training step's totals (DESIGN §6): in the index only when some report in the archive has them,
# so an archive of forward-only reports gives the page it always gave.
TRAIN_TREND_METRICS = ("backward_macs", "train_peak_bytes", "grad_bytes")
_OWN_PAGES = ('id="mevreport-diff"', 'id="mevreport-index"')


@dataclass(frozen=True)
class Entry:
    """One report in the archive; ``path`` is the preferred file (HTML over JSON), ``also`` the copies."""

    path: Path
    also: tuple[Path, ...]
    name: str
    class_name: str
    title: str | None
    label: str | None
    created_at: str
    device: str
    params: int
    macs: int | None
    flops: int | None
    peak_activation_bytes: int
    latency_ms: float | None
    latency_spread_ms: float | None
    backward_macs: int | None = None
    train_peak_bytes: int | None = None
    grad_bytes: int | None = None

    def value(self, metric: str) -> float | None:
        return getattr(self, metric)


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


@dataclass(frozen=True)
class Archive:
    root: Path
    entries: tuple[Entry, ...]
    skipped: tuple[Skipped, ...]

    def metrics(self) -> tuple[str, ...]:
        """The trend metrics of this archive: the forward ones, and a training one some entry has."""
        return TREND_METRICS + tuple(m for m in TRAIN_TREND_METRICS
                                     if any(e.value(m) is not None for e in self.entries))

    def trends(self) -> dict[str, list[float | None]]:
        """Each trend metric across the entries, in order (None where not measured)."""
        return {m: [e.value(m) for e in self.entries] for m in self.metrics()}


def _natural(text: str) -> tuple:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.findall(r"\d+|[^\d]+", text))


def version_key(label: str) -> tuple:
    """Sort key for release labels: PEP 440 when the label parses (after a leading ``v``), else natural order."""
    from packaging.version import InvalidVersion, Version  # matplotlib depends on packaging
    text = label.strip()
    try:
        return (0, Version(text[1:] if text[:1] in "vV" else text), ())
    except InvalidVersion:
        return (1, None, _natural(text))


def order_key(entry: Entry) -> tuple:
    if entry.label:
        kind, version, natural = version_key(entry.label)
        # Version objects only compare with each other: keep the tuple types aligned per kind.
        return (0, kind, version if kind == 0 else 0, natural, entry.created_at, str(entry.path))
    return (1, 0, 0, (), entry.created_at, str(entry.path))


def _entry(path: Path, report: Report) -> Entry:
    t = report.totals
    return Entry(path, (), report.model.name, report.model.class_name, report.title, report.label,
                 report.created_at, report.environment.device, t.params, t.macs, t.flops, t.peak_activation_bytes,
                 t.latency_ms, t.latency_spread_ms, t.backward_macs, t.train_peak_bytes, t.grad_bytes)


def _safe_resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return path


def _candidates(root: Path, exclude: set[Path]) -> tuple[list[Path], list[Skipped]]:
    """Report files under ``root``; symlinks are followed only when they stay inside it.

    ``os.walk`` does not descend into linked directories (no loops); a linked
    file that loops, dangles or resolves outside ``root`` is skipped with a note.
    """
    found: list[Path] = []
    skipped: list[Skipped] = []
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda exc: skipped.append(
            Skipped(Path(exc.filename or root), f"cannot list it ({exc.strerror or type(exc).__name__})"))):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name.startswith(".") or p.suffix.lower() not in REPORT_SUFFIXES:
                continue
            try:
                real = p.resolve(strict=True)
            except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
                skipped.append(Skipped(p, "a symlink that loops or points nowhere"))
                continue
            if real in exclude:
                continue
            if not real.is_relative_to(real_root):
                skipped.append(Skipped(p, f"a symlink to {str(real)!r}, outside the directory; not followed"))
                continue
            found.append(p)
    return found, skipped


def _is_own_page(path: Path) -> bool:
    if path.suffix.lower() == ".json":
        return False
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(marker in text for marker in _OWN_PAGES)


def scan(root: str | Path, exclude: tuple[str | Path, ...] = ()) -> Archive:
    """Read every report under ``root``; unreadable files become :class:`Skipped` notes."""
    from .api import load
    base = Path(root)
    if not base.is_dir():
        raise UsageError(f"{str(base)!r} is not a directory")
    excluded = {_safe_resolve(Path(p)) for p in exclude}
    by_key: dict[tuple, Entry] = {}
    candidates, skipped = _candidates(base, excluded)
    for path in candidates:
        try:
            report = load(path)
        except MevreportError as exc:
            if not _is_own_page(path):
                skipped.append(Skipped(path, str(exc)))
            continue
        key = (report.created_at, report.model.name, report.label, report.totals)
        entry = _entry(path, report)
        old = by_key.get(key)
        if old is None:
            by_key[key] = entry
        else:  # the HTML and JSON copies of one report: link the HTML
            old_is_json = old.path.suffix.lower() == ".json"
            first, second = (entry, old) if old_is_json and entry.path.suffix.lower() != ".json" else (old, entry)
            by_key[key] = Entry(**{**first.__dict__, "also": first.also + (second.path,) + second.also})
    entries = tuple(sorted(by_key.values(), key=order_key))
    return Archive(base, entries, tuple(skipped))


def relative_link(target: Path, page_dir: Path) -> str:
    """A URL from the index page to ``target``: relative, ``/``-separated, percent-quoted (no scheme possible)."""
    from urllib.parse import quote
    rel = os.path.relpath(Path(target).resolve(), Path(page_dir).resolve())
    return quote(Path(rel).as_posix(), safe="/")


def _shown(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def to_data(archive: Archive, page_dir: Path) -> dict[str, Any]:
    """Plain data for the page and its embedded JSON."""
    metrics = archive.metrics()
    return {
        "entries": [{
            "link": relative_link(e.path, page_dir), "also": [relative_link(p, page_dir) for p in e.also],
            "file": _shown(e.path, archive.root),
            "name": e.name, "class_name": e.class_name, "title": e.title, "label": e.label,
            "created_at": e.created_at, "device": e.device,
            **{m: e.value(m) for m in metrics}, "latency_spread_ms": e.latency_spread_ms,
        } for e in archive.entries],
        "skipped": [{"file": _shown(s.path, archive.root), "reason": s.reason} for s in archive.skipped],
        **({"train_metrics": list(metrics[len(TREND_METRICS):])} if len(metrics) > len(TREND_METRICS) else {}),
    }


__all__ = [
    "TRAIN_TREND_METRICS",
    "TREND_METRICS",
    "Archive",
    "Entry",
    "Skipped",
    "order_key",
    "relative_link",
    "scan",
    "to_data",
    "version_key",
]
