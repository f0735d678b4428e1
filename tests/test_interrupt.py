"""Interrupted work loses nothing (issue 7).

Ctrl-C in the middle of a run, or a crash while the report is rendered or
written, must leave a previous report at the output path byte-identical and
no temporary file (``.*.tmp``) in its directory.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

OLD_HTML = b"<!DOCTYPE html><html><body>previous report</body></html>\n"
OLD_JSON = b'{"previous": true}\n'


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)


def _previous_report(d: Path) -> None:
    (d / "out.html").write_bytes(OLD_HTML)
    (d / "out.json").write_bytes(OLD_JSON)


def _assert_untouched(d: Path, allowed: set[str] = frozenset()) -> None:
    assert (d / "out.html").read_bytes() == OLD_HTML
    assert (d / "out.json").read_bytes() == OLD_JSON
    assert not list(d.glob(".*.tmp")), list(d.glob(".*"))
    assert {p.name for p in d.iterdir()} == {"out.html", "out.json"} | set(allowed)


SIGNALS = {"ctrl-c": (signal.SIGINT, 130, "mevreport: interrupted; no partial file was written, existing reports are unchanged"),
           "sigterm": (signal.SIGTERM, 143, "mevreport: terminated; no partial file was written")}


@pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")
@pytest.mark.parametrize("kind", list(SIGNALS))
def test_signal_mid_run(kind: str, tmp_path: Path) -> None:
    signum, code, line = SIGNALS[kind]
    _previous_report(tmp_path)
    marker = tmp_path / "in-forward"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mevreport", "report", "tests.models_hostile:sleeper", "-o", "out.html", "--json", "out.json"],
        cwd=tmp_path, env=_env(MEVREPORT_TEST_MARKER=str(marker), MEVREPORT_TEST_SLEEP="60"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the model never started its forward pass"
            time.sleep(0.05)
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    progress = re.compile(r"^mevreport: (loaded|capturing)\b.*\(\d+\.\d+s\)$")
    assert [x for x in err.strip().splitlines() if not progress.match(x)] == [line], err
    marker.unlink()
    _assert_untouched(tmp_path)


CRASHES = """
import contextlib, io, json, os, sys
import mevreport.fileio, mevreport.jsontext, mevreport.report, mevreport.render.html
from mevreport.cli import main


def crash(*args, **kwargs):
    raise RuntimeError("injected crash")


real_fdopen = os.fdopen


class Full:
    \"\"\"A file on a disk that fills up after 100 characters.\"\"\"

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, text):
        self.f.write(text[:100])
        raise OSError(28, "No space left on device")


PATCHES = {
    "render": (mevreport.render.html, "render_html", crash),         # nothing written yet
    "to-json": (mevreport.jsontext, "document_text", crash),          # after the HTML was rendered
    "rename": (mevreport.fileio.os, "replace", crash),               # the temporary file exists
    "disk-full": (mevreport.fileio.os, "fdopen", lambda fd, *a, **k: Full(real_fdopen(fd, *a, **k))),
}
results = {}
for kind, directory in zip(sys.argv[1::2], sys.argv[2::2]):
    owner, name, replacement = PATCHES[kind]
    saved = getattr(owner, name)
    setattr(owner, name, replacement)
    os.chdir(directory)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            outcome = main(["report", "tests.models_hostile:small_conv_with_inputs", "--runs", "0", "-q",
                            "-o", "out.html", "--json", "out.json"])
    except Exception as exc:  # a bug escapes main() with its traceback
        outcome = f"{type(exc).__name__}: {exc}"
    finally:
        setattr(owner, name, saved)
    results[kind] = [outcome, err.getvalue()]
print(json.dumps(results))
"""
KINDS = ["render", "to-json", "rename", "disk-full"]


@pytest.fixture(scope="module")
def crashes(tmp_path_factory) -> dict[str, tuple[object, str, Path]]:
    """All crash kinds in one interpreter (one torch import), each in its own directory."""
    dirs = {kind: tmp_path_factory.mktemp(kind) for kind in KINDS}
    for d in dirs.values():
        _previous_report(d)
    args = [a for kind in KINDS for a in (kind, str(dirs[kind]))]
    proc = subprocess.run([sys.executable, "-c", CRASHES, *args], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {kind: (out[kind][0], out[kind][1], dirs[kind]) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_crash_while_writing(kind: str, crashes) -> None:
    outcome, err, d = crashes[kind]
    if kind == "disk-full":  # an OS error the user can act on: one line, exit 2
        assert outcome == 2
        assert err.strip() == ("mevreport: error: cannot write 'out.html': No space left on device; "
                               "the previous file, if any, is unchanged")
    else:  # a bug: it escapes main() with its traceback
        assert outcome == "RuntimeError: injected crash"
    _assert_untouched(d)


SIGNAL_BETWEEN_RENAMES = """
import os, signal, sys, threading, time
import mevreport.fileio
from mevreport.cli import main

