"""Writing outputs so that nothing is ever half-written.

Every file goes to a temporary name in the destination directory and is
renamed over the target only when complete, so an interrupted run (Ctrl-C, a
crash, a full disk) leaves any previous report intact and no temporary file
behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UsageError


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_writable(path: str | Path) -> Path:
    """Fail early, before any work, when ``path`` cannot be written.

    Permission bits say nothing when running as root, on read-only mounts or
    in pseudo file systems (``/proc``, ``/sys``), so the check creates and
    removes a probe file exactly where the real temporary file will go.
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise UsageError(f"output path {str(p)!r} is a directory; give a file name")
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"cannot write {str(p)!r}: {str(parent)!r} is a file, not a directory; choose another -o path")
    if not parent.is_dir():
        raise UsageError(f"cannot write {str(p)!r}: directory {str(parent)!r} does not exist; "
                         f"create it or choose another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise UsageError(f"cannot write {str(p)!r}: cannot create a file in {str(parent)!r} "
                         f"({_os_reason(exc)}); choose another path") from exc
    os.close(fd)
    os.unlink(probe)
    return p


def _file_mode(target: Path) -> int:
    """Keep an existing file's mode; a new file gets the usual 0666 less umask (mkstemp makes 0600)."""
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``.

    Any failure (a full disk, Ctrl-C, a crash) removes the temporary file and
    leaves a previous ``path`` untouched; OS errors become one-line
    :class:`UsageError` messages.
    """
    p = check_writable(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
    except OSError as exc:
        raise UsageError(f"cannot write {str(p)!r}: {_os_reason(exc)}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, _file_mode(p))
        os.replace(tmp, p)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {str(p)!r}: {_os_reason(exc)}; "
                             f"the previous file, if any, is unchanged") from exc
        raise
    return p
