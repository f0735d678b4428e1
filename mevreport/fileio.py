"""Writing outputs so that nothing is ever half-written.

Every file goes to a temporary name in the destination directory and is
renamed over the target only when complete, so an interrupted run (Ctrl-C, a
crash, a full disk) leaves any previous report intact and no temporary file
behind.
"""
from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
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
    # Missing directories are created when the file is written (after the work, so a failed run
    # creates none); here the nearest existing one must be a directory we can write in.
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot write {str(p)!r}: {str(existing)!r} is a file, not a directory; choose another -o path")
    what = "a file" if existing == parent else "a directory"
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=existing)
    except OSError as exc:
        raise UsageError(f"cannot write {str(p)!r}: cannot create {what} in {str(existing)!r} "
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
    return atomic_write_texts([(path, text)])[0]


_DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, then deliver them to the handlers that were installed.

    Blocking with ``pthread_sigmask`` alone is not enough: the mask is per
    thread, and with torch's worker threads alive the kernel hands the signal
    to another thread, whose C handler trips Python's flag, and the main
    thread then runs the handler between two renames.  So, in the main
    thread, the Python-level handlers are swapped for a recorder for the
    duration (restored in ``finally``) and the recorded signals re-raised
    afterwards.  Elsewhere (no Python handlers can be set) the thread mask
    is the best there is.
    """
    if threading.current_thread() is not threading.main_thread():
        if not hasattr(signal, "pthread_sigmask"):
            yield
            return
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        return
    pending: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in _DEFERRED}
    for sig in _DEFERRED:
        signal.signal(sig, lambda signum, _frame: pending.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)


def atomic_write_texts(items: list[tuple[str | Path, str]], written: list[str] | None = None) -> list[Path]:
    """Several files as one step: every temporary file complete first, then the renames back to back.

    The renames run with SIGINT and SIGTERM blocked (POSIX), so Ctrl-C or a
    kill cannot fall between them and leave a new HTML beside an old JSON: the
    signal is handled after the last rename.  ``written`` receives each path
    as it is renamed, inside the blocked section, so an interrupt message can
    name exactly the files that are new.
    """
    paths = [check_writable(p) for p, _ in items]
    temps: list[str] = []
    current, renamed = paths[0] if paths else Path("."), 0
    try:
        for p, (_, text) in zip(paths, items):
            current = p
            try:
                p.parent.mkdir(parents=True, exist_ok=True)  # runs/exp1/report.html: as a user expects
                fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
            except OSError as exc:
                raise UsageError(f"cannot write {str(p)!r}: {_os_reason(exc)}") from exc
            temps.append(tmp)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, _file_mode(p))
        with _signals_deferred():
            for p, tmp in zip(paths, temps):
                current = p
                os.replace(tmp, p)
                renamed += 1
                if written is not None:
                    written.append(str(p))
            temps = []
    except BaseException as exc:
        for tmp in temps:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(exc, OSError):
            done = ", ".join(repr(str(p)) for p in paths[:renamed])
            rest = (f"; {done} already written, the others unchanged" if renamed
                    else "; the previous file, if any, is unchanged")
            raise UsageError(f"cannot write {str(current)!r}: {_os_reason(exc)}{rest}") from exc
        raise
    return paths