# A live thread that does not block SIGINT, as torch's workers are: the kernel hands it the signal
# when the main thread blocks it, so a per-thread mask alone would let the handler run between renames.
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()

real_replace = os.replace
calls = []


def replace_then_signal(src, dst):
    real_replace(src, dst)
    if str(dst).endswith("out.html"):  # right after the HTML is in place, before the JSON is
        calls.append(dst)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # time for the other thread to take the signal and trip the handler


mevreport.fileio.os.replace = replace_then_signal
sys.exit(main(["report", "tests.models_hostile:small_conv_with_inputs", "--runs", "0", "-q",
               "-o", sys.argv[1] + "/out.html", "--json", sys.argv[1] + "/out.json"]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")
def test_signal_between_html_and_json_leaves_a_consistent_pair(tmp_path: Path) -> None:
    """Issue 11: the pair is renamed with SIGINT blocked, so both files are new and the message says so."""
    _previous_report(tmp_path)
    proc = subprocess.run([sys.executable, "-c", SIGNAL_BETWEEN_RENAMES, str(tmp_path)], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"mevreport: interrupted after writing {tmp_path}/out.html, {tmp_path}/out.json; no partial file was written"]
    html, doc = (tmp_path / "out.html").read_bytes(), json.loads((tmp_path / "out.json").read_text())
    assert html != OLD_HTML and b"mevreport-data" in html
    assert doc["schema_version"] == 1 and doc["created_at"] in html.decode()
    assert not list(tmp_path.glob(".*.tmp"))


def test_deferring_signals_leaves_the_handlers_as_found(tmp_path: Path) -> None:
    """The recorder swapped in for the renames is undone, and a signal held during them is delivered after."""
    from mevreport.fileio import atomic_write_texts

    seen: list[int] = []
    before = signal.signal(signal.SIGTERM, lambda signum, _frame: seen.append(signum))
    try:
        handler = signal.getsignal(signal.SIGTERM)
        sigint = signal.getsignal(signal.SIGINT)
        real_replace = os.replace

        def replace_and_signal(src, dst):
            real_replace(src, dst)
            signal.raise_signal(signal.SIGTERM)
            assert seen == []  # held: not delivered between renames

        os.replace = replace_and_signal
        try:
            atomic_write_texts([(tmp_path / "a.txt", "a"), (tmp_path / "b.txt", "b")])
        finally:
            os.replace = real_replace
        assert seen == [signal.SIGTERM]  # delivered once, after the last rename
        assert signal.getsignal(signal.SIGTERM) is handler and signal.getsignal(signal.SIGINT) is sigint
        assert (tmp_path / "a.txt").read_text() == "a" and (tmp_path / "b.txt").read_text() == "b"
    finally:
        signal.signal(signal.SIGTERM, before)


# Put first on PYTHONPATH, this holds the import of one torch module: it writes a marker and sleeps
# inside torch's import, so the test's SIGINT arrives while `import torch` is under way, as a user's Ctrl-C
# at startup does (the signal lands in Python code between bytecodes, here in the sleep).
HOLD_IMPORT = """
import importlib.abc, os, sys, time


class _Hold(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["MEVREPORT_TEST_HOLD_IMPORT"]:
            sys.meta_path.remove(self)
            open(os.environ["MEVREPORT_TEST_MARKER"], "w").close()
            time.sleep(60)
        return None


sys.meta_path.insert(0, _Hold())
"""
CONSOLE_SCRIPT = Path(sys.executable).with_name("mevreport")


@pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")
@pytest.mark.parametrize("launcher", ["python-m", "console-script"])
@pytest.mark.parametrize("module", ["torch", "torch._C", "torch.nn"])
def test_ctrl_c_while_torch_is_importing(launcher: str, module: str, tmp_path: Path) -> None:
    """Issue 11: Ctrl-C before torch has finished importing is one line and exit 130, not a traceback."""
    if launcher == "console-script" and not CONSOLE_SCRIPT.exists():
        pytest.skip("the console script is not installed in this environment")
    hook, work = tmp_path / "hook", tmp_path / "work"
    hook.mkdir()
    work.mkdir()
    (hook / "sitecustomize.py").write_text(HOLD_IMPORT)
    _previous_report(work)
    marker = tmp_path / "importing"
    command = [sys.executable, "-m", "mevreport"] if launcher == "python-m" else [str(CONSOLE_SCRIPT)]
    env = dict(_env(MEVREPORT_TEST_HOLD_IMPORT=module, MEVREPORT_TEST_MARKER=str(marker)),
               PYTHONPATH=os.pathsep.join([str(hook), str(REPO)]))
    proc = subprocess.Popen(
        [*command, "report", "tests.models_hostile:small_conv_with_inputs", "--runs", "0",
         "-o", "out.html", "--json", "out.json"],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"{module} was never imported"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.splitlines() == ["mevreport: interrupted; no partial file was written, existing reports are unchanged"]
    _assert_untouched(work)
